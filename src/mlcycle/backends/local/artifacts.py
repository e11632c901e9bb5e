"""Artifacts of the local backend: files under ``<workspace>/artifacts``, written atomically."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from mlcycle._atomic import atomic_write_bytes
from mlcycle.backends.base import ArtifactStore, validate_key
from mlcycle.backends.local._errors import translated
from mlcycle.errors import NotFoundError

__all__ = ["LocalArtifactStore"]


class LocalArtifactStore(ArtifactStore):
    """Artifacts as files under ``root``.

    Parameters
    ----------
    root : path
        The folder holding the artifacts; created on the first write.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(root)

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*validate_key(key).split("/"))

    def put_bytes(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key`` atomically (temporary file, then rename)."""
        with translated(kind="artifact", name=key):
            atomic_write_bytes(self._path(key), bytes(data))
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        """Return the bytes stored under ``key``."""
        path = self._path(key)
        with translated(kind="artifact", name=key):
            return path.read_bytes()

    def delete(self, key: str) -> None:
        """Delete ``key``."""
        path = self._path(key)
        if not path.is_file():
            raise NotFoundError(f"no artifact {key!r}", kind="artifact", name=key)
        with translated(kind="artifact", name=key):
            path.unlink()

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Iterate over stored keys starting with ``prefix``, sorted."""
        if not self._root.is_dir():
            return iter(())
        keys = []
        for dirpath, _dirs, files in os.walk(self._root):
            rel = Path(dirpath).relative_to(self._root)
            for name in files:
                if name.startswith("."):  # temporary files of writes in progress
                    continue
                key = (rel / name).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def uri(self, key: str) -> str:
        """Return the ``file://`` URI of ``key``."""
        return self._path(key).resolve().as_uri()
