"""The exact SageMaker requests of the sagemaker training backend, pinned with Stubber.

S3 (the channels, the job record) and CloudWatch Logs run on moto; the ``sagemaker`` client is
stubbed, so botocore checks every request and answer against the real API model, also for
what moto lacks (``StopTrainingJob``, ``Failed`` jobs, ``ResourceNotFound``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.stub import Stubber
from sagemaker_job_stubs import IMAGE, T0, stub_describe

from mlcycle.errors import JobFailedError, NotFoundError
from mlcycle.testing.contract.training import regression_frame
from mlcycle.training import (
    JobStatus,
    Resources,
    TrainingJob,
    TrainingJobSpec,
    list_training_jobs,
)

pytestmark = pytest.mark.aws

ROLE = "arn:aws:iam::123456789012:role/mlcycle-test"


@pytest.fixture
def stub(sagemaker_backend):
    with Stubber(sagemaker_backend.client("sagemaker")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _spec(**changes: Any) -> TrainingJobSpec:
    frame = regression_frame(30)
    values: dict[str, Any] = {
        "hyperparameters": {"num_round": 12, "max_depth": 3, "eta": 0.25,
                            "objective": "reg:squarederror", "nthread": 1},
        "train": frame.iloc[:20], "validation": frame.iloc[20:], "label": "y",
        "resources": Resources(instance_type="ml.m5.large", instance_count=2,
                               volume_size_gb=10, max_runtime_s=900),
    }
    values.update(changes)
    return TrainingJobSpec(**values)


def _describe(stub: Stubber, name: str, **kwargs: Any) -> None:
    stub_describe(stub, name, instance_count=2, **kwargs)


def _missing(stub: Stubber, name: str, code: str = "ResourceNotFound") -> None:
    stub.add_client_error("describe_training_job", service_error_code=code,
                          service_message=f"Could not find training job {name}",
                          http_status_code=400, expected_params={"TrainingJobName": name})


def _channel(name: str, channel: str) -> dict[str, Any]:
    return {
        "ChannelName": channel,
        "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix",
            "S3Uri": f"s3://mlcycle-test/test/training/{name}/input/{channel}/",
            "S3DataDistributionType": "FullyReplicated",
        }},
        "ContentType": "text/csv",
    }


def _submit(backend: Any, stub: Stubber, name: str, spec: TrainingJobSpec,
            expected: dict[str, Any]) -> TrainingJob:
    _missing(stub, name)
    stub.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:"
                                              f"123456789012:training-job/{name}"}, expected)
    _describe(stub, name)
    return TrainingJob.submit(backend, spec, name=name)


def _request(name: str, **more: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [_channel(name, "train"), _channel(name, "validation")],
        "HyperParameters": {"num_round": "12", "max_depth": "3", "eta": "0.25",
                            "objective": "reg:squarederror", "nthread": "1"},
        "OutputDataConfig": {"S3OutputPath": f"s3://mlcycle-test/test/artifacts/training/{name}"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2,
                           "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
        "Tags": [{"Key": "mlcycle:job-record",
                  "Value": f"s3://mlcycle-test/test/training/{name}/mlcycle-job.json"}],
        **more,
    }


def test_create_training_job_request(sagemaker_backend, stub):
    job = _submit(sagemaker_backend, stub, "req-plain", _spec(), _request("req-plain"))
    assert job.name == "req-plain"


def test_stop_training_job(sagemaker_backend, stub):
    job = _submit(sagemaker_backend, stub, "req-stop", _spec(), _request("req-stop"))
    _describe(stub, "req-stop")
    stub.add_response("stop_training_job", {}, {"TrainingJobName": "req-stop"})
    job.stop()
    _describe(stub, "req-stop", status="Stopping", secondary="Stopping")
    assert job.status() is JobStatus.STOPPING
    _describe(stub, "req-stop", status="Stopped", secondary="Stopped",
              SecondaryStatusTransitions=[{"Status": "Stopped", "StartTime": T0,
                                           "StatusMessage": "Training job stopped by user"}])
    info = job.describe()
    assert info.status is JobStatus.STOPPED and info.stopped_by == "user"
    assert info.stop_reason == "Training job stopped by user"
    _describe(stub, "req-stop", status="Stopped", secondary="Stopped")
    job.stop()  # an ended job: no StopTrainingJob (Stubber fails on an unexpected call)


def test_max_runtime_is_reported_as_the_stopper(sagemaker_backend, stub):
    job = _submit(sagemaker_backend, stub, "req-runtime", _spec(), _request("req-runtime"))
    _describe(stub, "req-runtime", status="Stopped", secondary="MaxRuntimeExceeded")
    assert job.describe().stopped_by == "max_runtime"


def test_a_missing_job_is_not_found(sagemaker_backend, stub):
    _missing(stub, "req-missing")
    with pytest.raises(NotFoundError) as info:
        TrainingJob.get(sagemaker_backend, "req-missing")
    assert info.value.name == "req-missing" and info.value.kind == "training-job"
    _missing(stub, "req-missing", code="ValidationException")  # moto's answer
    with pytest.raises(NotFoundError):
        sagemaker_backend.training.stop_job("req-missing")


def test_a_failed_job_raises_job_failed_error_from_wait(sagemaker_backend, stub):
    job = _submit(sagemaker_backend, stub, "req-failed", _spec(), _request("req-failed"))
    reason = "AlgorithmError: label must be positive for reg:gamma"
    _describe(stub, "req-failed")
    _describe(stub, "req-failed", status="Failed", secondary="Failed", FailureReason=reason,
              TrainingStartTime=T0, TrainingEndTime=T0)
    sleeps: list[float] = []
    with pytest.raises(JobFailedError) as info:
        job.wait(timeout=60, poll_interval=7, sleep=sleeps.append)
    assert info.value.reason == reason and info.value.job == "req-failed"
    assert sleeps == [7]
    _describe(stub, "req-failed", status="Failed", secondary="Failed", FailureReason=reason)
    described = job.describe()
    assert described.failure_reason == reason and described.model_key is None


def test_final_metrics_from_final_metric_data_list(sagemaker_backend, stub):
    job = _submit(sagemaker_backend, stub, "req-final", _spec(), _request("req-final"))
    _describe(stub, "req-final", status="Completed", secondary="Completed",
              FinalMetricDataList=[{"MetricName": "validation:rmse", "Value": 0.5},
                                   {"MetricName": "train:rmse", "Value": 0.25},
                                   {"MetricName": "train:progress", "Value": 100.0}])
    info = job.describe()
    assert info.final_metrics == {"validation-rmse": 0.5, "train-rmse": 0.25}
    assert info.model_key is None  # nothing at the reported key
    assert info.created_at == T0


def test_list_training_jobs_is_paginated(sagemaker_backend, stub):
    for name in ("req-a", "req-b"):
        _submit(sagemaker_backend, stub, name, _spec(), _request(name))

    def summary(name: str) -> dict[str, Any]:
        return {"TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:"
                f"123456789012:training-job/{name}", "CreationTime": T0,
                "TrainingJobStatus": "InProgress"}

    stub.add_response("list_training_jobs", {"TrainingJobSummaries": [summary("req-b")],
                                             "NextToken": "page-2"},
                      {"SortBy": "CreationTime", "SortOrder": "Descending"})
    stub.add_response("list_training_jobs", {"TrainingJobSummaries": [summary("req-a")]},
                      {"SortBy": "CreationTime", "SortOrder": "Descending",
                       "NextToken": "page-2"})
    _describe(stub, "req-b", CreationTime=T0 + dt.timedelta(seconds=1))
    _describe(stub, "req-a")
    assert [i.name for i in list_training_jobs(sagemaker_backend)] == ["req-b", "req-a"]


def test_wait_for_job_uses_the_injected_sleep(sagemaker_backend):
    from mlcycle.backends.sagemaker.training import SageMakerTrainingBackend

    sleeps: list[float] = []
    SageMakerTrainingBackend(sagemaker_backend, sleep=sleeps.append).wait_for_job("x", 3.0)
    assert sleeps == [3.0]
