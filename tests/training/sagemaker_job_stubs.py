"""DescribeTrainingJob answers for the Stubber tests of the sagemaker training backend."""

from __future__ import annotations

import datetime as dt
from typing import Any

from botocore.stub import Stubber

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def described_job(name: str, status: str = "InProgress", secondary: str = "Training", *,
                  instance_count: int, **more: Any) -> dict[str, Any]:
    """A DescribeTrainingJob response for a job of the test backend (bucket mlcycle-test)."""
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://mlcycle-test/test/artifacts/training/"
                                               f"{name}/{name}/output/model.tar.gz"},
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": instance_count,
                           "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
        "CreationTime": T0,
        **more,
    }


def stub_describe(stub: Stubber, name: str, **kwargs: Any) -> None:
    """Queue the DescribeTrainingJob answer of :func:`described_job` on ``stub``."""
    stub.add_response("describe_training_job", described_job(name, **kwargs),
                      {"TrainingJobName": name})
