"""The model registry on the local backend: ``<workspace>/registry.sqlite``.

Four tables: groups, versions (unique by group and number, and by group and client token),
aliases and the audit log. Model files stay in the workspace's artifact store; a version
records their key, URI and digest.

Every write is one ``BEGIN IMMEDIATE`` transaction, so the next version number
(``max + 1``) is taken under the database's write lock: two processes registering at once get
consecutive numbers, none skipped or doubled. A status or alias change and its audit event are
written in the same transaction. The audit table is append-only in SQLite itself: triggers
abort any ``UPDATE`` or ``DELETE`` of it.

Times are stored as integer microseconds since the epoch (UTC), so they compare exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from mlcycle.backends.local._errors import translated
from mlcycle.backends.local.sqlite import from_micros, now_micros
from mlcycle.errors import AlreadyExistsError, NotFoundError
from mlcycle.registry.backend import RegistryBackend
from mlcycle.registry.entities import (
    ApprovalStatus,
    AuditEvent,
    InferenceSpec,
    ModelPackageGroupInfo,
    ModelVersion,
    NewModelVersion,
)

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from mlcycle.backends.local.sqlite import SQLiteDatabase

__all__ = ["MIGRATIONS", "PAGE", "LocalRegistryBackend", "group_arn", "version_arn"]

#: Schema migrations of ``registry.sqlite``.
MIGRATIONS = (
    """
    CREATE TABLE registry_groups (
        name TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL
    );
    CREATE INDEX registry_groups_by_time ON registry_groups (created_at);
    CREATE TABLE registry_versions (
        group_name TEXT NOT NULL REFERENCES registry_groups (name),
        version INTEGER NOT NULL CHECK (version >= 1),
        client_token TEXT NOT NULL,
        model_uri TEXT NOT NULL,
        model_key TEXT,
        model_digest TEXT NOT NULL,
        inference TEXT NOT NULL,
        metrics TEXT NOT NULL DEFAULT '{}',
        tags TEXT NOT NULL DEFAULT '{}',
        description TEXT NOT NULL DEFAULT '',
        source TEXT,
        approval_status TEXT NOT NULL
            CHECK (approval_status IN ('PendingManualApproval', 'Approved', 'Rejected')),
        status_changed_at INTEGER NOT NULL,
        status_changed_by TEXT NOT NULL,
        status_reason TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        lineage_arn TEXT,
        PRIMARY KEY (group_name, version),
        UNIQUE (group_name, client_token)
    );
    CREATE INDEX registry_versions_by_status
        ON registry_versions (group_name, approval_status, version);
    CREATE TABLE registry_aliases (
        group_name TEXT NOT NULL,
        alias TEXT NOT NULL,
        version INTEGER NOT NULL,
        changed_at INTEGER NOT NULL,
        PRIMARY KEY (group_name, alias),
        FOREIGN KEY (group_name, version) REFERENCES registry_versions (group_name, version)
    );
    CREATE INDEX registry_aliases_by_version ON registry_aliases (group_name, version, alias);
    CREATE TABLE registry_audit (
        group_name TEXT NOT NULL REFERENCES registry_groups (name),
        sequence INTEGER NOT NULL,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        event TEXT NOT NULL,
        version INTEGER,
        old TEXT,
        new TEXT,
        alias TEXT,
        reason TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (group_name, sequence)
    );
    CREATE TRIGGER registry_audit_no_update BEFORE UPDATE ON registry_audit
    BEGIN
        SELECT RAISE(ABORT, 'the registry audit log is append-only');
    END;
    CREATE TRIGGER registry_audit_no_delete BEFORE DELETE ON registry_audit
    BEGIN
        SELECT RAISE(ABORT, 'the registry audit log is append-only');
    END
    """,
)

_GROUP = "model-package-group"
_VERSION = "model-version"
_ALIAS = "model-alias"
#: Versions read per query while listing.
PAGE = 500
#: Separates alias names in one column (alias names never hold it).
_SEP = ","

_VERSION_COLUMNS = """
    v.group_name, v.version, v.model_uri, v.model_key, v.model_digest, v.inference, v.metrics,
    v.tags, v.description, v.source, v.approval_status, v.status_changed_at,
    v.status_changed_by, v.status_reason, v.created_at, v.created_by, v.lineage_arn,
    (SELECT group_concat(a.alias, ',') FROM registry_aliases a
      WHERE a.group_name = v.group_name AND a.version = v.version) AS aliases
"""


def group_arn(name: str) -> str:
    """The local ARN of a model package group: ``local:model-package-group/<name>``."""
    return f"local:model-package-group/{name}"


def version_arn(group: str, version: int) -> str:
    """The local ARN of a version: ``local:model-package/<group>/<version>``."""
    return f"local:model-package/{group}/{version}"


def _group(row: sqlite3.Row) -> ModelPackageGroupInfo:
    return ModelPackageGroupInfo(name=row["name"], arn=group_arn(row["name"]),
                                 description=row["description"], tags=json.loads(row["tags"]),
                                 created_at=from_micros(row["created_at"]))


def _version(row: sqlite3.Row) -> ModelVersion:
    return ModelVersion(
        group=row["group_name"],
        version=row["version"],
        arn=version_arn(row["group_name"], row["version"]),
        model_uri=row["model_uri"],
        model_key=row["model_key"],
        model_digest=row["model_digest"],
        inference=InferenceSpec.from_dict(json.loads(row["inference"])),
        metrics=json.loads(row["metrics"]),
        tags=json.loads(row["tags"]),
        description=row["description"],
        source=row["source"],
        approval_status=row["approval_status"],
        status_changed_at=from_micros(row["status_changed_at"]),
        status_changed_by=row["status_changed_by"],
        status_reason=row["status_reason"],
        created_at=from_micros(row["created_at"]),
        created_by=row["created_by"],
        aliases=row["aliases"].split(_SEP) if row["aliases"] else (),
        lineage_arn=row["lineage_arn"],
    )


def _event(row: sqlite3.Row) -> AuditEvent:
    return AuditEvent(group=row["group_name"], sequence=row["sequence"], at=from_micros(row["at"]),
                      actor=row["actor"], event=row["event"], version=row["version"],
                      old=row["old"], new=row["new"], alias=row["alias"], reason=row["reason"])


def _missing_group(name: str) -> NotFoundError:
    return NotFoundError(f"no model package group {name!r}", kind=_GROUP, name=name)


def _missing_version(group: str, version: int) -> NotFoundError:
    return NotFoundError(f"model package group {group!r} has no version {version}",
                         kind=_VERSION, name=f"{group}/{version}")


def _json(value: Mapping[str, object]) -> str:
    return json.dumps(dict(value), sort_keys=True, allow_nan=False)


class LocalRegistryBackend(RegistryBackend):
    """Model package groups, versions, aliases and the audit log in one SQLite database.

    Parameters
    ----------
    database : mlcycle.backends.local.SQLiteDatabase
        ``registry.sqlite`` with :data:`MIGRATIONS`.
    """

    def __init__(self, database: SQLiteDatabase) -> None:
        self._db = database

    def close(self) -> None:
        """Close this thread's connection (it reopens on next use)."""
        self._db.close()

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _require_group(conn: sqlite3.Connection, name: str) -> None:
        if conn.execute("SELECT 1 FROM registry_groups WHERE name = ?", (name,)).fetchone() \
                is None:
            raise _missing_group(name)

    @staticmethod
    def _select_version(conn: sqlite3.Connection, group: str, version: int) -> sqlite3.Row:
        row = conn.execute(f"SELECT {_VERSION_COLUMNS} FROM registry_versions v "
                           "WHERE v.group_name = ? AND v.version = ?",
                           (group, version)).fetchone()
        if row is None:
            LocalRegistryBackend._require_group(conn, group)
            raise _missing_version(group, version)
        return row

    @staticmethod
    def _append(conn: sqlite3.Connection, group: str, *, at: int, actor: str, event: str,
                version: int | None, old: str | None, new: str | None, alias: str | None,
                reason: str) -> None:
        conn.execute(
            "INSERT INTO registry_audit (group_name, sequence, at, actor, event, version, old, "
            "new, alias, reason) SELECT ?, coalesce(max(sequence), 0) + 1, ?, ?, ?, ?, ?, ?, ?, "
            "? FROM registry_audit WHERE group_name = ?",
            (group, at, actor, event, version, old, new, alias, reason, group))

    # -- groups ------------------------------------------------------------------------------
    def create_group(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> ModelPackageGroupInfo:
        """Create a group."""
        try:
            with self._db.transaction() as conn:
                conn.execute("INSERT INTO registry_groups (name, description, tags, created_at) "
                             "VALUES (?, ?, ?, ?)",
                             (name, description, _json(tags or {}), now_micros()))
        except AlreadyExistsError:
            raise AlreadyExistsError(f"a model package group {name!r} exists already",
                                     kind=_GROUP, name=name) from None
        return self.describe_group(name)

    def describe_group(self, name: str) -> ModelPackageGroupInfo:
        """Return a group."""
        rows = self._db.query("SELECT * FROM registry_groups WHERE name = ?", (name,))
        if not rows:
            raise _missing_group(name)
        return _group(rows[0])

    def list_groups(self, *, name_contains: str | None = None) -> Iterator[ModelPackageGroupInfo]:
        """Iterate over the groups, newest first."""
        if name_contains:
            pattern = "%" + name_contains.replace("\\", "\\\\").replace("%", "\\%") \
                .replace("_", "\\_") + "%"
            rows = self._db.query("SELECT * FROM registry_groups WHERE name LIKE ? ESCAPE '\\' "
                                  "ORDER BY created_at DESC, rowid DESC", (pattern,))
        else:
            rows = self._db.query("SELECT * FROM registry_groups "
                                  "ORDER BY created_at DESC, rowid DESC")
        for row in rows:
            if name_contains and name_contains not in row["name"]:  # LIKE ignores ASCII case
                continue
            yield _group(row)

    # -- versions ----------------------------------------------------------------------------
    def create_version(self, group: str, new: NewModelVersion) -> tuple[ModelVersion, bool]:
        """Register the next version of ``group`` in one write transaction."""
        with self._db.transaction() as conn:
            self._require_group(conn, group)
            found = conn.execute("SELECT version FROM registry_versions "
                                 "WHERE group_name = ? AND client_token = ?",
                                 (group, new.client_token)).fetchone()
            if found is not None:
                return _version(self._select_version(conn, group, found[0])), False
            number = conn.execute("SELECT coalesce(max(version), 0) + 1 FROM registry_versions "
                                  "WHERE group_name = ?", (group,)).fetchone()[0]
            now = now_micros()
            conn.execute(
                "INSERT INTO registry_versions (group_name, version, client_token, model_uri, "
                "model_key, model_digest, inference, metrics, tags, description, source, "
                "approval_status, status_changed_at, status_changed_by, status_reason, "
                "created_at, created_by, lineage_arn) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?)",
                (group, number, new.client_token, new.model_uri, new.model_key,
                 new.model_digest, json.dumps(new.inference.to_dict(), sort_keys=True),
                 _json(new.metrics), _json(new.tags), new.description, new.source,
                 new.approval_status.value, now, new.created_by, now, new.created_by,
                 new.lineage_arn))
            self._append(conn, group, at=now, actor=new.created_by, event="registered",
                         version=number, old=None, new=new.approval_status.value, alias=None,
                         reason="")
            return _version(self._select_version(conn, group, number)), True

    def describe_version(self, group: str, version: int) -> ModelVersion:
        """Return one version."""
        with translated(kind="database", name=str(self._db.path)):
            return _version(self._select_version(self._db.connection, group, version))

    def list_versions(
        self,
        group: str,
        *,
        status: ApprovalStatus | None = None,
        ascending: bool = False,
    ) -> Iterator[ModelVersion]:
        """Iterate over a group's versions, one query per :data:`PAGE` versions.

        The group is checked when the iteration starts.
        """
        if not self._db.query("SELECT 1 FROM registry_groups WHERE name = ?", (group,)):
            raise _missing_group(group)
        return self._pages(group, status=status, ascending=ascending)

    def _pages(self, group: str, *, status: ApprovalStatus | None,
               ascending: bool) -> Iterator[ModelVersion]:
        compare, order = (">", "ASC") if ascending else ("<", "DESC")
        where = "v.group_name = ?" + (" AND v.approval_status = ?" if status is not None else "")
        sql = (f"SELECT {_VERSION_COLUMNS} FROM registry_versions v WHERE {where} "
               f"AND v.version {compare} ? ORDER BY v.version {order} LIMIT {PAGE}")
        after = 0 if ascending else 1 << 62
        while True:
            params: list[object] = [group]
            if status is not None:
                params.append(ApprovalStatus(status).value)
            rows = self._db.query(sql, [*params, after])
            for row in rows:
                yield _version(row)
            if len(rows) < PAGE:
                return
            after = rows[-1]["version"]

    def update_status(
        self, group: str, version: int, status: ApprovalStatus, *, actor: str, reason: str
    ) -> ModelVersion:
        """Set a version's status and append the audit event, in one transaction."""
        status = ApprovalStatus(status)
        with self._db.transaction() as conn:
            row = self._select_version(conn, group, version)
            if row["approval_status"] == status.value:
                return _version(row)
            now = now_micros()
            conn.execute("UPDATE registry_versions SET approval_status = ?, "
                         "status_changed_at = ?, status_changed_by = ?, status_reason = ? "
                         "WHERE group_name = ? AND version = ?",
                         (status.value, now, actor, reason, group, version))
            self._append(conn, group, at=now, actor=actor, event="status", version=version,
                         old=row["approval_status"], new=status.value, alias=None,
                         reason=reason)
            return _version(self._select_version(conn, group, version))

    # -- aliases -----------------------------------------------------------------------------
    def set_alias(
        self, group: str, alias: str, version: int | None, *, actor: str, reason: str
    ) -> None:
        """Point ``alias`` at ``version`` (None removes it) and append the audit event.

        Pointing an alias where it points already changes nothing and appends nothing.
        """
        with self._db.transaction() as conn:
            self._require_group(conn, group)
            row = conn.execute("SELECT version FROM registry_aliases "
                               "WHERE group_name = ? AND alias = ?", (group, alias)).fetchone()
            old = None if row is None else row[0]
            now = now_micros()
            if version is None:
                if old is None:
                    raise NotFoundError(f"model package group {group!r} has no alias {alias!r}",
                                        kind=_ALIAS, name=f"{group}/{alias}")
                conn.execute("DELETE FROM registry_aliases WHERE group_name = ? AND alias = ?",
                             (group, alias))
                self._append(conn, group, at=now, actor=actor, event="alias-removed",
                             version=None, old=str(old), new=None, alias=alias, reason=reason)
                return
            self._select_version(conn, group, version)
            if old == version:
                return
            conn.execute("INSERT INTO registry_aliases (group_name, alias, version, changed_at) "
                         "VALUES (?, ?, ?, ?) ON CONFLICT (group_name, alias) DO UPDATE SET "
                         "version = excluded.version, changed_at = excluded.changed_at",
                         (group, alias, version, now))
            self._append(conn, group, at=now, actor=actor, event="alias-set", version=version,
                         old=None if old is None else str(old), new=str(version), alias=alias,
                         reason=reason)

    def aliases(self, group: str) -> dict[str, int]:
        """Return the group's aliases and their versions, by alias name."""
        with translated(kind="database", name=str(self._db.path)):
            conn = self._db.connection
            self._require_group(conn, group)
            rows = conn.execute("SELECT alias, version FROM registry_aliases "
                                "WHERE group_name = ? ORDER BY alias", (group,)).fetchall()
        return {row["alias"]: row["version"] for row in rows}

    # -- audit -------------------------------------------------------------------------------
    def audit_log(self, group: str) -> Iterator[AuditEvent]:
        """Iterate over the group's audit events, oldest first."""
        with translated(kind="database", name=str(self._db.path)):
            conn = self._db.connection
            self._require_group(conn, group)
            rows = conn.execute("SELECT * FROM registry_audit WHERE group_name = ? "
                                "ORDER BY sequence", (group,)).fetchall()
        return iter([_event(row) for row in rows])
