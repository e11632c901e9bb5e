"""Progress reporting for long work (ingest, training, flow runs).

Library code never prints: it calls a *progress callback* ``progress(stage, done, total)``
that the caller supplies. :class:`TerminalProgress` is the renderer the CLI and the examples use.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["ProgressCallback", "TerminalProgress", "report"]

#: ``progress(stage, done, total)``: ``done`` out of ``total`` units of ``stage`` are finished.
ProgressCallback = Callable[[str, int, int], None]


def report(progress: ProgressCallback | None, stage: str, done: int, total: int) -> None:
    """Call ``progress`` if one was given.

    Parameters
    ----------
    progress : callable or None
        The callback.
    stage : str
        What is being done.
    done, total : int
        Units finished and units in all.
    """
    if progress is not None:
        progress(stage, done, total)


class TerminalProgress:
    """Render progress callbacks as a one-line bar on a terminal stream.

    Parameters
    ----------
    stream : file-like, optional
        Where to draw (default: ``sys.stderr``).
    width : int
        Width of the bar in characters.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = TerminalProgress(stream=out, width=10)
    >>> bar("ingest", 5, 10)
    >>> bar("ingest", 10, 10)
    >>> "ingest" in out.getvalue() and "100%" in out.getvalue()
    True
    """

    def __init__(self, *, stream: TextIO | None = None, width: int = 30) -> None:
        self._stream = stream
        self._width = width
        self._stage: str | None = None
        self._started = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        """Draw the bar for ``done`` of ``total`` units of ``stage``."""
        stream = self._stream if self._stream is not None else sys.stderr
        if stage != self._stage:
            if self._stage is not None:
                stream.write("\n")
            self._stage = stage
            self._started = time.monotonic()
        fraction = min(1.0, done / total) if total > 0 else 1.0
        interactive = getattr(stream, "isatty", lambda: False)()
        if not interactive and done < total:  # a log file gets one line per finished stage
            return
        filled = round(fraction * self._width)
        bar = "#" * filled + "-" * (self._width - filled)
        elapsed = time.monotonic() - self._started
        start = "\r" if interactive else ""
        stream.write(f"{start}{stage:<16} [{bar}] {fraction:4.0%} {done}/{total} {elapsed:5.1f}s")
        if done >= total:
            stream.write("\n")
            self._stage = None
        stream.flush()
