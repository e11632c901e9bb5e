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
    JobFailedError,
    MlcycleError,
    NotFoundError,
    SpecValidationError,
    TransientBackendError,
)

__all__ = [
    "is_write_conflict",
    "lineage_translated",
    "translate",
    "translate_code",
    "translate_lineage",
    "translate_query_failure",
    "translated",
]

BACKEND = "sagemaker"

_NOT_FOUND = {
    "ResourceNotFound",
    "ResourceNotFoundException",
    "NoSuchKey",
    "NoSuchBucket",
    "EntityNotFoundException",  # Glue
    "404",
}
_EXISTS = {
    "ResourceInUse",
    "BucketAlreadyOwnedByYou",
    "ConflictException",
    "AlreadyExistsException",  # Glue
}
# "ValidationError" is the feature-store runtime's spelling; Athena says "InvalidRequestException".
_INVALID = {"ValidationException", "ValidationError", "InvalidRequestException"}
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "AccessForbidden",  # feature-store runtime
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
# S3's answers to a conditional write (If-None-Match: *) that lost: the key exists (412), or
# another conditional write to it is in flight (409). The registry's audit log retries them.
_WRITE_CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict"}
# SageMaker lineage: UpdateArtifact/UpdateAction/UpdateContext answer ConflictException when
# another writer changed the entity at the same moment; the update can be retried.
_LINEAGE_CONFLICT = {"ConflictException"}
_NOT_FOUND_TEXT = re.compile(r"(not found|does not exist|could not find|cannot find)", re.I)
_EXISTS_TEXT = re.compile(r"(already exists|cannot create a duplicate)", re.I)
_STATE_TEXT = re.compile(r"\b(status|state)\b", re.I)
# Athena's reasons for queries that are wrong, as opposed to queries that failed.
_QUERY_FAULT = re.compile(
    r"^(SYNTAX_ERROR|COLUMN_NOT_FOUND|TABLE_NOT_FOUND|FUNCTION_NOT_FOUND|SCHEMA_NOT_FOUND|"
    r"TYPE_MISMATCH|AMBIGUOUS_NAME|DUPLICATE_COLUMN_NAME|MISSING_\w+|INVALID_\w+|"
    r"NOT_SUPPORTED|MISMATCHED_COLUMN_ALIASES)\b"
)
_QUERY_DENIED = re.compile(r"(access denied|insufficient (lake formation )?permissions)", re.I)
#: Athena's ``AthenaError.ErrorCategory`` of an error in the query itself.
ATHENA_USER_ERROR = 2


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
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return translate_code(
            str(error.get("Code", "")),
            str(error.get("Message", "")) or str(exc),
            status=status,
            kind=kind,
            name=name,
        )
    if isinstance(exc, bce.NoRegionError):
        return ConfigurationError("no AWS region: use sagemaker://REGION?bucket=...")
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return AccessDeniedError("no AWS credentials found", backend=BACKEND, code="NoCredentials")
    if isinstance(exc, bce.EndpointConnectionError | bce.ConnectionError):
        return TransientBackendError("cannot reach AWS", backend=BACKEND, code="Connection")
    return BackendError(f"AWS client error: {type(exc).__name__}", backend=BACKEND)


def translate_code(
    code: str,
    message: str,
    *,
    status: int | None = None,
    kind: str = "resource",
    name: str = "",
) -> MlcycleError:
    """Return the mlcycle error for an AWS error code and message.

    :func:`translate` uses it for a ``ClientError``; batch APIs that report failures per item
    in a successful response (``BatchGetRecord``'s ``Errors``) use it directly.

    Parameters
    ----------
    code : str
        AWS's error code (``"ResourceNotFound"``, ``"ValidationError"``, ...).
    message : str
        AWS's error message.
    status : int, optional
        The HTTP status of the response.
    kind, name : str
        The resource being worked on.

    Returns
    -------
    MlcycleError
    """
    if code in _NOT_FOUND or (code in _INVALID and _NOT_FOUND_TEXT.search(message)):
        return NotFoundError(f"{kind} {name!r} not found: {message}", kind=kind, name=name)
    if code in _EXISTS or _EXISTS_TEXT.search(message):
        return AlreadyExistsError(f"{kind} {name!r} exists already", kind=kind, name=name)
    if code in _DENIED:
        return AccessDeniedError(f"AWS refused access: {message}", backend=BACKEND, code=code)
    if code in _TRANSIENT or (isinstance(status, int) and status >= 500):
        return TransientBackendError(f"AWS failed: {message}", backend=BACKEND, code=code)
    if code in _INVALID:
        if code != "InvalidRequestException" and _STATE_TEXT.search(message):
            return InvalidStateError(f"{kind} {name!r}: {message}")
        return SpecValidationError(f"AWS rejected the request: {message}")
    return BackendError(f"AWS error {code}: {message}", backend=BACKEND, code=code)


def translate_query_failure(query_id: str, state: str, status: dict[str, object]) -> MlcycleError:
    """Return the mlcycle error for an Athena query that ended ``FAILED`` or ``CANCELLED``.

    Parameters
    ----------
    query_id : str
        The query execution id.
    state : str
        The final state.
    status : dict
        ``QueryExecution.Status`` from ``GetQueryExecution``.

    Returns
    -------
    MlcycleError
        :class:`~mlcycle.errors.SpecValidationError` (``field="sql"``) for a query that is
        wrong (Athena's user-error category, or a reason such as ``SYNTAX_ERROR`` or
        ``COLUMN_NOT_FOUND``); :class:`~mlcycle.errors.AccessDeniedError` when Athena was
        refused access; :class:`~mlcycle.errors.JobFailedError` otherwise, with Athena's reason
        as ``reason`` and the query id as ``job``.
    """
    reason = str(status.get("StateChangeReason") or state.lower())
    error = status.get("AthenaError")
    details = error if isinstance(error, dict) else {}
    if state == "FAILED" and _QUERY_DENIED.search(reason):
        return AccessDeniedError(
            f"Athena query {query_id} was refused access: {reason}",
            backend=BACKEND,
            code="AthenaAccessDenied",
        )
    category = details.get("ErrorCategory")
    if state == "FAILED" and (
        category == ATHENA_USER_ERROR or (category is None and _QUERY_FAULT.match(reason))
    ):
        return SpecValidationError(f"Athena rejected query {query_id}: {reason}", field="sql")
    if details.get("ErrorType") is not None:
        reason = f"{reason} (error type {details['ErrorType']})"
    return JobFailedError(f"Athena query {query_id} {state}: {reason}", job=query_id, reason=reason)


def is_write_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is S3 refusing a conditional write because another writer won.

    The registry's audit log writes each event with ``If-None-Match: *`` under the next
    sequence number; S3 answers ``PreconditionFailed`` (412) if that key exists already and
    ``ConditionalRequestConflict`` (409) while another conditional write to it is in flight.
    Both mean: take the next number and try again.

    Parameters
    ----------
    exc : BaseException
        Whatever a ``PutObject`` raised.

    Returns
    -------
    bool
    """
    from botocore import exceptions as bce

    if not isinstance(exc, bce.ClientError):
        return False
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in _WRITE_CONFLICT or (not code and status in (409, 412))


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


def translate_lineage(
    exc: BaseException, *, kind: str = "lineage-entity", name: str = ""
) -> MlcycleError:
    """Return the mlcycle error for a botocore exception from a SageMaker lineage call.

    As :func:`translate`, with two differences that hold for the lineage calls (artifacts,
    actions, contexts, associations, ``QueryLineage``): a ``ConflictException`` means another
    writer updated the entity at the same moment, a
    :class:`~mlcycle.errors.TransientBackendError` to retry (not an
    :class:`~mlcycle.errors.AlreadyExistsError`); and a ``ValidationException`` that says
    neither "not found" nor "already exists" is a :class:`~mlcycle.errors.SpecValidationError`
    even when its message names the ``status`` field (lineage entities have no state that
    refuses a call: such a message is about the value sent).

    Parameters
    ----------
    exc : BaseException
        A ``botocore.exceptions.ClientError`` or another ``BotoCoreError``.
    kind, name : str
        The entity being worked on (``"lineage-entity"`` and its ARN, or ``"Action"`` and its
        name when creating one).

    Returns
    -------
    MlcycleError
    """
    from botocore import exceptions as bce

    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or str(exc)
        if code in _LINEAGE_CONFLICT:
            return TransientBackendError(
                f"{kind} {name!r} was changed by another writer: {message}",
                backend=BACKEND,
                code=code,
            )
        if (
            code in _INVALID
            and not _NOT_FOUND_TEXT.search(message)
            and not _EXISTS_TEXT.search(message)
        ):
            return SpecValidationError(f"AWS rejected the lineage request: {message}")
    return translate(exc, kind=kind, name=name)


@contextlib.contextmanager
def lineage_translated(*, kind: str = "lineage-entity", name: str = "") -> Iterator[None]:
    """Translate botocore exceptions raised inside the block with :func:`translate_lineage`.

    Parameters
    ----------
    kind, name : str
        The entity being worked on.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise translate_lineage(exc, kind=kind, name=name) from exc
