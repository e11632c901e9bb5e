import pytest
from botocore import exceptions as bce

from mlcycle.backends.sagemaker._errors import translate, translated
from mlcycle.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    BackendError,
    ConfigurationError,
    NotFoundError,
    SpecValidationError,
    TransientBackendError,
)


def client_error(code, message="", status=400):
    return bce.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "DescribeThing",
    )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (client_error("ResourceNotFound", "Resource not found"), NotFoundError),
        (client_error("NoSuchKey", "The key does not exist", 404), NotFoundError),
        (client_error("ValidationException", "Requested resource not found."), NotFoundError),
        (client_error("ValidationException", "Could not find training job 'x'"), NotFoundError),
        (client_error("ResourceInUse", "Resource already exists"), AlreadyExistsError),
        (client_error("ValidationException", "Cannot create a duplicate"), AlreadyExistsError),
        (client_error("AccessDeniedException", "no", 403), AccessDeniedError),
        (client_error("ExpiredTokenException", "expired"), AccessDeniedError),
        (client_error("ThrottlingException", "Rate exceeded"), TransientBackendError),
        (client_error("InternalFailure", "", 500), TransientBackendError),
        (
            client_error("ValidationException", "1 validation error: Value 'x!' failed"),
            SpecValidationError,
        ),
        (client_error("SomethingNew", "??"), BackendError),
        (bce.NoRegionError(), ConfigurationError),
        (bce.NoCredentialsError(), AccessDeniedError),
        (bce.EndpointConnectionError(endpoint_url="https://x"), TransientBackendError),
    ],
)
def test_botocore_errors_translate_by_type(exc, expected):
    out = translate(exc, kind="training-job", name="j")
    assert type(out) is expected
    with pytest.raises(expected) as info, translated(kind="training-job", name="j"):
        raise exc
    assert info.value.__cause__ is exc


def test_not_found_keeps_kind_and_name_and_code_is_kept_for_diagnostics():
    nf = translate(client_error("ResourceNotFound"), kind="feature-group", name="tracks")
    assert (nf.kind, nf.name) == ("feature-group", "tracks")
    other = translate(client_error("SomethingNew"))
    assert other.code == "SomethingNew" and other.backend == "sagemaker"


def test_moto_s3_missing_object_is_not_found(sagemaker_backend):
    with pytest.raises(NotFoundError):
        sagemaker_backend.artifacts.get_bytes("nope")


def test_clients_are_per_backend_instance(sagemaker_backend):
    from mlcycle.backends.sagemaker import SageMakerBackend

    other = SageMakerBackend("eu-west-1", bucket="other-bucket")
    assert other.client("s3") is not sagemaker_backend.client("s3")
    assert other.client("s3").meta.region_name == "eu-west-1"
    assert sagemaker_backend.client("s3") is sagemaker_backend.client("s3")
