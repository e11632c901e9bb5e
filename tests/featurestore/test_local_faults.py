"""Faults of the local feature store: a failure or a kill between writing files and committing,
and two processes ingesting and reading at once."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from mlcycle.backends.local.featurestore import LocalFeatureStoreBackend
from mlcycle.featurestore import FeatureStore
from mlcycle.testing.contract.featurestore import T0, USERS, frame, users_spec

ROWS = [{"userId": i, "EventTime": T0 + i * 3600, "age": i, "score": 1.0, "city": "x"}
        for i in range(5)]  # five hour partitions


def _parquet(root):
    return sorted(p for p in root.rglob("*.parquet"))


def test_a_failure_before_the_commit_leaves_nothing(fs_store, local_backend, monkeypatch):
    users = fs_store.create(users_spec())
    seen = {}

    def fail(self, group, **kw):
        seen["files"] = _parquet(local_backend.root)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(LocalFeatureStoreBackend, "_commit", fail)
    with pytest.raises(RuntimeError):
        users.ingest(frame(ROWS, USERS))
    assert len(seen["files"]) == 5  # the files were written ...
    assert _parquet(local_backend.root) == []  # ... and removed again
    monkeypatch.undo()
    assert users.records().empty
    assert users.batch_get_record(range(5)) == [None] * 5
    assert local_backend.feature_store._group("users").db.query("SELECT * FROM pending") == []


def test_a_failure_during_the_online_upsert_rolls_the_whole_batch_back(
    fs_store, local_backend, monkeypatch
):
    users = fs_store.create(users_spec())
    users.ingest(frame(ROWS[:1], USERS))
    original = LocalFeatureStoreBackend._upsert

    def half(self, group, conn, table, *args, **kw):
        original(self, group, conn, table.slice(0, 2), *args, **kw)
        raise OSError("interrupted")

    monkeypatch.setattr(LocalFeatureStoreBackend, "_upsert", half)
    newer = [{**r, "EventTime": r["EventTime"] + 1, "city": "new"} for r in ROWS]
    with pytest.raises(Exception):  # noqa: B017 - translated to a BackendError
        users.ingest(frame(newer, USERS))
    monkeypatch.undo()
    assert users.get_record(0)["city"] == "x"
    assert users.batch_get_record(range(1, 5)) == [None] * 4
    assert users.records()["city"].tolist() == ["x"]
    assert len(_parquet(local_backend.root)) == 1


KILLED = textwrap.dedent("""
    import sys, time, pathlib
    import pandas as pd
    from mlcycle.featurestore import FeatureStore
    from mlcycle.backends.local.featurestore import LocalFeatureStoreBackend

    ws, flag, rows = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]

    def hang(self, group, **kw):
        flag.write_text("written")
        time.sleep(120)

    LocalFeatureStoreBackend._commit = hang
    store = FeatureStore(ws)
    store.get("users").ingest(pd.read_json(rows))
""")


def test_a_process_killed_before_the_commit_leaves_nothing_visible(tmp_path):
    ws = tmp_path / "ws"
    store = FeatureStore(str(ws))
    users = store.create(users_spec())
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps(ROWS))
    flag = tmp_path / "flag"
    child = subprocess.Popen([sys.executable, "-c", KILLED, str(ws), str(flag), str(rows)])
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert child.poll() is None, "the writer died early"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        orphans = _parquet(ws)
        assert len(orphans) == 5
        assert users.records().empty  # written but not committed: invisible
        assert users.get_record(0) is None
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert users.records().empty and users.get_record(0) is None
    # the next ingest removes the dead writer's files
    users.ingest(frame([{**ROWS[0], "city": "after"}], USERS))
    left = _parquet(ws)
    assert len(left) == 1 and not set(left) & set(orphans)
    assert users.records()["city"].tolist() == ["after"]


WORKER = textwrap.dedent("""
    import sys
    import pandas as pd
    from mlcycle.featurestore import FeatureStore

    ws, worker, batches, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    store = FeatureStore(ws)
    users = store.get("users")
    t0 = 1709251200.0
    seen = 0
    for b in range(batches):
        ids = [worker * 1_000_000 + b * size + i for i in range(size)]
        users.ingest(pd.DataFrame({"userId": ids, "EventTime": [t0 + b] * size,
                                   "age": [worker] * size, "score": [0.5] * size,
                                   "city": [f"w{worker}"] * size}))
        got = users.batch_get_record(ids)
        assert all(r is not None and r["age"] == worker for r in got), "lost an online write"
        now = len(users.records())
        assert now >= seen + size, "the offline store went backwards"
        seen = now
    print("ok", seen)
""")


def test_two_processes_ingesting_and_reading_at_once_lose_nothing(tmp_path):
    ws = tmp_path / "ws"
    store = FeatureStore(str(ws))
    users = store.create(users_spec())
    batches, size = 15, 200
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(ws), str(w), str(batches),
                               str(size)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for w in (1, 2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err.lower()
        assert out.startswith("ok")
    records = users.records()
    assert len(records) == 2 * batches * size
    assert records["userId"].is_unique
    assert sorted(records.groupby("city").size().tolist()) == [batches * size] * 2
    assert users.get_record(2_000_000 + (batches - 1) * size)["city"] == "w2"
