import multiprocessing
import sqlite3

import pytest

from mlcycle.backends.local import SQLiteDatabase
from mlcycle.backends.local._errors import translate, translated
from mlcycle.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    BackendError,
    ConfigurationError,
    NotFoundError,
    TransientBackendError,
)

MIGRATIONS = (
    "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)",
    "ALTER TABLE item ADD COLUMN note TEXT; CREATE INDEX item_note ON item(note)",
)


def test_migrations_run_once_and_record_the_version(tmp_path):
    db = SQLiteDatabase(tmp_path / "x.sqlite", migrations=MIGRATIONS[:1])
    with db.transaction() as conn:
        conn.execute("INSERT INTO item (name) VALUES ('a')")
    db.close()
    upgraded = SQLiteDatabase(tmp_path / "x.sqlite", migrations=MIGRATIONS)
    assert upgraded.query("PRAGMA user_version")[0][0] == 2
    with upgraded.transaction() as conn:
        conn.execute("UPDATE item SET note = 'kept' WHERE name = 'a'")
    assert [tuple(r) for r in upgraded.query("SELECT name, note FROM item")] == [("a", "kept")]
    assert upgraded.query("PRAGMA journal_mode")[0][0] == "wal"


def test_a_newer_schema_is_refused(tmp_path):
    SQLiteDatabase(tmp_path / "x.sqlite", migrations=MIGRATIONS).query("SELECT 1")
    with pytest.raises(ConfigurationError):
        SQLiteDatabase(tmp_path / "x.sqlite", migrations=MIGRATIONS[:1]).query("SELECT 1")


def test_failed_transaction_rolls_back(tmp_path):
    db = SQLiteDatabase(tmp_path / "x.sqlite", migrations=MIGRATIONS)
    with pytest.raises(AlreadyExistsError), db.transaction() as conn:
        conn.execute("INSERT INTO item (name) VALUES ('a')")
        conn.execute("INSERT INTO item (name) VALUES ('a')")
    assert db.query("SELECT count(*) FROM item")[0][0] == 0


def _writer(path, start):
    db = SQLiteDatabase(path, migrations=MIGRATIONS)
    for i in range(start, start + 200):
        with db.transaction() as conn:
            conn.execute("INSERT INTO item (name) VALUES (?)", (f"n{i}",))


def test_concurrent_processes_lose_nothing_and_never_see_locked(tmp_path):
    path = tmp_path / "x.sqlite"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, k * 1000)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    db = SQLiteDatabase(path, migrations=MIGRATIONS)
    assert db.query("SELECT count(*) FROM item")[0][0] == 800


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (sqlite3.IntegrityError("UNIQUE constraint failed: item.name"), AlreadyExistsError),
        (sqlite3.OperationalError("database is locked"), TransientBackendError),
        (sqlite3.OperationalError("attempt to write a readonly database"), AccessDeniedError),
        (sqlite3.DatabaseError("file is not a database"), BackendError),
        (FileNotFoundError(2, "No such file"), NotFoundError),
        (PermissionError(13, "denied"), AccessDeniedError),
    ],
)
def test_sqlite_and_os_errors_translate_to_the_hierarchy(exc, expected):
    assert type(translate(exc, kind="thing", name="n")) is expected
    with pytest.raises(expected) as info, translated(kind="thing", name="n"):
        raise exc
    assert info.value.__cause__ is exc
