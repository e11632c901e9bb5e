"""A sagemaker backend on moto's in-process AWS, for tests. Nothing here reaches real AWS."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from unittest import mock

from mlcycle.backends.sagemaker import SageMakerBackend

__all__ = ["FAKE_ROLE", "mock_sagemaker_backend"]

#: A syntactically valid role ARN for moto.
FAKE_ROLE = "arn:aws:iam::123456789012:role/mlcycle-test"

_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@contextlib.contextmanager
def mock_sagemaker_backend(
    *, region: str = "us-east-1", bucket: str = "mlcycle-test", prefix: str = "test"
) -> Iterator[SageMakerBackend]:
    """Yield a sagemaker backend whose clients talk to moto, with its bucket created.

    Fake credentials are set for the duration, so a stray real call could never authenticate.
    The lineage calls moto lacks are answered by
    ``mlcycle.testing.aws_lineage.SageMakerLineageFake``, installed on the backend's session.

    Parameters
    ----------
    region, bucket, prefix : str
        Where the backend lives.

    Yields
    ------
    mlcycle.backends.sagemaker.SageMakerBackend
    """
    import boto3
    import moto

    from mlcycle.testing.aws_lineage import SageMakerLineageFake

    with mock.patch.dict(os.environ, _FAKE_ENV), moto.mock_aws():
        for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            os.environ.pop(var, None)
        session = boto3.session.Session(region_name=region)
        SageMakerLineageFake().install(session)
        backend = SageMakerBackend(
            region, bucket=bucket, prefix=prefix, role=FAKE_ROLE, boto3_session=session
        )
        s3 = backend.client("s3")
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
        try:
            yield backend
        finally:
            backend.close()
