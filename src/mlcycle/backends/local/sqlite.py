"""SQLite databases of the local backend: WAL, one connection per thread, versioned schema.

The online store, lineage, registry and run records each keep one database file. Writers take
the write lock up front (``BEGIN IMMEDIATE``) and wait for it (``busy_timeout``), so several
processes can write at once without "database is locked" errors.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from mlcycle.backends.local._errors import translated
from mlcycle.errors import ConfigurationError

__all__ = ["SQLiteDatabase", "from_micros", "now_micros", "to_micros"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


def to_micros(moment: dt.datetime) -> int:
    """Return a timezone-aware time as integer microseconds since the epoch, exactly.

    Records keep times so, so that a time read back compares equal to the one stored.
    """
    return (moment - _EPOCH) // _US


def from_micros(micros: int) -> dt.datetime:
    """Return the UTC time of :func:`to_micros`'s microseconds."""
    return _EPOCH + micros * _US


def now_micros() -> int:
    """Return the current time as microseconds since the epoch."""
    return to_micros(dt.datetime.now(dt.UTC))


class SQLiteDatabase:
    """One SQLite file with a schema brought up to date by numbered migrations.

    Parameters
    ----------
    path : path
        The database file; its folder is created on first use.
    migrations : sequence of str
        SQL scripts; script ``i`` takes the schema from version ``i`` to ``i + 1``. The version
        is kept in ``PRAGMA user_version``. Append new scripts; never edit released ones.
    busy_timeout : float
        Seconds a writer waits for the write lock before failing with
        :class:`~mlcycle.errors.TransientBackendError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        migrations: Sequence[str] = (),
        busy_timeout: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self._migrations = tuple(migrations)
        self._busy_ms = int(busy_timeout * 1000)
        self._local = threading.local()
        self._migrated = False
        self._lock = threading.Lock()

    @property
    def schema_version(self) -> int:
        """The schema version the migrations reach."""
        return len(self._migrations)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self._busy_ms / 1000, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(self._migrations):
                raise ConfigurationError(
                    f"{self.path} has schema version {version}, newer than this mlcycle "
                    f"({len(self._migrations)}); upgrade mlcycle"
                )
            for number in range(version, len(self._migrations)):
                for statement in _statements(self._migrations[number]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @property
    def connection(self) -> sqlite3.Connection:
        """The calling thread's connection, opened (and the schema migrated) on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with translated(kind="database", name=str(self.path)):
                conn = self._connect()
                with self._lock:
                    if not self._migrated:
                        self._migrate(conn)
                        self._migrated = True
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction; commit on success, roll back on error.

        Yields
        ------
        sqlite3.Connection
        """
        conn = self.connection
        with translated(kind="database", name=str(self.path)):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Run a read query and return all rows."""
        with translated(kind="database", name=str(self.path)):
            return self.connection.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        """Close this thread's connection (other threads close theirs when they end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _statements(script: str) -> list[str]:
    """Split a migration script into statements.

    A ``;`` ends a statement only where SQLite says the statement is complete, so a trigger's
    ``BEGIN ...; END`` body stays whole.
    """
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                statements.append(pending.strip().removesuffix(";").strip())
            pending = ""
    if pending.strip(" \t\r\n;"):
        statements.append(pending.strip().removesuffix(";").strip())
    return statements
