"""The one exception hierarchy of mlcycle.

Every error that mlcycle raises on purpose is an :class:`MlcycleError`. Callers branch on the
type and on the keyword-only structured fields, never on the message text::

    MlcycleError
    ├── ConfigurationError (ValueError)
    │   ├── UnknownBackendError
    │   └── MissingDependencyError (ImportError)
    ├── SpecValidationError (ValueError)        .step, .field
    ├── NotFoundError (LookupError)             .kind, .name
    ├── AlreadyExistsError                      .kind, .name
    ├── InvalidStateError                       .state
    │   └── PromotionRefusedError               .hook, .reason
    ├── UnsupportedOperationError (NotImplementedError)   .backend, .capability
    ├── JobError                                .job
    │   ├── JobFailedError                      .reason
    │   └── JobTimeoutError (TimeoutError)      .timeout
    └── BackendError                            .backend
        ├── AccessDeniedError (PermissionError)
        └── TransientBackendError

Backend errors (``botocore.exceptions.ClientError``, ``sqlite3.Error``, ``duckdb.Error``) are
translated into this tree in one module per backend and chained with ``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "AlreadyExistsError",
    "BackendError",
    "ConfigurationError",
    "InvalidStateError",
    "JobError",
    "JobFailedError",
    "JobTimeoutError",
    "MissingDependencyError",
    "MlcycleError",
    "NotFoundError",
    "PromotionRefusedError",
    "SpecValidationError",
    "TransientBackendError",
    "UnknownBackendError",
    "UnsupportedOperationError",
]


class MlcycleError(Exception):
    """Base class of every error mlcycle raises on purpose."""


class ConfigurationError(MlcycleError, ValueError):
    """The settings, URI or environment do not describe a usable configuration."""


class UnknownBackendError(ConfigurationError):
    """A backend URI names a scheme that no backend is registered for.

    Parameters
    ----------
    message : str
        What went wrong.
    scheme : str
        The scheme that was asked for.
    known : tuple of str
        The schemes that are registered.
    """

    def __init__(self, message: str, *, scheme: str, known: tuple[str, ...]) -> None:
        super().__init__(message)
        self.scheme = scheme
        self.known = tuple(known)


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional dependency is not installed.

    Parameters
    ----------
    message : str
        What went wrong.
    package : str
        The distribution to install.
    extra : str, optional
        The mlcycle extra that brings it (``pip install 'mlcycle[extra]'``).
    """

    def __init__(self, message: str, *, package: str, extra: str | None = None) -> None:
        super().__init__(message)
        self.package = package
        self.extra = extra


class SpecValidationError(MlcycleError, ValueError):
    """A spec (flow, feature group, job, ...) or its input data is invalid.

    Parameters
    ----------
    message : str
        What went wrong.
    field : str, optional
        The field, parameter or column at fault.
    step : str, optional
        The step (of a flow or pipeline) at fault.
    """

    def __init__(self, message: str, *, field: str | None = None, step: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.step = step


class NotFoundError(MlcycleError, LookupError):
    """A named resource does not exist.

    Parameters
    ----------
    message : str
        What went wrong.
    kind : str
        The kind of resource (``"feature-group"``, ``"artifact"``, ...).
    name : str
        Its name, key or URI.
    """

    def __init__(self, message: str, *, kind: str, name: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name

    def __str__(self) -> str:  # LookupError would quote the message otherwise
        return str(self.args[0]) if self.args else ""


class AlreadyExistsError(MlcycleError):
    """A resource with that name exists already.

    Parameters
    ----------
    message : str
        What went wrong.
    kind : str
        The kind of resource.
    name : str
        Its name.
    """

    def __init__(self, message: str, *, kind: str, name: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name


class InvalidStateError(MlcycleError):
    """The operation is not allowed in the resource's current state.

    Parameters
    ----------
    message : str
        What went wrong.
    state : str, optional
        The state the resource is in.
    """

    def __init__(self, message: str, *, state: str | None = None) -> None:
        super().__init__(message)
        self.state = state


class PromotionRefusedError(InvalidStateError):
    """A promotion hook refused to approve a model version or point an alias at it.

    Parameters
    ----------
    message : str
        What went wrong.
    hook : str
        The name of the hook that refused.
    reason : str
        The hook's reason (for example ``"validation-rmse 0.91 > 0.80"``).
    state : str, optional
        The version's approval status, unchanged.
    """

    def __init__(
        self, message: str, *, hook: str, reason: str, state: str | None = None
    ) -> None:
        super().__init__(message, state=state)
        self.hook = hook
        self.reason = reason


class UnsupportedOperationError(MlcycleError, NotImplementedError):
    """The backend does not have the capability the operation needs.

    Parameters
    ----------
    message : str
        What went wrong.
    backend : str
        The backend's scheme (``"local"``, ``"sagemaker"``).
    capability : str
        The capability that is missing.
    """

    def __init__(self, message: str, *, backend: str, capability: str) -> None:
        super().__init__(message)
        self.backend = backend
        self.capability = capability


class JobError(MlcycleError):
    """A job (training, processing, pipeline run) went wrong.

    Parameters
    ----------
    message : str
        What went wrong.
    job : str, optional
        The job's name.
    """

    def __init__(self, message: str, *, job: str | None = None) -> None:
        super().__init__(message)
        self.job = job


class JobFailedError(JobError):
    """A job ended in failure.

    Parameters
    ----------
    message : str
        What went wrong.
    job : str, optional
        The job's name.
    reason : str, optional
        The failure reason the job reported.
    """

    def __init__(self, message: str, *, job: str | None = None, reason: str | None = None) -> None:
        super().__init__(message, job=job)
        self.reason = reason


class JobTimeoutError(JobError, TimeoutError):
    """Waiting for a job took longer than the timeout.

    Parameters
    ----------
    message : str
        What went wrong.
    job : str, optional
        The job's name.
    timeout : float, optional
        The timeout in seconds.
    """

    def __init__(
        self, message: str, *, job: str | None = None, timeout: float | None = None
    ) -> None:
        super().__init__(message, job=job)
        self.timeout = timeout


class BackendError(MlcycleError):
    """The backend failed in a way the caller did not cause.

    Parameters
    ----------
    message : str
        What went wrong.
    backend : str
        The backend's scheme.
    code : str, optional
        The backend's own error code (for example an AWS error code), for diagnostics only.
    """

    def __init__(self, message: str, *, backend: str, code: str | None = None) -> None:
        super().__init__(message)
        self.backend = backend
        self.code = code


class AccessDeniedError(BackendError, PermissionError):
    """The backend refused the caller's credentials or permissions."""


class TransientBackendError(BackendError):
    """A failure that may go away if the operation is retried (throttling, a locked database)."""
