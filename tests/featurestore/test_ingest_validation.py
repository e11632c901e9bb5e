"""Validation and normalization of ingest input (no backend needed)."""

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlcycle.errors import SpecValidationError
from mlcycle.featurestore import FeatureGroupSpec
from mlcycle.featurestore.backend import EVENT_EPOCH
from mlcycle.featurestore.ingest import (
    format_iso,
    normalize_record_id,
    prepare_batch,
    to_epoch,
)

NOW = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
T0 = NOW.timestamp()


def spec(time_type="Fractional", id_type="Integral"):
    return FeatureGroupSpec(
        name="g", record_identifier="id", event_time="t",
        features=[("id", id_type), ("t", time_type), ("n", "Integral"), ("x", "Fractional"),
                  ("s", "String")],
    )


def prepare(data, s=None, **kw):
    return prepare_batch(s or spec(), data, write_time=NOW, **kw).table


def base(**over):
    cols = {"id": [1, 2], "t": [T0, T0 + 1], "n": [1, 2], "x": [0.5, 1.5], "s": ["a", "b"]}
    cols.update(over)
    return pd.DataFrame(cols)


def test_output_is_typed_in_spec_order_with_the_event_epoch():
    df = base()[["s", "x", "n", "t", "id"]]  # any column order
    table = prepare(df)
    assert table.column_names == ["id", "t", "n", "x", "s", EVENT_EPOCH]
    assert table.schema.types == [pa.int64(), pa.float64(), pa.int64(), pa.float64(),
                                  pa.string(), pa.float64()]
    assert table.column(EVENT_EPOCH).to_pylist() == [T0, T0 + 1]


def test_lenient_but_lossless_conversions():
    df = base(n=[True, False], x=[1, 2], id=[1.0, 2.0])
    table = prepare(df)
    assert table.column("n").to_pylist() == [1, 0]
    assert table.column("x").to_pylist() == [1.0, 2.0]
    assert table.column("id").to_pylist() == [1, 2]
    table = prepare(base(x=[np.nan, 1.0], n=[np.nan, 3.0], s=pd.Categorical(["a", None])))
    assert table.column("x").to_pylist() == [None, 1.0]
    assert table.column("n").to_pylist() == [None, 3]
    assert table.column("s").to_pylist() == ["a", None]


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("n", [1.5, 2.0]),
        ("n", ["1", "2"]),
        ("x", ["0.5", "1"]),
        ("s", [1, 2]),
        ("id", [None, 2]),
        ("t", [T0, None]),
        ("t", [-1.0, T0]),
        ("t", [1e12, T0]),
        ("t", [float("nan"), T0]),
    ],
)
def test_bad_values_name_the_column(column, values):
    with pytest.raises(SpecValidationError) as err:
        prepare(base(**{column: values}))
    assert err.value.field == column


def test_unsigned_integers_beyond_int64_are_refused():
    table = pa.table({"id": pa.array([1, 2**63], pa.uint64()), "t": [T0, T0], "n": [1, 2],
                      "x": [0.0, 0.0], "s": ["a", "b"]})
    with pytest.raises(SpecValidationError) as err:
        prepare(table)
    assert err.value.field == "id"


def test_empty_string_record_id_is_refused():
    with pytest.raises(SpecValidationError) as err:
        prepare(base(id=["a", ""]), spec(id_type="String"))
    assert err.value.field == "id"


def test_columns_are_checked_first():
    df = base()
    df.columns = ["id", "t", "n", "x", "x"]
    with pytest.raises(SpecValidationError) as err:
        prepare(df)
    assert err.value.field == "x"
    with pytest.raises(SpecValidationError) as err:
        prepare(base().rename(columns={1: "t"}).set_axis(["id", "t", "n", "x", 7], axis=1))
    assert err.value.field == "7"


def test_event_times_in_every_accepted_form():
    moments = ["2024-03-01T00:00:00Z", "2024-03-01T00:00:01.250Z"]
    epochs = [T0, T0 + 1.25]
    naive = pd.to_datetime(["2024-03-01 00:00:00", "2024-03-01 00:00:01.250"], format="ISO8601")
    aware = naive.tz_localize("UTC").tz_convert("Europe/Oslo")
    for values in (moments, epochs, naive, aware):
        fractional = prepare(base(t=values))
        assert fractional.column("t").to_pylist() == epochs
        string = prepare(base(t=values), spec(time_type="String"))
        assert string.column(EVENT_EPOCH).to_pylist() == epochs
        expected = moments if values is moments else ["2024-03-01T00:00:00.000Z",
                                                      "2024-03-01T00:00:01.250Z"]
        assert string.column("t").to_pylist() == expected
    dates = pa.table({"id": [1], "t": pa.array([dt.date(2024, 3, 1)]), "n": [1], "x": [1.0],
                      "s": ["a"]})
    assert prepare(dates).column("t").to_pylist() == [T0]


@pytest.mark.parametrize("bad", ["2024-03-01", "2024-03-01T00:00:00", "2024-03-01T00:00:00+01:00",
                                 "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z",
                                 "2024-03-01T00:00:00.5Z"])
def test_iso_strings_must_be_sagemakers_forms(bad):
    with pytest.raises(SpecValidationError) as err:
        prepare(base(t=["2024-03-01T00:00:00Z", bad]), spec(time_type="String"))
    assert err.value.field == "t"


def test_progress_is_reported_in_chunks(monkeypatch):
    import mlcycle.featurestore.ingest as ingest

    monkeypatch.setattr(ingest, "CHUNK_ROWS", 3)
    calls = []
    df = pd.DataFrame({"id": range(8), "t": [T0] * 8, "n": range(8), "x": [0.0] * 8,
                       "s": ["a"] * 8})
    prepare_batch(spec(), df, write_time=NOW, progress=lambda *c: calls.append(c))
    assert calls == [("validate g", 3, 8), ("validate g", 6, 8), ("validate g", 8, 8)]
    df["n"] = df["n"].astype(float)
    df.loc[7, "n"] = 0.5  # a bad row in the last chunk: nothing comes back at all
    with pytest.raises(SpecValidationError):
        prepare_batch(spec(), df, write_time=NOW)


def test_parquet_files_and_folders(tmp_path):
    table = pa.Table.from_pandas(base(), preserve_index=False)
    pq.write_table(table, tmp_path / "a.parquet")
    (tmp_path / "more").mkdir()
    pq.write_table(table.slice(0, 1), tmp_path / "more" / "b.parquet")
    assert prepare(tmp_path / "a.parquet").num_rows == 2
    assert prepare(str(tmp_path)).num_rows == 3
    with pytest.raises(SpecValidationError) as err:
        prepare(tmp_path / "nothing.parquet")
    assert err.value.field == "data"
    pq.write_table(table.drop_columns(["s"]), tmp_path / "more" / "c.parquet")
    with pytest.raises(SpecValidationError) as err:
        prepare(str(tmp_path))
    assert err.value.field == "data"


def test_flow_runs_and_their_outputs():
    from mlcycle.flow import Flow, Formula, Source

    flow = Flow(name="f", sources=[Source(name="raw")],
                steps=[Formula(name="out", input="raw", output="x", expression="n * 0.5")],
                outputs=["out"])
    raw = base().drop(columns=["x"])
    with flow.run({"raw": raw}) as run:
        assert prepare(run).column("x").to_pylist() == [0.5, 1.0]
        assert prepare(run, output="out").num_rows == 2
        with pytest.raises(SpecValidationError) as err:
            prepare(run, output="nope")
        assert err.value.field == "output"
    with pytest.raises(SpecValidationError) as err:
        prepare(base(), output="out")
    assert err.value.field == "output"
    with pytest.raises(SpecValidationError) as err:
        prepare([1, 2, 3])
    assert err.value.field == "data"


def test_scalar_helpers():
    assert to_epoch("2024-03-01T00:00:00", field="f") == T0
    assert to_epoch(NOW, field="f") == T0 and to_epoch(5, field="f") == 5.0
    for bad in (dt.datetime(2024, 3, 1), "soon", True, float("inf"), None):
        with pytest.raises(SpecValidationError) as err:
            to_epoch(bad, field="when")
        assert err.value.field == "when"
    assert format_iso(T0 + 0.0019) == "2024-03-01T00:00:00.001Z"
    assert normalize_record_id(spec(), "42") == 42
    assert normalize_record_id(spec(id_type="String"), 42) == "42"
    for bad, kind in ((1.5, "Integral"), ("x1", "Integral"), (None, "String"), ("", "String")):
        with pytest.raises(SpecValidationError) as err:
            normalize_record_id(spec(id_type=kind), bad)
        assert err.value.field == "record_id"
