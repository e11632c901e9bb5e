"""The Flow as a graph: validation, dependency order, JSON round trip, fitting, pictures."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from mlcycle.backends.sagemaker import SageMakerBackend
from mlcycle.errors import InvalidStateError, SpecValidationError, UnsupportedOperationError
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
from mlcycle.flow.steps import STEP_KINDS

SVG = "{http://www.w3.org/2000/svg}"


def add_flag(df: pd.DataFrame, *, column: str, value: int) -> pd.DataFrame:
    """User code for the PythonStep of the kitchen-sink flow."""
    return df.assign(**{column: value})


def kitchen_sink(*, tracks_path: str | None = None) -> Flow:
    """A flow that uses every step kind (and every source format)."""
    return Flow(
        name="everything",
        description="one of each step",
        sources=[
            Source(
                name="tracks",
                format="csv",
                path=tracks_path,
                schema={"id": "int", "genre": "string", "energy": "float"},
                delimiter=",",
            ),
            Source(name="plays", format="dataframe"),
            Source(name="extra", format="parquet", path="/nowhere/extra.parquet"),
        ],
        steps=[
            CastColumns(name="cast", input="plays", columns={"id": "int", "ts": "int"}),
            FillMissing(name="filled", input="tracks", values={"energy": 0.0, "genre": "none"}),
            DropMissing(name="complete", input="filled", columns=["id"]),
            OneHotEncode(
                name="onehot",
                input="complete",
                column="genre",
                prefix="g_",
                drop=None,
                handle_unknown="keep",
                keep_input=True,
            ),
            Formula(name="loud", input="onehot", output="loud", expression="energy * 2 + 1"),
            RenameColumns(name="renamed", input="loud", mapping={"loud": "loudness"}),
            DropColumns(name="dropped", input="renamed", columns=["genre"]),
            Join(
                name="joined",
                left="cast",
                right="dropped",
                on=["id"],
                how="left",
                suffixes=("_p", "_t"),
            ),
            Filter(name="recent", input="joined", predicate="ts >= 100 and loudness is not None"),
            PythonStep(
                name="flagged",
                input="recent",
                function=f"{__name__}:add_flag",
                params={"column": "flag", "value": 7},
            ),
            AddEventTime(name="timed", input="flagged", column="ts", unit="s", format="iso"),
            SelectColumns(name="picked", input="timed", columns=["id", "loudness", "EventTime"]),
            Aggregate(
                name="per_id",
                input="flagged",
                group_by=["id"],
                aggregations={"n": ("count", "*"), "loud": ("max", "loudness")},
            ),
        ],
        outputs=["picked", "per_id"],
    )


@pytest.fixture
def tracks_csv(tmp_path) -> Path:
    path = tmp_path / "tracks.csv"
    path.write_text(
        "id,genre,energy\n1,Jazz,0.5\n2,Rock,\n3,,0.25\n4,Jazz,1e-05\n",
    )
    return path


PLAYS = pd.DataFrame({"id": ["1", "2", "3", "3", "9"], "ts": ["50", "150", "200", "300", "400"]})


# --------------------------------------------------------------------------------------------
# JSON round trip
# --------------------------------------------------------------------------------------------


def test_the_kitchen_sink_uses_every_step_kind():
    flow = kitchen_sink()
    assert {type(s) for s in flow.steps} == set(STEP_KINDS.values())
    assert {s.format for s in flow.sources} == {"csv", "parquet", "dataframe"}


def test_json_round_trip_of_an_unfitted_flow_is_exact():
    flow = kitchen_sink(tracks_path="/data/tracks.csv")
    assert not flow.is_fitted
    text = flow.to_json()
    again = Flow.from_json(text)
    assert again == flow
    assert again.to_json() == text
    assert Flow.from_json(again.to_json()).to_json() == text
    assert json.loads(text)["format"] == "mlcycle.flow/1"


def test_json_round_trip_of_a_fitted_flow_is_exact_and_keeps_the_state(tracks_csv):
    flow = kitchen_sink(tracks_path=str(tracks_csv))
    fitted = flow.fit({"plays": PLAYS})
    assert fitted.is_fitted and fitted != flow
    assert fitted.node("onehot").categories == ("Jazz", "Rock", "none")
    text = fitted.to_json()
    again = Flow.from_json(text)
    assert again == fitted and again.is_fitted
    assert again.to_json() == text
    assert again.node("onehot").categories == ("Jazz", "Rock", "none")
    # compact JSON reads back the same flow
    assert Flow.from_json(fitted.to_json(indent=None)) == fitted


def test_save_and_load(tmp_path):
    flow = kitchen_sink()
    path = flow.save(tmp_path / "sub" / "flow.json")
    assert Flow.load(path) == flow
    assert sorted(p.name for p in path.parent.iterdir()) == ["flow.json"]


def test_a_path_object_in_a_source_is_kept_as_text(tmp_path):
    flow = Flow(name="p", sources=[Source(name="t", path=tmp_path / "t.csv")])
    assert flow.sources[0].path == str(tmp_path / "t.csv")
    assert Flow.from_json(flow.to_json()) == flow


def test_python_params_round_trip_exactly():
    step = PythonStep(name="p", input="t", function="m:f", params={"cols": ("a", "b"), "n": 1})
    flow = Flow(name="p", sources=[Source(name="t", format="dataframe")], steps=[step])
    assert Flow.from_json(flow.to_json()) == flow
    assert flow.node("p").params == {"cols": ["a", "b"], "n": 1}


def test_the_kitchen_sink_runs(tracks_csv):
    flow = kitchen_sink(tracks_path=str(tracks_csv)).fit({"plays": PLAYS})
    flow = Flow.from_json(flow.to_json())
    with flow.run({"plays": PLAYS}) as run:
        picked = run.to_pandas("picked").sort_values(["id", "EventTime"])
        per_id = run.to_pandas("per_id")
    # plays at ts >= 100 whose track is known and complete: ids 2 (energy filled 0) and 3 x2
    assert picked["id"].tolist() == [2, 3, 3]
    assert picked["loudness"].tolist() == [1.0, 1.5, 1.5]
    assert picked["EventTime"].tolist() == [
        "1970-01-01T00:02:30.000Z",
        "1970-01-01T00:03:20.000Z",
        "1970-01-01T00:05:00.000Z",
    ]
    assert per_id.to_dict("list") == {"id": [2, 3], "n": [1, 2], "loud": [1.0, 1.5]}


def test_from_json_rejects_what_is_not_a_flow():
    with pytest.raises(SpecValidationError) as info:
        Flow.from_json("{not json")
    assert info.value.field == "format"
    with pytest.raises(SpecValidationError) as info:
        Flow.from_json(json.dumps({"format": "other/1", "name": "x"}))
    assert info.value.field == "format"
    doc = json.loads(kitchen_sink().to_json())
    doc["steps"][0]["kind"] = "teleport"
    with pytest.raises(SpecValidationError) as info:
        Flow.from_dict(doc)
    assert (info.value.step, info.value.field) == ("cast", "kind")
    doc = json.loads(kitchen_sink().to_json())
    doc["steps"][1]["colour"] = "red"
    with pytest.raises(SpecValidationError) as info:
        Flow.from_dict(doc)
    assert (info.value.step, info.value.field) == ("filled", "colour")


# --------------------------------------------------------------------------------------------
# graph validation and order
# --------------------------------------------------------------------------------------------


def _src(name="t"):
    return Source(name=name, format="dataframe")


def test_order_puts_inputs_first_whatever_the_listing_order():
    flow = Flow(
        name="o",
        sources=[_src("a"), _src("b")],
        steps=[
            Filter(name="last", input="joined", predicate="x > 0"),
            Join(name="joined", left="fa", right="b", on="x"),
            Formula(name="fa", input="a", output="y", expression="x + 1"),
        ],
    )
    order = flow.order()
    assert set(order) == {"a", "b", "last", "joined", "fa"}
    for step in flow.steps:
        for name in step.inputs:
            assert order.index(name) < order.index(step.name)
    assert flow.output_names == ("last",)


def test_a_long_chain_of_steps_is_ordered():
    steps = [Formula(name="s0", input="t", output="x", expression="x + 1")]
    steps += [
        Formula(name=f"s{i}", input=f"s{i - 1}", output="x", expression="x + 1")
        for i in range(1, 3000)
    ]
    flow = Flow(name="chain", sources=[_src()], steps=list(reversed(steps)))
    assert flow.order() == ("t", *(f"s{i}" for i in range(3000)))


def test_a_cycle_is_rejected_naming_a_step_on_it():
    with pytest.raises(SpecValidationError) as info:
        Flow(
            name="c",
            sources=[_src()],
            steps=[
                Formula(name="a", input="c", output="x", expression="x"),
                Formula(name="b", input="a", output="x", expression="x"),
                Formula(name="c", input="b", output="x", expression="x"),
                Formula(name="d", input="t", output="x", expression="x"),
            ],
        )
    assert info.value.step in {"a", "b", "c"}
    assert info.value.field == "input"


def test_a_step_reading_itself_is_a_cycle():
    with pytest.raises(SpecValidationError) as info:
        Flow(name="c", sources=[_src()], steps=[Filter(name="a", input="a", predicate="x > 0")])
    assert (info.value.step, info.value.field) == ("a", "input")


def test_a_cycle_through_a_join_names_the_join_side():
    with pytest.raises(SpecValidationError) as info:
        Flow(
            name="c",
            sources=[_src()],
            steps=[
                Join(name="j", left="t", right="f", on="x"),
                Formula(name="f", input="j", output="y", expression="1"),
            ],
        )
    step, field = info.value.step, info.value.field
    assert (step, field) in {("j", "right"), ("f", "input")}


def test_an_unknown_input_is_rejected():
    with pytest.raises(SpecValidationError) as info:
        Flow(name="u", sources=[_src()], steps=[Filter(name="k", input="nope", predicate="1")])
    assert (info.value.step, info.value.field) == ("k", "input")
    with pytest.raises(SpecValidationError) as info:
        Flow(name="u", sources=[_src()], steps=[Join(name="j", left="t", right="zz", on="x")])
    assert (info.value.step, info.value.field) == ("j", "right")


def test_an_unknown_output_is_rejected():
    with pytest.raises(SpecValidationError) as info:
        Flow(name="u", sources=[_src()], outputs=["ghost"])
    assert info.value.field == "outputs"


@pytest.mark.parametrize(
    "nodes",
    [
        [_src("t"), _src("t")],
        [_src("t"), Filter(name="t", input="t", predicate="x > 0")],
        [
            _src("t"),
            Filter(name="k", input="t", predicate="x > 0"),
            Filter(name="k", input="t", predicate="x < 0"),
        ],
    ],
)
def test_duplicate_names_are_rejected(nodes):
    sources = [n for n in nodes if isinstance(n, Source)]
    steps = [n for n in nodes if not isinstance(n, Source)]
    with pytest.raises(SpecValidationError) as info:
        Flow(name="dup", sources=sources, steps=steps)
    assert info.value.field == "name"
    assert info.value.step == nodes[-1].name


def test_invalid_names_are_rejected():
    with pytest.raises(SpecValidationError) as info:
        Filter(name="bad name", input="t", predicate="x > 0")
    assert info.value.field == "name"
    with pytest.raises(SpecValidationError) as info:
        Filter(name="k", input="1t", predicate="x > 0")
    assert (info.value.step, info.value.field) == ("k", "input")
    with pytest.raises(SpecValidationError) as info:
        Join(name="j", left="t", right="no way", on="x")
    assert (info.value.step, info.value.field) == ("j", "right")


def test_add_and_replace_step_return_new_flows():
    flow = Flow(name="a", sources=[_src()])
    bigger = flow.add(Filter(name="k", input="t", predicate="x > 0"))
    assert flow.steps == () and [s.name for s in bigger.steps] == ["k"]
    replaced = bigger.replace_step(Filter(name="k", input="t", predicate="x > 1"))
    assert replaced.node("k").predicate.text == "x > 1"
    assert bigger.node("k").predicate.text == "x > 0"
    with pytest.raises(SpecValidationError):
        bigger.add(Filter(name="k2", input="nope", predicate="x > 0"))
    with pytest.raises(SpecValidationError) as info:
        bigger.replace_step(Filter(name="t", input="k", predicate="x > 0"))
    assert (info.value.step, info.value.field) == ("t", "name")


def test_flows_compare_by_value():
    assert kitchen_sink() == kitchen_sink()
    assert kitchen_sink() != kitchen_sink(tracks_path="/x.csv")


# --------------------------------------------------------------------------------------------
# fit and transform
# --------------------------------------------------------------------------------------------


def _encode_flow() -> Flow:
    return Flow(
        name="enc",
        sources=[_src()],
        steps=[OneHotEncode(name="o", input="t", column="c", handle_unknown="ignore")],
    )


def test_run_of_an_unfitted_flow_is_an_invalid_state():
    with pytest.raises(InvalidStateError):
        _encode_flow().run({"t": pd.DataFrame({"c": ["a"]})})


def test_fit_learns_once_and_transform_reuses_the_state():
    train = pd.DataFrame({"c": ["b", "a", "b", None]})
    fitted = _encode_flow().fit({"t": train})
    assert fitted.node("o").categories == ("a", "b")
    # a batch with other categories: the columns are the training data's
    batch = fitted.transform({"t": pd.DataFrame({"c": ["z", "a"]})})
    assert batch.to_dict("list") == {"c_a": [0, 1], "c_b": [0, 0]}
    # transform of an unfitted flow fits it on the data given (here: one category)
    assert list(_encode_flow().transform({"t": pd.DataFrame({"c": ["z"]})}).columns) == ["c_z"]
    # the saved, fitted flow encodes one online record just as the batch
    loaded = Flow.from_json(fitted.to_json())
    one = loaded.transform({"t": pd.DataFrame({"c": ["a"]})})
    assert one.to_dict("list") == {"c_a": [1], "c_b": [0]}


def test_fit_is_in_dependency_order_through_two_encoders():
    flow = Flow(
        name="two",
        sources=[_src()],
        steps=[
            OneHotEncode(name="second", input="first", column="d"),
            OneHotEncode(name="first", input="t", column="c", keep_input=True),
        ],
    )
    fitted = flow.fit({"t": pd.DataFrame({"c": ["x", "y"], "d": ["p", "q"]})})
    assert fitted.node("first").categories == ("x", "y")
    assert fitted.node("second").categories == ("p", "q")


def test_transform_with_several_outputs_needs_one_named():
    flow = Flow(
        name="m",
        sources=[_src()],
        steps=[
            Filter(name="a", input="t", predicate="x > 0"),
            Filter(name="b", input="t", predicate="x < 0"),
        ],
    )
    df = pd.DataFrame({"x": [-1, 1]})
    with pytest.raises(SpecValidationError) as info:
        flow.transform({"t": df})
    assert info.value.field == "output"
    assert flow.transform({"t": df}, output="b")["x"].tolist() == [-1]


def test_a_run_plans_only_what_the_outputs_need():
    flow = Flow(
        name="lazy",
        sources=[_src("a"), Source(name="b", format="csv", path="/does/not/exist.csv")],
        steps=[
            Filter(name="fa", input="a", predicate="x > 0"),
            Filter(name="fb", input="b", predicate="x > 0"),
        ],
    )
    with flow.run({"a": pd.DataFrame({"x": [1, -1]})}, outputs=["fa"]) as run:
        assert run.to_pandas("fa")["x"].tolist() == [1]
        with pytest.raises(SpecValidationError):
            run.to_pandas("fb")


# --------------------------------------------------------------------------------------------
# backends
# --------------------------------------------------------------------------------------------


def _python_flow() -> Flow:
    return Flow(
        name="py",
        sources=[_src()],
        steps=[
            PythonStep(
                name="p",
                input="t",
                function=f"{__name__}:add_flag",
                params={"column": "f", "value": 1},
            )
        ],
    )


def test_a_python_step_makes_the_flow_local_only():
    assert _python_flow().local_only
    assert not kitchen_sink().steps[0].local_only
    assert Flow.from_json(_python_flow().to_json()).local_only


def test_sagemaker_refuses_a_flow_with_a_python_step():
    backend = SageMakerBackend("us-east-1", bucket="my-bucket")  # "b" is too short for S3
    with pytest.raises(UnsupportedOperationError) as info:
        _python_flow().run({"t": pd.DataFrame({"x": [1]})}, backend=backend)
    assert info.value.backend == "sagemaker"
    assert info.value.capability == "flows.python-steps"


def test_sagemaker_accepts_a_declarative_flow():
    flow = Flow(name="d", sources=[_src()], steps=[Filter(name="k", input="t", predicate="x > 0")])
    backend = SageMakerBackend("us-east-1", bucket="my-bucket")  # "b" is too short for S3
    with flow.run({"t": pd.DataFrame({"x": [1, -1]})}, backend=backend) as run:
        assert run.to_pandas("k")["x"].tolist() == [1]


def test_the_local_backend_runs_python_steps(local_backend):
    with _python_flow().run({"t": pd.DataFrame({"x": [1]})}, backend=local_backend) as run:
        assert run.to_pandas("p").to_dict("list") == {"x": [1], "f": [1]}


# --------------------------------------------------------------------------------------------
# pictures
# --------------------------------------------------------------------------------------------


def test_svg_is_well_formed_with_one_node_per_step_and_source():
    flow = kitchen_sink()
    svg = flow.to_svg()
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    titles = [g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g")]
    assert sorted(titles) == sorted(s.name for s in (*flow.sources, *flow.steps))
    edges = sum(len(s.inputs) for s in flow.steps)
    paths = [p for p in root.iter(f"{SVG}path") if p.get("marker-end")]
    assert len(paths) == edges
    assert flow._repr_svg_() == svg


def test_svg_escapes_names_and_expressions():
    flow = Flow(
        name="a<b>&c",
        sources=[_src()],
        steps=[Filter(name="k", input="t", predicate="s == '<&>' and x < 3")],
    )
    root = ET.fromstring(flow.to_svg())
    texts = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "a<b>&c" in texts and "s == '<&>' and x < 3" in texts


def test_svg_of_an_empty_flow():
    root = ET.fromstring(Flow(name="empty").to_svg())
    assert list(root.iter(f"{SVG}g")) == []


def test_dot_mentions_every_node_and_edge():
    flow = kitchen_sink()
    dot = flow.to_dot()
    assert dot.startswith('digraph "everything" {') and dot.rstrip().endswith("}")
    for node in (*flow.sources, *flow.steps):
        assert f'  "{node.name}" [label="{node.name}\\n{node.kind}: ' in dot
    edges = {(i, s.name) for s in flow.steps for i in s.inputs}
    lines = [line.strip() for line in dot.splitlines() if "->" in line]
    assert len(lines) == len(edges)
    for left, right in edges:
        assert f'"{left}" -> "{right}";' in lines


def test_dot_escapes_quotes_and_backslashes():
    flow = Flow(
        name='say "hi"',
        sources=[_src()],
        steps=[Filter(name="k", input="t", predicate='s == "a\\\\b"')],
    )
    dot = flow.to_dot()
    assert dot.startswith('digraph "say \\"hi\\"" {')
    assert 'filter: s == \\"a\\\\\\\\b\\"' in dot
