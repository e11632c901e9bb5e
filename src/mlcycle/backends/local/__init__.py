"""The local backend: the whole lifecycle in one folder on one machine, offline.

Layout of a workspace (``local://PATH``)::

    PATH/
      artifacts/        files written atomically (flows, models, reports, ...)
      *.sqlite          SQLite databases (WAL) of the components that keep records
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from mlcycle.backends.base import ArtifactStore, Backend, Capability
from mlcycle.backends.local.artifacts import LocalArtifactStore
from mlcycle.backends.local.sqlite import SQLiteDatabase

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
        {Capability.ARTIFACTS, Capability.FLOWS, Capability.FLOW_PYTHON_STEPS}
    )

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self._artifacts = LocalArtifactStore(self.root / "artifacts")

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
