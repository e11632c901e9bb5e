"""The local offline store on disk: SageMaker's partition layout, the manifest, the schema."""

import datetime as dt
import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlcycle.backends.base import Capability
from mlcycle.backends.local import LocalBackend
from mlcycle.backends.local.featurestore import LocalFeatureStoreBackend
from mlcycle.featurestore import FeatureGroupSpec, FeatureStore
from mlcycle.testing.contract.featurestore import USERS, frame, users_spec

LEAP = dt.datetime(2024, 2, 29, 23, 30, tzinfo=dt.UTC).timestamp()


def test_local_backend_has_a_feature_store_made_once(tmp_path):
    backend = LocalBackend(tmp_path / "ws")
    assert backend.supports(Capability.FEATURE_STORE)
    assert not (tmp_path / "ws").exists()  # no I/O until used
    fs = backend.feature_store
    assert isinstance(fs, LocalFeatureStoreBackend) and fs is backend.feature_store
    assert fs.dialect == "duckdb"
    backend.close()
    assert backend.feature_store is fs


def test_files_follow_sagemakers_hour_partitions(fs_store, local_backend):
    users = fs_store.create(users_spec())
    rows = [{"userId": i, "EventTime": LEAP + i * 1800, "age": i, "score": 0.5, "city": "x"}
            for i in range(4)]  # 23:30, 00:00, 00:30 and 01:00 across the month boundary
    result = users.ingest(frame(rows, USERS))
    info = users.describe()
    data = info.offline_uri.removeprefix("file://")
    assert data.endswith("/data")
    files = sorted(p.relative_to(data).as_posix()
                   for p in local_backend.root.rglob("*.parquet"))
    assert [f.rsplit("/", 1)[0] for f in files] == [
        "year=2024/month=02/day=29/hour=23",
        "year=2024/month=03/day=01/hour=00",
        "year=2024/month=03/day=01/hour=01",
    ]
    for f in files:
        assert re.fullmatch(rf"{result.batch_id}_\d+\.parquet", f.rsplit("/", 1)[1])
    assert sorted(str(p) for p in local_backend.feature_store.committed_files("users")) == [
        f"{data}/{f}" for f in files
    ]
    table = pq.read_table(f"{data}/{files[1]}")
    assert table.column_names == [*USERS, "write_time", "api_invocation_time", "is_deleted"]
    assert table.schema.field("write_time").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("age").type == pa.int64()
    assert table.column("userId").to_pylist() == [1, 2]
    assert table.column("is_deleted").to_pylist() == [False, False]


def test_online_store_is_sqlite_in_wal_mode(fs_store, local_backend):
    users = fs_store.create(users_spec())
    users.ingest(frame([{"userId": 1, "EventTime": LEAP, "age": 1, "score": 1.0,
                         "city": "x"}], USERS))
    (db,) = local_backend.root.glob("featurestore/users-*/group.sqlite")
    import sqlite3

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute('SELECT "city", _deleted FROM online').fetchall() == [("x", 0)]
    conn.close()


def test_online_updated_counts_changed_records(fs_store, fs_clock):
    users = fs_store.create(users_spec())
    first = users.ingest(frame([{"userId": i, "EventTime": LEAP, "age": i, "score": 1.0,
                                 "city": "x"} for i in range(3)], USERS))
    assert first.online_updated == 3
    fs_clock.advance(1)
    second = users.ingest(frame([
        {"userId": 0, "EventTime": LEAP - 1, "age": 0, "score": 1.0, "city": "older"},
        {"userId": 1, "EventTime": LEAP + 1, "age": 1, "score": 1.0, "city": "newer"},
        {"userId": 1, "EventTime": LEAP + 2, "age": 1, "score": 1.0, "city": "newest"},
    ], USERS))
    assert second.rows == 3 and second.online_updated == 1
    assert users.get_record(1)["city"] == "newest"


def test_empty_ingest_writes_no_file(fs_store, local_backend):
    users = fs_store.create(users_spec())
    result = users.ingest(frame([], USERS))
    assert result.rows == 0 and result.online_updated == 0
    assert not list(local_backend.root.rglob("*.parquet"))
    assert users.records().empty


def test_delete_group_removes_its_folder_and_allows_a_new_one(fs_store, local_backend):
    users = fs_store.create(users_spec())
    users.ingest(frame([{"userId": 1, "EventTime": LEAP, "age": 1, "score": 1.0,
                         "city": "x"}], USERS))
    folder = local_backend.root / "featurestore"
    assert len(list(folder.iterdir())) == 1
    users.delete()
    assert list(folder.iterdir()) == []
    again = fs_store.create(users_spec())
    assert again.get_record(1) is None and again.records().empty


def test_a_second_backend_on_the_same_workspace_sees_the_groups(tmp_path):
    one = FeatureStore(LocalBackend(tmp_path / "ws"))
    users = one.create(users_spec())
    users.ingest(frame([{"userId": 1, "EventTime": LEAP, "age": 1, "score": 1.0,
                         "city": "x"}], USERS))
    with FeatureStore(f"local://{tmp_path / 'ws'}") as two:
        assert [i.name for i in two.list()] == ["users"]
        assert two.get("users").get_record(1)["city"] == "x"


def test_records_and_training_sets_come_back_utc_aware(fs_store):
    users = fs_store.create(users_spec())
    users.ingest(frame([{"userId": 1, "EventTime": LEAP, "age": 1, "score": 1.0,
                         "city": "x"}], USERS))
    stamp = users.records()["write_time"][0]
    assert stamp.utcoffset() == dt.timedelta(0)
    assert stamp == fs_store.now()


def test_group_with_integral_id_and_string_time_round_trips(fs_store):
    spec = FeatureGroupSpec(name="g", record_identifier="id", event_time="t",
                            features=[("id", "Integral"), ("t", "String"), ("v", "Integral")])
    g = fs_store.create(spec)
    g.ingest(pd.DataFrame({"id": [7], "t": ["2024-03-01T00:00:00.123Z"], "v": [True]}))
    assert g.get_record(7) == {"id": 7, "t": "2024-03-01T00:00:00.123Z", "v": 1}


@pytest.mark.parametrize("bad", [object(), 3, "no:such:scheme://x"])
def test_feature_store_rejects_a_non_backend(bad):
    from mlcycle.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        FeatureStore(bad)


def test_a_create_racing_another_process_is_already_exists(tmp_path, monkeypatch):
    from mlcycle.errors import AlreadyExistsError

    one = LocalBackend(tmp_path / "ws").feature_store
    two = LocalBackend(tmp_path / "ws").feature_store
    two.create_group(users_spec())
    # the first backend checked before the second one's insert: the insert itself must fail
    monkeypatch.setattr(one._catalog, "query", lambda *a, **k: [])
    with pytest.raises(AlreadyExistsError) as err:
        one.create_group(users_spec())
    assert (err.value.kind, err.value.name) == ("feature-group", "users")
    assert len(list((tmp_path / "ws" / "featurestore").iterdir())) == 1  # no stray folder
