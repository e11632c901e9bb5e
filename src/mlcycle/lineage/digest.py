"""Content digests for lineage artifacts: ``"sha256:<hex>"``."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

__all__ = ["digest_bytes", "digest_file", "digest_frame"]


def digest_bytes(data: bytes) -> str:
    """Return ``"sha256:<hex>"`` of ``data``.

    Examples
    --------
    >>> digest_bytes(b"abc")[:20]
    'sha256:ba7816bf8f01c'
    """
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_file(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    """Return ``"sha256:<hex>"`` of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return "sha256:" + h.hexdigest()


def digest_frame(frame: pd.DataFrame | pa.Table) -> str:
    """Return ``"sha256:<hex>"`` of a table's column names, types and values.

    Equal tables give equal digests, whatever their index or memory layout.
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        frame = frame.to_pandas()
    h = hashlib.sha256(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return "sha256:" + h.hexdigest()
