"""Lineage on the local backend: entities and associations in ``<workspace>/lineage.sqlite``.

Artifacts are unique by (source URI, digest) and actions and contexts by name, enforced by
unique indexes, so two processes recording the same thing at once end with one entity. A query
walks the graph one level per SQL statement (the frontier passed as a JSON array), so a walk
of depth 10 is at most 10 (20 for ``Both``) index lookups however wide the graph.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from mlcycle.backends.local._errors import translated
from mlcycle.backends.local.sqlite import from_micros, now_micros, to_micros
from mlcycle.errors import AlreadyExistsError, NotFoundError
from mlcycle.lineage.backend import LineageBackend, QueryFilter, assemble_graph, breadth_first
from mlcycle.lineage.entities import (
    Association,
    AssociationType,
    Direction,
    EntityKind,
    LineageEntity,
    LineageGraph,
)

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from mlcycle.backends.local.sqlite import SQLiteDatabase

__all__ = ["MIGRATIONS", "LocalLineageBackend"]

#: Schema migrations of ``lineage.sqlite``.
MIGRATIONS = (
    """
    CREATE TABLE lineage_entities (
        arn TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        source_uri TEXT,
        digest TEXT NOT NULL DEFAULT '',
        status TEXT,
        properties TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        modified_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX lineage_named ON lineage_entities (kind, name) WHERE kind <> 'Artifact';
    CREATE UNIQUE INDEX lineage_artifact_source ON lineage_entities (source_uri, digest)
        WHERE kind = 'Artifact';
    CREATE INDEX lineage_by_time ON lineage_entities (created_at);
    CREATE INDEX lineage_by_type ON lineage_entities (type, created_at);
    CREATE TABLE lineage_associations (
        source_arn TEXT NOT NULL REFERENCES lineage_entities (arn),
        destination_arn TEXT NOT NULL REFERENCES lineage_entities (arn),
        type TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (source_arn, destination_arn)
    ) WITHOUT ROWID;
    CREATE INDEX lineage_associations_by_destination
        ON lineage_associations (destination_arn, source_arn);
    """,
)

_COLUMNS = "arn, kind, name, type, source_uri, digest, status, properties, created_at"


def _entity(row: sqlite3.Row) -> LineageEntity:
    return LineageEntity(
        arn=row["arn"], kind=row["kind"], name=row["name"], type=row["type"],
        source_uri=row["source_uri"], digest=row["digest"] or None, status=row["status"],
        properties=json.loads(row["properties"]), created_at=from_micros(row["created_at"]))


def _association(row: sqlite3.Row) -> Association:
    return Association(source_arn=row["source_arn"], destination_arn=row["destination_arn"],
                       type=row["type"], created_at=from_micros(row["created_at"]))


class LocalLineageBackend(LineageBackend):
    """Lineage in one SQLite database.

    Parameters
    ----------
    database : mlcycle.backends.local.SQLiteDatabase
        The database (``lineage.sqlite``), with :data:`MIGRATIONS`.
    """

    def __init__(self, database: SQLiteDatabase) -> None:
        self._db = database

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()

    def create_entity(
        self,
        kind: EntityKind,
        *,
        name: str,
        type: str,
        source_uri: str | None = None,
        digest: str | None = None,
        status: str | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> LineageEntity:
        """Insert the entity; a unique index refuses a duplicate."""
        kind = EntityKind(kind)
        arn = f"local:{kind.value.lower()}/{uuid.uuid4().hex}"
        now = now_micros()
        label = (source_uri or name) if kind is EntityKind.ARTIFACT else name
        try:
            with self._db.transaction() as conn:
                conn.execute(
                    f"INSERT INTO lineage_entities ({_COLUMNS}, modified_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (arn, kind.value, name, type, source_uri, digest or "", status,
                     json.dumps(dict(properties or {}), sort_keys=True), now, now))
        except AlreadyExistsError:
            raise AlreadyExistsError(f"lineage {kind.value.lower()} {label!r} exists already",
                                     kind=kind.value, name=label) from None
        return self.describe_entity(arn)

    def describe_entity(self, arn: str) -> LineageEntity:
        """Return the entity with this ARN."""
        rows = self._db.query(f"SELECT {_COLUMNS} FROM lineage_entities WHERE arn = ?", (arn,))
        if not rows:
            raise NotFoundError(f"no lineage entity {arn!r}", kind="lineage-entity", name=arn)
        return _entity(rows[0])

    def find_entity(
        self,
        kind: EntityKind,
        *,
        name: str | None = None,
        source_uri: str | None = None,
        digest: str | None = None,
    ) -> LineageEntity | None:
        """Look the entity up by kind and name, or by source URI and digest."""
        kind = EntityKind(kind)
        if kind is EntityKind.ARTIFACT:
            rows = self._db.query(
                f"SELECT {_COLUMNS} FROM lineage_entities "
                "WHERE kind = 'Artifact' AND source_uri = ? AND digest = ?",
                (source_uri, digest or ""))
        else:
            rows = self._db.query(
                f"SELECT {_COLUMNS} FROM lineage_entities "
                "WHERE kind <> 'Artifact' AND kind = ? AND name = ?", (kind.value, name))
        return _entity(rows[0]) if rows else None

    def update_entity(
        self,
        arn: str,
        *,
        status: str | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> LineageEntity:
        """Set the status and merge the properties, in one transaction."""
        with self._db.transaction() as conn:
            row = conn.execute("SELECT properties FROM lineage_entities WHERE arn = ?",
                               (arn,)).fetchone()
            if row is None:
                raise NotFoundError(f"no lineage entity {arn!r}", kind="lineage-entity",
                                    name=arn)
            merged = {**json.loads(row["properties"]), **dict(properties or {})}
            conn.execute(
                "UPDATE lineage_entities SET status = COALESCE(?, status), properties = ?, "
                "modified_at = ? WHERE arn = ?",
                (status, json.dumps(merged, sort_keys=True), now_micros(), arn))
        return self.describe_entity(arn)

    def list_entities(
        self,
        kind: EntityKind | None = None,
        *,
        type: str | None = None,
        source_uri: str | None = None,
        created_after: dt.datetime | None = None,
        created_before: dt.datetime | None = None,
    ) -> Iterator[LineageEntity]:
        """Return the matching entities, newest first."""
        where, params = ["1 = 1"], []
        for clause, value in (("kind = ?", EntityKind(kind).value if kind else None),
                              ("type = ?", type), ("source_uri = ?", source_uri),
                              ("created_at >= ?", created_after and to_micros(created_after)),
                              ("created_at <= ?", created_before and to_micros(created_before))):
            if value is not None:
                where.append(clause)
                params.append(value)
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM lineage_entities WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, arn DESC", params)
        return (_entity(row) for row in rows)

    def add_association(
        self, source_arn: str, destination_arn: str, type: AssociationType
    ) -> Association:
        """Insert the edge unless it exists; both ends must exist."""
        type = AssociationType(type)
        with self._db.transaction() as conn:
            found = conn.execute(
                "SELECT arn FROM lineage_entities WHERE arn IN (?, ?)",
                (source_arn, destination_arn)).fetchall()
            missing = {source_arn, destination_arn} - {r["arn"] for r in found}
            if missing:
                arn = sorted(missing)[0]
                raise NotFoundError(f"no lineage entity {arn!r}", kind="lineage-entity",
                                    name=arn)
            row = conn.execute(
                "SELECT source_arn, destination_arn, type, created_at FROM lineage_associations"
                " WHERE source_arn = ? AND destination_arn = ?",
                (source_arn, destination_arn)).fetchone()
            if row is None:
                conn.execute("INSERT INTO lineage_associations VALUES (?, ?, ?, ?)",
                             (source_arn, destination_arn, type.value, now_micros()))
                row = conn.execute(
                    "SELECT source_arn, destination_arn, type, created_at "
                    "FROM lineage_associations WHERE source_arn = ? AND destination_arn = ?",
                    (source_arn, destination_arn)).fetchone()
        assoc = _association(row)
        if assoc.type is not type:
            raise AlreadyExistsError(
                f"{source_arn} -> {destination_arn} is associated as {assoc.type.value} "
                f"already, not {type.value}", kind="lineage-association",
                name=f"{source_arn} -> {destination_arn}")
        return assoc

    def list_associations(
        self,
        *,
        source_arn: str | None = None,
        destination_arn: str | None = None,
        type: AssociationType | None = None,
    ) -> Iterator[Association]:
        """Return the matching edges, oldest first."""
        where, params = ["1 = 1"], []
        for clause, value in (("source_arn = ?", source_arn),
                              ("destination_arn = ?", destination_arn),
                              ("type = ?", AssociationType(type).value if type else None)):
            if value is not None:
                where.append(clause)
                params.append(value)
        rows = self._db.query(
            "SELECT source_arn, destination_arn, type, created_at FROM lineage_associations "
            f"WHERE {' AND '.join(where)} ORDER BY created_at, source_arn, destination_arn",
            params)
        return (_association(row) for row in rows)

    def query(
        self,
        start_arns: tuple[str, ...],
        *,
        direction: Direction,
        max_depth: int,
        where: QueryFilter,
        include_edges: bool,
    ) -> LineageGraph:
        """Walk one level per SQL statement, then fetch the reached entities at once."""
        start = tuple(dict.fromkeys(start_arns))
        with translated(kind="lineage", name="query"):
            conn = self._db.connection
            entities = self._entities(conn, start)
            for arn in start:
                if arn not in entities:
                    raise NotFoundError(f"no lineage entity {arn!r}", kind="lineage-entity",
                                        name=arn)

            def neighbours(frontier: list[str], up: bool) -> list[Association]:
                near = "destination_arn" if up else "source_arn"
                rows = conn.execute(
                    "SELECT source_arn, destination_arn, type, created_at "
                    f"FROM lineage_associations WHERE {near} IN "
                    "(SELECT value FROM json_each(?))", (json.dumps(frontier),)).fetchall()
                return [_association(row) for row in rows]

            depths, edges = breadth_first(start, direction, max_depth, neighbours)
            entities.update(self._entities(conn, [a for a in depths if a not in entities]))
        return assemble_graph(start, direction, depths, edges, entities, where, include_edges)

    @staticmethod
    def _entities(conn: sqlite3.Connection, arns: list[str] | tuple[str, ...]
                  ) -> dict[str, LineageEntity]:
        if not arns:
            return {}
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM lineage_entities WHERE arn IN "
            "(SELECT value FROM json_each(?))", (json.dumps(list(arns)),)).fetchall()
        return {row["arn"]: _entity(row) for row in rows}
