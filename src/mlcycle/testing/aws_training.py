"""SageMaker's XGBoost container played on moto, for the sagemaker training backend's tests.

moto 5.2.5 records training jobs and answers ``Completed`` at once, but runs nothing: no model,
no logs. :class:`SimulatedContainer` does what the built-in XGBoost 1.7-1 container would, behind
botocore's event system: after each ``CreateTrainingJob`` it runs the job and puts its outputs
where SageMaker puts them, so tests see what mlcycle does with a real job's outputs.

* Algorithm mode (no ``sagemaker_program`` hyperparameter): it reads the CSV channels (label
  first, no header), trains in this process with the request's string hyperparameters, and
  writes ``model.tar.gz`` (an ``xgboost-model`` without feature names, as the container trains
  on headerless CSV) to the key ``DescribeTrainingJob`` reports.
* Script mode (``sagemaker_program`` and ``sagemaker_submit_directory``): it lays out a
  temporary folder as ``/opt/ml`` (``code/`` with ``sourcedir.tar.gz`` unpacked from moto's S3,
  ``input/config/`` with ``hyperparameters.json``, ``inputdataconfig.json``,
  ``resourceconfig.json`` and ``checkpointconfig.json``, ``input/data/<channel>/`` with each
  channel's objects), runs the entry script with this Python as the container does
  (``python -m <module>`` with the hyperparameters as ``--name value`` and SageMaker's
  ``SM_*`` environment variables pointing into that folder), then uploads what SageMaker
  uploads: the model folder as ``model.tar.gz`` (if the script succeeded), ``output/data`` as
  ``output.tar.gz`` and the checkpoint folder to ``CheckpointConfig.S3Uri``.

Either way the job's output lines go to CloudWatch Logs in ``/aws/sagemaker/TrainingJobs``,
stream ``<job>/algo-1-<time>``. Jobs of more than :data:`MAX_SIMULATED_ROUNDS` rounds are left
without outputs, as if still training. The simulation cannot change moto's job status, so a
failed script leaves a ``Completed`` job without a model; ``SimulatedContainer.runs`` says
how each run ended.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

__all__ = ["MAX_SIMULATED_ROUNDS", "ScriptRun", "SimulatedContainer"]

#: The most rounds a simulated job trains; for longer jobs nothing is written (moto still
#: says Completed), so long jobs in tests cost no time.
MAX_SIMULATED_ROUNDS = 1_000
_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


@attrs.frozen(kw_only=True)
class ScriptRun:
    """How one simulated script-mode job ended.

    Parameters
    ----------
    returncode : int
        The script's exit status.
    lines : tuple of str
        Its output lines (standard output, then standard error).
    failure : str, optional
        The contents of ``/opt/ml/output/failure``, SageMaker's ``FailureReason``.
    """

    returncode: int
    lines: tuple[str, ...]
    failure: str | None = None


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _tar_gz(folder: Path) -> bytes:
    """The folder as SageMaker archives it: members named relative to the folder."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return gzip.compress(raw.getvalue(), mtime=0)


class SimulatedContainer:
    """What the built-in XGBoost 1.7-1 container does with a job, for moto's jobs.

    Parameters
    ----------
    backend : mlcycle.backends.sagemaker.SageMakerBackend
        A backend on moto; the container listens on its ``sagemaker`` client.
    timeout : float
        Seconds a script may run.
    python : str, optional
        The interpreter that runs scripts (default this one); another one, with only XGBoost
        1.7, NumPy and pandas installed, checks that a script needs nothing more.
    """

    def __init__(self, backend: Any, *, timeout: float = 300.0,
                 python: str | None = None) -> None:
        self.backend = backend
        self.timeout = timeout
        self.python = python or sys.executable
        self.pending: dict[str, Any] = {}
        self.jobs: list[str] = []
        self.runs: dict[str, ScriptRun] = {}
        events = backend.client("sagemaker").meta.events
        events.register("before-parameter-build.sagemaker.CreateTrainingJob", self._remember)
        events.register("after-call.sagemaker.CreateTrainingJob", self._run)

    # -- S3 ------------------------------------------------------------------------------------
    def _s3(self) -> Any:
        return self.backend.client("s3")

    def _keys(self, uri: str) -> list[str]:
        bucket, prefix = _split(uri)
        pages = self._s3().get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                     Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def _get(self, bucket: str, key: str) -> bytes:
        return self._s3().get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]

    def _channel(self, uri: str) -> Any:
        import pandas as pd

        bucket, _ = _split(uri)
        frames = [pd.read_csv(io.BytesIO(self._get(bucket, k)), header=None)
                  for k in self._keys(uri)]
        return pd.concat(frames, ignore_index=True)

    def _model_uri(self, name: str) -> str:
        described = self.backend.client("sagemaker").describe_training_job(
            TrainingJobName=name)
        return described["ModelArtifacts"]["S3ModelArtifacts"]  # type: ignore[no-any-return]

    # -- the job -------------------------------------------------------------------------------
    def _remember(self, params: dict[str, Any], **_: Any) -> None:
        self.pending[params["TrainingJobName"]] = dict(params)

    def _run(self, parsed: dict[str, Any], **_: Any) -> None:
        if "Error" in parsed:
            self.pending.clear()
            return
        name = next(iter(self.pending))
        request = self.pending.pop(name)
        self.jobs.append(name)
        hyper = request.get("HyperParameters", {})
        if int(_value(hyper.get("num_round", "0"))) > MAX_SIMULATED_ROUNDS:
            return
        if "sagemaker_program" in hyper:
            self._run_script(name, request)
        else:
            self._run_algorithm(name, request)

    def _run_algorithm(self, name: str, request: dict[str, Any]) -> None:
        import xgboost

        hyper = {k: _value(v) for k, v in request["HyperParameters"].items()}
        rounds = int(hyper.pop("num_round"))
        channels = {c["ChannelName"]: self._channel(c["DataSource"]["S3DataSource"]["S3Uri"])
                    for c in request["InputDataConfig"]}
        matrices = {n: xgboost.DMatrix(f.iloc[:, 1:].to_numpy(), label=f.iloc[:, 0].to_numpy())
                    for n, f in channels.items()}
        lines = ["[2026-01-01:00:00:00:INFO] Running XGBoost Sagemaker in algorithm mode"]

        class Monitor(xgboost.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                parts = [f"{data}-{metric}:{values[-1]:.5f}"
                         for data, metrics in evals_log.items()
                         for metric, values in metrics.items()]
                lines.append("#011".join([f"[{epoch}]", *parts]))
                return False

        try:
            booster = xgboost.train(hyper, matrices["train"], rounds,
                                    evals=[(m, n) for n, m in matrices.items()],
                                    verbose_eval=False, callbacks=[Monitor()])
        except xgboost.core.XGBoostError as exc:
            lines.append(f"[2026-01-01:00:00:01:ERROR] {exc}")
        else:
            raw = io.BytesIO()
            with tarfile.open(fileobj=raw, mode="w") as tar:
                model = bytes(booster.save_raw(raw_format="json"))
                info = tarfile.TarInfo("xgboost-model")
                info.size = len(model)
                tar.addfile(info, io.BytesIO(model))
            bucket, key = _split(self._model_uri(name))
            self._s3().put_object(Bucket=bucket, Key=key, Body=gzip.compress(raw.getvalue()))
        self.write_logs(name, lines)

    def _run_script(self, name: str, request: dict[str, Any]) -> None:
        hyper = request["HyperParameters"]
        with tempfile.TemporaryDirectory(prefix="mlcycle-opt-ml-") as tmp:
            root = Path(tmp)
            code, config = root / "code", root / "input" / "config"
            model, output = root / "model", root / "output"
            checkpoints = root / "checkpoints"
            for folder in (code, config, model, output / "data", checkpoints):
                folder.mkdir(parents=True)
            self._unpack_code(hyper["sagemaker_submit_directory"], code)
            env = self._environment(name, request, root)
            self._lay_out_inputs(request, root, config, checkpoints)
            module = Path(hyper["sagemaker_program"]).stem
            args = [a for k, v in hyper.items() if not k.startswith("sagemaker_")
                    for a in (f"--{k}", v)]
            try:
                done = subprocess.run([self.python, "-m", module, *args], cwd=code, env=env,
                                      capture_output=True, text=True, timeout=self.timeout,
                                      check=False)
                returncode, out, err = done.returncode, done.stdout, done.stderr
            except subprocess.TimeoutExpired as exc:
                returncode = -9
                out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
                err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
            lines = ["[2026-01-01:00:00:00:INFO] Invoking user training script.",
                     *out.splitlines(), *err.splitlines()]
            failure_file = output / "failure"
            failure = failure_file.read_text() if failure_file.exists() else None
            self.runs[name] = ScriptRun(returncode=returncode, lines=tuple(lines),
                                        failure=failure)
            if returncode == 0 and any(model.iterdir()):
                bucket, key = _split(self._model_uri(name))
                self._s3().put_object(Bucket=bucket, Key=key, Body=_tar_gz(model))
            if any((output / "data").iterdir()):
                base = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
                bucket, key = _split(f"{base}/{name}/output/output.tar.gz")
                self._s3().put_object(Bucket=bucket, Key=key, Body=_tar_gz(output / "data"))
            target = request.get("CheckpointConfig", {}).get("S3Uri")
            if target:
                bucket, prefix = _split(target.rstrip("/"))
                for path in sorted(p for p in checkpoints.rglob("*") if p.is_file()):
                    self._s3().put_object(
                        Bucket=bucket, Key=f"{prefix}/{path.relative_to(checkpoints).as_posix()}",
                        Body=path.read_bytes())
        self.write_logs(name, lines)

    def _unpack_code(self, uri: str, code: Path) -> None:
        bucket, key = _split(uri)
        with tarfile.open(fileobj=io.BytesIO(self._get(bucket, key)), mode="r:gz") as tar:
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if member.name.startswith("/") or ".." in parts or not (
                        member.isfile() or member.isdir()):
                    raise ValueError(f"unsafe member {member.name!r} in {uri}")
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(code, **safe)  # type: ignore[arg-type]

    def _lay_out_inputs(self, request: dict[str, Any], root: Path, config: Path,
                        checkpoints: Path) -> None:
        hosts = [f"algo-{i + 1}" for i in range(request["ResourceConfig"]["InstanceCount"])]
        data_config = {}
        for channel in request["InputDataConfig"]:
            source = channel["DataSource"]["S3DataSource"]
            folder = root / "input" / "data" / channel["ChannelName"]
            folder.mkdir(parents=True)
            bucket, prefix = _split(source["S3Uri"])
            for key in self._keys(source["S3Uri"]):
                path = folder / key[len(prefix):].lstrip("/")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self._get(bucket, key))
            data_config[channel["ChannelName"]] = {
                "ContentType": channel.get("ContentType", ""),
                "TrainingInputMode": request["AlgorithmSpecification"]["TrainingInputMode"],
                "S3DistributionType": source["S3DataDistributionType"],
                "RecordWrapperType": "None",
            }
        (config / "hyperparameters.json").write_text(json.dumps(request["HyperParameters"]))
        (config / "inputdataconfig.json").write_text(json.dumps(data_config))
        (config / "resourceconfig.json").write_text(json.dumps(
            {"current_host": hosts[0], "hosts": hosts, "network_interface_name": "eth0"}))
        if "CheckpointConfig" in request:
            (config / "checkpointconfig.json").write_text(json.dumps(
                {"LocalPath": str(checkpoints), "S3Uri": request["CheckpointConfig"]["S3Uri"]}))

    @staticmethod
    def _environment(name: str, request: dict[str, Any], root: Path) -> dict[str, str]:
        """The container's environment, its paths inside ``root``; no AWS credentials."""
        hyper = request["HyperParameters"]
        channels = [c["ChannelName"] for c in request["InputDataConfig"]]
        hosts = [f"algo-{i + 1}" for i in range(request["ResourceConfig"]["InstanceCount"])]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "SM_", "PYTHONSAFEPATH"))}
        env.update({
            "TRAINING_JOB_NAME": name,
            "SM_HOSTS": json.dumps(hosts),
            "SM_CURRENT_HOST": hosts[0],
            "SM_CHANNELS": json.dumps(channels),
            "SM_MODEL_DIR": str(root / "model"),
            "SM_OUTPUT_DIR": str(root / "output"),
            "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
            "SM_INPUT_DIR": str(root / "input"),
            "SM_INPUT_CONFIG_DIR": str(root / "input" / "config"),
            "SM_INPUT_TRAINING_CONFIG_FILE": str(root / "input" / "config"
                                                 / "hyperparameters.json"),
            "SM_INPUT_DATA_CONFIG_FILE": str(root / "input" / "config" / "inputdataconfig.json"),
            "SM_CHECKPOINT_CONFIG_FILE": str(root / "input" / "config"
                                             / "checkpointconfig.json"),
            "SM_MODULE_DIR": hyper["sagemaker_submit_directory"],
            "SM_MODULE_NAME": Path(hyper["sagemaker_program"]).stem,
            "SM_USER_ENTRY_POINT": hyper["sagemaker_program"],
            "SM_HPS": json.dumps({k: _value(v) for k, v in hyper.items()
                                  if not k.startswith("sagemaker_")}),
            "PYTHONPATH": str(root / "code"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        })
        for channel in channels:
            env[f"SM_CHANNEL_{channel.upper()}"] = str(root / "input" / "data" / channel)
        return env

    def write_logs(self, name: str, lines: list[str]) -> None:
        """Write ``lines`` to the job's CloudWatch Logs stream, as the container does."""
        logs = self.backend.client("logs")
        if not logs.describe_log_groups(logGroupNamePrefix=_LOG_GROUP)["logGroups"]:
            logs.create_log_group(logGroupName=_LOG_GROUP)
        stream = f"{name}/algo-1-{int(time.time())}"
        logs.create_log_stream(logGroupName=_LOG_GROUP, logStreamName=stream)
        now = int(time.time() * 1000)
        logs.put_log_events(logGroupName=_LOG_GROUP, logStreamName=stream,
                            logEvents=[{"timestamp": now + i, "message": line}
                                       for i, line in enumerate(lines) if line])
