"""Each flow step, run on DuckDB, against the same transform computed independently in pandas.

Inputs are small DataFrames and small CSV/Parquet files in ``tmp_path``. The functions at the
top of this module (``scale_column`` and friends) are the user code of the PythonStep tests.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlcycle.flow import (
    AddEventTime,
    Aggregate,
    CastColumns,
    DropColumns,
    DropMissing,
    FillMissing,
    Filter,
    Flow,
    Formula,
    Join,
    OneHotEncode,
    PythonStep,
    RenameColumns,
    SelectColumns,
    Source,
)

# --------------------------------------------------------------------------------------------
# user code for the PythonStep tests (imported by the engine as "<this module>:<name>")
# --------------------------------------------------------------------------------------------


def scale_column(df: pd.DataFrame, *, column: str, factor: float, output: str) -> pd.DataFrame:
    out = df.copy()
    out[output] = out[column] * factor
    return out


def top_rows(df: pd.DataFrame, *, by: str, n: int) -> pd.DataFrame:
    return df.sort_values(by, ascending=False).head(n).reset_index(drop=True)


FUNCTION = f"{__name__}:scale_column"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def frame_flow(*steps, names=("t",), outputs=()) -> Flow:
    return Flow(
        name="test",
        sources=[Source(name=n, format="dataframe") for n in names],
        steps=list(steps),
        outputs=list(outputs),
    )


def run_one(step, **frames) -> pd.DataFrame:
    """Run a single step over DataFrame sources named by ``frames``; return its output."""
    flow = frame_flow(step, names=tuple(frames))
    return flow.fit(frames).transform(frames, output=step.name)


def schema_of(flow: Flow, frames, name: str) -> dict[str, str]:
    with flow.run(frames, outputs=[name]) as run:
        return run.schema(name)


def same(got: pd.DataFrame, want: pd.DataFrame, *, sort_by=None) -> None:
    """Equal columns (in order) and values; dtypes may differ (object vs str, int64 vs Int64)."""
    assert list(got.columns) == list(want.columns)
    if sort_by is not None:
        got = got.sort_values(sort_by, kind="stable")
        want = want.sort_values(sort_by, kind="stable")
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False
    )


@pytest.fixture
def people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "name": ["ann", "bob", None, "dan", "eve", "fay"],
            "age": [31.0, np.nan, 45.0, 22.0, np.nan, 60.0],
            "city": ["Oslo", "Rome", "Oslo", None, "Lima", "Rome"],
            "score": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5],
        }
    )


# --------------------------------------------------------------------------------------------
# cast
# --------------------------------------------------------------------------------------------


def test_cast_columns_converts_values_like_pandas():
    df = pd.DataFrame(
        {
            "i": ["1", "-20", None, "300"],
            "f": ["5e-05", "1.5", "2", None],
            "s": [1, 2, 3, 4],
            "b": ["true", "false", None, "TRUE"],
            "ts": [
                "2020-01-01T00:00:00Z",
                "2020-06-30 12:30:00",
                None,
                "2021-01-01T01:00:00+01:00",
            ],
            "d": ["2020-01-31", None, "1999-12-31", "2024-02-29"],
        }
    )
    step = CastColumns(
        name="cast",
        input="t",
        columns={
            "i": "int",
            "f": "float",
            "s": "string",
            "b": "bool",
            "ts": "timestamp",
            "d": "date",
        },
    )
    flow = frame_flow(step)
    assert schema_of(flow, {"t": df}, "cast") == {
        "i": "BIGINT",
        "f": "DOUBLE",
        "s": "VARCHAR",
        "b": "BOOLEAN",
        "ts": "TIMESTAMP WITH TIME ZONE",
        "d": "DATE",
    }
    out = flow.transform({"t": df})
    assert out["i"].tolist()[:2] == [1, -20] and pd.isna(out["i"][2]) and out["i"][3] == 300
    np.testing.assert_array_equal(out["f"].to_numpy(float), [5e-05, 1.5, 2.0, np.nan])
    assert out["s"].tolist() == ["1", "2", "3", "4"]
    assert out["b"].tolist()[:2] == [True, False] and pd.isna(out["b"][2]) and out["b"][3]
    want_ts = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
    got_ts = pd.to_datetime(out["ts"], utc=True)
    assert got_ts.isna().tolist() == want_ts.isna().tolist()
    assert (got_ts.dropna() == want_ts.dropna()).all()
    got_d = [None if pd.isna(v) else pd.Timestamp(v).date().isoformat() for v in out["d"]]
    assert got_d == ["2020-01-31", None, "1999-12-31", "2024-02-29"]


def test_cast_keeps_the_other_columns_and_their_order(people):
    out = run_one(CastColumns(name="c", input="t", columns={"id": "float"}), t=people)
    assert list(out.columns) == list(people.columns)
    assert out["id"].dtype == np.float64
    same(out.drop(columns="id"), people.drop(columns="id"))


# --------------------------------------------------------------------------------------------
# drop / select / rename
# --------------------------------------------------------------------------------------------


def test_drop_columns(people):
    out = run_one(DropColumns(name="d", input="t", columns=["age", "city"]), t=people)
    same(out, people.drop(columns=["age", "city"]))


def test_drop_one_column_given_as_a_string(people):
    out = run_one(DropColumns(name="d", input="t", columns="score"), t=people)
    same(out, people.drop(columns="score"))


def test_select_columns_keeps_the_given_order(people):
    out = run_one(SelectColumns(name="s", input="t", columns=["score", "id", "name"]), t=people)
    same(out, people[["score", "id", "name"]])


def test_rename_columns(people):
    mapping = {"name": "full_name", "score": "points"}
    out = run_one(RenameColumns(name="r", input="t", mapping=mapping), t=people)
    same(out, people.rename(columns=mapping))


def test_rename_can_swap_two_names(people):
    mapping = {"age": "score", "score": "age"}
    out = run_one(RenameColumns(name="r", input="t", mapping=mapping), t=people)
    same(out, people.rename(columns=mapping))


# --------------------------------------------------------------------------------------------
# missing values
# --------------------------------------------------------------------------------------------


def test_fill_missing_like_fillna(people):
    values = {"age": -1.0, "name": "unknown", "city": "nowhere"}
    out = run_one(FillMissing(name="f", input="t", values=values), t=people)
    same(out, people.fillna(values))
    assert out.isna().sum().sum() == 0


def test_fill_missing_int_column_keeps_ints():
    df = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64")})
    out = run_one(FillMissing(name="f", input="t", values={"n": 0}), t=df)
    assert out["n"].tolist() == [1, 0, 3]
    assert schema_of(
        frame_flow(FillMissing(name="f", input="t", values={"n": 0})), {"t": df}, "f"
    ) == {"n": "BIGINT"}


def test_drop_missing_all_columns_and_a_subset(people):
    out_all = run_one(DropMissing(name="d", input="t"), t=people)
    same(out_all, people.dropna())
    out_sub = run_one(DropMissing(name="d", input="t", columns=["age"]), t=people)
    same(out_sub, people.dropna(subset=["age"]))


def test_nan_in_a_parquet_file_counts_as_missing(tmp_path):
    # pyarrow keeps a real NaN here (pa.Table.from_pandas would turn NaN into null)
    path = tmp_path / "nan.parquet"
    pq.write_table(pa.table({"k": [1, 2, 3, 4], "x": pa.array([1.0, math.nan, None, 4.0])}), path)
    sources = [Source(name="t", format="parquet", path=str(path))]
    dropped = Flow(
        name="p", sources=sources, steps=[DropMissing(name="d", input="t", columns=["x"])]
    ).transform()
    assert dropped["k"].tolist() == [1, 4]
    filled = Flow(
        name="p", sources=sources, steps=[FillMissing(name="f", input="t", values={"x": 0.0})]
    ).transform()
    assert filled["x"].tolist() == [1.0, 0.0, 0.0, 4.0]


# --------------------------------------------------------------------------------------------
# one-hot
# --------------------------------------------------------------------------------------------


@pytest.fixture
def colors() -> pd.DataFrame:
    return pd.DataFrame(
        {"id": [1, 2, 3, 4, 5], "color": ["red", "blue", "red", "green", None], "v": range(5)}
    )


def _dummies(df: pd.DataFrame, column: str, **kwargs) -> pd.DataFrame:
    """pandas' one-hot, placed where the column was (as the flow places it)."""
    pos = df.columns.get_loc(column)
    dummies = pd.get_dummies(df[column], prefix=column, dtype="int64", **kwargs)
    return pd.concat([df.iloc[:, :pos], dummies, df.iloc[:, pos + 1 :]], axis=1)


def test_one_hot_keeps_every_category_like_get_dummies(colors):
    step = OneHotEncode(name="o", input="t", column="color")
    fitted = frame_flow(step).fit({"t": colors})
    assert fitted.node("o").categories == ("blue", "green", "red")
    out = fitted.transform({"t": colors})
    same(out, _dummies(colors, "color"))
    assert (
        out.loc[colors["color"].isna(), ["color_blue", "color_green", "color_red"]].sum().sum() == 0
    )


def test_one_hot_drop_first_like_get_dummies(colors):
    out = run_one(OneHotEncode(name="o", input="t", column="color", drop="first"), t=colors)
    same(out, _dummies(colors, "color", drop_first=True))


def test_one_hot_drop_a_named_category(colors):
    out = run_one(OneHotEncode(name="o", input="t", column="color", drop="green"), t=colors)
    same(out, _dummies(colors, "color").drop(columns="color_green"))


def test_one_hot_prefix_and_keep_input(colors):
    step = OneHotEncode(name="o", input="t", column="color", prefix="is_", keep_input=True)
    out = run_one(step, t=colors)
    assert list(out.columns) == ["id", "color", "is_blue", "is_green", "is_red", "v"]
    want = pd.get_dummies(colors["color"], prefix="is", prefix_sep="_", dtype="int64")
    same(out[["is_blue", "is_green", "is_red"]], want)
    same(out[["id", "color", "v"]], colors[["id", "color", "v"]])


def test_one_hot_of_a_numeric_column_uses_its_text():
    df = pd.DataFrame({"k": [3, 1, 3, 2]})
    out = run_one(OneHotEncode(name="o", input="t", column="k"), t=df)
    same(out, pd.get_dummies(df["k"].astype(str), prefix="k", dtype="int64"))


@pytest.mark.parametrize("handle_unknown", ["ignore", "keep"])
def test_one_hot_fitted_once_encodes_batch_and_single_record_identically(colors, handle_unknown):
    flow = frame_flow(
        OneHotEncode(name="o", input="t", column="color", handle_unknown=handle_unknown)
    ).fit({"t": colors})
    batch = pd.DataFrame(
        {"id": [10, 11, 12, 13], "color": ["green", "purple", None, "red"], "v": [9, 8, 7, 6]}
    )
    out = flow.transform({"t": batch})
    # the fitted categories, not the batch's: purple gets no column of its own
    want = pd.DataFrame(
        {
            "id": [10, 11, 12, 13],
            "color_blue": [0, 0, 0, 0],
            "color_green": [1, 0, 0, 0],
            "color_red": [0, 0, 0, 1],
        }
    )
    if handle_unknown == "keep":
        want["color_other"] = [0, 1, 0, 0]
    want["v"] = [9, 8, 7, 6]
    same(out, want)
    # each row on its own, as an online record, encodes exactly as in the batch
    for i in range(len(batch)):
        one = flow.transform({"t": batch.iloc[[i]].reset_index(drop=True)})
        same(one, out.iloc[[i]])
    # and the fitted state did not move
    assert flow.node("o").categories == ("blue", "green", "red")


def test_one_hot_unknown_error_names_the_step_and_column(colors):
    from mlcycle.errors import SpecValidationError

    flow = frame_flow(
        OneHotEncode(name="o", input="t", column="color", handle_unknown="error")
    ).fit({"t": colors})
    same(flow.transform({"t": colors.iloc[[0]]}), _dummies(colors, "color").iloc[[0]])
    with pytest.raises(SpecValidationError) as info:
        flow.transform({"t": pd.DataFrame({"id": [1], "color": ["purple"], "v": [0]})})
    assert (info.value.step, info.value.field) == ("o", "color")


def test_one_hot_given_categories_are_not_refitted(colors):
    step = OneHotEncode(name="o", input="t", column="color", categories=["red", "blue"])
    flow = frame_flow(step)
    assert flow.is_fitted
    assert flow.fit({"t": colors}).node("o").categories == ("red", "blue")
    refit = flow.fit({"t": colors}, refit=True)
    assert refit.node("o").categories == ("blue", "green", "red")
    out = flow.transform({"t": colors})
    assert list(out.columns) == ["id", "color_red", "color_blue", "v"]
    assert out["color_red"].tolist() == [1, 0, 1, 0, 0]


def test_one_hot_with_no_categories_and_keep_marks_every_value_other():
    step = OneHotEncode(name="o", input="t", column="c", handle_unknown="keep", categories=[])
    out = run_one(step, t=pd.DataFrame({"c": ["a", None, "b"]}))
    assert out["c_other"].tolist() == [1, 0, 1]


# --------------------------------------------------------------------------------------------
# formula and filter
# --------------------------------------------------------------------------------------------


@pytest.fixture
def songs() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 50
    return pd.DataFrame(
        {
            "valence": rng.random(n),
            "liveness": rng.random(n),
            "energy": rng.random(n),
            "Rating": rng.integers(1, 6, n),
            "genre": rng.choice(["Jazz", "Blues", "Rock"], n),
        }
    )


def test_formula_adds_a_column(songs):
    step = Formula(
        name="f", input="t", output="dance", expression="0.3*valence + 0.1*liveness + 0.1*energy"
    )
    out = run_one(step, t=songs)
    want = 0.3 * songs["valence"] + 0.1 * songs["liveness"] + 0.1 * songs["energy"]
    assert list(out.columns) == [*songs.columns, "dance"]
    np.testing.assert_allclose(out["dance"], want, rtol=1e-12)
    same(out.drop(columns="dance"), songs)


def test_formula_replaces_a_column_in_place(songs):
    out = run_one(Formula(name="f", input="t", output="energy", expression="energy ** 2"), t=songs)
    assert list(out.columns) == list(songs.columns)
    np.testing.assert_allclose(out["energy"], songs["energy"] ** 2, rtol=1e-12)


def test_formula_true_division_and_conditional():
    df = pd.DataFrame({"a": [7, -7, 1], "b": [2, 2, 4]})
    out = run_one(
        Formula(name="f", input="t", output="q", expression="a / b if a > 0 else -1"), t=df
    )
    assert out["q"].tolist() == [3.5, -1.0, 0.25]


def test_filter_like_a_pandas_mask(songs):
    step = Filter(name="k", input="t", predicate="Rating == 5 and genre in ('Jazz', 'Blues')")
    out = run_one(step, t=songs)
    want = songs[(songs["Rating"] == 5) & songs["genre"].isin(["Jazz", "Blues"])]
    assert 0 < len(want) < len(songs)
    same(out, want, sort_by=["valence"])


def test_filter_drops_rows_where_the_predicate_is_missing():
    df = pd.DataFrame({"x": [1.0, np.nan, 3.0]})
    out = run_one(Filter(name="k", input="t", predicate="x > 0"), t=df)
    assert out["x"].tolist() == [1.0, 3.0]
    kept = run_one(Filter(name="k", input="t", predicate="x is None or x > 2"), t=df)
    assert kept["x"].isna().tolist() == [True, False]


# --------------------------------------------------------------------------------------------
# join
# --------------------------------------------------------------------------------------------


@pytest.fixture
def orders() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order": [100, 101, 102, 103, 104],
            "cust": [1, 2, 1, 9, 3],
            "amount": [10.0, 20.0, 30.0, 40.0, 50.0],
            "note": ["a", "b", "c", "d", "e"],
        }
    )


@pytest.fixture
def customers() -> pd.DataFrame:
    return pd.DataFrame(
        {"cust": [1, 2, 3, 4], "cname": ["ann", "bob", "cy", "di"], "note": ["w", "x", "y", "z"]}
    )


@pytest.mark.parametrize("how", ["inner", "left", "right", "outer"])
def test_join_like_merge(orders, customers, how):
    step = Join(name="j", left="o", right="c", on="cust", how=how, suffixes=("_o", "_c"))
    out = run_one(step, o=orders, c=customers)
    want = orders.merge(customers, on="cust", how=how, suffixes=("_o", "_c"))
    same(out, want, sort_by=["cust", "order"])


def test_join_default_suffixes_only_rename_the_right_side(orders, customers):
    out = run_one(Join(name="j", left="o", right="c", on="cust"), o=orders, c=customers)
    want = orders.merge(customers, on="cust", suffixes=("", "_right"))
    assert list(out.columns) == ["order", "cust", "amount", "note", "cname", "note_right"]
    same(out, want, sort_by=["order"])


def test_join_left_on_right_on_keeps_both_keys(orders, customers):
    right = customers.rename(columns={"cust": "cid"})
    step = Join(name="j", left="o", right="c", left_on=["cust"], right_on=["cid"], how="left")
    out = run_one(step, o=orders, c=right)
    want = orders.merge(right, left_on="cust", right_on="cid", how="left", suffixes=("", "_right"))
    same(out, want, sort_by=["order"])


def test_join_on_two_keys():
    left = pd.DataFrame({"a": [1, 1, 2], "b": ["x", "y", "x"], "v": [1, 2, 3]})
    right = pd.DataFrame({"a": [1, 2, 2], "b": ["y", "x", "y"], "w": [10, 20, 30]})
    out = run_one(Join(name="j", left="l", right="r", on=["a", "b"]), l=left, r=right)
    same(out, left.merge(right, on=["a", "b"]), sort_by=["a", "b"])


# --------------------------------------------------------------------------------------------
# aggregate
# --------------------------------------------------------------------------------------------


def test_aggregate_like_groupby(songs):
    step = Aggregate(
        name="g",
        input="t",
        group_by="genre",
        aggregations={
            "mean_energy": ("mean", "energy"),
            "sum_rating": ("sum", "Rating"),
            "n": ("count", "*"),
            "n_valence": ("count", "valence"),
            "min_rating": ("min", "Rating"),
            "max_valence": ("max", "valence"),
        },
    )
    out = run_one(step, t=songs)
    want = (
        songs.groupby("genre")
        .agg(
            mean_energy=("energy", "mean"),
            sum_rating=("Rating", "sum"),
            n=("genre", "size"),
            n_valence=("valence", "count"),
            min_rating=("Rating", "min"),
            max_valence=("valence", "max"),
        )
        .reset_index()
    )
    # rows come sorted by the group keys
    assert out["genre"].tolist() == sorted(songs["genre"].unique())
    same(out, want)
    # integer sums and counts stay integers
    assert out["sum_rating"].dtype.kind == "i" and out["n"].dtype.kind == "i"


def test_aggregate_skips_missing_values_like_pandas():
    df = pd.DataFrame({"k": ["a", "a", "b", "b"], "x": [1.0, np.nan, np.nan, np.nan]})
    step = Aggregate(
        name="g",
        input="t",
        group_by=["k"],
        aggregations={"m": ("mean", "x"), "c": ("count", "x"), "s": ("sum", "x")},
    )
    out = run_one(step, t=df)
    assert out["m"].tolist()[0] == 1.0 and math.isnan(out["m"].tolist()[1])
    assert out["c"].tolist() == [1, 0]
    assert out["s"].tolist()[0] == 1.0


def test_aggregate_without_groups_gives_one_row(songs):
    step = Aggregate(
        name="g",
        input="t",
        group_by=(),
        aggregations={"n": ("count", "*"), "avg": ("mean", "Rating"), "top": ("max", "energy")},
    )
    out = run_one(step, t=songs)
    assert len(out) == 1
    assert out["n"][0] == len(songs)
    assert out["avg"][0] == pytest.approx(songs["Rating"].mean(), rel=1e-12)
    assert out["top"][0] == songs["energy"].max()


def test_aggregate_by_two_keys(songs):
    songs = songs.assign(top=songs["Rating"] >= 4)
    step = Aggregate(
        name="g",
        input="t",
        group_by=["genre", "top"],
        aggregations={"e": ("mean", "energy")},
    )
    out = run_one(step, t=songs)
    want = songs.groupby(["genre", "top"])["energy"].mean().rename("e").reset_index()
    same(out, want)


# --------------------------------------------------------------------------------------------
# event time
# --------------------------------------------------------------------------------------------


def test_event_time_from_epoch_seconds_and_milliseconds():
    df = pd.DataFrame({"ts": [1_576_000_000, 1_594_000_123], "ms": [1_576_000_000_250, 5]})
    out = run_one(AddEventTime(name="e", input="t", column="ts"), t=df)
    assert out["EventTime"].tolist() == [1_576_000_000.0, 1_594_000_123.0]
    out_ms = run_one(AddEventTime(name="e", input="t", column="ms", unit="ms"), t=df)
    assert out_ms["EventTime"].tolist() == [1_576_000_000.25, 0.005]


def test_event_time_from_timestamps_and_iso_strings():
    stamps = pd.Series(
        pd.to_datetime(["2020-01-01T00:00:01.25Z", "2021-06-30T12:00:00Z"], format="ISO8601")
    )
    want = [(s - pd.Timestamp("1970-01-01", tz="UTC")).total_seconds() for s in stamps]
    df = pd.DataFrame(
        {
            "aware": stamps,
            "naive": stamps.dt.tz_localize(None),
            "text": ["2020-01-01T01:00:01.25+01:00", "2021-06-30 12:00:00Z"],
        }
    )
    for column in ("aware", "naive", "text"):
        out = run_one(AddEventTime(name="e", input="t", column=column, output="when"), t=df)
        assert out["when"].tolist() == pytest.approx(want, abs=1e-6), column


def test_event_time_constant_and_iso_output():
    df = pd.DataFrame({"x": [1, 2]})
    out = run_one(AddEventTime(name="e", input="t", value="2019-12-01T00:00:00Z"), t=df)
    want = pd.Timestamp("2019-12-01T00:00:00Z").timestamp()
    assert out["EventTime"].tolist() == [want, want]
    num = run_one(AddEventTime(name="e", input="t", value=1_500_000_000.5), t=df)
    assert num["EventTime"].tolist() == [1_500_000_000.5] * 2
    iso = run_one(AddEventTime(name="e", input="t", value=1_577_836_801.25, format="iso"), t=df)
    # Feature Store's string form: yyyy-MM-dd'T'HH:mm:ss.SSSZ
    assert iso["EventTime"].tolist() == ["2020-01-01T00:00:01.250Z"] * 2


def test_event_time_replaces_an_existing_column():
    df = pd.DataFrame({"EventTime": [0, 0], "ts": [10, 20]})
    out = run_one(AddEventTime(name="e", input="t", column="ts"), t=df)
    assert list(out.columns) == ["EventTime", "ts"]
    assert out["EventTime"].tolist() == [10.0, 20.0]


# --------------------------------------------------------------------------------------------
# python step
# --------------------------------------------------------------------------------------------


def test_python_step_runs_user_code_and_is_local_only(songs):
    step = PythonStep(
        name="py",
        input="t",
        function=FUNCTION,
        params={"column": "energy", "factor": 2.5, "output": "boost"},
    )
    flow = frame_flow(step, Filter(name="k", input="py", predicate="boost > 1"))
    assert step.local_only and flow.local_only
    assert not frame_flow(Filter(name="k", input="t", predicate="energy > 1")).local_only
    out = flow.transform({"t": songs})
    want = scale_column(songs, column="energy", factor=2.5, output="boost")
    same(out, want[want["boost"] > 1], sort_by=["valence"])


def test_python_step_output_feeds_later_steps(songs):
    flow = frame_flow(
        PythonStep(
            name="py", input="t", function=f"{__name__}:top_rows", params={"by": "energy", "n": 3}
        ),
        Formula(name="f", input="py", output="e2", expression="energy * 2"),
    )
    out = flow.transform({"t": songs})
    want = top_rows(songs, by="energy", n=3)
    np.testing.assert_allclose(out["e2"], want["energy"] * 2)


# --------------------------------------------------------------------------------------------
# reading files
# --------------------------------------------------------------------------------------------


def test_csv_source_infers_types_and_reads_scientific_notation_as_float(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('id,x,name,flag\n1,5e-05,ann,true\n2,0.25,bob,false\n3,1.5E-3,"cy, jr",true\n')
    flow = Flow(
        name="csv",
        sources=[Source(name="t", path=str(path))],
        steps=[SelectColumns(name="s", input="t", columns=["id", "x", "name", "flag"])],
    )
    with flow.run() as run:
        assert run.schema("s") == {
            "id": "BIGINT",
            "x": "DOUBLE",
            "name": "VARCHAR",
            "flag": "BOOLEAN",
        }
        out = run.to_pandas("s")
    same(out, pd.read_csv(path))
    assert out["x"].tolist() == [5e-05, 0.25, 0.0015]


def test_csv_schema_casts_named_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("code,v,when\n007,5e-05,2020-01-01T00:00:00Z\n010,2,2020-01-02T00:00:00Z\n")
    source = Source(name="t", path=str(path), schema={"code": "string", "v": "float"})
    flow = Flow(
        name="csv",
        sources=[source],
        steps=[SelectColumns(name="s", input="t", columns=["code", "v"])],
    )
    out = flow.transform()
    # as text the leading zeros survive; inferred, the column would be an int
    assert out["code"].tolist() == ["007", "010"]
    assert out["v"].tolist() == [5e-05, 2.0]


def test_csv_with_another_delimiter(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a;b\n1;x\n2;y\n")
    flow = Flow(name="csv", sources=[Source(name="t", path=str(path), delimiter=";")])
    same(flow.transform(output="t"), pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))


def test_a_glob_of_csv_files_is_one_table(tmp_path):
    (tmp_path / "part-1.csv").write_text("x,y\n1,a\n2,b\n")
    (tmp_path / "part-2.csv").write_text("x,y\n3,c\n")
    flow = Flow(name="glob", sources=[Source(name="t", path=str(tmp_path / "part-*.csv"))])
    out = flow.transform(output="t").sort_values("x")
    assert out.to_dict("list") == {"x": [1, 2, 3], "y": ["a", "b", "c"]}


def test_parquet_source_with_schema_cast(tmp_path):
    df = pd.DataFrame({"k": ["1", "2", "3"], "v": [1.5, 2.5, 3.5]})
    path = tmp_path / "t.parquet"
    df.to_parquet(path)
    flow = Flow(
        name="pq",
        sources=[Source(name="t", format="parquet", path=str(path), schema={"k": "int"})],
        steps=[Formula(name="f", input="t", output="kv", expression="k * v")],
    )
    out = flow.transform()
    assert out["k"].tolist() == [1, 2, 3]
    assert out["kv"].tolist() == [1.5, 5.0, 10.5]


def test_a_path_bound_at_run_time_overrides_the_source_path(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("x\n1\n")
    b.write_text("x\n2\n3\n")
    flow = Flow(
        name="bind",
        sources=[Source(name="t", path=str(a))],
        steps=[Formula(name="f", input="t", output="y", expression="x * 10")],
    )
    assert flow.transform()["y"].tolist() == [10]
    assert flow.transform({"t": str(b)})["y"].tolist() == [20, 30]
    assert flow.transform({"t": b})["y"].tolist() == [20, 30]
    assert flow.transform({"t": pd.DataFrame({"x": [4]})})["y"].tolist() == [40]
    assert flow.transform({"t": pa.table({"x": [5]})})["y"].tolist() == [50]


def test_a_dataframe_source_reads_a_bound_parquet_or_csv_path(tmp_path):
    df = pd.DataFrame({"x": [1.5, 2.5]})
    df.to_parquet(tmp_path / "d.parquet")
    df.to_csv(tmp_path / "d.csv", index=False)
    flow = frame_flow(Formula(name="f", input="t", output="y", expression="x * 2"))
    for name in ("d.parquet", "d.csv"):
        assert flow.transform({"t": tmp_path / name})["y"].tolist() == [3.0, 5.0]


# --------------------------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------------------------


def test_outputs_to_pandas_arrow_parquet_and_csv_agree(tmp_path, people):
    flow = frame_flow(
        FillMissing(name="f", input="t", values={"age": 0.0, "name": "?", "city": "?"}),
        Formula(name="g", input="f", output="double", expression="score * 2"),
    )
    with flow.run({"t": people}) as run:
        frame = run.to_pandas("g")
        table = run.to_arrow("g")
        assert run.count("g") == len(people)
        assert run.columns("g") == (*people.columns, "double")
        assert run.to_parquet("g", tmp_path / "g.parquet") == tmp_path / "g.parquet"
        assert run.to_csv("g", tmp_path / "g.csv") == tmp_path / "g.csv"
        run.write("g", tmp_path / "sub" / "w.pq")
    same(table.to_pandas(), frame)
    same(pd.read_parquet(tmp_path / "g.parquet"), frame)
    same(pd.read_parquet(tmp_path / "sub" / "w.pq"), frame)
    same(pd.read_csv(tmp_path / "g.csv"), frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.csv", "g.parquet", "sub"]


def test_a_flow_with_several_outputs(people):
    flow = frame_flow(
        Filter(name="old", input="t", predicate="age > 40"),
        Filter(name="young", input="t", predicate="age <= 40"),
    )
    assert flow.output_names == ("old", "young")
    with flow.run({"t": people}) as run:
        assert run.to_pandas("old")["id"].tolist() == [3, 6]
        assert run.to_pandas("young")["id"].tolist() == [1, 4]


def test_progress_is_reported(people, tmp_path):
    calls = []
    flow = frame_flow(Filter(name="k", input="t", predicate="age > 40"))
    with flow.run({"t": people}, progress=lambda *a: calls.append(a)) as run:
        run.to_csv("k", tmp_path / "k.csv")
    assert calls[0][1:] == (1, 2) and calls[1][1:] == (2, 2)
    assert calls[-1][1:] == (1, 1)
