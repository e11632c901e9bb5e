"""The sagemaker training backend on moto: the shared contract, and what is SageMaker's own.

moto 5.2.5 records training jobs and answers ``Completed`` at once, but runs nothing: no model,
no logs. So that the contract tests what mlcycle does with a real job's outputs, this module
simulates the built-in XGBoost container behind botocore's event system: after each
``CreateTrainingJob`` it reads the channels mlcycle uploaded (CSV, label first, no header),
trains with the request's string hyperparameters, writes ``model.tar.gz`` (with an
``xgboost-model`` file and no feature names, as the container trains on headerless CSV) to the
key ``DescribeTrainingJob`` reports, and writes a log line per round to CloudWatch Logs in the
container's format (jobs of more than ``MAX_SIMULATED_ROUNDS`` rounds are left without
outputs, as if still training). The container cannot change moto's job status, so failures, stops,
timeouts and rules are xfailed (strict, so a stale marker fails) and pinned with Stubber in
``tests/training/test_sagemaker_training_requests.py``.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import time
from typing import Any

import pytest

from mlcycle.backends.base import Capability
from mlcycle.errors import ConfigurationError, NotFoundError
from mlcycle.testing.contract.training import TrainingContract, regression_frame
from mlcycle.training import TrainingJob, TrainingJobSpec, list_training_jobs

pytestmark = pytest.mark.aws

_NO_STATUS = "moto's training jobs are Completed at once: it has no Failed, Stopping or running"
_NO_STOP = "moto 5.2.5 does not implement StopTrainingJob, and its jobs are never running"
_NO_RULES = ("SageMaker Debugger's managed rules are closed to new customers: the backend "
             "sends no DebugRuleConfigurations and reports rules as not evaluated")
#: Jobs asking for more rounds are left "running" by the simulated container: it writes
#: nothing for them (moto still says Completed), so the contract's long jobs cost no time.
MAX_SIMULATED_ROUNDS = 1_000
_NO_CAPTURE = "reading the Debugger hook's tensors back is not implemented for sagemaker"


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


class SimulatedContainer:
    """What the built-in XGBoost 1.7-1 container does with a job, for moto's jobs."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.pending: dict[str, Any] = {}
        self.jobs: list[str] = []
        events = backend.client("sagemaker").meta.events
        events.register("before-parameter-build.sagemaker.CreateTrainingJob", self._remember)
        events.register("after-call.sagemaker.CreateTrainingJob", self._run)

    def _remember(self, params: dict[str, Any], **_: Any) -> None:
        self.pending[params["TrainingJobName"]] = dict(params)

    def _channel(self, uri: str) -> Any:
        import pandas as pd

        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        s3 = self.backend.client("s3")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
        frames = [pd.read_csv(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read()),
                              header=None) for k in sorted(keys)]
        return pd.concat(frames, ignore_index=True)

    def _run(self, parsed: dict[str, Any], **_: Any) -> None:
        import xgboost

        if "Error" in parsed:
            return
        name = next(iter(self.pending))
        request = self.pending.pop(name)
        self.jobs.append(name)
        hyper = {k: _value(v) for k, v in request["HyperParameters"].items()}
        rounds = int(hyper.pop("num_round"))
        if rounds > MAX_SIMULATED_ROUNDS:
            return
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
            uri = self.backend.client("sagemaker").describe_training_job(
                TrainingJobName=name)["ModelArtifacts"]["S3ModelArtifacts"]
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            self.backend.client("s3").put_object(Bucket=bucket, Key=key,
                                                 Body=gzip.compress(raw.getvalue()))
        self.write_logs(name, lines)

    def write_logs(self, name: str, lines: list[str]) -> None:
        logs = self.backend.client("logs")
        group = "/aws/sagemaker/TrainingJobs"
        if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
            logs.create_log_group(logGroupName=group)
        stream = f"{name}/algo-1-{int(time.time())}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": now + i, "message": line}
                                       for i, line in enumerate(lines)])


_SESSIONS: list[Any] = []


@pytest.fixture
def sagemaker_backend():
    """A moto backend whose clients come from one boto3 session for the module (faster).

    The session is created inside the first test's fake environment, so the only credentials
    it ever resolves (and caches) are moto's fake ones.
    """
    import boto3

    from mlcycle.backends.sagemaker import SageMakerBackend
    from mlcycle.testing.aws import mock_sagemaker_backend

    with mock_sagemaker_backend() as base:
        if not _SESSIONS:
            _SESSIONS.append(boto3.session.Session(region_name=base.region))
        backend = SageMakerBackend(base.region, bucket=base.bucket, prefix=base.prefix,
                                   role=base.role, boto3_session=_SESSIONS[0])
        try:
            yield backend
        finally:
            backend.close()


@pytest.fixture
def backend(sagemaker_backend):
    SimulatedContainer(sagemaker_backend)
    return sagemaker_backend


class TestSageMakerTraining(TrainingContract):
    """The shared contract, on moto with the container simulated (see the module)."""

    @pytest.mark.xfail(strict=True, reason=_NO_STATUS)
    def test_a_failure_inside_training_is_a_failed_job_with_a_reason(self, backend):
        super().test_a_failure_inside_training_is_a_failed_job_with_a_reason(backend)

    @pytest.mark.xfail(strict=True, reason=_NO_STOP)
    def test_a_running_job_can_be_stopped(self, backend):
        super().test_a_running_job_can_be_stopped(backend)

    @pytest.mark.xfail(strict=True, reason=_NO_STATUS)
    def test_wait_times_out_with_an_injected_clock(self, backend):
        super().test_wait_times_out_with_an_injected_clock(backend)

    @pytest.mark.xfail(strict=True, reason=_NO_RULES)
    def test_a_rule_action_stops_training(self, backend):
        super().test_a_rule_action_stops_training(backend)

    @pytest.mark.xfail(strict=True, reason=_NO_RULES)
    def test_rule_outcomes_are_reported_with_the_job(self, backend):
        super().test_rule_outcomes_are_reported_with_the_job(backend)

    @pytest.mark.xfail(strict=True, reason=_NO_CAPTURE)
    def test_capture_reads_back_by_step_and_name(self, backend):
        super().test_capture_reads_back_by_step_and_name(backend)

    @pytest.mark.xfail(strict=True, reason=_NO_CAPTURE)
    def test_report_is_an_html_artifact_with_charts(self, backend):
        super().test_report_is_an_html_artifact_with_charts(backend)


# -- what is SageMaker's own ---------------------------------------------------------------------
def _spec(**changes: Any) -> TrainingJobSpec:
    frame = regression_frame(60)
    values: dict[str, Any] = {"hyperparameters": {"num_round": 3, "max_depth": 2, "nthread": 1},
                              "train": frame.iloc[:40], "validation": frame.iloc[40:],
                              "label": "y"}
    values.update(changes)
    return TrainingJobSpec(**values)


def test_training_is_a_capability_created_lazily(sagemaker_backend):
    assert sagemaker_backend.supports(Capability.TRAINING)
    training = sagemaker_backend.training
    assert training is sagemaker_backend.training


def test_inputs_are_csv_with_the_label_first_and_no_header(sagemaker_backend):
    spec = _spec(features=("f2", "f0"))
    TrainingJob.submit(sagemaker_backend, spec, name="csv-layout")
    s3 = sagemaker_backend.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(
        Bucket="mlcycle-test", Prefix="test/training/csv-layout/")["Contents"])
    assert keys == ["test/training/csv-layout/input/train/train.csv",
                    "test/training/csv-layout/input/validation/validation.csv",
                    "test/training/csv-layout/mlcycle-job.json"]
    body = s3.get_object(Bucket="mlcycle-test", Key=keys[0])["Body"].read().decode()
    first = body.splitlines()[0].split(",")
    frame = regression_frame(60)
    assert [float(v) for v in first] == [frame.loc[0, "y"], frame.loc[0, "f2"],
                                         frame.loc[0, "f0"]]
    assert len(body.splitlines()) == 40


def test_a_job_without_artifacts_completes_without_a_model(sagemaker_backend):
    """Plain moto: Completed at once, no model.tar.gz, no logs; nothing is made up."""
    job = TrainingJob.submit(sagemaker_backend, _spec(), name="bare-moto")
    info = job.wait(timeout=5, sleep=lambda _: None)
    assert info.status == "Completed"
    assert info.model_key is None and info.rounds == 0
    assert info.final_metrics == {}  # moto's train:progress is not an evaluation metric
    assert job.logs() == [] and job.metrics().history == {}
    assert info.feature_names == ("f0", "f1", "f2", "f3")


def test_a_model_placed_at_the_reported_key_is_loaded(sagemaker_backend):
    import numpy as np
    import xgboost

    from mlcycle.training.artifact import build_model_tarball

    frame = regression_frame(60)
    job = TrainingJob.submit(sagemaker_backend, _spec(), name="placed-model")
    raw = sagemaker_backend.client("sagemaker").describe_training_job(
        TrainingJobName="placed-model")
    uri = raw["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == "s3://mlcycle-test/test/artifacts/training/placed-model/placed-model/output/model.tar.gz"
    dtrain = xgboost.DMatrix(frame[["f0", "f1", "f2", "f3"]], label=frame["y"])
    booster = xgboost.train({"max_depth": 2, "nthread": 1}, dtrain, 3)
    sagemaker_backend.client("s3").put_object(
        Bucket="mlcycle-test", Key=uri.removeprefix("s3://mlcycle-test/"),
        Body=build_model_tarball(booster, metadata={"label": "y"}))
    info = job.describe()
    assert info.model_uri == uri
    assert info.model_key == "training/placed-model/placed-model/output/model.tar.gz"
    np.testing.assert_array_equal(job.model().predict(dtrain), booster.predict(dtrain))


def test_no_role_is_a_configuration_error(sagemaker_backend):
    sagemaker_backend.role = None
    with pytest.raises(ConfigurationError, match="role"):
        TrainingJob.submit(sagemaker_backend, _spec(), name="no-role")
    assert list(list_training_jobs(sagemaker_backend)) == []


def test_an_unknown_region_is_a_configuration_error():
    from mlcycle.backends.sagemaker.training import xgboost_image_uri

    assert xgboost_image_uri("eu-west-1").startswith("141502667606.dkr.ecr.eu-west-1.")
    with pytest.raises(ConfigurationError, match="mars-north-1"):
        xgboost_image_uri("mars-north-1")


def test_logs_of_a_missing_job_are_not_found(sagemaker_backend):
    with pytest.raises(NotFoundError):
        sagemaker_backend.training.read_logs("no-such-job")


def test_jobs_mlcycle_did_not_create_are_not_listed(sagemaker_backend):
    sagemaker_backend.client("sagemaker").create_training_job(
        TrainingJobName="foreign",
        AlgorithmSpecification={"TrainingImage": "x", "TrainingInputMode": "File"},
        RoleArn=sagemaker_backend.role,
        OutputDataConfig={"S3OutputPath": "s3://mlcycle-test/elsewhere"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1,
                        "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 60})
    TrainingJob.submit(sagemaker_backend, _spec(), name="ours")
    assert [i.name for i in list_training_jobs(sagemaker_backend)] == ["ours"]
    with pytest.raises(NotFoundError, match="not created by mlcycle"):
        TrainingJob.get(sagemaker_backend, "foreign")
