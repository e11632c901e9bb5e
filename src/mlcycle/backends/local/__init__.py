"""The local backend: the whole lifecycle in one folder on one machine, offline.

Layout of a workspace (``local://PATH``)::

    PATH/
      artifacts/        files written atomically (flows, models, reports, ...)
      featurestore/     feature groups: Parquet offline stores, SQLite online stores
      *.sqlite          SQLite databases (WAL) of the components that keep records:
                        training, lineage, registry, ...
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from mlcycle.backends.base import ArtifactStore, Backend, Capability
from mlcycle.backends.local.artifacts import LocalArtifactStore
from mlcycle.backends.local.sqlite import SQLiteDatabase

if TYPE_CHECKING:  # pragma: no cover
    from mlcycle.backends.local.featurestore import LocalFeatureStoreBackend
    from mlcycle.backends.local.lineage import LocalLineageBackend
    from mlcycle.backends.local.registry import LocalRegistryBackend
    from mlcycle.backends.local.training import LocalTrainingBackend

__all__ = ["LocalBackend", "SQLiteDatabase"]


class LocalBackend(Backend):
    """A workspace folder on this machine.

    Parameters
    ----------
    root : path
        The workspace folder; created on first write, never by the constructor.

    Examples
    --------
    >>> from mlcycle.backends.local import LocalBackend
    >>> ws = LocalBackend(getfixture("tmp_path") / "ws")
    >>> ws.artifacts.put_bytes("hello.txt", b"hi").startswith("file://")
    True
    >>> ws.artifacts.get_bytes("hello.txt")
    b'hi'
    """

    scheme: ClassVar[str] = "local"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.ARTIFACTS,
            Capability.FLOWS,
            Capability.FLOW_PYTHON_STEPS,
            Capability.FEATURE_STORE,
            Capability.TRAINING,
            Capability.LINEAGE,
            Capability.REGISTRY,
        }
    )

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self._artifacts = LocalArtifactStore(self.root / "artifacts")
        self._feature_store: LocalFeatureStoreBackend | None = None
        self._training: LocalTrainingBackend | None = None
        self._lineage: LocalLineageBackend | None = None
        self._registry: LocalRegistryBackend | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_uri(cls, uri: object) -> LocalBackend:
        """Build from a parsed ``local://PATH`` URI (see :func:`mlcycle.backends.parse_uri`)."""
        return cls(getattr(uri, "location", "."))

    @property
    def uri(self) -> str:
        """``local://`` followed by the absolute workspace path."""
        return f"local://{self.root.as_posix()}"

    @property
    def artifacts(self) -> ArtifactStore:
        """Files under ``<root>/artifacts``."""
        return self._artifacts

    @property
    def feature_store(self) -> LocalFeatureStoreBackend:
        """Feature groups under ``<root>/featurestore`` (created on first use, once)."""
        with self._lock:
            if self._feature_store is None:
                from mlcycle.backends.local.featurestore import (
                    CATALOG_MIGRATIONS,
                    LocalFeatureStoreBackend,
                )

                self._feature_store = LocalFeatureStoreBackend(
                    self.root / "featurestore",
                    catalog=self.database("featurestore", migrations=CATALOG_MIGRATIONS),
                )
            return self._feature_store

    @property
    def training(self) -> LocalTrainingBackend:
        """Training jobs run in threads of this process, recorded in ``<root>/training.sqlite``."""
        with self._lock:
            if self._training is None:
                from mlcycle.backends.local.training import MIGRATIONS, LocalTrainingBackend

                self._training = LocalTrainingBackend(
                    artifacts=self._artifacts,
                    database=self.database("training", migrations=MIGRATIONS),
                )
            return self._training

    @property
    def lineage(self) -> LocalLineageBackend:
        """Lineage entities and associations in ``<root>/lineage.sqlite``."""
        with self._lock:
            if self._lineage is None:
                from mlcycle.backends.local.lineage import MIGRATIONS, LocalLineageBackend

                self._lineage = LocalLineageBackend(
                    self.database("lineage", migrations=MIGRATIONS))
            return self._lineage

    @property
    def registry(self) -> LocalRegistryBackend:
        """The model registry in ``<root>/registry.sqlite``.

        Groups, versions, aliases and the audit log; model files stay in the artifact store.
        """
        with self._lock:
            if self._registry is None:
                from mlcycle.backends.local.registry import MIGRATIONS, LocalRegistryBackend

                self._registry = LocalRegistryBackend(
                    self.database("registry", migrations=MIGRATIONS))
            return self._registry

    def close(self) -> None:
        """Close every component's connections (they reopen on next use)."""
        with self._lock:
            parts = (self._feature_store, self._training, self._lineage, self._registry)
        for part in parts:
            if part is not None:
                part.close()

    def database(self, name: str, *, migrations: tuple[str, ...]) -> SQLiteDatabase:
        """Return the SQLite database ``<root>/<name>.sqlite`` with its migrations.

        Parameters
        ----------
        name : str
            A short name, for example ``"registry"``.
        migrations : tuple of str
            The component's schema migrations.
        """
        return SQLiteDatabase(self.root / f"{name}.sqlite", migrations=migrations)
