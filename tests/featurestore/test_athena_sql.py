"""The Athena side of the feature store's SQL: its text, and its meaning.

moto's Athena answers every query with no rows, so the meaning is checked with the
``athena_on_duckdb`` fixture: DuckDB runs the SQL the sagemaker backend sends to Athena, over
the Parquet objects the backend wrote to moto's S3 (resolved through the Glue tables). The
training sets and record reads are compared with the local backend's on the same writes: the
same spec must give the same rows on both backends (the local one with DuckDB's ASOF join and
with the window-function join both).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid

import pyarrow as pa
import pytest

from mlcycle.backends.local import LocalBackend
from mlcycle.errors import SpecValidationError
from mlcycle.featurestore.athena_sql import (
    AthenaDialect,
    athena_literal,
    resolve_tables,
    result_table,
    values_relation,
)
from mlcycle.featurestore.backend import EVENT_EPOCH, IngestBatch
from mlcycle.featurestore.spec import FeatureGroupSpec
from mlcycle.featurestore.training import (
    BASE_TABLE,
    BaseColumns,
    DuckDBDialect,
    FeatureJoin,
    SQLDialect,
    TrainingSetSpec,
    get_dialect,
    records_sql,
    training_sql,
    ttl_views,
)

pytestmark = pytest.mark.aws

TRACKS = FeatureGroupSpec(
    name="tracks",
    record_identifier="trackId",
    event_time="EventTime",
    features=[("trackId", "String"), ("EventTime", "Fractional"), ("plays", "Integral")],
    ttl=100,
)
USERS = FeatureGroupSpec(
    name="user-stats",
    record_identifier="userId",
    event_time="ts",
    features=[("userId", "Integral"), ("ts", "String"), ("mood", "String"), ("w", "Fractional")],
)
GROUPS = {"tracks": TRACKS, "user-stats": USERS}
SOURCES = {"tracks": ("sagemaker_featurestore", "tracks_1")}
W1 = dt.datetime(2024, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
W2 = dt.datetime(2024, 1, 1, 0, 0, 2, tzinfo=dt.UTC)
W3 = dt.datetime(2024, 1, 1, 0, 0, 3, tzinfo=dt.UTC)
W4 = dt.datetime(2024, 1, 1, 0, 0, 4, tzinfo=dt.UTC)


@pytest.fixture
def athena_on_duckdb():
    """A sagemaker backend on moto whose Athena runs each query in DuckDB over its S3 objects."""
    from mlcycle.testing.aws_featurestore import mock_feature_store_backend

    with mock_feature_store_backend(athena_polls=0) as env:
        yield env


def write(fs, spec, when, **columns):
    table = pa.table(columns)
    event = table.column(spec.event_time)
    if pa.types.is_string(event.type):
        epochs = [dt.datetime.fromisoformat(v).timestamp() for v in event.to_pylist()]
        epoch = pa.array(epochs, pa.float64())
    else:
        epoch = event.cast(pa.float64())
    table = table.append_column(EVENT_EPOCH, epoch)
    return fs.write_batch(
        spec, IngestBatch(table=table, write_time=when, batch_id=uuid.uuid4().hex), progress=None
    )


def history(fs):
    """The same writes on any backend: duplicates, a deletion, two groups, two time formats."""
    for spec in (TRACKS, USERS):
        fs.create_group(spec)
    ints = lambda *v: pa.array(v, pa.int64())  # noqa: E731
    write(
        fs,
        TRACKS,
        W1,
        trackId=["a", "a", "b", "c"],
        EventTime=[10.0, 50.0, 20.0, 5.0],
        plays=ints(1, 2, 7, 9),
    )
    write(fs, TRACKS, W2, trackId=["a", "a"], EventTime=[50.0, 200.0], plays=ints(3, 4))
    fs.delete_record(TRACKS, "b", event_time=30.0, hard=False, write_time=W3)
    write(fs, TRACKS, W4, trackId=["b"], EventTime=[40.0], plays=ints(8))
    write(
        fs,
        USERS,
        W1,
        userId=ints(7, 7, 8),
        ts=["1970-01-01T00:00:05Z", "1970-01-01T00:01:00Z", "1970-01-01T00:00:01Z"],
        mood=["calm", 'it\'s "loud"', None],
        w=[0.1, 1e-300, float("nan")],
    )
    return fs


@pytest.fixture
def both(athena_on_duckdb, tmp_path):
    local = LocalBackend(tmp_path / "ws")
    yield history(local.feature_store), history(athena_on_duckdb.backend.feature_store)
    local.close()


BASE = pa.table(
    {
        "trackId": ["a", "a", "a", "a", "a", "a", "b", "b", "b", "c", "zz"],
        "user": pa.array([7, 7, 8, 7, 7, 7, 7, 8, 7, 7, 7], pa.int64()),
        "at": [5.0, 10.0, 60.0, 149.0, 150.0, 250.0, 25.0, 35.0, 45.0, 5.0, 100.0],
    }
)


def base_input():
    n = BASE.num_rows
    return BASE.append_column("__row", pa.array(range(n), pa.int64())).append_column(
        "__t", BASE.column("at")
    )


def normalized(table):
    out = []
    for row in table.to_pylist():
        out.append(
            {k: ("nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        )
    return out


def run_training(fs, spec, dialect=None):
    dialect = dialect or get_dialect(fs.dialect)
    kinds = {"trackId": "string", "user": "integer", "at": "float"}
    if spec.base is None:
        query = training_sql(
            spec, groups=GROUPS, base_columns=BaseColumns(kinds=kinds), dialect=dialect
        )
        groups = [GROUPS[j.group] for j in spec.joins]
        return fs.sql(query, tables=groups, inputs={BASE_TABLE: base_input()})
    query = training_sql(spec, groups=GROUPS, dialect=dialect)
    names = dict.fromkeys([spec.base, *(j.group for j in spec.joins)])
    return fs.sql(query, tables=[GROUPS[n] for n in names])


TRAINING_SETS = {
    "table base": TrainingSetSpec(
        event_time="at",
        joins=[
            FeatureJoin(group="tracks", prefix="t_"),
            FeatureJoin(group="user-stats", on="user"),
        ],
    ),
    "as of": TrainingSetSpec(
        event_time="at", joins=[FeatureJoin(group="tracks", features=["plays"])], as_of=W1
    ),
    "include deleted": TrainingSetSpec(
        event_time="at", joins=[FeatureJoin(group="tracks")], include_deleted=True
    ),
    "time range": TrainingSetSpec(
        event_time="at",
        joins=[FeatureJoin(group="tracks")],
        start=dt.datetime.fromtimestamp(10, dt.UTC),
        end=dt.datetime.fromtimestamp(150, dt.UTC),
    ),
    "group base": TrainingSetSpec(
        base="tracks", joins=[FeatureJoin(group="user-stats", on="plays", prefix="u_")]
    ),
    "group base with duplicates": TrainingSetSpec(base="tracks", include_duplicates=True),
}


@pytest.mark.parametrize("name", list(TRAINING_SETS))
def test_training_sets_match_the_local_backend(both, name):
    local, sagemaker = both
    spec = TRAINING_SETS[name]
    expected = normalized(run_training(local, spec))
    assert normalized(run_training(local, spec, DuckDBDialect(asof=False))) == expected
    got = run_training(sagemaker, spec)
    assert normalized(got) == expected
    assert normalized(run_training(sagemaker, spec, AthenaDialect())) == expected
    assert got.num_rows > 0


def test_the_window_join_is_point_in_time_correct(both):
    _, sagemaker = both
    rows = run_training(sagemaker, TRAINING_SETS["table base"]).to_pylist()
    plays = [r["t_plays"] for r in rows]
    # before, equal time, duplicate -> later write, within ttl, ttl edge, latest, b before its
    # deletion (hidden: the marker hides older versions), b after it, b re-written, c, unknown
    assert plays == [None, 1, 3, 3, None, 4, None, None, 8, 9, None]
    assert [r["mood"] for r in rows][:4] == ["calm", "calm", None, 'it\'s "loud"']


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"latest": True},
        {"include_expired": True},
        {"include_deleted": True, "include_expired": True},
        {"as_of": W2, "include_expired": True, "include_duplicates": True},
    ],
)
def test_record_reads_match_the_local_backend(both, options):
    local, sagemaker = both
    outs = []
    for fs in (local, sagemaker):
        query = records_sql(TRACKS, dialect=get_dialect(fs.dialect), now=120.0, **options)
        outs.append(normalized(fs.sql(query, tables=[TRACKS])))
    assert outs[0] == outs[1]


def test_ttl_views_read_the_real_table_on_athena(both):
    local, sagemaker = both
    outs = []
    for fs in (local, sagemaker):
        query = ttl_views(
            'SELECT "trackId", "plays" FROM "tracks" ORDER BY "EventTime", "write_time"',
            [TRACKS],
            dialect=get_dialect(fs.dialect),
            now=120.0,
        )
        outs.append(fs.sql(query, tables=[TRACKS]).to_pylist())
    assert outs[0] == outs[1]
    # not expired at 120 s (ttl 100): b's marker and re-write, a@50 twice, a@200
    assert [r["plays"] for r in outs[1]] == [None, 8, 2, 3, 4]


def test_a_large_input_goes_through_a_temporary_glue_table(athena_on_duckdb):
    from mlcycle.backends.sagemaker.featurestore import SageMakerFeatureStoreBackend

    backend = athena_on_duckdb.backend
    history(backend.feature_store)
    fs = SageMakerFeatureStoreBackend(backend, inline_limit=0)
    spec = TRAINING_SETS["table base"]
    expected = run_training(backend.feature_store, spec)
    got = run_training(fs, spec)
    assert got.schema == expected.schema, (got.schema, expected.schema)
    assert normalized(got) == normalized(expected)
    assert "athena-inputs" not in str(athena_on_duckdb.athena.queries[-2])
    assert '"sagemaker_featurestore"."mlcycle_input_' in athena_on_duckdb.athena.queries[-1]
    glue = backend.client("glue")
    names = [t["Name"] for t in glue.get_tables(DatabaseName="sagemaker_featurestore")["TableList"]]
    assert not [n for n in names if n.startswith("mlcycle_input_")]
    listing = backend.client("s3").list_objects_v2(
        Bucket="mlcycle-test", Prefix="test/athena-inputs/"
    )
    assert listing.get("KeyCount", 0) == 0


def test_sql_sees_the_offline_columns_and_a_wrong_query_is_a_spec_error(athena_on_duckdb):
    fs = history(athena_on_duckdb.backend.feature_store)
    out = fs.sql(
        'SELECT "trackId", "plays", "write_time", "is_deleted" FROM "tracks" '
        'WHERE "trackId" = \'b\' ORDER BY "write_time"',
        tables=[TRACKS],
    )
    assert out.column_names == ["trackId", "plays", "write_time", "is_deleted"]
    assert out.column("is_deleted").to_pylist() == [False, True, False]
    assert out.column("write_time").to_pylist() == [W1, W3, W4]
    with pytest.raises(SpecValidationError) as info:
        fs.sql('SELECT "nope" FROM "tracks"', tables=[TRACKS])
    assert info.value.field == "sql" and "COLUMN_NOT_FOUND" in str(info.value)


def test_hostile_names_and_values_stay_inside_their_tokens(athena_on_duckdb):
    fs = athena_on_duckdb.backend.feature_store
    fs.create_group(TRACKS)
    evil = "x'); DROP TABLE t; --"
    write(fs, TRACKS, W1, trackId=[evil], EventTime=[1.0], plays=pa.array([9], pa.int64()))
    column = 'id"; DROP TABLE tracks; --'
    base = pa.table({column: [evil], "at": [2.0]})
    base = base.append_column("__row", pa.array([0], pa.int64())).append_column("__t", [[2.0]])
    spec = TrainingSetSpec(event_time="at", joins=[FeatureJoin(group="tracks", on=column)])
    kinds = BaseColumns(kinds={column: "string", "at": "float"})
    query = training_sql(spec, groups=GROUPS, dialect=get_dialect(fs.dialect), base_columns=kinds)
    out = fs.sql(query, tables=[TRACKS], inputs={BASE_TABLE: base})
    assert out.to_pylist() == [{column: evil, "at": 2.0, "plays": 9}]


# -- text ------------------------------------------------------------------------------------
def test_resolve_tables_splices_into_an_existing_with_after_comments():
    query = '-- a comment\n/* and another */ WITH x AS (SELECT 1) SELECT * FROM x, "tracks"'
    out = resolve_tables(query, tables=[TRACKS], sources=SOURCES)
    assert out.startswith('-- a comment\n/* and another */ WITH "tracks" AS (SELECT')
    assert out.count("WITH") == 1 and ", x AS (SELECT 1)" in out
    recursive = resolve_tables(
        "WITH RECURSIVE r(n) AS (SELECT 1) SELECT 1", tables=[TRACKS], sources=SOURCES
    )
    assert recursive.startswith('WITH RECURSIVE "tracks" AS')
    assert resolve_tables("SELECT 1") == "SELECT 1"


def test_resolve_tables_points_a_same_name_cte_at_the_real_table():
    query = (
        'WITH "tracks" AS (SELECT * FROM "tracks" WHERE plays > 1), '
        'y AS (SELECT * FROM "tracks" t JOIN tracks AS u ON 1 = 1) '
        'SELECT \'FROM "tracks"\' AS s FROM "tracks"'
    )
    out = resolve_tables(query, tables=[TRACKS], sources=SOURCES)
    glue = '"sagemaker_featurestore"."tracks_1")'
    assert out.count(glue) == 1  # only inside the CTE of the same name
    assert out.startswith('WITH "tracks" AS (SELECT * FROM (SELECT "trackId"')
    assert f'{glue} AS "tracks" WHERE plays > 1)' in out
    assert 'y AS (SELECT * FROM "tracks" t JOIN tracks AS u' in out
    assert out.endswith('SELECT \'FROM "tracks"\' AS s FROM "tracks"')


def test_the_athena_dialect_differs_from_ansi_only_in_literals():
    spec = TRAINING_SETS["table base"]
    kinds = BaseColumns(kinds={"trackId": "string", "user": "integer", "at": "float"})
    ansi = training_sql(spec, groups=GROUPS, base_columns=kinds, dialect=SQLDialect())
    athena = training_sql(spec, groups=GROUPS, base_columns=kinds, dialect=AthenaDialect())
    assert ansi == athena  # no NaN or infinity here, where sql_literal's '::' would differ
    assert AthenaDialect().literal(float("nan")) == "nan()"
    assert "::" not in AthenaDialect().timestamp(W1)


def test_literals():
    assert athena_literal(None) == "NULL"
    assert athena_literal(True) == "TRUE"
    assert athena_literal(float("nan")) == "nan()"
    assert athena_literal(float("-inf")) == "(-infinity())"
    assert athena_literal(-0.5) == "(-0.5e0)"
    assert athena_literal(1e300) == "1e+300"
    naive = dt.datetime(2024, 1, 1, 12)
    assert athena_literal(naive) == "TIMESTAMP '2024-01-01 12:00:00.000000'"
    with pytest.raises(SpecValidationError):
        athena_literal("a\x00b")
    with pytest.raises(SpecValidationError):
        athena_literal(b"bytes")


def test_values_relation_types_and_empty_tables():
    empty = values_relation(
        pa.table({"a": pa.array([], pa.int64()), "s": pa.array([], pa.string())})
    )
    assert empty == '(SELECT CAST(NULL AS bigint) AS "a", CAST(NULL AS varchar) AS "s" WHERE false)'
    with pytest.raises(SpecValidationError) as info:
        values_relation(pa.table({"a": [[1]]}))
    assert info.value.field == "inputs"


def test_result_table_restores_case_only_when_unambiguous():
    columns = [{"Name": "trackid", "Type": "varchar"}, {"Name": "x", "Type": "varchar"}]
    names = result_table(columns, [], query='SELECT "trackId", "X", "x"').column_names
    assert names == ["trackId", "x"]
    tz = result_table(
        [{"Name": "t", "Type": "timestamp with time zone"}],
        [["2024-01-01 01:00:00.000 Europe/Paris"], ["2024-01-01 00:00:00.000 UTC"]],
    )
    assert tz.column("t").to_pylist()[0] == tz.column("t").to_pylist()[1]
