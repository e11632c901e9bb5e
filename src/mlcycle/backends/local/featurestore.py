"""The local feature store: Parquet offline store read by DuckDB, SQLite online store.

Layout, under the workspace's ``featurestore/`` folder::

    featurestore.sqlite                      (workspace root) the catalog: one row per group
    featurestore/<group>-<created>/
      group.sqlite                           the online store and the offline manifest (WAL)
      data/year=YYYY/month=MM/day=DD/hour=HH/<batch_id>_<n>.parquet

The ``data/`` folder is laid out as SageMaker's offline store is in S3: one folder per hour of
event time. Each Parquet file holds the features, then ``write_time`` and
``api_invocation_time`` (``TIMESTAMP WITH TIME ZONE``, UTC, microseconds) and ``is_deleted``.

Atomic batches
--------------
An ingest writes its files first (each to a hidden temporary name, then renamed), and then
commits in ONE SQLite transaction: the batch's row and file list go into the manifest, and the
online upserts are applied. Readers of the offline store only read files listed in the
manifest, so a batch is visible whole or not at all. A writer registers its batch (process id,
planned files) before writing; the next ingest removes the files of batches whose process died
before committing. Files are not fsynced: a killed process loses nothing committed, a power cut
may.

Online store
------------
One table per group, one row per record identifier, one column per feature plus the event time
in epoch seconds, the write time and a soft-delete flag. An upsert replaces a row only if its
event time is at least as late (``ON CONFLICT ... DO UPDATE ... WHERE``). Lookups use each
thread's own connection and one prepared primary-key query.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mlcycle._logging import logger
from mlcycle._sql import quote_ident, sql_literal
from mlcycle.backends.local._errors import translated, translated_sql
from mlcycle.backends.local.sqlite import SQLiteDatabase
from mlcycle.errors import AlreadyExistsError, NotFoundError
from mlcycle.featurestore.backend import (
    EVENT_EPOCH,
    OFFLINE_COLUMNS,
    FeatureGroupInfo,
    FeatureStoreBackend,
    IngestBatch,
    IngestResult,
)
from mlcycle.featurestore.spec import FeatureGroupSpec, FeatureType
from mlcycle.featurestore.training import sort_result
from mlcycle.progress import ProgressCallback, report

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pyarrow as pa

__all__ = ["CATALOG_MIGRATIONS", "GROUP_MIGRATIONS", "LocalFeatureStoreBackend"]

KIND = "feature-group"
#: Schema of the catalog database (``featurestore.sqlite``).
CATALOG_MIGRATIONS = (
    """
    CREATE TABLE feature_groups (
        name TEXT PRIMARY KEY,
        folder TEXT NOT NULL UNIQUE,
        spec TEXT NOT NULL,
        created_at REAL NOT NULL
    )
    """,
)
#: Schema of a group's database (``group.sqlite``); the online table is made from the spec.
GROUP_MIGRATIONS = (
    """
    CREATE TABLE batches (
        batch_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        write_time REAL NOT NULL,
        rows INTEGER NOT NULL,
        committed_at REAL NOT NULL
    );
    CREATE TABLE files (
        path TEXT PRIMARY KEY,
        batch_id TEXT NOT NULL REFERENCES batches (batch_id),
        rows INTEGER NOT NULL,
        min_event REAL NOT NULL,
        max_event REAL NOT NULL
    );
    CREATE TABLE pending (
        batch_id TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        started_at REAL NOT NULL,
        paths TEXT NOT NULL
    )
    """,
)
_SQL_TYPES = {FeatureType.INTEGRAL: "INTEGER", FeatureType.FRACTIONAL: "REAL",
              FeatureType.STRING: "TEXT"}
_DUCK_TYPES = {FeatureType.INTEGRAL: "BIGINT", FeatureType.FRACTIONAL: "DOUBLE",
               FeatureType.STRING: "VARCHAR"}
_UPSERT_CHUNK = 100_000
_LOOKUP_CHUNK = 500
_MMAP_BYTES = 1 << 30


def _arrow_type(kind: FeatureType) -> pa.DataType:
    import pyarrow as pa

    return {FeatureType.INTEGRAL: pa.int64(), FeatureType.FRACTIONAL: pa.float64(),
            FeatureType.STRING: pa.string()}[kind]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    return True


class _Group:
    """A group's folder, database and prepared SQL (cached per backend instance)."""

    def __init__(self, spec: FeatureGroupSpec, folder: Path, created_at: float) -> None:
        self.spec = spec
        self.folder = folder
        self.created_at = created_at
        self.db = SQLiteDatabase(folder / "group.sqlite", migrations=GROUP_MIGRATIONS)
        self.local = threading.local()
        q = quote_ident
        names = spec.feature_names
        rid = q(spec.record_identifier)
        self.columns = ", ".join(q(n) for n in names)
        self.select_one = (f"SELECT {self.columns} FROM online WHERE {rid} = ? "
                           "AND _deleted = 0")
        self.select_many = f"SELECT {self.columns} FROM online WHERE _deleted = 0 AND {rid} IN "
        sets = ", ".join(f"{q(n)} = excluded.{q(n)}" for n in names)
        marks = ", ".join("?" for _ in range(len(names) + 2))
        self.upsert = (
            f"INSERT INTO online ({self.columns}, _event_epoch, _write_time, _deleted) "
            f"VALUES ({marks}, 0) ON CONFLICT ({rid}) DO UPDATE SET {sets}, "
            "_event_epoch = excluded._event_epoch, _write_time = excluded._write_time, "
            "_deleted = 0 WHERE excluded._event_epoch >= online._event_epoch"
        )

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def online_ddl(self) -> str:
        spec = self.spec
        cols = []
        for f in spec.features:
            not_null = " NOT NULL" if f.name == spec.record_identifier else ""
            cols.append(f"{quote_ident(f.name)} {_SQL_TYPES[f.type]}{not_null}")
        return (
            "CREATE TABLE IF NOT EXISTS online (" + ", ".join(cols)
            + ", _event_epoch REAL NOT NULL, _write_time REAL NOT NULL, "
            "_deleted INTEGER NOT NULL DEFAULT 0, "
            f"PRIMARY KEY ({quote_ident(spec.record_identifier)})) WITHOUT ROWID"
        )

    def cursor(self) -> Any:
        """Return the calling thread's read cursor (rows as plain tuples)."""
        cur = getattr(self.local, "cursor", None)
        if cur is None:
            if not self.db.path.exists():
                raise NotFoundError(f"no feature group {self.spec.name!r}", kind=KIND,
                                    name=self.spec.name)
            conn = self.db.connection
            # reads through a memory map skip a system call per page (p99 -30 % measured)
            conn.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
            cur = conn.cursor()
            cur.row_factory = None
            self.local.cursor = cur
        return cur

    def close(self) -> None:
        cur = getattr(self.local, "cursor", None)
        if cur is not None:
            with contextlib.suppress(Exception):
                cur.close()
            self.local.cursor = None
        self.db.close()


class LocalFeatureStoreBackend(FeatureStoreBackend):
    """The feature store of a :class:`~mlcycle.backends.local.LocalBackend` workspace.

    Parameters
    ----------
    root : path
        The ``featurestore`` folder of the workspace.
    catalog : mlcycle.backends.local.SQLiteDatabase
        The catalog database.
    clock : callable, optional
        Returns the current time as epoch seconds (for ``created_at``; default
        ``time.time``).
    """

    dialect: ClassVar[str] = "duckdb"

    def __init__(self, root: str | os.PathLike[str], *, catalog: SQLiteDatabase,
                 clock: Any = None) -> None:
        self.root = Path(root)
        self._catalog = catalog
        self._clock = clock or time.time
        self._groups: dict[str, _Group] = {}
        self._lock = threading.Lock()
        self._duck: duckdb.DuckDBPyConnection | None = None

    def __repr__(self) -> str:
        return f"<LocalFeatureStoreBackend {self.root}>"

    # -- catalog -----------------------------------------------------------------------------
    def _row(self, name: str) -> Any:
        rows = self._catalog.query(
            "SELECT name, folder, spec, created_at FROM feature_groups WHERE name = ?", (name,)
        )
        if not rows:
            raise NotFoundError(f"no feature group {name!r}", kind=KIND, name=name)
        return rows[0]

    def _load(self, row: Any) -> _Group:
        folder = self.root / row["folder"]
        with self._lock:
            group = self._groups.get(row["name"])
            if group is None or group.folder != folder:
                if group is not None:
                    group.close()
                spec = FeatureGroupSpec.from_dict(json.loads(row["spec"]))
                group = _Group(spec, folder, row["created_at"])
                self._groups[row["name"]] = group
        return group

    def _group(self, name: str, *, fresh: bool = False) -> _Group:
        """The group called ``name``; ``fresh`` re-reads the catalog (it may have changed)."""
        if not fresh:
            group = self._groups.get(name)
            if group is not None:
                return group
        return self._load(self._row(name))

    def _info(self, group: _Group) -> FeatureGroupInfo:
        return FeatureGroupInfo(
            spec=group.spec,
            status="Created",
            created_at=dt.datetime.fromtimestamp(group.created_at, dt.UTC),
            uri=group.folder.as_uri(),
            offline_uri=group.data.as_uri() if group.spec.offline else None,
        )

    def create_group(self, spec: FeatureGroupSpec) -> FeatureGroupInfo:  # noqa: D102
        if self._catalog.query("SELECT 1 FROM feature_groups WHERE name = ?", (spec.name,)):
            raise AlreadyExistsError(f"feature group {spec.name!r} exists already", kind=KIND,
                                     name=spec.name)
        created = self._clock()
        folder_name = f"{spec.name}-{int(created * 1000)}-{uuid.uuid4().hex[:6]}"
        group = _Group(spec, self.root / folder_name, created)
        try:
            with translated(kind=KIND, name=spec.name):
                group.folder.mkdir(parents=True)
                with group.db.transaction() as conn:
                    if spec.online:
                        conn.execute(group.online_ddl())
                try:
                    with self._catalog.transaction() as conn:
                        conn.execute(
                            "INSERT INTO feature_groups (name, folder, spec, created_at) "
                            "VALUES (?, ?, ?, ?)",
                            (spec.name, folder_name,
                             json.dumps(spec.to_dict(), sort_keys=True), created),
                        )
                except AlreadyExistsError:  # another process created it meanwhile
                    raise AlreadyExistsError(f"feature group {spec.name!r} exists already",
                                             kind=KIND, name=spec.name) from None
        except BaseException:
            group.close()
            shutil.rmtree(group.folder, ignore_errors=True)
            raise
        with self._lock:
            old = self._groups.pop(spec.name, None)
            if old is not None:
                old.close()
            self._groups[spec.name] = group
        logger.info("created feature group %r in %s", spec.name, group.folder)
        return self._info(group)

    def describe_group(self, name: str) -> FeatureGroupInfo:  # noqa: D102
        return self._info(self._group(name, fresh=True))

    def list_groups(self) -> Iterator[FeatureGroupInfo]:  # noqa: D102
        rows = self._catalog.query(
            "SELECT name, folder, spec, created_at FROM feature_groups ORDER BY name"
        )
        for row in rows:
            yield self._info(self._load(row))

    def delete_group(self, name: str) -> None:  # noqa: D102
        with self._catalog.transaction() as conn:
            row = conn.execute("SELECT folder FROM feature_groups WHERE name = ?",
                               (name,)).fetchone()
            if row is None:
                raise NotFoundError(f"no feature group {name!r}", kind=KIND, name=name)
            conn.execute("DELETE FROM feature_groups WHERE name = ?", (name,))
        with self._lock:
            group = self._groups.pop(name, None)
        if group is not None:
            group.close()
        shutil.rmtree(self.root / row["folder"], ignore_errors=True)
        logger.info("deleted feature group %r", name)

    # -- writing -----------------------------------------------------------------------------
    def _sweep(self, group: _Group) -> None:
        """Remove the files of batches whose writer died before committing."""
        host = socket.gethostname()
        rows = group.db.query("SELECT batch_id, pid, host, paths FROM pending")
        for row in rows:
            if row["host"] != host or _alive(row["pid"]):
                continue
            for rel in json.loads(row["paths"]):
                path = group.folder / rel
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                for tmp in path.parent.glob(f".{path.name}.*"):
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
            with group.db.transaction() as conn:
                conn.execute("DELETE FROM pending WHERE batch_id = ?", (row["batch_id"],))
            logger.warning("removed the uncommitted files of batch %s of %r (writer %s died)",
                           row["batch_id"], group.spec.name, row["pid"])

    def _plan_files(self, group: _Group, table: pa.Table, batch_id: str
                    ) -> list[tuple[str, pa.Table, float, float]]:
        """Split the table by hour of event time: (relative path, rows, min, max event)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if table.num_rows == 0:
            return []
        epoch = table.column(EVENT_EPOCH)
        hour = pc.floor(pc.divide(epoch, 3600.0)).cast(pa.int64())
        if not _sorted(hour):
            order = pc.sort_indices(hour)
            table = table.take(order)
            hour = hour.take(order)
            epoch = table.column(EVENT_EPOCH)
        hours = hour.to_numpy()
        cuts = np.flatnonzero(np.diff(hours)) + 1
        starts = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [len(hours)]])
        plan = []
        events = epoch.to_numpy()
        for n, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            moment = dt.datetime.fromtimestamp(int(hours[s]) * 3600, dt.UTC)
            rel = (f"data/year={moment:%Y}/month={moment:%m}/day={moment:%d}/"
                   f"hour={moment:%H}/{batch_id}_{n}.parquet")
            chunk = table.slice(s, e - s)
            plan.append((rel, chunk, float(events[s:e].min()), float(events[s:e].max())))
        return plan

    def _offline_table(self, spec: FeatureGroupSpec, table: pa.Table, *,
                       write_time: dt.datetime, deleted: bool) -> pa.Table:
        import pyarrow as pa

        n = table.num_rows
        stamp = pa.scalar(write_time, type=pa.timestamp("us", tz="UTC"))
        columns = [table.column(name) for name in spec.feature_names]
        times = pa.repeat(stamp, n)
        columns += [times, times, pa.repeat(pa.scalar(deleted), n)]
        names = [*spec.feature_names, *OFFLINE_COLUMNS]
        out = pa.Table.from_arrays(columns, names=names)
        return out.append_column(EVENT_EPOCH, table.column(EVENT_EPOCH))

    def _write_files(self, group: _Group, plan: list[tuple[str, pa.Table, float, float]]
                     ) -> None:
        import pyarrow.parquet as pq

        def write(item: tuple[str, pa.Table, float, float]) -> None:
            rel, chunk, _, _ = item
            target = group.folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
            try:
                pq.write_table(chunk.drop_columns([EVENT_EPOCH]), tmp, compression="snappy")
                os.replace(tmp, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()

        workers = min(4, max(1, len(plan)))  # more threads only contend (measured)
        with translated(kind=KIND, name=group.spec.name):
            if workers == 1:
                for item in plan:
                    write(item)
            else:
                with ThreadPoolExecutor(workers) as pool:
                    list(pool.map(write, plan))

    def _remove_files(self, group: _Group, plan: list[tuple[str, Any, float, float]]) -> None:
        for rel, *_ in plan:
            with contextlib.suppress(OSError):
                (group.folder / rel).unlink()

    def _register(self, group: _Group, batch_id: str, paths: list[str]) -> None:
        with group.db.transaction() as conn:
            conn.execute(
                "INSERT INTO pending (batch_id, pid, host, started_at, paths) "
                "VALUES (?, ?, ?, ?, ?)",
                (batch_id, os.getpid(), socket.gethostname(), time.time(), json.dumps(paths)),
            )

    def _unregister(self, group: _Group, batch_id: str) -> None:
        with contextlib.suppress(Exception), group.db.transaction() as conn:
            conn.execute("DELETE FROM pending WHERE batch_id = ?", (batch_id,))

    def _commit(
        self,
        group: _Group,
        *,
        batch_id: str,
        kind: str,
        write_time: dt.datetime,
        rows: int,
        plan: list[tuple[str, Any, float, float]],
        online: Any,
    ) -> int:
        """Commit a batch: manifest rows and online changes in ONE transaction.

        ``online`` is a callable ``(connection) -> changed rows`` run inside the transaction.
        """
        with group.db.transaction() as conn:
            if plan:
                conn.execute(
                    "INSERT INTO batches (batch_id, kind, write_time, rows, committed_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (batch_id, kind, write_time.timestamp(), rows, time.time()),
                )
                conn.executemany(
                    "INSERT INTO files (path, batch_id, rows, min_event, max_event) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(rel, batch_id, chunk.num_rows, lo, hi) for rel, chunk, lo, hi in plan],
                )
            changed = online(conn) if online is not None else 0
            conn.execute("DELETE FROM pending WHERE batch_id = ?", (batch_id,))
        return changed

    def write_batch(  # noqa: D102
        self, spec: FeatureGroupSpec, batch: IngestBatch, *, progress: ProgressCallback | None
    ) -> IngestResult:
        group = self._group(spec.name, fresh=True)
        spec = group.spec
        table = batch.table
        n = table.num_rows
        stage = f"ingest {spec.name}"
        total = n * (int(spec.offline) + int(spec.online))
        self._sweep(group)
        plan: list[tuple[str, Any, float, float]] = []
        done = 0
        try:
            if spec.offline and n:
                offline = self._offline_table(spec, table, write_time=batch.write_time,
                                              deleted=False)
                plan = self._plan_files(group, offline, batch.batch_id)
                self._register(group, batch.batch_id, [p[0] for p in plan])
                self._write_files(group, plan)
                done = n
                report(progress, stage, done, total)

            def upsert(conn: Any) -> int:
                if not spec.online or not n:
                    return 0
                return self._upsert(group, conn, table, batch.write_time.timestamp(),
                                    progress=progress, stage=stage, done=done, total=total)

            changed = self._commit(group, batch_id=batch.batch_id, kind="ingest",
                                   write_time=batch.write_time, rows=n, plan=plan,
                                   online=upsert)
        except BaseException:
            if plan:
                self._remove_files(group, plan)
                self._unregister(group, batch.batch_id)
            raise
        if total == 0:
            report(progress, stage, 0, 0)
        return IngestResult(group=spec.name, rows=n, online_updated=changed,
                            write_time=batch.write_time, batch_id=batch.batch_id)

    def _upsert(self, group: _Group, conn: Any, table: pa.Table, write_epoch: float, *,
                progress: ProgressCallback | None, stage: str, done: int, total: int) -> int:
        import pyarrow as pa
        import pyarrow.compute as pc

        spec = group.spec
        rid = table.column(spec.record_identifier)
        if pc.count_distinct(rid).as_py() != table.num_rows:
            # several rows for one id: keep the latest event, the last one among ties
            index = pa.array(range(table.num_rows), type=pa.int64())
            keyed = table.append_column("__i", index)
            order = pc.sort_indices(keyed, sort_keys=[(spec.record_identifier, "ascending"),
                                                      (EVENT_EPOCH, "descending"),
                                                      ("__i", "descending")])
            keyed = keyed.take(order)
            ids = keyed.column(spec.record_identifier)
            first = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
            mask = pa.concat_arrays([pa.array([True]), first.combine_chunks()])
            table = keyed.filter(mask).drop_columns(["__i"])
        elif not _sorted(rid):
            # inserting in key order keeps the B-tree writes local (4x faster at 1M rows)
            table = table.take(pc.sort_indices(rid))
        before = conn.total_changes
        n = table.num_rows
        rows = total - done  # the input's rows, duplicates included
        for start in range(0, n, _UPSERT_CHUNK):
            chunk = table.slice(start, _UPSERT_CHUNK)
            cols = [chunk.column(name).to_pylist() for name in spec.feature_names]
            cols.append(chunk.column(EVENT_EPOCH).to_pylist())
            cols.append([write_epoch] * chunk.num_rows)
            conn.executemany(group.upsert, zip(*cols, strict=True))
            report(progress, stage, done + (start + chunk.num_rows) * rows // n, total)
        return conn.total_changes - before

    # -- reading online ----------------------------------------------------------------------
    def read_online(  # noqa: D102
        self, spec: FeatureGroupSpec, record_ids: Sequence[Any]
    ) -> list[dict[str, Any] | None]:
        group = self._groups.get(spec.name) or self._group(spec.name)
        names = group.spec.feature_names
        with translated(kind=KIND, name=spec.name):
            cur = group.cursor()
            if len(record_ids) == 1:
                row = cur.execute(group.select_one, (record_ids[0],)).fetchone()
                return [None if row is None else dict(zip(names, row, strict=True))]
            found: dict[Any, dict[str, Any]] = {}
            unique = list(dict.fromkeys(record_ids))
            rid = names.index(group.spec.record_identifier)
            for start in range(0, len(unique), _LOOKUP_CHUNK):
                part = unique[start:start + _LOOKUP_CHUNK]
                sql = group.select_many + "(" + ", ".join("?" * len(part)) + ")"
                for row in cur.execute(sql, part):
                    found[row[rid]] = dict(zip(names, row, strict=True))
        return [found.get(r) for r in record_ids]

    # -- deleting records --------------------------------------------------------------------
    def delete_record(  # noqa: D102
        self,
        spec: FeatureGroupSpec,
        record_id: Any,
        *,
        event_time: float,
        hard: bool,
        write_time: dt.datetime,
    ) -> None:
        import pyarrow as pa

        from mlcycle.featurestore.ingest import format_iso

        group = self._group(spec.name, fresh=True)
        spec = group.spec
        rid = quote_ident(spec.record_identifier)
        if spec.online:
            row = group.db.query(f"SELECT _event_epoch FROM online WHERE {rid} = ?",
                                 (record_id,))
            if hard and row and row[0]["_event_epoch"] > event_time:
                logger.info("hard delete of %r in %r is older than the stored record: kept",
                            record_id, spec.name)
                return
        event_kind = spec.feature(spec.event_time).type
        event_value: Any = event_time if event_kind == FeatureType.FRACTIONAL else \
            format_iso(event_time)
        columns = {}
        for f in spec.features:
            if f.name == spec.record_identifier:
                value: Any = record_id
            elif f.name == spec.event_time:
                value = event_value
            else:
                value = None
            columns[f.name] = pa.array([value], type=_arrow_type(f.type))
        columns[EVENT_EPOCH] = pa.array([event_time], type=pa.float64())
        marker = pa.table(columns)
        batch_id = uuid.uuid4().hex
        plan: list[tuple[str, Any, float, float]] = []
        self._sweep(group)
        try:
            if spec.offline:
                offline = self._offline_table(spec, marker, write_time=write_time, deleted=True)
                plan = self._plan_files(group, offline, batch_id)
                self._register(group, batch_id, [p[0] for p in plan])
                self._write_files(group, plan)

            def online(conn: Any) -> int:
                if not spec.online:
                    return 0
                if hard:
                    cur = conn.execute(f"DELETE FROM online WHERE {rid} = ? AND "
                                       "_event_epoch <= ?", (record_id, event_time))
                    return cur.rowcount
                values = [record_id if f.name == spec.record_identifier else
                          event_value if f.name == spec.event_time else None
                          for f in spec.features]
                names = ", ".join(quote_ident(n) for n in spec.feature_names)
                sets = ", ".join(f"{quote_ident(n)} = excluded.{quote_ident(n)}"
                                 for n in spec.feature_names)
                marks = ", ".join("?" for _ in values)
                cur = conn.execute(
                    f"INSERT INTO online ({names}, _event_epoch, _write_time, _deleted) "
                    f"VALUES ({marks}, ?, ?, 1) ON CONFLICT ({rid}) DO UPDATE SET {sets}, "
                    "_event_epoch = excluded._event_epoch, _write_time = excluded._write_time, "
                    "_deleted = 1 WHERE excluded._event_epoch >= online._event_epoch",
                    (*values, event_time, write_time.timestamp()),
                )
                return cur.rowcount

            self._commit(group, batch_id=batch_id, kind="delete", write_time=write_time,
                         rows=1, plan=plan, online=online)
        except BaseException:
            if plan:
                self._remove_files(group, plan)
                self._unregister(group, batch_id)
            raise

    # -- offline SQL -------------------------------------------------------------------------
    def committed_files(self, name: str) -> list[Path]:
        """The committed offline files of group ``name``, in path order.

        Raises
        ------
        NotFoundError
            If there is no such group.
        """
        group = self._group(name, fresh=True)
        rows = group.db.query("SELECT path FROM files ORDER BY path")
        return [group.folder / row["path"] for row in rows]

    def _connection(self) -> duckdb.DuckDBPyConnection:
        import duckdb

        with self._lock:
            if self._duck is None:
                con = duckdb.connect()
                con.execute("SET TimeZone = 'UTC'")
                con.execute("SET enable_progress_bar = false")
                self._duck = con
            return self._duck.cursor()

    def _view(self, con: duckdb.DuckDBPyConnection, name: str, spec: FeatureGroupSpec) -> None:
        files = self.committed_files(spec.name)
        q = quote_ident
        columns = [(f.name, _DUCK_TYPES[f.type]) for f in spec.features]
        columns += [("write_time", "TIMESTAMPTZ"), ("api_invocation_time", "TIMESTAMPTZ"),
                    ("is_deleted", "BOOLEAN")]
        if files:
            listing = "[" + ", ".join(sql_literal(str(f)) for f in files) + "]"
            select = ", ".join(q(c) for c, _ in columns)
            body = (f"SELECT {select} FROM read_parquet({listing}, hive_partitioning = false, "
                    "union_by_name = false)")
        else:
            select = ", ".join(f"CAST(NULL AS {t}) AS {q(c)}" for c, t in columns)
            body = f"SELECT {select} WHERE false"
        con.execute(f"CREATE OR REPLACE TEMP VIEW {q(name)} AS {body}")

    def sql(
        self,
        query: str,
        *,
        tables: Sequence[FeatureGroupSpec] = (),
        inputs: Mapping[str, pa.Table] | None = None,
    ) -> pa.Table:
        """Run ``query`` on DuckDB over the committed files of ``tables``.

        Each group is a view over ``read_parquet([its committed files])``; each input table is
        registered under its name. A result ending in ``__sort_<i>`` columns (what the DuckDB
        dialect emits instead of ``ORDER BY``) is sorted by them here, and they are dropped:
        sorting wide rows in Arrow is several times cheaper than in DuckDB.
        """
        con = self._connection()
        try:
            with translated_sql(query):
                for spec in tables:
                    self._view(con, spec.name, spec)
                for name, table in (inputs or {}).items():
                    con.register(name, table)
                relation = con.sql(query)
                if relation is None:
                    import pyarrow as pa

                    return pa.table({})
                method = getattr(relation, "to_arrow_table", None) or relation.arrow
                # the DuckDB dialect leaves the final sort to us (see DuckDBDialect)
                return sort_result(method())
        finally:
            con.close()

    def close(self) -> None:  # noqa: D102
        with self._lock:
            groups = list(self._groups.values())
            duck, self._duck = self._duck, None
        for group in groups:
            group.close()
        self._catalog.close()
        if duck is not None:
            duck.close()


def _sorted(values: pa.ChunkedArray) -> bool:
    import pyarrow.compute as pc

    if len(values) < 2:
        return True
    head = values.slice(0, len(values) - 1)
    tail = values.slice(1)
    return bool(pc.all(pc.less_equal(head, tail)).as_py())
