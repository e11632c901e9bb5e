"""The feature store contract: what every backend's feature store does, seen through the facade.

A backend's test module subclasses :class:`FeatureStoreContract` and supplies a ``backend``
fixture (a :class:`~mlcycle.backends.base.Backend` with
:attr:`~mlcycle.backends.base.Capability.FEATURE_STORE`)::

    from mlcycle.testing.contract.featurestore import FeatureStoreContract

    class TestMyFeatureStore(FeatureStoreContract): ...

The tests drive :class:`~mlcycle.featurestore.FeatureStore` with a :class:`FakeClock` (the
``clock`` fixture), so TTL and write times are deterministic; they assert on the data the
facade returns, never on files, so a remote backend can pass them too. Write times are taken
from :class:`~mlcycle.featurestore.IngestResult`, not from the clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from mlcycle.backends.base import Backend
from mlcycle.errors import (
    AlreadyExistsError,
    InvalidStateError,
    NotFoundError,
    SpecValidationError,
)
from mlcycle.featurestore import FeatureGroupSpec, FeatureStore

__all__ = ["START", "FakeClock", "FeatureStoreContract"]

#: The fake clock starts at 1 March 2024, midnight UTC.
START = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
T0 = START.timestamp()
DAY = 86400.0


class FakeClock:
    """A clock that stands still until moved.

    Parameters
    ----------
    start : datetime.datetime
        The first time it tells (aware).

    Examples
    --------
    >>> clock = FakeClock()
    >>> clock.advance(60) - START
    datetime.timedelta(seconds=60)
    """

    def __init__(self, start: dt.datetime = START) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        """Return the current fake time."""
        return self.now

    def advance(self, seconds: float) -> dt.datetime:
        """Move the clock forward by ``seconds`` and return the new time."""
        self.now = self.now + dt.timedelta(seconds=seconds)
        return self.now


def users_spec(name: str = "users", **kw: Any) -> FeatureGroupSpec:
    """A small group: Integral id, Fractional event time, one feature of each type."""
    return FeatureGroupSpec(
        name=name,
        record_identifier="userId",
        event_time="EventTime",
        features=[("userId", "Integral"), ("EventTime", "Fractional"), ("age", "Integral"),
                  ("score", "Fractional"), ("city", "String")],
        **kw,
    )


def items_spec(name: str = "item-prices", **kw: Any) -> FeatureGroupSpec:
    """A group with a String id and an ISO-8601 (String) event time."""
    return FeatureGroupSpec(
        name=name,
        record_identifier="itemId",
        event_time="updated",
        features=[("itemId", "String"), ("updated", "String"), ("price", "Fractional")],
        **kw,
    )


def iso(epoch: float) -> str:
    """SageMaker's ISO-8601 form of epoch seconds (whole seconds)."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def frame(rows: list[dict[str, Any]], columns: list[str]) -> Any:
    """A DataFrame of ``rows`` with exactly ``columns``."""
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


USERS = ["userId", "EventTime", "age", "score", "city"]
ITEMS = ["itemId", "updated", "price"]


class FeatureStoreContract:
    """Behaviour every feature store shows through :class:`~mlcycle.featurestore.FeatureStore`."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def store(self, backend: Backend, clock: FakeClock) -> FeatureStore:
        return FeatureStore(backend, clock=clock)

    # -- groups ------------------------------------------------------------------------------
    def test_create_get_describe_list_delete(self, store: FeatureStore) -> None:
        spec = users_spec(description="users", tags={"team": "ml"}, ttl=30 * DAY)
        group = store.create(spec)
        assert group.name == "users" and group.spec == spec
        info = store.get("users").describe()
        assert info.spec == spec and info.status == "Created" and info.name == "users"
        assert info.created_at.tzinfo is not None and info.created_at.utcoffset() == dt.timedelta(0)
        assert isinstance(info.uri, str) and info.uri
        assert isinstance(info.offline_uri, str)
        store.create(items_spec())
        assert [i.name for i in store.list()] == ["item-prices", "users"]
        store.delete("users")
        assert store.find("users") is None
        assert [i.name for i in store.list()] == ["item-prices"]
        with pytest.raises(NotFoundError) as err:
            group.describe()
        assert err.value.kind == "feature-group" and err.value.name == "users"

    def test_duplicate_group_is_already_exists(self, store: FeatureStore) -> None:
        store.create(users_spec())
        with pytest.raises(AlreadyExistsError) as err:
            store.create(users_spec())
        assert (err.value.kind, err.value.name) == ("feature-group", "users")

    def test_missing_group(self, store: FeatureStore) -> None:
        assert store.find("nope") is None
        with pytest.raises(NotFoundError) as err:
            store.get("nope")
        assert err.value.name == "nope"
        with pytest.raises(NotFoundError):
            store.delete("nope")

    @pytest.mark.parametrize("name", ["bad name", "-lead", "trail_", "x" * 65, "a.b", ""])
    def test_names_breaking_the_rules_are_rejected(self, name: str) -> None:
        with pytest.raises(SpecValidationError) as err:
            users_spec(name=name)
        assert err.value.field == "name"

    @pytest.mark.parametrize("reserved", ["write_time", "api_invocation_time", "is_deleted"])
    def test_reserved_feature_names_are_rejected(self, reserved: str) -> None:
        with pytest.raises(SpecValidationError) as err:
            FeatureGroupSpec(name="g", record_identifier="id", event_time="t",
                             features=[("id", "String"), ("t", "Fractional"),
                                       (reserved, "String")])
        assert err.value.field == reserved

    # -- ingest and online reads -------------------------------------------------------------
    def test_ingest_and_get_record_return_typed_values(self, store: FeatureStore) -> None:
        users = store.create(users_spec())
        result = users.ingest(frame([
            {"userId": 1, "EventTime": T0, "age": 30, "score": 0.5, "city": "Oslo"},
            {"userId": 2, "EventTime": T0, "age": 41, "score": None, "city": None},
        ], USERS))
        assert result.group == "users" and result.rows == 2
        assert result.write_time.utcoffset() == dt.timedelta(0)
        record = users.get_record(1)
        assert record == {"userId": 1, "EventTime": T0, "age": 30, "score": 0.5, "city": "Oslo"}
        assert type(record["age"]) is int and type(record["score"]) is float
        assert users.get_record(2) == {"userId": 2, "EventTime": T0, "age": 41, "score": None,
                                       "city": None}
        assert users.get_record(3) is None
        assert users.get_record("1") == record  # identifiers as strings, as SageMaker takes them
        assert users.get_record(1, features=["city", "age"]) == {"city": "Oslo", "age": 30}

    def test_batch_get_record_keeps_order_and_marks_missing(self, store: FeatureStore) -> None:
        users = store.create(users_spec())
        users.ingest(frame([{"userId": i, "EventTime": T0, "age": i, "score": i / 2,
                             "city": f"c{i}"} for i in range(1, 6)], USERS))
        got = users.batch_get_record([5, 99, 1, 5], features=["age"])
        assert got == [{"age": 5}, None, {"age": 1}, {"age": 5}]
        assert users.batch_get_record([]) == []

    def test_unknown_feature_in_a_read_names_it(self, store: FeatureStore) -> None:
        users = store.create(users_spec())
        users.ingest(frame([{"userId": 1, "EventTime": T0, "age": 1, "score": 1.0,
                             "city": "x"}], USERS))
        with pytest.raises(SpecValidationError) as err:
            users.get_record(1, features=["nope"])
        assert err.value.field == "nope"
        with pytest.raises(SpecValidationError) as err:
            users.get_record(True)
        assert err.value.field == "record_id"

    def test_late_older_record_does_not_overwrite_the_online_one(
        self, store: FeatureStore, clock: FakeClock
    ) -> None:
        users = store.create(users_spec())
        users.ingest(frame([{"userId": 1, "EventTime": T0 + 100, "age": 2, "score": 2.0,
                             "city": "new"}], USERS))
        clock.advance(60)
        users.ingest(frame([{"userId": 1, "EventTime": T0, "age": 1, "score": 1.0,
                             "city": "old"}], USERS))
        assert users.get_record(1)["city"] == "new"
        history = users.records()
        assert history["city"].tolist() == ["old", "new"]  # the offline store keeps both
        assert users.records(latest=True)["city"].tolist() == ["new"]

    def test_equal_event_time_later_write_wins(self, store: FeatureStore,
                                               clock: FakeClock) -> None:
        users = store.create(users_spec())
        row = {"userId": 1, "EventTime": T0, "age": 1, "score": 1.0, "city": "first"}
        first = users.ingest(frame([row], USERS))
        clock.advance(60)
        second = users.ingest(frame([{**row, "city": "second"}], USERS))
        assert users.get_record(1)["city"] == "second"
        assert users.records()["city"].tolist() == ["second"]  # duplicates: latest write
        both = users.records(include_duplicates=True)
        assert both["city"].tolist() == ["first", "second"]
        assert list(both["write_time"]) == [first.write_time, second.write_time]

    def test_several_rows_of_one_record_in_one_batch(self, store: FeatureStore) -> None:
        users = store.create(users_spec())
        users.ingest(frame([
            {"userId": 1, "EventTime": T0 + 5, "age": 1, "score": 1.0, "city": "latest"},
            {"userId": 1, "EventTime": T0, "age": 1, "score": 1.0, "city": "older"},
        ], USERS))
        assert users.get_record(1)["city"] == "latest"
        assert len(users.records()) == 2

    def test_ingest_arrow_parquet_and_iso_event_times(self, store: FeatureStore,
                                                      tmp_path: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        items = store.create(items_spec())
        table = pa.table({"itemId": ["a", "b"], "updated": [iso(T0), iso(T0 + 1)],
                          "price": [1.5, 2.5]})
        items.ingest(table)
        path = tmp_path / "more.parquet"
        pq.write_table(pa.table({"itemId": ["c"], "updated": ["2024-03-01T00:00:02.500Z"],
                                 "price": [3.5]}), path)
        items.ingest(path)
        assert items.get_record("b") == {"itemId": "b", "updated": iso(T0 + 1), "price": 2.5}
        assert items.get_record("c")["price"] == 3.5
        assert items.records()["itemId"].tolist() == ["a", "b", "c"]

    def test_ingest_reports_progress(self, store: FeatureStore) -> None:
        users = store.create(users_spec())
        calls: list[tuple[str, int, int]] = []
        users.ingest(frame([{"userId": i, "EventTime": T0, "age": i, "score": 0.0,
                             "city": "x"} for i in range(10)], USERS),
                     progress=lambda stage, done, total: calls.append((stage, done, total)))
        stages = {c[0] for c in calls}
        assert "validate users" in stages and "ingest users" in stages
        for stage in stages:
            mine = [c for c in calls if c[0] == stage]
            assert [c[1] for c in mine] == sorted(c[1] for c in mine)
            assert mine[-1][1] == mine[-1][2] > 0

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"drop": "score"}, "score"),
            ({"add": ("height", 1.8)}, "height"),
            ({"set": ("userId", None)}, "userId"),
            ({"set": ("EventTime", None)}, "EventTime"),
            ({"set": ("score", "high")}, "score"),
            ({"set": ("age", 1.5)}, "age"),
            ({"set": ("city", 7)}, "city"),
        ],
        ids=["missing", "unknown", "null-id", "null-time", "str-in-float", "fraction-in-int",
             "int-in-string"],
    )
    def test_bad_input_names_the_column_and_writes_nothing(
        self, store: FeatureStore, change: dict[str, Any], field: str
    ) -> None:
        users = store.create(users_spec())
        rows = [{"userId": 1, "EventTime": T0, "age": 1, "score": 1.0, "city": "ok"},
                {"userId": 2, "EventTime": T0, "age": 2, "score": 2.0, "city": "ok"}]
        columns = list(USERS)
        if "drop" in change:
            columns.remove(change["drop"])
            rows = [{k: v for k, v in r.items() if k != change["drop"]} for r in rows]
        if "add" in change:
            name, value = change["add"]
            columns.append(name)
            rows = [{**r, name: value} for r in rows]
        if "set" in change:
            name, value = change["set"]
            rows[1] = {**rows[1], name: value}
        with pytest.raises(SpecValidationError) as err:
            users.ingest(frame(rows, columns))
        assert err.value.field == field
        assert users.get_record(1) is None
        assert len(users.records()) == 0

    def test_bad_iso_event_time_names_the_column(self, store: FeatureStore) -> None:
        items = store.create(items_spec())
        for bad in ("2024-03-01 00:00:00", "2024-02-30T00:00:00Z", "yesterday"):
            with pytest.raises(SpecValidationError) as err:
                items.ingest(frame([{"itemId": "a", "updated": bad, "price": 1.0}], ITEMS))
            assert err.value.field == "updated"
        assert items.get_record("a") is None

    # -- TTL ---------------------------------------------------------------------------------
    def test_ttl_expires_online_records_with_the_clock(self, store: FeatureStore,
                                                       clock: FakeClock) -> None:
        users = store.create(users_spec(ttl=3600))
        users.ingest(frame([
            {"userId": 1, "EventTime": T0 - 1800, "age": 1, "score": 1.0, "city": "a"},
            {"userId": 2, "EventTime": T0, "age": 2, "score": 2.0, "city": "b"},
        ], USERS))
        assert users.get_record(1)["city"] == "a"
        clock.advance(1800)  # record 1 is exactly ttl old now: expired
        assert users.get_record(1) is None
        assert users.get_record(2)["city"] == "b"
        assert users.batch_get_record([1, 2]) == [None, users.get_record(2)]
        clock.advance(1800)
        assert users.get_record(2) is None

    def test_ttl_applies_to_offline_reads_now(self, store: FeatureStore,
                                              clock: FakeClock) -> None:
        users = store.create(users_spec(ttl=DAY))
        users.ingest(frame([
            {"userId": 1, "EventTime": T0 - 2 * DAY, "age": 1, "score": 1.0, "city": "old"},
            {"userId": 1, "EventTime": T0, "age": 1, "score": 1.0, "city": "new"},
        ], USERS))
        assert users.records()["city"].tolist() == ["new"]
        assert users.records(include_expired=True)["city"].tolist() == ["old", "new"]
        sql = 'SELECT count(*) AS n FROM "users"'
        assert store.query(sql)["n"].tolist() == [1]
        assert store.query(sql, include_expired=True)["n"].tolist() == [2]
        clock.advance(DAY)
        assert len(users.records()) == 0

    # -- deletes -----------------------------------------------------------------------------
    def test_soft_delete(self, store: FeatureStore, clock: FakeClock) -> None:
        users = store.create(users_spec())
        row = {"userId": 1, "EventTime": T0, "age": 1, "score": 1.0, "city": "a"}
        users.ingest(frame([row], USERS))
        clock.advance(10)
        users.delete_record(1, event_time=T0 + 10)
        assert users.get_record(1) is None
        raw = users.records(include_deleted=True)
        assert raw["is_deleted"].tolist() == [False, True]
        assert raw["userId"].tolist() == [1, 1]
        assert len(users.records()) == 0  # the marker hides the record
        users.ingest(frame([{**row, "EventTime": T0 + 5, "city": "older"}], USERS))
        assert users.get_record(1) is None  # older than the deletion: stays deleted
        users.ingest(frame([{**row, "EventTime": T0 + 20, "city": "newer"}], USERS))
        assert users.get_record(1)["city"] == "newer"
        assert users.records()["city"].tolist() == ["newer"]

    def test_hard_delete(self, store: FeatureStore, clock: FakeClock) -> None:
        users = store.create(users_spec())
        row = {"userId": 1, "EventTime": T0, "age": 1, "score": 1.0, "city": "a"}
        users.ingest(frame([row], USERS))
        clock.advance(10)
        users.delete_record(1, event_time=T0 + 10, hard=True)
        assert users.get_record(1) is None
        assert users.records(include_deleted=True)["is_deleted"].tolist() == [False, True]
        users.ingest(frame([{**row, "EventTime": T0 + 5, "city": "older"}], USERS))
        assert users.get_record(1)["city"] == "older"  # a hard delete forgets the record

    def test_delete_older_than_the_record_keeps_it_online(self, store: FeatureStore) -> None:
        users = store.create(users_spec())
        users.ingest(frame([{"userId": 1, "EventTime": T0, "age": 1, "score": 1.0,
                             "city": "a"}], USERS))
        users.delete_record(1, event_time=T0 - 10)
        assert users.get_record(1)["city"] == "a"

    # -- offline SQL -------------------------------------------------------------------------
    def test_query_over_two_groups(self, store: FeatureStore) -> None:
        users = store.create(users_spec(name="user-profiles"))
        items = store.create(items_spec())
        users.ingest(frame([{"userId": i, "EventTime": T0, "age": 20 + i, "score": float(i),
                             "city": "x"} for i in range(3)], USERS))
        items.ingest(frame([{"itemId": "a", "updated": iso(T0), "price": 10.0}], ITEMS))
        result = store.query(
            'SELECT u."userId", u.age, i.price FROM "user-profiles" u CROSS JOIN '
            '"item-prices" i ORDER BY u."userId"',
            groups=["user-profiles", items],
        )
        assert result["age"].tolist() == [20, 21, 22]
        assert result["price"].tolist() == [10.0] * 3
        columns = store.query('SELECT * FROM "item-prices"').columns.tolist()
        assert columns == [*ITEMS, "write_time", "api_invocation_time", "is_deleted"]

    def test_query_with_bad_sql_is_a_spec_error(self, store: FeatureStore) -> None:
        store.create(users_spec())
        with pytest.raises(SpecValidationError) as err:
            store.query('SELEC nonsense FROM "users"')
        assert err.value.field == "sql"

    def test_store_only_groups(self, store: FeatureStore) -> None:
        online = store.create(users_spec(name="online-only", offline=False))
        offline = store.create(users_spec(name="offline-only", online=False))
        row = {"userId": 1, "EventTime": T0, "age": 1, "score": 1.0, "city": "a"}
        online.ingest(frame([row], USERS))
        offline.ingest(frame([row], USERS))
        assert online.get_record(1)["city"] == "a"
        assert offline.records()["city"].tolist() == ["a"]
        with pytest.raises(InvalidStateError):
            offline.get_record(1)
        with pytest.raises(InvalidStateError):
            online.records()

    # -- training sets -----------------------------------------------------------------------
    def _prices(self, store: FeatureStore, **kw: Any) -> Any:
        prices = store.create(items_spec(**kw))
        prices.ingest(frame([
            {"itemId": "a", "updated": iso(T0 + 10), "price": 1.0},
            {"itemId": "a", "updated": iso(T0 + 20), "price": 2.0},
            {"itemId": "b", "updated": iso(T0 + 15), "price": 5.0},
        ], ITEMS))
        return prices

    def test_point_in_time_join_of_a_dataframe(self, store: FeatureStore) -> None:
        import pandas as pd

        self._prices(store)
        orders = pd.DataFrame({"itemId": ["a", "a", "a", "b", "c", "a"],
                               "ts": [T0 + 5, T0 + 10, T0 + 25, T0 + 15, T0 + 30, T0 + 19.5],
                               "qty": [1, 2, 3, 4, 5, 6]})
        out = store.training_set(orders, event_time="ts").join("item-prices").to_dataframe()
        assert out.columns.tolist() == ["itemId", "ts", "qty", "price"]
        assert out["qty"].tolist() == [1, 2, 3, 4, 5, 6]  # the base's order is kept
        price = out["price"].tolist()
        assert pd.isna(price[0]) and pd.isna(price[4])  # nothing yet; no such item
        assert price[1:4] == [1.0, 2.0, 5.0] and price[5] == 1.0  # at or before, latest

    def test_point_in_time_join_with_iso_and_datetime_base_times(
        self, store: FeatureStore
    ) -> None:
        import pandas as pd

        self._prices(store)
        orders = pd.DataFrame({"itemId": ["a", "a"],
                               "when": [iso(T0 + 12), iso(T0 + 22)]})
        out = store.training_set(orders, event_time="when").join("item-prices")
        assert out.to_dataframe()["price"].tolist() == [1.0, 2.0]
        orders["when"] = pd.to_datetime([T0 + 12, T0 + 22], unit="s", utc=True)
        out = store.training_set(orders, event_time="when").join("item-prices")
        assert out.to_dataframe()["price"].tolist() == [1.0, 2.0]

    def test_group_base_joins_other_groups(self, store: FeatureStore) -> None:
        self._prices(store)
        sales = store.create(FeatureGroupSpec(
            name="sales", record_identifier="saleId", event_time="t",
            features=[("saleId", "Integral"), ("t", "Fractional"), ("itemId", "String"),
                      ("qty", "Integral")]))
        sales.ingest(frame([{"saleId": 1, "t": T0 + 21, "itemId": "a", "qty": 3},
                            {"saleId": 2, "t": T0 + 11, "itemId": "a", "qty": 1},
                            {"saleId": 3, "t": T0 + 16, "itemId": "b", "qty": 2}],
                           ["saleId", "t", "itemId", "qty"]))
        out = sales.training_set().join("item-prices", features=["price", "updated"],
                                        prefix="item_").to_dataframe()
        assert out.columns.tolist() == ["saleId", "t", "itemId", "qty", "item_price",
                                        "item_updated"]
        assert out["saleId"].tolist() == [2, 3, 1]  # by event time
        assert out["item_price"].tolist() == [1.0, 5.0, 2.0]
        assert out["item_updated"].tolist() == [iso(T0 + 10), iso(T0 + 15), iso(T0 + 20)]

    def test_training_set_ttl_is_relative_to_each_row(self, store: FeatureStore) -> None:
        import pandas as pd

        self._prices(store, ttl=8)
        orders = pd.DataFrame({"itemId": ["a", "a", "a"], "ts": [T0 + 17, T0 + 18, T0 + 27]})
        out = store.training_set(orders, event_time="ts").join("item-prices").to_dataframe()
        # price 1.0 (t0+10) lives until t0+18 exclusive; 2.0 (t0+20) until t0+28
        assert out["price"][0] == 1.0 and pd.isna(out["price"][1]) and out["price"][2] == 2.0

    def test_as_of_sees_only_what_was_written_by_then(self, store: FeatureStore,
                                                      clock: FakeClock) -> None:
        import pandas as pd

        prices = store.create(items_spec())
        first = prices.ingest(frame([{"itemId": "a", "updated": iso(T0), "price": 1.0}],
                                    ITEMS))
        clock.advance(3600)
        prices.ingest(frame([{"itemId": "a", "updated": iso(T0), "price": 1.5},
                             {"itemId": "a", "updated": iso(T0 + 50), "price": 2.0}], ITEMS))
        orders = pd.DataFrame({"itemId": ["a", "a"], "ts": [T0 + 10, T0 + 60]})
        now = store.training_set(orders, event_time="ts").join("item-prices")
        assert now.to_dataframe()["price"].tolist() == [1.5, 2.0]
        then = now.as_of(first.write_time)
        assert then.to_dataframe()["price"].tolist() == [1.0, 1.0]
        assert prices.records(as_of=first.write_time)["price"].tolist() == [1.0]

    def test_event_time_range_is_half_open(self, store: FeatureStore) -> None:
        prices = self._prices(store)
        ts = prices.training_set().between(dt.datetime.fromtimestamp(T0 + 10, dt.UTC),
                                           dt.datetime.fromtimestamp(T0 + 20, dt.UTC))
        assert ts.to_dataframe()["price"].tolist() == [1.0, 5.0]

    def test_duplicates_and_deletes_in_a_training_set(self, store: FeatureStore,
                                                      clock: FakeClock) -> None:
        import pandas as pd

        prices = self._prices(store)
        clock.advance(60)
        prices.ingest(frame([{"itemId": "b", "updated": iso(T0 + 15), "price": 6.0}], ITEMS))
        base = prices.training_set(features=["itemId", "price"])
        assert base.to_dataframe()["price"].tolist() == [1.0, 6.0, 2.0]
        dup = base.include_duplicates().to_dataframe()
        assert dup["price"].tolist() == [1.0, 5.0, 6.0, 2.0]
        clock.advance(60)
        prices.delete_record("a", event_time=T0 + 30)
        assert base.to_dataframe()["price"].tolist() == [6.0]
        assert base.include_deleted().to_dataframe()["price"].tolist() == [1.0, 6.0, 2.0]
        orders = pd.DataFrame({"itemId": ["a", "b"], "ts": [T0 + 25, T0 + 25]})
        joined = store.training_set(orders, event_time="ts").join(prices).to_dataframe()
        assert pd.isna(joined["price"][0]) and joined["price"][1] == 6.0

    def test_training_set_errors_name_the_field(self, store: FeatureStore) -> None:
        import pandas as pd

        self._prices(store)
        orders = pd.DataFrame({"itemId": [1], "ts": [T0]})
        with pytest.raises(SpecValidationError) as err:
            store.training_set(orders, event_time="ts").join("item-prices").to_dataframe()
        assert err.value.field == "itemId"  # an integer key for a String identifier
        orders = pd.DataFrame({"sku": ["a"], "ts": [T0], "price": [9.0]})
        ts = store.training_set(orders, event_time="ts")
        with pytest.raises(SpecValidationError) as err:
            ts.join("item-prices", on="nope").to_dataframe()
        assert err.value.field == "nope"
        with pytest.raises(SpecValidationError) as err:
            ts.join("item-prices", on="sku").to_dataframe()
        assert err.value.field == "price"  # output columns collide
        with pytest.raises(SpecValidationError) as err:
            ts.join("item-prices", on="sku", features=["colour"]).to_dataframe()
        assert err.value.field == "colour"
        with pytest.raises(SpecValidationError) as err:
            store.training_set(orders, event_time="when")
        assert err.value.field == "when"
        with pytest.raises(NotFoundError):
            ts.join("missing-group", on="sku").to_dataframe()

    def test_training_set_to_files(self, store: FeatureStore, tmp_path: Any) -> None:
        import pandas as pd

        prices = self._prices(store)
        ts = prices.training_set()
        expected = ts.to_dataframe()
        parquet = ts.to_parquet(tmp_path / "out" / "train.parquet")
        pd.testing.assert_frame_equal(pd.read_parquet(parquet), expected)
        csv = pd.read_csv(ts.to_csv(tmp_path / "train.csv"))
        assert csv.columns.tolist() == expected.columns.tolist()
        assert csv["price"].tolist() == expected["price"].tolist()
