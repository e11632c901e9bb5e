import multiprocessing
import sqlite3

import pytest

from mlcycle.backends.local import LocalBackend
from mlcycle.backends.local.registry import LocalRegistryBackend
from mlcycle.errors import BackendError
from mlcycle.registry import (
    ApprovalStatus,
    InferenceSpec,
    NewModelVersion,
    RegistryClient,
)
from mlcycle.testing.contract.registry import RegistryContract, store_model


@pytest.fixture
def backend(local_backend):
    return local_backend


class TestLocalRegistry(RegistryContract):
    pass


# -- local specifics ---------------------------------------------------------------------------
def test_arns_and_files(local_backend):
    registry = RegistryClient(local_backend)
    group = registry.create_group("arns")
    version = registry.register("arns", store_model(local_backend))
    assert group.arn == "local:model-package-group/arns"
    assert version.arn == "local:model-package/arns/1"
    assert version.model_uri.startswith("file://")
    assert (local_backend.root / "registry.sqlite").is_file()
    assert isinstance(local_backend.registry, LocalRegistryBackend)


def test_a_second_backend_object_sees_the_same_registry(local_backend):
    RegistryClient(local_backend).register("shared", store_model(local_backend),
                                           create_group=True)
    other = LocalBackend(local_backend.root)
    try:
        assert RegistryClient(other).get_version("shared", 1).version == 1
    finally:
        other.close()


def test_close_and_reuse(local_backend):
    registry = RegistryClient(local_backend)
    registry.create_group("reopen")
    local_backend.close()
    local_backend.close()
    assert registry.get_group("reopen").name == "reopen"


def _raw(local_backend) -> sqlite3.Connection:
    return sqlite3.connect(local_backend.root / "registry.sqlite")


def test_the_audit_table_is_append_only_in_sqlite(local_backend):
    registry = RegistryClient(local_backend)
    registry.register("audited", store_model(local_backend), create_group=True)
    registry.approve("audited", 1, by="ana")
    conn = _raw(local_backend)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE registry_audit SET actor = 'mallory'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM registry_audit")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM registry_audit").fetchone()[0] == 2
    finally:
        conn.close()
    # through the backend's own connection the refusal is a typed mlcycle error
    with pytest.raises(BackendError), local_backend.registry._db.transaction() as db:
        db.execute("DELETE FROM registry_audit")
    assert [e.actor for e in registry.history("audited")] == [
        registry.history("audited")[0].actor, "ana"]


def test_a_change_and_its_audit_event_are_one_transaction(local_backend, monkeypatch):
    registry = RegistryClient(local_backend)
    registry.register("atomic", store_model(local_backend), create_group=True)
    backend = local_backend.registry

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(LocalRegistryBackend, "_append", staticmethod(broken))
    with pytest.raises(BackendError):
        registry.approve("atomic", 1)
    with pytest.raises(BackendError):
        registry.set_alias("atomic", "champion", 1)
    with pytest.raises(BackendError):
        registry.register("atomic", store_model(local_backend, seed=2))
    monkeypatch.undo()
    version = backend.describe_version("atomic", 1)
    assert version.approval_status is ApprovalStatus.PENDING and version.aliases == ()
    assert [v.version for v in registry.list_versions("atomic")] == [1]
    assert len(registry.history("atomic")) == 1


def test_a_crash_after_registering_is_healed_by_the_retry(local_backend, monkeypatch):
    import mlcycle.registry.client as client_module

    registry = RegistryClient(local_backend)
    registry.create_group("crashy")
    key = store_model(local_backend)

    def crash(backend, version):
        raise KeyboardInterrupt  # the process dies after the version is committed

    monkeypatch.setattr(client_module, "record_model_version", crash)
    with pytest.raises(KeyboardInterrupt):
        registry.register("crashy", key)
    monkeypatch.undo()
    again = registry.register("crashy", key)
    assert again.version == 1
    assert [v.version for v in registry.list_versions("crashy")] == [1]
    assert registry.lineage("crashy", 1).vertices[0].type == "ModelPackage"


def _register_many(root, worker, count, key, barrier, out):
    import xgboost  # noqa: F401 - loaded before the start line, so the workers race

    backend = LocalBackend(root)
    try:
        registry = RegistryClient(backend)
        registry.get_group("race")  # connected and migrated
        barrier.wait(timeout=120)
        numbers = [registry.register("race", key, client_token=f"w{worker}-{i}").version
                   for i in range(count)]
        out.put((worker, numbers))
    finally:
        backend.close()


def test_concurrent_processes_get_distinct_consecutive_numbers(local_backend):
    registry = RegistryClient(local_backend)
    registry.create_group("race")
    key = store_model(local_backend)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers, each = 4, 6
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=_register_many,
                         args=(local_backend.root, w, each, key, barrier, out))
             for w in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=240)
    assert [proc.exitcode for proc in procs] == [0] * workers
    results = dict(out.get(timeout=10) for _ in procs)
    numbers = sorted(n for values in results.values() for n in values)
    assert numbers == list(range(1, workers * each + 1))
    for values in results.values():
        assert values == sorted(values)
    listed = registry.list_versions("race", ascending=True)
    assert [v.version for v in listed] == numbers
    events = registry.history("race")
    assert [e.sequence for e in events] == list(range(1, workers * each + 1))
    assert sorted(e.version for e in events) == numbers


def _create_many(root, worker, count, barrier, out):
    backend = LocalBackend(root)
    try:
        registry = backend.registry
        registry.describe_group("tight")
        barrier.wait(timeout=120)
        numbers = [registry.create_version("tight", _new(f"w{worker}-{i}"))[0].version
                   for i in range(count)]
        out.put((worker, numbers))
    finally:
        backend.close()


def test_backend_numbering_holds_under_a_tight_race(local_backend):
    """The backend alone, without the facade's model checks, so the writers overlap often."""
    RegistryClient(local_backend).create_group("tight")
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers, each = 4, 150
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=_create_many, args=(local_backend.root, w, each, barrier, out))
             for w in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=240)
    assert [proc.exitcode for proc in procs] == [0] * workers
    results = dict(out.get(timeout=10) for _ in procs)
    numbers = sorted(n for values in results.values() for n in values)
    assert numbers == list(range(1, workers * each + 1))
    events = list(local_backend.registry.audit_log("tight"))
    assert [e.sequence for e in events] == list(range(1, workers * each + 1))


def _new(token):
    return NewModelVersion(model_uri="file:///m.tar.gz", model_key="m.tar.gz",
                           model_digest="sha256:" + "0" * 64, inference=InferenceSpec(),
                           metrics={"validation-rmse": 0.5}, created_by="bench",
                           client_token=token)


def _fill(local_backend, group, count):
    """Insert ``count`` versions through the backend in one go (the facade checks each model)."""
    backend = local_backend.registry
    RegistryClient(local_backend).create_group(group)
    backend.create_version(group, _new("seed"))
    with backend._db.transaction() as conn:
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO registry_versions SELECT group_name, i, 'token-' || i, model_uri, "
            "model_key, model_digest, inference, metrics, tags, description, source, "
            "CASE WHEN i % 3 = 0 THEN 'Approved' ELSE approval_status END, status_changed_at, "
            "status_changed_by, status_reason, created_at, created_by, lineage_arn "
            "FROM registry_versions, n WHERE group_name = ? AND version = 1", (count, group))
        conn.execute("INSERT INTO registry_aliases VALUES (?, 'champion', ?, 0)",
                     (group, count - 1))


def test_listing_ten_thousand_versions(local_backend):
    # speed is measured by benchmarks/bench_registry.py, not asserted here
    _fill(local_backend, "big", 10_000)
    registry = RegistryClient(local_backend)
    versions = registry.list_versions("big")
    assert [v.version for v in versions[:3]] == [10_000, 9_999, 9_998]
    assert len(versions) == 10_000
    assert versions[1].aliases == ("champion",)
    top = registry.list_versions("big", status="Approved", limit=10)
    assert [v.version for v in top][:2] == [9_999, 9_996]
    assert registry.latest_approved("big").version == 9_999


def test_listing_uses_indexes(local_backend):
    _fill(local_backend, "plan", 10)
    from mlcycle.backends.local.registry import _VERSION_COLUMNS

    db = local_backend.registry._db
    for where in ("v.group_name = ? AND v.version < ?",
                  "v.group_name = ? AND v.approval_status = ? AND v.version < ?"):
        params = ("plan", 99) if where.count("?") == 2 else ("plan", "Approved", 99)
        plan = db.query(f"EXPLAIN QUERY PLAN SELECT {_VERSION_COLUMNS} FROM registry_versions v "
                        f"WHERE {where} ORDER BY v.version DESC LIMIT 500", params)
        details = " ".join(row["detail"] for row in plan)
        assert "SCAN" not in details.replace("SCAN CONSTANT", ""), details
        assert "TEMP B-TREE" not in details, details
