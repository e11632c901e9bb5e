"""The training-set spec, the SQL dialects and the SQL helpers."""

import datetime as dt

import pandas as pd
import pytest

from mlcycle.errors import ConfigurationError, SpecValidationError
from mlcycle.featurestore import FeatureJoin, TrainingSetSpec
from mlcycle.featurestore.training import (
    DIALECTS,
    DuckDBDialect,
    SQLDialect,
    get_dialect,
    records_sql,
    training_sql,
    ttl_views,
)
from mlcycle.testing.contract.featurestore import items_spec, users_spec

MARCH = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def test_spec_round_trips_through_json_form():
    spec = TrainingSetSpec(
        base="sales", features=["saleId", "qty"],
        joins=[FeatureJoin(group="item-prices", on="itemId", features="price", prefix="p_"),
               {"group": "users"}],
        as_of=MARCH, start="2024-01-01T00:00:00+00:00", end=MARCH,
        include_deleted=True, include_duplicates=True,
    )
    assert spec.joins[0].features == ("price",) and spec.joins[1].group == "users"
    assert spec.start == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    data = spec.to_dict()
    assert data["as_of"] == "2024-03-01T00:00:00+00:00"
    assert TrainingSetSpec.from_dict(data) == spec


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"base": "bad name"}, "base"),
        ({"base": "g", "event_time": "ts"}, "event_time"),
        ({"include_duplicates": True}, "include_duplicates"),
        ({"start": MARCH, "end": MARCH}, "start"),
        ({"as_of": dt.datetime(2024, 3, 1)}, "time"),
        ({"joins": [{"group": "no good"}]}, "group"),
    ],
)
def test_spec_validation_names_the_field(kwargs, field):
    with pytest.raises(SpecValidationError) as err:
        TrainingSetSpec(**kwargs)
    assert err.value.field == field


def test_unknown_field_in_json_form():
    with pytest.raises(SpecValidationError) as err:
        TrainingSetSpec.from_dict({"base": "g", "colour": "red"})
    assert err.value.field == "colour"


def test_dialects_are_chosen_in_one_table():
    assert set(DIALECTS) >= {"duckdb", "ansi"}
    assert isinstance(get_dialect("duckdb"), DuckDBDialect)
    assert type(get_dialect("ansi")) is SQLDialect
    with pytest.raises(ConfigurationError):
        get_dialect("oracle")


def test_the_generated_sql_per_dialect():
    groups = {"sales": users_spec(name="sales"), "item-prices": items_spec(ttl=60)}
    spec = TrainingSetSpec(base="sales", joins=[FeatureJoin(group="item-prices", on="city")])
    duck = training_sql(spec, groups=groups, dialect=get_dialect("duckdb"))
    ansi = training_sql(spec, groups=groups, dialect=get_dialect("ansi"))
    assert "ASOF LEFT JOIN" in duck and '"__sort_0"' in duck
    assert "ORDER BY" not in duck.rsplit(")", 1)[-1]  # DuckDB leaves the sort to the client
    assert "ASOF" not in ansi and '"__sort_0"' not in ansi
    assert ansi.endswith('ORDER BY "__base"."__t", "__base"."userId"')
    for sql in (duck, ansi):
        assert 'FROM "item-prices"' in sql  # names with '-' are quoted
        assert "< 60.0e0 THEN" in sql  # TTL relative to the base row
    assert "from_iso8601_timestamp" in ansi and "epoch(CAST" in duck


def test_records_sql_filters_ttl_relative_to_now():
    sql = records_sql(items_spec(ttl=10), dialect=get_dialect("ansi"), now=1000.0)
    assert "1000.0e0 - " in sql and "< 10.0e0" in sql
    assert "1000.0e0" not in records_sql(items_spec(ttl=10), dialect=get_dialect("ansi"),
                                         now=1000.0, include_expired=True)


def test_ttl_views_put_cte_in_front_of_the_query():
    dialect = get_dialect("duckdb")
    plain = users_spec()
    timed = items_spec(ttl=5)
    assert ttl_views("SELECT 1", [plain], dialect=dialect, now=0) == "SELECT 1"
    out = ttl_views('SELECT * FROM "item-prices"', [plain, timed], dialect=dialect, now=9.0)
    assert out.startswith('WITH "item-prices" AS (SELECT * FROM "item-prices" WHERE 9.0e0 - ')
    merged = ttl_views("-- mine\nwith x AS (SELECT 1) SELECT * FROM x", [timed],
                       dialect=dialect, now=9.0)
    assert merged.startswith('WITH "item-prices" AS (') and merged.endswith(
        ",\nx AS (SELECT 1) SELECT * FROM x")
    recursive = ttl_views("WITH RECURSIVE r AS (SELECT 1) SELECT 1", [timed], dialect=dialect,
                          now=9.0)
    assert recursive.startswith('WITH RECURSIVE "item-prices" AS (')


def test_builder_methods_return_new_training_sets(fs_store):
    fs_store.create(items_spec())
    orders = pd.DataFrame({"itemId": ["a"], "ts": [0.0]})
    ts = fs_store.training_set(orders, event_time="ts")
    joined = ts.join("item-prices", features=["price"])
    assert ts.spec.joins == () and joined.spec.joins[0].group == "item-prices"
    timed = joined.as_of(MARCH).between(start=MARCH)
    assert joined.spec.as_of is None and timed.spec.as_of == MARCH
    assert timed.spec.start == MARCH and timed.spec.end is None
    assert "ASOF LEFT JOIN" in timed.sql()
    assert "item-prices" in repr(timed)
    with pytest.raises(SpecValidationError) as err:
        joined.as_of(dt.datetime(2024, 3, 1))
    assert err.value.field == "as_of"
    with pytest.raises(SpecValidationError) as err:
        fs_store.training_set(orders.rename(columns={"itemId": "__row"}), event_time="ts")
    assert err.value.field == "__row"
    with pytest.raises(SpecValidationError) as err:
        fs_store.training_set([1, 2], event_time="ts")
    assert err.value.field == "base"


def test_an_unordered_training_set_has_the_same_rows(fs_store):
    prices = fs_store.create(items_spec())
    prices.ingest(pd.DataFrame({"itemId": list("abcdef"),
                                "updated": [f"2024-03-01T00:00:0{i}Z" for i in range(6)],
                                "price": [float(i) for i in range(6)]}))
    ordered = prices.training_set().to_dataframe()
    assert ordered["price"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    loose = prices.training_set().ordered(False)
    assert "__sort_" not in loose.sql()
    got = loose.to_dataframe().sort_values("price", ignore_index=True)
    pd.testing.assert_frame_equal(got, ordered)


def test_a_group_base_can_join_on_a_column_it_does_not_output(fs_store):
    prices = fs_store.create(items_spec())
    prices.ingest(pd.DataFrame({"itemId": ["a"], "updated": ["2024-03-01T00:00:00Z"],
                                "price": [1.5]}))
    sales = fs_store.create(users_spec(name="sales"))
    sales.ingest(pd.DataFrame({"userId": [1], "EventTime": [MARCH.timestamp() + 60],
                               "age": [3], "score": [0.5], "city": ["a"]}))
    out = (sales.training_set(features=["userId", "age"])
           .join("item-prices", on="city", features=["price"]).to_dataframe())
    assert out.to_dict("records") == [{"userId": 1, "age": 3, "price": 1.5}]
