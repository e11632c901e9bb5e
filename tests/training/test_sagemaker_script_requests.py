"""The SageMaker requests and S3 layout of a job that runs mlcycle's script, pinned with Stubber.

S3 runs on moto; the ``sagemaker`` client is stubbed, so botocore checks each request and answer
against the real API model, and the tests can answer what moto cannot (a running job, a stopped
one) while they place the script's ``run.json`` where SageMaker's checkpoint copy would.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from sagemaker_job_stubs import IMAGE, T0, stub_describe

from mlcycle.errors import JobFailedError, UnsupportedOperationError
from mlcycle.testing.contract.training import FEATURES, regression_frame
from mlcycle.training import (
    CaptureConfig,
    JobStatus,
    Resources,
    Rule,
    RuleStatus,
    TrainingJob,
    TrainingJobSpec,
    container_entry,
)

pytestmark = pytest.mark.aws

ROLE = "arn:aws:iam::123456789012:role/mlcycle-test"
BUCKET = "mlcycle-test"
RULES = (Rule(kind="LossNotDecreasing", parameters={"num_steps": "3"},
              actions=("stop_training",)),
         Rule(kind="Overfit", name="overfit-1"))


@pytest.fixture
def stub(sagemaker_backend):
    with Stubber(sagemaker_backend.client("sagemaker")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _spec(**changes: Any) -> TrainingJobSpec:
    frame = regression_frame(30)
    values: dict[str, Any] = {
        "hyperparameters": {"num_round": 12, "max_depth": 3, "eta": 0.25, "nthread": 1},
        "train": frame.iloc[:20], "validation": frame.iloc[20:], "label": "y",
        "resources": Resources(instance_type="ml.m5.large", instance_count=1,
                               volume_size_gb=10, max_runtime_s=900),
        "capture": CaptureConfig(save_interval=5, collections=("metrics", "average_shap"),
                                 shap_samples=8),
        "rules": RULES,
    }
    values.update(changes)
    return TrainingJobSpec(**values)


def _describe(stub: Stubber, name: str, **kwargs: Any) -> None:
    stub_describe(stub, name, instance_count=1, **kwargs)


def _channel(name: str, channel: str, content_type: str) -> dict[str, Any]:
    return {
        "ChannelName": channel,
        "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix",
            "S3Uri": f"s3://{BUCKET}/test/training/{name}/input/{channel}/",
            "S3DataDistributionType": "FullyReplicated",
        }},
        "ContentType": content_type,
    }


def _request(name: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [_channel(name, "train", "text/csv"),
                            _channel(name, "validation", "text/csv"),
                            _channel(name, "mlcycle", "application/json")],
        "HyperParameters": {
            "num_round": "12", "max_depth": "3", "eta": "0.25", "nthread": "1",
            "sagemaker_program": "mlcycle_train.py",
            "sagemaker_submit_directory":
                f"s3://{BUCKET}/test/training/{name}/code/sourcedir.tar.gz",
            "sagemaker_region": "us-east-1",
        },
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/test/artifacts/training/{name}"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
        "CheckpointConfig": {
            "S3Uri": f"s3://{BUCKET}/test/artifacts/training/{name}/{name}/checkpoints",
            "LocalPath": "/opt/ml/checkpoints",
        },
        "Tags": [{"Key": "mlcycle:job-record",
                  "Value": f"s3://{BUCKET}/test/training/{name}/mlcycle-job.json"},
                 {"Key": "mlcycle:rules", "Value": "LossNotDecreasing,overfit-1"}],
    }


def _submit(backend: Any, stub: Stubber, name: str, spec: TrainingJobSpec | None = None
            ) -> TrainingJob:
    stub.add_client_error("describe_training_job", service_error_code="ResourceNotFound",
                          service_message=f"Could not find training job {name}",
                          http_status_code=400, expected_params={"TrainingJobName": name})
    stub.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:"
                      f"123456789012:training-job/{name}"}, _request(name))
    _describe(stub, name)
    return TrainingJob.submit(backend, spec or _spec(), name=name)


def _get(backend: Any, key: str) -> bytes:
    return backend.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _run_json(backend: Any, name: str, **state: Any) -> None:
    """Place ``run.json`` where SageMaker copies the script's checkpoint folder."""
    body = {"format": "mlcycle-run/1", "job": name, "status": "InProgress", "rounds": 0,
            "stopped_by": None, "stop_reason": None, "best_iteration": None,
            "failure_reason": None, "rule_results": [], **state}
    backend.artifacts.put_json(f"training/{name}/{name}/checkpoints/run.json", body)


def _rule(name: str, kind: str, status: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "kind": kind, "status": status, "step": None, "message": "",
            "stopped_training": False, "evaluated_at": "2026-01-02T03:05:00+00:00", **more}


# -- submit -------------------------------------------------------------------------------------
def test_a_job_with_capture_or_rules_runs_mlcycles_script(sagemaker_backend, stub):
    _submit(sagemaker_backend, stub, "script-req")
    base = "test/training/script-req"
    with tarfile.open(fileobj=io.BytesIO(_get(sagemaker_backend,
                                              f"{base}/code/sourcedir.tar.gz")),
                      mode="r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert files == {"mlcycle_train.py": Path(container_entry.__file__).read_bytes()}

    plan = json.loads(_get(sagemaker_backend, f"{base}/input/mlcycle/config.json"))
    assert plan["format"] == container_entry.CONFIG_FORMAT and plan["job"] == "script-req"
    assert plan["features"] == list(FEATURES) and plan["label"] == "y"
    assert plan["feature_types"] == ["float"] * 4
    assert plan["hyperparameters"] == {"num_round": 12, "max_depth": 3, "eta": 0.25,
                                       "nthread": 1}
    assert plan["collections"] == ["metrics", "average_shap"]
    assert plan["persisted"] == ["metrics", "average_shap"]
    assert plan["rule_collections"] == ["metrics"] and plan["save_interval"] == 5
    assert len(plan["sample_rows"]) == 8 and plan["sample_rows"] == sorted(plan["sample_rows"])
    assert plan["rules"] == [r.to_dict() for r in RULES]
    assert plan["rules"][0]["parameters"] == {"num_steps": 3}  # converted once, by mlcycle

    record = json.loads(_get(sagemaker_backend, f"{base}/mlcycle-job.json"))
    assert record["run_prefix"] == "training/script-req/script-req/checkpoints"
    assert record["capture_prefix"] == "training/script-req/script-req/checkpoints/debug-output"


def test_rules_without_capture_run_the_script_and_capture_nothing(sagemaker_backend, stub):
    job = _submit(sagemaker_backend, stub, "script-req", _spec(capture=None))
    _describe(stub, "script-req")
    assert job.describe().capture_prefix is None


def test_the_sourcedir_is_the_same_bytes_every_time():
    from mlcycle.backends.sagemaker.training import sourcedir_tarball

    first = sourcedir_tarball()
    assert first == sourcedir_tarball()
    assert gzip.decompress(first)  # a gzip'd tar, with no time stamp in it


def test_capture_on_several_instances_is_unsupported_before_anything_is_sent(
        sagemaker_backend, stub):
    spec = _spec(resources=Resources(instance_count=2))
    with pytest.raises(UnsupportedOperationError) as info:
        TrainingJob.submit(sagemaker_backend, spec, name="script-many")
    assert info.value.backend == "sagemaker" and info.value.capability == "training"
    listed = sagemaker_backend.client("s3").list_objects_v2(Bucket=BUCKET)
    assert "Contents" not in listed  # no channel, no record, no script


# -- reading the script's state -----------------------------------------------------------------
def test_rule_statuses_and_rounds_come_from_run_json_while_the_job_runs(sagemaker_backend,
                                                                       stub):
    job = _submit(sagemaker_backend, stub, "script-run")
    _describe(stub, "script-run")
    info = job.describe()
    assert info.rounds == 0
    assert [r.status for r in info.rule_results] == [RuleStatus.IN_PROGRESS] * 2
    _run_json(sagemaker_backend, "script-run", rounds=6, rule_results=[
        _rule("LossNotDecreasing", "LossNotDecreasing", "InProgress"),
        _rule("overfit-1", "Overfit", "IssuesFound", step=5, message="validation-rmse ...")])
    _describe(stub, "script-run")
    info = job.describe()
    assert info.status is JobStatus.IN_PROGRESS and info.rounds == 6
    loss, overfit = info.rule_results
    assert loss.status is RuleStatus.IN_PROGRESS
    assert overfit.status is RuleStatus.ISSUES_FOUND and overfit.step == 5
    assert overfit.evaluated_at == dt.datetime(2026, 1, 2, 3, 5, tzinfo=dt.UTC)
    # the job ended (killed, say) before the rule finished: Stopped, as on the local backend
    _describe(stub, "script-run", status="Stopped", secondary="Stopped")
    info = job.describe()
    assert info.stopped_by == "user"
    assert [r.status for r in info.rule_results] == [RuleStatus.STOPPED,
                                                     RuleStatus.ISSUES_FOUND]


def test_a_rule_that_stopped_training_makes_a_completed_job_stopped(sagemaker_backend, stub):
    job = _submit(sagemaker_backend, stub, "script-stop")
    reason = "rule LossNotDecreasing found an issue at step 6: validation-rmse fell by 0% ..."
    _run_json(sagemaker_backend, "script-stop", status="Stopped", rounds=7,
              stopped_by="rule:LossNotDecreasing", stop_reason=reason, rule_results=[
                  _rule("LossNotDecreasing", "LossNotDecreasing", "IssuesFound", step=6,
                        stopped_training=True),
                  _rule("overfit-1", "Overfit", "NoIssuesFound")])
    # the script ended normally, so SageMaker says Completed
    _describe(stub, "script-stop", status="Completed", secondary="Completed",
              TrainingStartTime=T0, TrainingEndTime=T0 + dt.timedelta(minutes=2))
    info = job.describe()
    assert info.status is JobStatus.STOPPED
    assert (info.stopped_by, info.stop_reason, info.rounds) == ("rule:LossNotDecreasing",
                                                                reason, 7)
    assert info.rule_results[0].stopped_training


@pytest.mark.parametrize(("status", "expected"), [("Completed", RuleStatus.ERROR),
                                                  ("Failed", RuleStatus.STOPPED)])
def test_an_ended_job_without_run_json_says_its_rules_were_not_evaluated(
        sagemaker_backend, stub, status, expected):
    job = _submit(sagemaker_backend, stub, "script-none")
    _describe(stub, "script-none", status=status, secondary=status,
              FailureReason="ClientError: no such image")
    results = job.describe().rule_results
    assert [r.status for r in results] == [expected] * 2
    if expected is RuleStatus.ERROR:
        assert all("no rule results" in r.message for r in results)


def test_the_scripts_model_is_used_as_it_is(sagemaker_backend, stub):
    import xgboost

    from mlcycle.training.artifact import build_model_tarball

    job = _submit(sagemaker_backend, stub, "script-model")
    frame = regression_frame(30)
    booster = xgboost.train({"max_depth": 2, "nthread": 1},
                            xgboost.DMatrix(frame[list(FEATURES)], label=frame["y"]), 2)
    key = "training/script-model/script-model/output/model.tar.gz"
    sagemaker_backend.artifacts.put_bytes(key, build_model_tarball(booster, metadata={}))
    _run_json(sagemaker_backend, "script-model", status="Completed", rounds=2,
              best_iteration=1)
    _describe(stub, "script-model", status="Completed", secondary="Completed")
    info = job.describe()
    assert info.model_key == key and info.best_iteration == 1
    assert not sagemaker_backend.artifacts.exists(
        "training/script-model/script-model/output/mlcycle-model.tar.gz")


def test_a_failed_scripts_own_reason_is_the_jobs(sagemaker_backend, stub):
    job = _submit(sagemaker_backend, stub, "script-fail")
    reason = "XGBoostError: label must be positive for gamma regression"
    _run_json(sagemaker_backend, "script-fail", status="Failed", rounds=0,
              failure_reason=reason, rule_results=[
                  _rule("LossNotDecreasing", "LossNotDecreasing", "Stopped"),
                  _rule("overfit-1", "Overfit", "Stopped")])
    toolkit = ("AlgorithmError: ExecuteUserScriptError: ExitCode 1 ErrorMessage "
               f"\"mlcycle: training failed: {reason}\"")
    _describe(stub, "script-fail", status="Failed", secondary="Failed", FailureReason=toolkit)
    with pytest.raises(JobFailedError) as info:
        job.wait(timeout=5, sleep=lambda _: None)
    assert info.value.reason == reason
