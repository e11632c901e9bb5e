"""mlcycle: composable components for the whole machine-learning lifecycle.

``import mlcycle`` loads only the standard library and attrs. Everything else (pandas, DuckDB,
pyarrow, boto3, ...) loads inside the functions that need it, and the public names below are
imported on first access.

Examples
--------
>>> import mlcycle
>>> backend = mlcycle.connect("local://" + str(getfixture("tmp_path")))
>>> backend.scheme
'local'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlcycle._version import __version__
from mlcycle.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    BackendError,
    ConfigurationError,
    InvalidStateError,
    JobError,
    JobFailedError,
    JobTimeoutError,
    MissingDependencyError,
    MlcycleError,
    NotFoundError,
    PromotionRefusedError,
    SpecValidationError,
    TransientBackendError,
    UnknownBackendError,
    UnsupportedOperationError,
)

if TYPE_CHECKING:  # pragma: no cover
    from mlcycle.backends import connect, known_schemes, register_backend
    from mlcycle.backends.base import Backend, Capability
    from mlcycle.featurestore import FeatureGroupSpec, FeatureStore
    from mlcycle.flow import Flow
    from mlcycle.lineage import LineageTracker
    from mlcycle.registry import RegistryClient
    from mlcycle.settings import Settings
    from mlcycle.training import TrainingJob, TrainingJobSpec

# public name -> module that defines it; imported on first attribute access
_LAZY = {
    "connect": "mlcycle.backends",
    "register_backend": "mlcycle.backends",
    "known_schemes": "mlcycle.backends",
    "Backend": "mlcycle.backends.base",
    "Capability": "mlcycle.backends.base",
    "Settings": "mlcycle.settings",
    "Flow": "mlcycle.flow",
    "FeatureGroupSpec": "mlcycle.featurestore",
    "FeatureStore": "mlcycle.featurestore",
    "TrainingJob": "mlcycle.training",
    "TrainingJobSpec": "mlcycle.training",
    "RegistryClient": "mlcycle.registry",
    "LineageTracker": "mlcycle.lineage",
}

__all__ = [
    "AccessDeniedError",
    "AlreadyExistsError",
    "Backend",
    "BackendError",
    "Capability",
    "ConfigurationError",
    "FeatureGroupSpec",
    "FeatureStore",
    "Flow",
    "InvalidStateError",
    "JobError",
    "JobFailedError",
    "JobTimeoutError",
    "LineageTracker",
    "MissingDependencyError",
    "MlcycleError",
    "NotFoundError",
    "PromotionRefusedError",
    "RegistryClient",
    "Settings",
    "SpecValidationError",
    "TrainingJob",
    "TrainingJobSpec",
    "TransientBackendError",
    "UnknownBackendError",
    "UnsupportedOperationError",
    "__version__",
    "connect",
    "known_schemes",
    "register_backend",
]


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'mlcycle' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
