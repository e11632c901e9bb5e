"""The sagemaker training backend on moto: the shared contract, and what is SageMaker's own.

moto 5.2.5 records training jobs and answers ``Completed`` at once, but runs nothing: no model,
no logs. So that the contract tests what mlcycle does with a real job's outputs,
:class:`mlcycle.testing.aws_training.SimulatedContainer` plays the built-in XGBoost container
behind botocore's event system: a plain job is trained in process as the container's algorithm
mode would; a job with capture or rules runs mlcycle's real entry script
(:mod:`mlcycle.training.container_entry`, from the ``sourcedir.tar.gz`` the backend uploaded) in
a subprocess, in a temporary folder laid out as ``/opt/ml``, and what SageMaker would upload
(``model.tar.gz``, the checkpoint folder with the capture and ``run.json``, the log lines) lands
in moto at the places ``DescribeTrainingJob`` reports. moto cannot change a job's status, so
failures, stops and timeouts are xfailed (strict, so a stale marker fails) and pinned with
Stubber in ``tests/training/test_sagemaker_training_requests.py``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from mlcycle.backends.base import Capability
from mlcycle.errors import ConfigurationError, NotFoundError, UnsupportedOperationError
from mlcycle.testing.aws_training import SimulatedContainer
from mlcycle.testing.contract.training import TrainingContract, regression_frame
from mlcycle.training import (
    CaptureConfig,
    Resources,
    Rule,
    RuleStatus,
    TrainingJob,
    TrainingJobSpec,
    list_training_jobs,
)

pytestmark = pytest.mark.aws

_NO_STATUS = "moto's training jobs are Completed at once: it has no Failed, Stopping or running"
_NO_STOP = "moto 5.2.5 does not implement StopTrainingJob, and its jobs are never running"


@pytest.fixture
def sagemaker_backend():
    """A sagemaker backend on moto (its lineage fake installed by ``mock_sagemaker_backend``)."""
    from mlcycle.testing.aws import mock_sagemaker_backend

    with mock_sagemaker_backend() as backend:
        yield backend


@pytest.fixture
def container(sagemaker_backend):
    """The simulated container of the backend's jobs.

    ``MLCYCLE_CONTAINER_PYTHON`` names an interpreter like the container's (XGBoost 1.7, NumPy
    and pandas, no mlcycle) to run mlcycle's script with; by default this one runs it.
    """
    return SimulatedContainer(sagemaker_backend,
                              python=os.environ.get("MLCYCLE_CONTAINER_PYTHON"))


@pytest.fixture
def backend(sagemaker_backend, container):
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


def _stopping_spec() -> TrainingJobSpec:
    rule = Rule(kind="LossNotDecreasing",
                parameters={"num_steps": 2, "diff_percent": 99.9, "mode": "TRAIN"},
                actions=("stop_training",))
    return _spec(hyperparameters={"num_round": 50, "max_depth": 2, "nthread": 1},
                 capture=CaptureConfig(save_interval=1, collections=("metrics",)),
                 rules=(rule, Rule(kind="Overfit", parameters={"ratio_threshold": 1e6})))


def test_a_rule_stops_the_script_inside_the_training_job(backend):
    job = TrainingJob.submit(backend, _stopping_spec(), name="script-stops")
    info = job.wait(timeout=5, sleep=lambda _: None)
    raw = backend.client("sagemaker").describe_training_job(TrainingJobName="script-stops")
    assert raw["TrainingJobStatus"] == "Completed"  # the script ended normally
    assert raw["HyperParameters"]["sagemaker_program"] == "mlcycle_train.py"
    assert "DebugHookConfig" not in raw and "DebugRuleConfigurations" not in raw
    assert info.status == "Stopped" and info.stopped_by == "rule:LossNotDecreasing"
    assert info.stop_reason.startswith("rule LossNotDecreasing found an issue at step 2: ")
    assert info.rounds == 3 and job.model().num_boosted_rounds() == 3
    assert sum("train-rmse:" in line for line in job.logs()) == 3
    stopper, overfit = job.rules()
    assert stopper.status is RuleStatus.ISSUES_FOUND and stopper.stopped_training
    assert overfit.status is RuleStatus.NO_ISSUES_FOUND and not overfit.stopped_training
    # what SageMaker copied from the checkpoint folder, where the record says
    run_prefix = "training/script-stops/script-stops/checkpoints"
    assert sorted(backend.artifacts.list_keys(run_prefix)) == [
        f"{run_prefix}/debug-output/index.json",
        *(f"{run_prefix}/debug-output/steps/{s:09d}.npz" for s in range(3)),
        f"{run_prefix}/run.json",
    ]
    state = backend.artifacts.get_json(f"{run_prefix}/run.json")
    assert state["status"] == "Stopped" and state["rounds"] == 3
    reader = job.capture()
    assert reader.steps() == [0, 1, 2]
    assert reader.collection("metrics") == ("train-rmse", "validation-rmse")
    assert [v for _, v in reader.scalar_series("train-rmse")] == [
        v for _, v in job.metrics().history["train-rmse"]]


def test_the_script_failing_leaves_no_model_and_its_reason(backend, container):
    frame = regression_frame(60)
    frame["y"] = frame["y"].abs() + 1.0
    frame.loc[0, "y"] = 0.0
    spec = _spec(train=frame, validation=None, rules=(Rule(kind="Overtraining"),),
                 hyperparameters={"num_round": 3, "objective": "reg:gamma", "nthread": 1})
    job = TrainingJob.submit(backend, spec, name="script-fails")
    run = container.runs["script-fails"]
    assert run.returncode == 1 and run.failure.startswith("XGBoostError: ")
    assert any(run.failure in line for line in job.logs())
    info = job.describe()  # moto still says Completed: the status is xfailed in the contract
    assert info.model_key is None
    (rule,) = info.rule_results
    assert rule.status is RuleStatus.STOPPED


def test_capture_on_several_instances_is_unsupported(sagemaker_backend):
    spec = _spec(capture=CaptureConfig(), resources=Resources(instance_count=2))
    with pytest.raises(UnsupportedOperationError):
        TrainingJob.submit(sagemaker_backend, spec, name="script-many")
    assert list(list_training_jobs(sagemaker_backend)) == []
