"""The one place where the sagemaker backend turns botocore errors into mlcycle errors.

AWS answers "not found" in several ways: ``ResourceNotFound``, ``NoSuchKey``, a bare ``404``,
or ``ValidationException`` with a message that says the resource does not exist, depending on
the operation. All of them become :class:`~mlcycle.errors.NotFoundError`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from mlcycle.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    BackendError,
    ConfigurationError,
    InvalidStateError,
    MlcycleError,
    NotFoundError,
    SpecValidationError,
    TransientBackendError,
)

__all__ = ["translate", "translated"]

BACKEND = "sagemaker"

_NOT_FOUND = {"ResourceNotFound", "ResourceNotFoundException", "NoSuchKey", "NoSuchBucket", "404"}
_EXISTS = {"ResourceInUse", "BucketAlreadyOwnedByYou", "ConflictException"}
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "403",
}
_TRANSIENT = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
    "SlowDown",
    "RequestTimeout",
}
_NOT_FOUND_TEXT = re.compile(r"(not found|does not exist|could not find|cannot find)", re.I)
_EXISTS_TEXT = re.compile(r"(already exists|cannot create a duplicate)", re.I)


def translate(exc: BaseException, *, kind: str = "resource", name: str = "") -> MlcycleError:
    """Return the mlcycle error that stands for a botocore exception.

    Parameters
    ----------
    exc : BaseException
        A ``botocore.exceptions.ClientError`` or another ``BotoCoreError``.
    kind, name : str
        The resource being worked on.

    Returns
    -------
    MlcycleError
        Never holding credentials: only the error code and AWS's message are kept.
    """
    from botocore import exceptions as bce

    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or str(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _NOT_FOUND or (
            code == "ValidationException" and _NOT_FOUND_TEXT.search(message)
        ):
            return NotFoundError(f"{kind} {name!r} not found: {message}", kind=kind, name=name)
        if code in _EXISTS or _EXISTS_TEXT.search(message):
            return AlreadyExistsError(f"{kind} {name!r} exists already", kind=kind, name=name)
        if code in _DENIED:
            return AccessDeniedError(f"AWS refused access: {message}", backend=BACKEND, code=code)
        if code in _TRANSIENT or (isinstance(status, int) and status >= 500):
            return TransientBackendError(f"AWS failed: {message}", backend=BACKEND, code=code)
        if code == "ValidationException":
            if "status" in message.lower() or "state" in message.lower():
                return InvalidStateError(f"{kind} {name!r}: {message}")
            return SpecValidationError(f"AWS rejected the request: {message}")
        return BackendError(f"AWS error {code}: {message}", backend=BACKEND, code=code)
    if isinstance(exc, bce.NoRegionError):
        return ConfigurationError("no AWS region: use sagemaker://REGION?bucket=...")
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return AccessDeniedError("no AWS credentials found", backend=BACKEND, code="NoCredentials")
    if isinstance(exc, bce.EndpointConnectionError | bce.ConnectionError):
        return TransientBackendError("cannot reach AWS", backend=BACKEND, code="Connection")
    return BackendError(f"AWS client error: {type(exc).__name__}", backend=BACKEND)


@contextlib.contextmanager
def translated(*, kind: str = "resource", name: str = "") -> Iterator[None]:
    """Translate botocore exceptions raised inside the block.

    Parameters
    ----------
    kind, name : str
        The resource being worked on.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, kind=kind, name=name) from exc
