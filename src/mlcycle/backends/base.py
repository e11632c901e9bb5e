"""The abstract classes every backend implements.

A *backend bundle* (:class:`Backend`) is what :func:`mlcycle.connect` returns. It declares its
capabilities as data and hands out one small component backend per component. Each component
backend is an :class:`abc.ABC` with a small abstract core; derived helpers are concrete methods
on top of it, so a backend author implements only the core.
"""

from __future__ import annotations

import abc
import enum
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from mlcycle.errors import SpecValidationError, UnsupportedOperationError

if TYPE_CHECKING:  # pragma: no cover
    from mlcycle.featurestore.backend import FeatureStoreBackend
    from mlcycle.lineage.backend import LineageBackend
    from mlcycle.registry.backend import RegistryBackend
    from mlcycle.training.backend import TrainingBackend

__all__ = ["ArtifactStore", "Backend", "Capability", "validate_key"]


class Capability(enum.StrEnum):
    """What a backend can do; a facade asks ``backend.require(capability)`` before it acts."""

    #: Store and read artifacts (model files, flows, reports) by key.
    ARTIFACTS = "artifacts"
    #: Run data-prep flows (DuckDB in this process, reading the backend's artifacts).
    FLOWS = "flows"
    #: Run a flow's custom Python steps, which call user code in this process.
    FLOW_PYTHON_STEPS = "flows.python-steps"
    #: Feature groups with offline and online stores (``mlcycle.featurestore``).
    FEATURE_STORE = "feature-store"
    #: Train XGBoost jobs with capture and rules (``mlcycle.training``).
    TRAINING = "training"
    #: Record and query lineage (``mlcycle.lineage``).
    LINEAGE = "lineage"
    #: A model registry with approval and aliases (``mlcycle.registry``).
    REGISTRY = "registry"


_KEY_RE = re.compile(r"^[A-Za-z0-9_.=+\-]+(/[A-Za-z0-9_.=+\-]+)*$")


def validate_key(key: str) -> str:
    """Check an artifact key: a relative POSIX path of safe characters, no ``.`` or ``..`` parts.

    Parameters
    ----------
    key : str
        The key, for example ``"flows/music.flow.json"``.

    Returns
    -------
    str
        The key, unchanged.

    Raises
    ------
    SpecValidationError
        If the key is empty, absolute, climbs out with ``..`` or holds other characters.

    Examples
    --------
    >>> validate_key("models/v1/model.tar.gz")
    'models/v1/model.tar.gz'
    >>> validate_key("../etc/passwd")
    Traceback (most recent call last):
    ...
    mlcycle.errors.SpecValidationError: invalid artifact key '../etc/passwd': ...
    """
    if (
        not isinstance(key, str)
        or len(key) > 1024
        or not _KEY_RE.match(key)
        or any(part in {".", ".."} for part in key.split("/"))
    ):
        raise SpecValidationError(
            f"invalid artifact key {key!r}: use a relative path of letters, digits and _.=+- "
            "separated by '/', without '.' or '..' parts",
            field="key",
        )
    return key


class ArtifactStore(abc.ABC):
    """Bytes stored by key: local files, or S3 objects under the backend's prefix.

    Writes are atomic: a reader sees the old content or the new, never a part.
    Subclasses implement :meth:`put_bytes`, :meth:`get_bytes`, :meth:`delete`,
    :meth:`list_keys` and :meth:`uri`; the rest is derived.
    """

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key`` atomically, replacing what was there.

        Returns
        -------
        str
            The URI of the stored artifact.
        """

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Return the bytes stored under ``key``.

        Raises
        ------
        NotFoundError
            If nothing is stored under ``key``.
        """

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key``.

        Raises
        ------
        NotFoundError
            If nothing is stored under ``key``.
        """

    @abc.abstractmethod
    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Iterate over the stored keys that start with ``prefix``, in sorted order."""

    @abc.abstractmethod
    def uri(self, key: str) -> str:
        """Return the URI (``file://...`` or ``s3://...``) where ``key`` is or would be stored."""

    def exists(self, key: str) -> bool:
        """Return whether something is stored under ``key``."""
        return key in set(self.list_keys(key))

    def put_json(self, key: str, value: Any) -> str:
        """Store ``value`` as UTF-8 JSON (keys sorted, so equal values give equal bytes)."""
        data = json.dumps(value, sort_keys=True, indent=1, allow_nan=False).encode()
        return self.put_bytes(key, data)

    def get_json(self, key: str) -> Any:
        """Return the JSON value stored under ``key``."""
        return json.loads(self.get_bytes(key))


class Backend(abc.ABC):
    """A backend bundle: identity (its URI) plus the component backends that do the I/O.

    Constructors do no I/O; work happens on first use. Use as a context manager, or call
    :meth:`close`, to release connections and clients.
    """

    #: The URI scheme this backend answers to.
    scheme: ClassVar[str]
    #: What this backend can do.
    capabilities: ClassVar[frozenset[Capability]]

    @property
    @abc.abstractmethod
    def uri(self) -> str:
        """The URI that :func:`mlcycle.connect` turns back into an equal backend."""

    @property
    @abc.abstractmethod
    def artifacts(self) -> ArtifactStore:
        """The artifact store of this backend."""

    @property
    def feature_store(self) -> FeatureStoreBackend:
        """The feature store backend.

        Raises
        ------
        UnsupportedOperationError
            If this backend has no feature store.
        """
        self.require(Capability.FEATURE_STORE)
        raise NotImplementedError  # pragma: no cover - a backend with the capability overrides

    @property
    def training(self) -> TrainingBackend:
        """The training backend.

        Raises
        ------
        UnsupportedOperationError
            If this backend cannot train.
        """
        self.require(Capability.TRAINING)
        raise NotImplementedError  # pragma: no cover - a backend with the capability overrides

    @property
    def lineage(self) -> LineageBackend:
        """The lineage backend.

        Raises
        ------
        UnsupportedOperationError
            If this backend does not record lineage.
        """
        self.require(Capability.LINEAGE)
        raise NotImplementedError  # pragma: no cover - a backend with the capability overrides

    @property
    def registry(self) -> RegistryBackend:
        """The model registry backend.

        Raises
        ------
        UnsupportedOperationError
            If this backend has no registry.
        """
        self.require(Capability.REGISTRY)
        raise NotImplementedError  # pragma: no cover - a backend with the capability overrides

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections and clients; the backend reconnects if used again."""

    def supports(self, capability: Capability | str) -> bool:
        """Return whether this backend has ``capability``."""
        return Capability(capability) in self.capabilities

    def require(self, capability: Capability | str) -> None:
        """Raise unless this backend has ``capability``.

        Raises
        ------
        UnsupportedOperationError
            Naming the backend and the missing capability.
        """
        cap = Capability(capability)
        if cap not in self.capabilities:
            raise UnsupportedOperationError(
                f"the {self.scheme!r} backend does not support {cap.value!r}",
                backend=self.scheme,
                capability=cap.value,
            )

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.uri}>"
