"""Training on the sagemaker backend: SageMaker training jobs with the built-in XGBoost container.

How each operation maps to AWS (see ``docs/guide/training_sagemaker.rst``):

* submit: the channels are written to S3 as CSV in the built-in container's format (label in
  the first column, no header) under ``s3://BUCKET/PREFIX/training/<job>/input/<channel>/``,
  with a job record (``mlcycle-job.json``: the spec, the features, the output prefix) beside
  them; then ``CreateTrainingJob`` with the XGBoost 1.7-1 image of the region;
* state: ``DescribeTrainingJob`` (``TrainingJobStatus``, ``SecondaryStatus``,
  ``FailureReason``, ``ModelArtifacts``) and the job record;
* stop: ``StopTrainingJob``;
* logs and per-round metrics: the job's CloudWatch Logs streams in
  ``/aws/sagemaker/TrainingJobs``, where the container writes a line per round
  (``[3]#011train-rmse:0.51234#011validation-rmse:0.60012``); ``FinalMetricDataList`` fills
  in the final metrics when the logs hold none;
* the model: SageMaker's ``model.tar.gz`` under the job's output prefix in the artifact store
  (``<output>/<job>/output/model.tar.gz``), read by :mod:`mlcycle.training.artifact`;
* listing: ``ListTrainingJobs`` (paginated, newest first); jobs without an mlcycle job record
  are skipped.

A job without capture or rules runs the container's own XGBoost (algorithm mode). SageMaker
Debugger's managed hook and rule evaluators are closed to new AWS customers, so a job that
captures or has rules runs mlcycle's own script in the same container instead (script mode:
:mod:`mlcycle.training.container_entry`, uploaded as ``.../training/<job>/code/sourcedir.tar.gz``
and named by the ``sagemaker_program`` and ``sagemaker_submit_directory`` hyperparameters, with
the job's plan as a third channel, ``mlcycle``). The script captures in mlcycle's format,
evaluates the rules while training, stops on a rule's ``stop_training`` action and writes the
run's state (``run.json``) into the checkpoint folder, which SageMaker copies to
``CheckpointConfig.S3Uri`` = ``<output>/<job>/checkpoints`` in the artifact store as the job
runs. So :class:`~mlcycle.training.CaptureReader`, the rule statuses and the report read the same
files as on the local backend.

Every botocore error becomes an mlcycle error in ``mlcycle.backends.sagemaker._errors``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from mlcycle._logging import logger
from mlcycle.backends.sagemaker._errors import translated
from mlcycle.errors import (
    AlreadyExistsError,
    ConfigurationError,
    NotFoundError,
    UnsupportedOperationError,
)
from mlcycle.training.backend import (
    JobStatus,
    TrainingBackend,
    TrainingJobInfo,
    metric_history_from_rows,
)
from mlcycle.training.rules import RuleResult, RuleStatus
from mlcycle.training.spec import TrainingJobSpec

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from mlcycle.backends.sagemaker import SageMakerBackend
    from mlcycle.progress import ProgressCallback

__all__ = [
    "LOG_GROUP",
    "SCRIPT_PROGRAM",
    "XGBOOST_ACCOUNTS",
    "XGBOOST_VERSION",
    "SageMakerTrainingBackend",
    "format_hyperparameters",
    "parse_log_metrics",
    "script_plan",
    "sourcedir_tarball",
    "to_csv",
    "xgboost_image_uri",
]

#: The version of SageMaker's built-in XGBoost container that jobs run.
XGBOOST_VERSION = "1.7-1"
#: The ECR account of the built-in XGBoost container per region, from AWS's published table
#: (the ``sagemaker`` SDK's ``image_uris`` data for ``xgboost``).
XGBOOST_ACCOUNTS: Mapping[str, str] = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "720646828776",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ca-central-1": "341280168497",
    "eu-central-1": "492215442770",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}
#: The CloudWatch Logs group of SageMaker training jobs.
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
#: The tag naming the rules recorded with a job.
RULES_TAG = "mlcycle:rules"
#: The name of mlcycle's training script in ``sourcedir.tar.gz`` (``sagemaker_program``).
SCRIPT_PROGRAM = "mlcycle_train.py"
_NAMED_MODEL = "mlcycle-model.tar.gz"
_KIND = "training-job"
_CHANNELS = ("train", "validation")
_RECORD = "mlcycle-job.json"
_CHECKPOINTS = "/opt/ml/checkpoints"
_ROUND = re.compile(r"^\[(\d+)\]")
_METRIC = re.compile(r"(train|validation)-([\w@.\-]+?):(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
                     r"|nan|-?inf)(?=\s|#011|$)")
_FINAL_METRIC = re.compile(r"^(train|validation):(.+)$")
_NO_RULE_RESULTS = "the training script wrote no rule results"


def xgboost_image_uri(region: str) -> str:
    """Return the URI of the built-in XGBoost container image for ``region``.

    Raises
    ------
    ConfigurationError
        If the region is not in :data:`XGBOOST_ACCOUNTS`.

    Examples
    --------
    >>> xgboost_image_uri("us-east-1")
    '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1'
    """
    account = XGBOOST_ACCOUNTS.get(region)
    if account is None:
        raise ConfigurationError(
            f"no built-in XGBoost {XGBOOST_VERSION} image is known for region {region!r}; "
            f"known: {', '.join(sorted(XGBOOST_ACCOUNTS))}")
    return f"{account}.dkr.ecr.{region}.amazonaws.com/sagemaker-xgboost:{XGBOOST_VERSION}"


def format_hyperparameters(hyperparameters: Mapping[str, Any]) -> dict[str, str]:
    """Write hyperparameters as the container takes them: every value a string.

    Examples
    --------
    >>> format_hyperparameters({"num_round": 5, "eta": 0.3, "eval_metric": ("rmse", "mae")})
    {'num_round': '5', 'eta': '0.3', 'eval_metric': 'rmse,mae'}
    """
    out: dict[str, str] = {}
    for name, value in hyperparameters.items():
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, tuple | list):
            out[name] = ",".join(str(v) for v in value)
        else:
            out[name] = str(value)
    return out


def to_csv(frame: pd.DataFrame, *, label: str, features: tuple[str, ...]) -> bytes:
    r"""Write a channel as the built-in container reads CSV: the label first, no header.

    Examples
    --------
    >>> import pandas as pd
    >>> to_csv(pd.DataFrame({"x": [1.5, 2.0], "y": [0, 1]}), label="y", features=("x",))
    b'0,1.5\n1,2.0\n'
    """
    buffer = io.StringIO()
    frame[[label, *features]].to_csv(buffer, header=False, index=False, lineterminator="\n")
    return buffer.getvalue().encode()


def _feature_types(frame: pd.DataFrame, features: Sequence[str]) -> list[str]:
    """XGBoost's feature types of the columns (``int``, ``float``, ``i`` for a bool)."""
    import pandas as pd

    types = []
    for name in features:
        dtype = frame[name].dtype
        if pd.api.types.is_bool_dtype(dtype):
            types.append("i")
        elif pd.api.types.is_integer_dtype(dtype):
            types.append("int")
        else:
            types.append("float")
    return types


def script_plan(name: str, spec: TrainingJobSpec, train: pd.DataFrame) -> dict[str, Any]:
    """Return the plan of a job that runs mlcycle's script (``config.json`` of its channel).

    It holds what :func:`mlcycle.training.runner.run_training` derives from the spec, so the
    script, which cannot import mlcycle, does the same: the label and features, the typed
    hyperparameters, the collections to compute, capture and keep for the rules, the rows
    sampled for SHAP values, and the rules with their converted parameters.

    Parameters
    ----------
    name : str
        The job's name.
    spec : mlcycle.training.TrainingJobSpec
        The validated spec, its features resolved.
    train : pandas.DataFrame
        The training data (for the SHAP sample and the feature types).

    Returns
    -------
    dict
        JSON-ready.
    """
    from mlcycle.training.container_entry import CONFIG_FORMAT
    from mlcycle.training.rules import RULE_COLLECTIONS
    from mlcycle.training.runner import capture_importance_types, shap_sample_rows

    features = list(spec.features or ())
    return {
        "format": CONFIG_FORMAT,
        "job": name,
        "label": spec.label,
        "features": features,
        "feature_types": _feature_types(train, features),
        "hyperparameters": spec.to_dict()["hyperparameters"],
        "collections": list(spec.stream_collections()),
        "persisted": list(spec.capture.collections) if spec.capture else [],
        "rule_collections": sorted({c for rule in spec.rules
                                    for c in RULE_COLLECTIONS[rule.kind]}),
        "save_interval": spec.capture.save_interval if spec.capture else 1,
        "importance_types": list(capture_importance_types(spec)),
        "sample_rows": shap_sample_rows(spec, len(train)),
        "rules": [rule.to_dict() for rule in spec.rules],
    }


def sourcedir_tarball() -> bytes:
    """Return the bytes of ``sourcedir.tar.gz``: mlcycle's training script, alone.

    The script is the source of :mod:`mlcycle.training.container_entry`, named
    :data:`SCRIPT_PROGRAM`; the archive's bytes are the same for the same script.
    """
    import gzip
    import importlib.resources
    import tarfile

    script = importlib.resources.files("mlcycle.training").joinpath(
        "container_entry.py").read_bytes()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(SCRIPT_PROGRAM)
        info.size = len(script)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(script))
    return gzip.compress(raw.getvalue(), mtime=0)


def parse_log_metrics(lines: list[str]) -> list[tuple[str, int, float]]:
    """Read ``(metric, round, value)`` rows from the container's per-round log lines.

    Examples
    --------
    >>> parse_log_metrics(["[0]#011train-rmse:1.50000#011validation-rmse:1.60000", "other"])
    [('train-rmse', 0, 1.5), ('validation-rmse', 0, 1.6)]
    """
    rows = []
    for line in lines:
        found = _ROUND.match(line.strip())
        if found is None:
            continue
        step = int(found.group(1))
        for channel, metric, value in _METRIC.findall(line):
            rows.append((f"{channel}-{metric}", step, float(value)))
    return rows


def _history(lines: list[str]) -> dict[str, list[tuple[int, float]]]:
    # with several instances every host may log the same rounds: keep the first value of each
    seen: dict[tuple[str, int], float] = {}
    for metric, step, value in parse_log_metrics(lines):
        seen.setdefault((metric, step), value)
    return metric_history_from_rows((m, s, v) for (m, s), v in seen.items())


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


class SageMakerTrainingBackend(TrainingBackend):
    """SageMaker training jobs for a :class:`~mlcycle.backends.sagemaker.SageMakerBackend`.

    Parameters
    ----------
    backend : mlcycle.backends.sagemaker.SageMakerBackend
        The backend whose clients, bucket, prefix and role the jobs use.
    sleep : callable
        ``sleep(seconds)``, used by :meth:`wait_for_job` (inject a fake one in tests).
    clock : callable
        Monotonic seconds.
    """

    def __init__(
        self,
        backend: SageMakerBackend,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self._sleep = sleep
        self._clock = clock
        # logs of ended jobs do not change; keep them so polling never rereads them
        self._ended_logs: dict[str, list[str]] = {}

    # -- places ------------------------------------------------------------------------------
    def _job_prefix(self, name: str) -> str:
        base = self._backend.prefix
        return f"{base}/training/{name}" if base else f"training/{name}"

    def _sagemaker(self) -> Any:
        return self._backend.client("sagemaker")

    def _s3(self) -> Any:
        return self._backend.client("s3")

    def _artifact_key(self, uri: str) -> str | None:
        """The artifact key of an ``s3://`` URI inside the artifact store, else None."""
        artifacts = self._backend.artifacts
        base = artifacts.uri("x")[:-1]
        return uri[len(base):] if uri.startswith(base) and len(uri) > len(base) else None

    # -- submitting --------------------------------------------------------------------------
    def create_job(
        self,
        name: str,
        spec: TrainingJobSpec,
        *,
        train: pd.DataFrame,
        validation: pd.DataFrame | None,
        progress: ProgressCallback | None = None,
    ) -> TrainingJobInfo:
        """Upload the channels, the job record (and mlcycle's script), then ``CreateTrainingJob``.

        ``progress`` is not called: the job runs on SageMaker.

        Raises
        ------
        ConfigurationError
            If the backend has no role, or the region has no known XGBoost image.
        UnsupportedOperationError
            If the spec captures or has rules and asks for more than one instance (mlcycle's
            script trains on one).
        AlreadyExistsError
            If a training job of that name exists.
        """
        from mlcycle.training.container_entry import CAPTURE_DIR, CONFIG_CHANNEL, CONFIG_FILE

        backend = self._backend
        if not backend.role:
            raise ConfigurationError(
                "SageMaker training needs an IAM role: "
                "sagemaker://REGION?bucket=...&role=arn:aws:iam::ACCOUNT:role/NAME")
        image = xgboost_image_uri(backend.region)
        script = spec.capture is not None or bool(spec.rules)
        if script and spec.resources.instance_count > 1:
            raise UnsupportedOperationError(
                "on sagemaker, capture and rules run in mlcycle's training script, which trains "
                f"on one instance; the spec asks for {spec.resources.instance_count}",
                backend=backend.scheme, capability="training")
        if self._exists(name):
            raise AlreadyExistsError(f"{_KIND} {name!r} exists already", kind=_KIND, name=name)
        features = tuple(spec.features or ())
        output_prefix = spec.output or f"training/{name}"
        run_prefix = f"{output_prefix}/{name}/checkpoints" if script else None
        capture_prefix = (f"{run_prefix}/{CAPTURE_DIR}"
                          if run_prefix is not None and spec.capture is not None else None)
        job_prefix = self._job_prefix(name)
        channels = []
        code_uri = None
        with translated(kind=_KIND, name=name):
            for channel, frame in zip(_CHANNELS, (train, validation), strict=True):
                if frame is None:
                    continue
                channels.append(self._put_channel(
                    name, channel, f"{channel}.csv", "text/csv",
                    to_csv(frame, label=spec.label, features=features)))
            if script:
                plan = json.dumps(script_plan(name, spec, train), sort_keys=True).encode()
                channels.append(self._put_channel(name, CONFIG_CHANNEL, CONFIG_FILE,
                                                  "application/json", plan))
                code_key = f"{job_prefix}/code/sourcedir.tar.gz"
                self._s3().put_object(Bucket=backend.bucket, Key=code_key,
                                      Body=sourcedir_tarball())
                code_uri = f"s3://{backend.bucket}/{code_key}"
            record = {
                "spec": spec.to_dict(),
                "feature_names": list(features),
                "output_prefix": output_prefix,
                "capture_prefix": capture_prefix,
                "run_prefix": run_prefix,
            }
            self._s3().put_object(Bucket=backend.bucket, Key=f"{job_prefix}/{_RECORD}",
                                  Body=json.dumps(record, sort_keys=True).encode())
            request = self._create_request(name, spec, image=image, channels=channels,
                                           output_prefix=output_prefix, code_uri=code_uri,
                                           run_prefix=run_prefix)
            self._sagemaker().create_training_job(**request)
        logger.info("created SageMaker training job %s (%s%s)", name, image,
                    ", mlcycle's script" if script else "")
        return self.describe_job(name)

    def _put_channel(self, name: str, channel: str, filename: str, content_type: str,
                     body: bytes) -> dict[str, Any]:
        """Upload one channel's file and return the channel of ``InputDataConfig``."""
        bucket = self._backend.bucket
        prefix = f"{self._job_prefix(name)}/input/{channel}/"
        self._s3().put_object(Bucket=bucket, Key=prefix + filename, Body=body)
        return {
            "ChannelName": channel,
            "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": f"s3://{bucket}/{prefix}",
                "S3DataDistributionType": "FullyReplicated",
            }},
            "ContentType": content_type,
        }

    def _create_request(
        self,
        name: str,
        spec: TrainingJobSpec,
        *,
        image: str,
        channels: list[dict[str, Any]],
        output_prefix: str,
        code_uri: str | None,
        run_prefix: str | None,
    ) -> dict[str, Any]:
        artifacts = self._backend.artifacts
        resources = spec.resources
        hyperparameters = format_hyperparameters(spec.hyperparameters)
        if code_uri is not None:
            hyperparameters.update({
                "sagemaker_program": SCRIPT_PROGRAM,
                "sagemaker_submit_directory": code_uri,
                "sagemaker_region": self._backend.region,
            })
        request: dict[str, Any] = {
            "TrainingJobName": name,
            "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
            "RoleArn": self._backend.role,
            "InputDataConfig": channels,
            "HyperParameters": hyperparameters,
            "OutputDataConfig": {"S3OutputPath": artifacts.uri(output_prefix)},
            "ResourceConfig": {
                "InstanceType": resources.instance_type,
                "InstanceCount": resources.instance_count,
                "VolumeSizeInGB": resources.volume_size_gb,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": resources.max_runtime_s},
            "Tags": [{"Key": "mlcycle:job-record",
                      "Value": f"s3://{self._backend.bucket}/{self._job_prefix(name)}/{_RECORD}"[
                          :256]}],
        }
        if run_prefix is not None:
            request["CheckpointConfig"] = {"S3Uri": artifacts.uri(run_prefix),
                                           "LocalPath": _CHECKPOINTS}
        if spec.rules:
            request["Tags"].append(
                {"Key": RULES_TAG, "Value": ",".join(r.name for r in spec.rules)[:256]})
        return request

    # -- reading -----------------------------------------------------------------------------
    def _describe_raw(self, name: str) -> dict[str, Any]:
        # moto answers ValidationException "Could not find ..." for a missing job where AWS
        # answers ResourceNotFound; _errors translates both to NotFoundError
        with translated(kind=_KIND, name=name):
            return self._sagemaker().describe_training_job(  # type: ignore[no-any-return]
                TrainingJobName=name)

    def _exists(self, name: str) -> bool:
        try:
            self._describe_raw(name)
        except NotFoundError:
            return False
        return True

    def _record(self, name: str) -> dict[str, Any]:
        key = f"{self._job_prefix(name)}/{_RECORD}"
        try:
            with translated(kind=_KIND, name=name):
                body = self._s3().get_object(Bucket=self._backend.bucket, Key=key)["Body"]
                return json.loads(body.read())  # type: ignore[no-any-return]
        except NotFoundError:
            raise NotFoundError(f"{_KIND} {name!r} was not created by mlcycle (no job record "
                                f"at s3://{self._backend.bucket}/{key})", kind=_KIND,
                                name=name) from None

    def _run_state(self, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """The ``run.json`` that mlcycle's script wrote, or None (not a script job, or not yet)."""
        from mlcycle.training.container_entry import RUN_FILE

        prefix = record.get("run_prefix")
        if prefix is None:
            return None
        try:
            return self._backend.artifacts.get_json(  # type: ignore[no-any-return]
                f"{prefix}/{RUN_FILE}")
        except NotFoundError:
            return None

    def _info(self, raw: Mapping[str, Any], record: Mapping[str, Any]) -> TrainingJobInfo:
        name = raw["TrainingJobName"]
        status = JobStatus(raw["TrainingJobStatus"])
        spec = TrainingJobSpec.from_dict(record["spec"])
        run = self._run_state(record)
        rounds = int(run["rounds"]) if run else 0
        final: dict[str, float] = {}
        if status.is_terminal:
            history = _history(self._lines(name, True))
            final = {metric: values[-1][1] for metric, values in history.items() if values}
            if run is None:
                rounds = 1 + max((values[-1][0] for values in history.values() if values),
                                 default=-1)
        if not final:
            for item in raw.get("FinalMetricDataList", ()):
                found = _FINAL_METRIC.match(str(item.get("MetricName", "")))
                if found is not None and found.group(2) != "progress":
                    final[f"{found.group(1)}-{found.group(2)}"] = float(item["Value"])
        stopped_by = stop_reason = None
        if status in {JobStatus.STOPPING, JobStatus.STOPPED}:
            secondary = raw.get("SecondaryStatus")
            stopped_by = "max_runtime" if secondary == "MaxRuntimeExceeded" else "user"
            transitions = raw.get("SecondaryStatusTransitions") or [{}]
            stop_reason = transitions[-1].get("StatusMessage") or str(secondary or "Stopped")
        elif status is JobStatus.COMPLETED and run and run.get("stopped_by"):
            # the script ended the job early (a rule's stop_training): SageMaker says Completed
            status = JobStatus.STOPPED
            stopped_by, stop_reason = run["stopped_by"], run.get("stop_reason")
        model_key = model_uri = None
        s3_model = (raw.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        if status in {JobStatus.COMPLETED, JobStatus.STOPPED} and s3_model:
            key = self._artifact_key(s3_model)
            if key is not None and self._backend.artifacts.exists(key):
                model_key, model_uri = key, s3_model
                if record.get("run_prefix") is None:  # the container's own XGBoost
                    named = self._named_model(key, record.get("feature_names", ()))
                    if named is not None:
                        model_key, model_uri = named, self._backend.artifacts.uri(named)
        ended = _utc(raw.get("TrainingEndTime")) if status.is_terminal else None
        return TrainingJobInfo(
            name=name,
            status=status,
            spec=spec,
            created_at=_utc(raw["CreationTime"]),
            started_at=_utc(raw.get("TrainingStartTime")),
            ended_at=ended,
            rounds=rounds,
            final_metrics=final,
            best_iteration=run.get("best_iteration") if run else None,
            failure_reason=self._failure_reason(raw, run) if status is JobStatus.FAILED else None,
            stop_reason=stop_reason,
            stopped_by=stopped_by,
            output_prefix=record["output_prefix"],
            model_key=model_key,
            model_uri=model_uri,
            capture_prefix=record.get("capture_prefix"),
            feature_names=record.get("feature_names", ()),
            rule_results=self._rule_results(spec, status, run),
        )

    def _named_model(self, key: str, feature_names: Sequence[str]) -> str | None:
        """Return the key of the job's model with its feature names, repacked once.

        The built-in container trains on headerless CSV, so its ``xgboost-model`` has no
        feature names. mlcycle wrote the CSV and knows them: beside the container's archive it
        writes ``mlcycle-model.tar.gz``, the same trees with the names (XGBoost JSON), and that
        is the job's model from then on. Returns None if there is nothing to add.
        """
        import xgboost

        from mlcycle.training.artifact import build_model_tarball, read_model_tarball

        if not feature_names:
            return None
        named = f"{key.rsplit('/', 1)[0]}/{_NAMED_MODEL}"
        if self._backend.artifacts.exists(named):
            return named
        artifact = read_model_tarball(self._backend.artifacts.get_bytes(key))
        if artifact.feature_names:
            return None
        booster = xgboost.Booster()
        booster.load_model(bytearray(artifact.model))
        if booster.num_features() != len(feature_names):
            return None
        booster.feature_names = list(feature_names)
        self._backend.artifacts.put_bytes(
            named, build_model_tarball(booster, metadata={"source": key})
        )
        return named

    @staticmethod
    def _failure_reason(raw: Mapping[str, Any], run: Mapping[str, Any] | None) -> str | None:
        """Why the job failed: the script's own reason if it recorded one, else SageMaker's.

        The container's toolkit wraps a failed script's message in its own
        (``ExecuteUserScriptError ...``); the script's ``run.json`` has the one-line reason.
        """
        if run is not None and run.get("failure_reason"):
            return str(run["failure_reason"])
        return raw.get("FailureReason")

    @staticmethod
    def _rule_results(spec: TrainingJobSpec, status: JobStatus,
                      run: Mapping[str, Any] | None) -> list[RuleResult]:
        """The rule statuses the script wrote; ``InProgress`` ones become ``Stopped`` at the end.

        Without ``run.json`` the rules are ``InProgress`` while the job runs; once it has
        ended they are ``Stopped`` if it failed (it never reached the script, or the script
        died before it could write), else ``Error``.
        """
        if run is not None and run.get("rule_results"):
            results = [RuleResult.from_dict(r) for r in run["rule_results"]]
            if status.is_terminal:
                results = [attrs.evolve(r, status=RuleStatus.STOPPED)
                           if r.status is RuleStatus.IN_PROGRESS else r for r in results]
            return results
        if not status.is_terminal:
            return [RuleResult(name=r.name, kind=r.kind, status=RuleStatus.IN_PROGRESS)
                    for r in spec.rules]
        if status is JobStatus.FAILED:
            return [RuleResult(name=r.name, kind=r.kind, status=RuleStatus.STOPPED)
                    for r in spec.rules]
        return [RuleResult(name=r.name, kind=r.kind, status=RuleStatus.ERROR,
                           message=_NO_RULE_RESULTS) for r in spec.rules]

    def describe_job(self, name: str) -> TrainingJobInfo:
        """Return the job's state from ``DescribeTrainingJob`` and its job record."""
        raw = self._describe_raw(name)
        return self._info(raw, self._record(name))

    def list_jobs(self) -> Iterator[TrainingJobInfo]:
        """Iterate over the jobs mlcycle created, newest first (``ListTrainingJobs``)."""
        with translated(kind=_KIND):
            pages = self._sagemaker().get_paginator("list_training_jobs").paginate(
                SortBy="CreationTime", SortOrder="Descending")
            summaries = [s for page in pages for s in page.get("TrainingJobSummaries", [])]
        infos = []
        for summary in summaries:
            try:
                infos.append(self.describe_job(summary["TrainingJobName"]))
            except NotFoundError:
                continue  # deleted meanwhile, or not an mlcycle job
        # sorted again by the described creation time (moto's summaries carry the time of the
        # listing call, not of the job)
        infos.sort(key=lambda i: (i.created_at, i.name), reverse=True)
        yield from infos

    def stop_job(self, name: str) -> None:
        """Call ``StopTrainingJob`` unless the job has ended."""
        raw = self._describe_raw(name)
        if JobStatus(raw["TrainingJobStatus"]) is not JobStatus.IN_PROGRESS:
            return
        with translated(kind=_KIND, name=name):
            self._sagemaker().stop_training_job(TrainingJobName=name)
        logger.info("asked SageMaker to stop training job %s", name)

    def _logs(self, name: str) -> list[str]:
        if name in self._ended_logs:
            return self._ended_logs[name]
        logs = self._backend.client("logs")
        lines: list[str] = []
        try:
            with translated(kind=_KIND, name=name):
                streams = []
                pages = logs.get_paginator("describe_log_streams").paginate(
                    logGroupName=LOG_GROUP, logStreamNamePrefix=f"{name}/")
                for page in pages:
                    streams.extend(s["logStreamName"] for s in page.get("logStreams", []))
                for stream in sorted(streams):
                    token = None
                    while True:
                        kwargs: dict[str, Any] = {"logGroupName": LOG_GROUP,
                                                  "logStreamName": stream, "startFromHead": True}
                        if token is not None:
                            kwargs["nextToken"] = token
                        answer = logs.get_log_events(**kwargs)
                        lines.extend(str(e["message"]) for e in answer.get("events", []))
                        if not answer.get("events") or answer.get("nextForwardToken") == token:
                            break
                        token = answer.get("nextForwardToken")
        except NotFoundError:
            return []  # no log group or stream yet
        return lines

    def _lines(self, name: str, ended: bool) -> list[str]:
        lines = self._logs(name)
        if ended and lines:
            self._ended_logs[name] = lines
        return lines

    def read_logs(self, name: str, *, start: int = 0) -> list[str]:
        """Return the job's CloudWatch log lines from line ``start`` on ([] before any)."""
        raw = self._describe_raw(name)
        return self._lines(name, JobStatus(raw["TrainingJobStatus"]).is_terminal)[start:]

    def read_metric_history(self, name: str) -> dict[str, list[tuple[int, float]]]:
        """Return every metric's ``(round, value)`` pairs, read from the job's log lines."""
        return _history(self.read_logs(name))

    def wait_for_job(self, name: str, timeout: float) -> None:
        """Sleep ``timeout`` seconds (SageMaker jobs are polled), with the injected sleep."""
        del name
        self._sleep(timeout)

    def model_bytes(self, name: str) -> bytes:
        """Return the bytes of the job's ``model.tar.gz``.

        Raises
        ------
        NotFoundError
            If the job has no model in place.
        """
        info = self.describe_job(name)
        if info.model_key is None:
            raise NotFoundError(f"{_KIND} {name!r} has no model.tar.gz", kind="artifact",
                                name=name)
        return self._backend.artifacts.get_bytes(info.model_key)
