"""Bad flows and bad data: SpecValidationError naming the step and field, and atomic writes.

Every check here is on the error's type and its ``.step`` / ``.field``, never on its message.
"""

from __future__ import annotations

import pandas as pd
import pytest

from mlcycle.errors import NotFoundError, SpecValidationError
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


def returns_a_list(df: pd.DataFrame) -> list:
    return [1, 2]


def duplicate_case(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(X=1, x=2)


DF = pd.DataFrame(
    {
        "x": [1, 2, 3],
        "y": [0.5, None, 1.5],
        "s": ["a", "b", None],
        "flag": [True, False, True],
    }
)


def _flow(*steps, sources=None) -> Flow:
    return Flow(
        name="bad",
        sources=sources or [Source(name="t", format="dataframe")],
        steps=list(steps),
    )


def _error_of(flow: Flow, frames=None, *, output=None) -> SpecValidationError:
    with pytest.raises(SpecValidationError) as info:
        flow.transform({"t": DF} if frames is None else frames, output=output)
    return info.value


def where(exc: SpecValidationError) -> tuple[str | None, str | None]:
    return exc.step, exc.field


# --------------------------------------------------------------------------------------------
# missing columns: found when the run is planned, from the real input schema
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "field"),
    [
        (CastColumns(name="bad_step", input="t", columns={"nope": "int"}), "nope"),
        (DropColumns(name="bad_step", input="t", columns=["x", "nope"]), "nope"),
        (SelectColumns(name="bad_step", input="t", columns=["nope", "x"]), "nope"),
        (RenameColumns(name="bad_step", input="t", mapping={"nope": "z"}), "nope"),
        (FillMissing(name="bad_step", input="t", values={"nope": 0}), "nope"),
        (DropMissing(name="bad_step", input="t", columns=["nope"]), "nope"),
        (OneHotEncode(name="bad_step", input="t", column="nope"), "column"),
        (Formula(name="bad_step", input="t", output="z", expression="x + nope"), "expression"),
        (Filter(name="bad_step", input="t", predicate="nope > 1"), "predicate"),
        (AddEventTime(name="bad_step", input="t", column="nope"), "column"),
        (
            Aggregate(
                name="bad_step", input="t", group_by="nope", aggregations={"n": ("count", "*")}
            ),
            "group_by",
        ),
        (
            Aggregate(
                name="bad_step", input="t", group_by="x", aggregations={"m": ("mean", "nope")}
            ),
            "aggregations",
        ),
    ],
    ids=lambda v: getattr(v, "kind", v),
)
def test_a_missing_column_names_the_step_and_field(step, field):
    assert where(_error_of(_flow(step))) == ("bad_step", field)


def test_column_names_are_case_sensitive():
    assert where(_error_of(_flow(SelectColumns(name="k", input="t", columns=["X"])))) == ("k", "X")
    err = _error_of(_flow(Formula(name="f", input="t", output="z", expression="X * 2")))
    assert where(err) == ("f", "expression")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"on": "nope"}, "on"), ({"left_on": "nope", "right_on": "x"}, "left_on")],
)
def test_a_missing_join_key_names_the_field(kwargs, field):
    flow = _flow(
        Join(name="j", left="t", right="u", **kwargs),
        sources=[Source(name="t", format="dataframe"), Source(name="u", format="dataframe")],
    )
    assert where(_error_of(flow, {"t": DF, "u": DF})) == ("j", field)
    right = _flow(
        Join(name="j", left="t", right="u", left_on="x", right_on="nope"),
        sources=[Source(name="t", format="dataframe"), Source(name="u", format="dataframe")],
    )
    assert where(_error_of(right, {"t": DF, "u": DF})) == ("j", "right_on")


def test_a_missing_schema_column_names_the_source_and_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    flow = Flow(name="s", sources=[Source(name="src", path=str(path), schema={"c": "int"})])
    with pytest.raises(SpecValidationError) as info:
        flow.run()
    assert where(info.value) == ("src", "c")


def test_a_missing_column_downstream_of_a_rename():
    flow = _flow(
        RenameColumns(name="r", input="t", mapping={"x": "x2"}),
        Formula(name="f", input="r", output="z", expression="x * 2"),
    )
    assert where(_error_of(flow)) == ("f", "expression")


# --------------------------------------------------------------------------------------------
# types
# --------------------------------------------------------------------------------------------


def test_an_unknown_type_name():
    with pytest.raises(SpecValidationError) as info:
        CastColumns(name="c", input="t", columns={"x": "integer"})
    assert where(info.value) == ("c", "x")
    with pytest.raises(SpecValidationError) as info:
        Source(name="src", schema={"x": "number"})
    assert where(info.value) == ("src", "x")


def test_a_value_that_cannot_be_cast_names_the_step_and_column():
    err = _error_of(_flow(CastColumns(name="c", input="t", columns={"x": "int", "s": "int"})))
    assert where(err) == ("c", "s")
    err = _error_of(_flow(CastColumns(name="c", input="t", columns={"x": "date"})))
    assert where(err) == ("c", "x")


def test_a_value_that_cannot_be_cast_in_a_source_schema(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,v\n1,2\n2,two\n3,3\n")
    flow = Flow(
        name="s",
        sources=[Source(name="src", path=str(path), schema={"id": "int", "v": "int"})],
        steps=[Formula(name="f", input="src", output="w", expression="v * 2")],
    )
    with pytest.raises(SpecValidationError) as info:
        flow.transform()
    assert where(info.value) == ("src", "v")
    frame = Flow(name="s", sources=[Source(name="src", format="dataframe", schema={"v": "float"})])
    with pytest.raises(SpecValidationError) as info:
        frame.transform({"src": pd.DataFrame({"v": ["1.5", "x"]})})
    assert where(info.value) == ("src", "v")


def test_late_csv_values_decide_the_type_of_an_integer_looking_column(tmp_path):
    # the sniffer samples the first rows; a whole-file pass types integer-looking columns
    path = tmp_path / "t.csv"
    rows = "".join(f"{i},{i},{i}\n" for i in range(25_000))
    path.write_text("id,v,f\n" + rows + "25000,oops,5e-05\n")
    df = Flow(name="s", sources=[Source(name="src", path=str(path))]).transform(output="src")
    assert df["id"].dtype == "int64"
    assert df["f"].dtype == "float64" and df["f"].iloc[-1] == 5e-05
    assert df["v"].iloc[-1] == "oops" and df["v"].iloc[0] == "0"


def test_a_late_csv_value_that_does_not_fit_the_declared_type(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,v\n" + "".join(f"{i},{i}\n" for i in range(25_000)) + "25000,1.5\n")
    flow = Flow(name="s", sources=[Source(name="src", path=str(path), schema={"v": "int"})])
    with pytest.raises(SpecValidationError) as info:
        flow.transform(output="src")
    assert where(info.value) == ("src", "v")


def test_aggregating_text_by_mean_or_sum():
    for func in ("mean", "sum"):
        flow = _flow(Aggregate(name="g", input="t", group_by=(), aggregations={"m": (func, "s")}))
        assert where(_error_of(flow)) == ("g", "m")


def test_a_fill_value_of_the_wrong_type():
    assert where(_error_of(_flow(FillMissing(name="f", input="t", values={"y": "zz"})))) == (
        "f",
        "y",
    )


def test_a_fractional_fill_value_for_an_integer_column():
    assert where(_error_of(_flow(FillMissing(name="f", input="t", values={"x": 0.5})))) == (
        "f",
        "x",
    )
    # a whole float is fine
    assert _flow(FillMissing(name="f", input="t", values={"x": 2.0})).transform({"t": DF})[
        "x"
    ].tolist() == [1, 2, 3]


def test_event_time_from_a_column_that_holds_no_time():
    assert where(_error_of(_flow(AddEventTime(name="e", input="t", column="flag")))) == (
        "e",
        "column",
    )
    bad_text = pd.DataFrame({"when": ["2020-01-01T00:00:00Z", "yesterday"]})
    err = _error_of(_flow(AddEventTime(name="e", input="t", column="when")), {"t": bad_text})
    assert where(err) == ("e", "column")


def test_event_time_constant_that_is_no_time():
    assert where(_error_of(_flow(AddEventTime(name="e", input="t", value="soon")))) == (
        "e",
        "value",
    )


def test_join_keys_of_different_types():
    flow = _flow(
        Join(name="j", left="t", right="u", on="x"),
        sources=[Source(name="t", format="dataframe"), Source(name="u", format="dataframe")],
    )
    text_keys = pd.DataFrame({"x": ["1", "zz"]})
    assert where(_error_of(flow, {"t": DF, "u": text_keys})) == ("j", "on")
    # numbers of different widths or kinds do join
    floats = pd.DataFrame({"x": [1.0, 3.0], "w": ["one", "three"]})
    assert flow.transform({"t": DF, "u": floats})["w"].tolist() == ["one", "three"]


# --------------------------------------------------------------------------------------------
# expressions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["x + 1", "s", "'yes'"])
def test_a_filter_predicate_that_is_not_a_condition(text):
    assert where(_error_of(_flow(Filter(name="k", input="t", predicate=text)))) == (
        "k",
        "predicate",
    )


def test_a_formula_that_does_not_type_check():
    err = _error_of(_flow(Formula(name="f", input="t", output="z", expression="s * 2")))
    assert where(err) == ("f", "expression")


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "x.real",
        "x[0]",
        "(lambda: 1)()",
        "[v for v in x]",
        "open('f')",
        "eval('1')",
        "x if",
        "x | 1",
        "f'{x}'",
    ],
)
def test_a_forbidden_construct_names_the_step_and_field(text):
    with pytest.raises(SpecValidationError) as info:
        Formula(name="f", input="t", output="z", expression=text)
    assert where(info.value) == ("f", "expression")
    with pytest.raises(SpecValidationError) as info:
        Filter(name="k", input="t", predicate=text)
    assert where(info.value) == ("k", "predicate")


def test_a_forbidden_construct_in_json_names_the_step():
    doc = _flow(Formula(name="f", input="t", output="z", expression="x + 1")).to_dict()
    doc["steps"][0]["expression"] = "__import__('os')"
    with pytest.raises(SpecValidationError) as info:
        Flow.from_dict(doc)
    assert where(info.value) == ("f", "expression")


def test_an_expression_must_be_text():
    with pytest.raises(SpecValidationError) as info:
        Formula(name="f", input="t", output="z", expression=3)
    assert where(info.value) == ("f", "expression")


# --------------------------------------------------------------------------------------------
# step parameters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: CastColumns(name="s", input="t", columns={}), "columns"),
        (lambda: DropColumns(name="s", input="t", columns=[]), "columns"),
        (lambda: SelectColumns(name="s", input="t", columns=["a", "a"]), "columns"),
        (lambda: RenameColumns(name="s", input="t", mapping={"a": "c", "b": "c"}), "mapping"),
        (lambda: FillMissing(name="s", input="t", values={"a": [1]}), "a"),
        (lambda: FillMissing(name="s", input="t", values={"a": float("nan")}), "a"),
        (
            lambda: OneHotEncode(name="s", input="t", column="c", handle_unknown="x"),
            "handle_unknown",
        ),
        (
            lambda: OneHotEncode(name="s", input="t", column="c", categories=["a", "a"]),
            "categories",
        ),
        (lambda: OneHotEncode(name="s", input="t", column="c", categories=["a"], drop="b"), "drop"),
        (
            lambda: OneHotEncode(name="s", input="t", column="c", categories=["a", "A"]),
            "categories",
        ),
        (
            lambda: OneHotEncode(
                name="s", input="t", column="c", categories=["other"], handle_unknown="keep"
            ),
            "categories",
        ),
        (lambda: Join(name="s", left="t", right="u", on="k", how="cross"), "how"),
        (lambda: Join(name="s", left="t", right="u"), "on"),
        (lambda: Join(name="s", left="t", right="u", on="k", left_on="k", right_on="k"), "on"),
        (lambda: Join(name="s", left="t", right="u", left_on=["a", "b"], right_on="a"), "on"),
        (lambda: Join(name="s", left="t", right="u", on="k", suffixes=("_x", "_x")), "suffixes"),
        (lambda: Aggregate(name="s", input="t", group_by="g", aggregations={}), "aggregations"),
        (
            lambda: Aggregate(
                name="s", input="t", group_by="g", aggregations={"m": ("median", "x")}
            ),
            "m",
        ),
        (
            lambda: Aggregate(name="s", input="t", group_by="g", aggregations={"m": ("sum", "*")}),
            "m",
        ),
        (
            lambda: Aggregate(name="s", input="t", group_by="g", aggregations={"g": ("max", "x")}),
            "aggregations",
        ),
        (lambda: AddEventTime(name="s", input="t"), "column"),
        (lambda: AddEventTime(name="s", input="t", column="a", value=1.0), "column"),
        (lambda: AddEventTime(name="s", input="t", value=float("inf")), "value"),
        (lambda: AddEventTime(name="s", input="t", column="a", unit="us"), "unit"),
        (lambda: AddEventTime(name="s", input="t", column="a", format="rfc"), "format"),
        (lambda: PythonStep(name="s", input="t", function="os.system"), "function"),
        (lambda: PythonStep(name="s", input="t", function="m:f", params={"p": object()}), "params"),
        (
            lambda: PythonStep(name="s", input="t", function="m:f", params={"p": float("nan")}),
            "params",
        ),
    ],
)
def test_invalid_step_parameters_name_the_step_and_field(make, field):
    with pytest.raises(SpecValidationError) as info:
        make()
    assert where(info.value) == ("s", field)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"format": "xlsx"}, "format"),
        ({"delimiter": ";;"}, "delimiter"),
        ({"schema": {"a": "decimal"}}, "a"),
    ],
)
def test_invalid_source_parameters(kwargs, field):
    with pytest.raises(SpecValidationError) as info:
        Source(name="src", **kwargs)
    assert where(info.value) == ("src", field)


# --------------------------------------------------------------------------------------------
# output names that DuckDB would silently rename
# --------------------------------------------------------------------------------------------


def test_a_new_column_differing_only_in_case_from_an_existing_one():
    assert where(_error_of(_flow(Formula(name="f", input="t", output="X", expression="x")))) == (
        "f",
        "output",
    )
    err = _error_of(_flow(AddEventTime(name="e", input="t", column="x", output="S")))
    assert where(err) == ("e", "output")
    err = _error_of(_flow(RenameColumns(name="r", input="t", mapping={"s": "X"})))
    assert where(err) == ("r", "X")


def test_one_hot_categories_that_differ_only_in_case_are_found_by_fit():
    flow = _flow(OneHotEncode(name="o", input="t", column="c"))
    with pytest.raises(SpecValidationError) as info:
        flow.fit({"t": pd.DataFrame({"c": ["jazz", "Jazz"]})})
    assert where(info.value) == ("o", "categories")


def test_one_hot_columns_that_exist_already():
    frame = pd.DataFrame({"c": ["a", "b"], "c_a": [0, 0]})
    err = _error_of(_flow(OneHotEncode(name="o", input="t", column="c")), {"t": frame})
    assert where(err) == ("o", "c_a")


def test_join_suffixes_that_leave_duplicate_names():
    left = pd.DataFrame({"k": [1], "v": [1], "v_right": [2]})
    right = pd.DataFrame({"k": [1], "v": [3]})
    flow = _flow(
        Join(name="j", left="t", right="u", on="k"),
        sources=[Source(name="t", format="dataframe"), Source(name="u", format="dataframe")],
    )
    assert where(_error_of(flow, {"t": left, "u": right})) == ("j", "suffixes")


def test_join_columns_differing_only_in_case_get_the_suffixes():
    flow = _flow(
        Join(name="j", left="t", right="u", on="k"),
        sources=[Source(name="t", format="dataframe"), Source(name="u", format="dataframe")],
    )
    out = flow.transform(
        {"t": pd.DataFrame({"k": [1], "v": [1]}), "u": pd.DataFrame({"k": [1], "V": [2]})}
    )
    assert out.to_dict("list") == {"k": [1], "v": [1], "V_right": [2]}


def test_bound_data_with_columns_differing_only_in_case():
    err = _error_of(_flow(), {"t": pd.DataFrame({"a": [1], "A": [2]})}, output="t")
    assert where(err) == ("t", "A")


# --------------------------------------------------------------------------------------------
# sources and python steps
# --------------------------------------------------------------------------------------------


def test_a_source_with_no_data():
    with pytest.raises(SpecValidationError) as info:
        _flow().run()
    assert where(info.value) == ("t", "path")


def test_a_source_file_that_does_not_exist(tmp_path):
    flow = Flow(name="f", sources=[Source(name="t", path=str(tmp_path / "none.csv"))])
    with pytest.raises(NotFoundError):
        flow.run()


def test_binding_an_unknown_source_or_bad_data():
    with pytest.raises(SpecValidationError) as info:
        _flow().run({"t": DF, "ghost": DF})
    assert info.value.field == "sources"
    with pytest.raises(SpecValidationError) as info:
        _flow().run({"t": [1, 2, 3]})
    assert where(info.value) == ("t", "sources")


def test_asking_for_an_unknown_output():
    with pytest.raises(SpecValidationError):
        _flow().run({"t": DF}, outputs=["ghost"])


@pytest.mark.parametrize(
    "function",
    ["no_such_module_here:f", f"{__name__}:no_such_function", f"{__name__}:returns_a_list"],
)
def test_a_python_step_that_cannot_run(function):
    err = _error_of(_flow(PythonStep(name="p", input="t", function=function)))
    assert where(err) == ("p", "function")


def test_a_python_step_result_with_columns_differing_only_in_case():
    err = _error_of(_flow(PythonStep(name="p", input="t", function=f"{__name__}:duplicate_case")))
    assert where(err) == ("p", "function")


# --------------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------------


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def bad_csv(tmp_path):
    # the bad value is only found when the data is read, not when the run is planned
    path = tmp_path / "in" / "t.csv"
    path.parent.mkdir()
    path.write_text("id,v\n1,10\n2,20\n3,thirty\n")
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("where_cast", ["source", "step"])
def test_a_failing_write_keeps_the_old_file_and_leaves_no_temp_file(
    tmp_path, bad_csv, suffix, where_cast
):
    if where_cast == "source":
        sources = [Source(name="t", path=str(bad_csv), schema={"v": "int"})]
        steps = [Formula(name="out", input="t", output="w", expression="v * 2")]
    else:
        sources = [Source(name="t", path=str(bad_csv), schema={"v": "string"})]
        steps = [CastColumns(name="out", input="t", columns={"v": "int"})]
    flow = Flow(name="w", sources=sources, steps=steps)
    target_dir = tmp_path / "out"
    target_dir.mkdir()
    target = target_dir / f"result{suffix}"
    target.write_bytes(b"the old contents")
    with flow.run() as run:
        with pytest.raises(SpecValidationError) as info:
            run.write("out", target)
        assert info.value.field == "v"
        with pytest.raises(SpecValidationError):
            run.write("out", target_dir / f"new{suffix}")
    assert target.read_bytes() == b"the old contents"
    assert _listing(target_dir) == [f"result{suffix}"]


def test_a_plan_error_is_raised_before_any_file_is_written(tmp_path, bad_csv):
    flow = Flow(
        name="w",
        sources=[Source(name="t", path=str(bad_csv))],
        steps=[Formula(name="out", input="t", output="w", expression="nope * 2")],
    )
    with pytest.raises(SpecValidationError) as info, flow.run() as run:
        run.to_parquet("out", tmp_path / "never.parquet")
    assert where(info.value) == ("out", "expression")
    assert not (tmp_path / "never.parquet").exists()


def test_a_successful_write_replaces_the_old_file(tmp_path):
    target = tmp_path / "result.csv"
    target.write_text("old\n")
    flow = _flow(Filter(name="k", input="t", predicate="x >= 2"))
    with flow.run({"t": DF}) as run:
        run.to_csv("k", target)
    assert pd.read_csv(target)["x"].tolist() == [2, 3]
    assert _listing(tmp_path) == ["result.csv"]


def test_write_needs_a_known_suffix(tmp_path):
    with _flow().run({"t": DF}) as run, pytest.raises(SpecValidationError) as info:
        run.write("t", tmp_path / "out.xlsx")
    assert info.value.field == "path"
    assert _listing(tmp_path) == []
