"""Every component records its own lineage on the local backend, without user code."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

import mlcycle
from mlcycle.errors import BackendError
from mlcycle.featurestore import FeatureGroupSpec, FeatureStore
from mlcycle.flow import Flow, Formula, Source
from mlcycle.lineage import AssociationType, EntityKind, LineageTracker, digest_file
from mlcycle.lineage.record import LINEAGE_KEY, carried_arn
from mlcycle.training import TrainingJob, TrainingJobSpec


@pytest.fixture
def backend(tmp_path: Path) -> mlcycle.Backend:
    with mlcycle.connect(str(tmp_path / "ws")) as b:
        yield b


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "users.csv"
    pd.DataFrame({"userId": [1, 2, 3, 4], "score": [0.5, 0.25, 1.0, 0.75],
                  "ts": [10.0, 11.0, 12.0, 13.0]}).to_csv(path, index=False)
    return path


def _flow() -> Flow:
    return Flow(name="users", sources=[Source(name="users", format="csv")],
                steps=[Formula(name="double", input="users", output="double",
                               expression="score * 2")],
                outputs=["double"])


def _types(graph) -> list[str]:
    return [v.type for v in graph.vertices]


def test_a_flow_run_records_its_sources_definition_and_outputs(
    backend: mlcycle.Backend, csv: Path, tmp_path: Path
) -> None:
    flow = _flow()
    with flow.run({"users": str(csv)}, backend=backend) as run:
        written = run.to_parquet("double", tmp_path / "double.parquet")
        table = run.to_pandas("double")
    tracker = LineageTracker(backend)
    out = tracker.find_artifact(written.absolute().as_uri(), digest=digest_file(written))
    assert out is not None and out.type == "DataSet"
    graph = tracker.query(out)
    run_action = graph.vertices[1]
    assert (run_action.kind, run_action.type) == (EntityKind.ACTION, "FlowRun")
    uris = {v.source_uri for v in graph.vertices}
    assert csv.absolute().as_uri() in uris and "flow:users" in uris
    source = tracker.find_artifact(csv.absolute().as_uri(), digest=digest_file(csv))
    assert source is not None
    # the in-memory output carries its entity and was produced by the same run
    arn = table.attrs[LINEAGE_KEY]
    produced = {a.destination_arn for a in tracker.associations(source=run_action,
                                                                type="Produced")}
    assert {arn, out.arn} <= produced


def test_a_flow_without_a_lineage_backend_records_nothing(csv: Path) -> None:
    with _flow().run({"users": str(csv)}) as run:
        assert LINEAGE_KEY not in run.to_pandas("double").attrs


def test_feature_store_ingest_and_training_set_lineage(
    backend: mlcycle.Backend, csv: Path
) -> None:
    store = FeatureStore(backend)
    spec = FeatureGroupSpec(name="users", record_identifier="userId", event_time="ts",
                            features=[("userId", "Integral"), ("ts", "Fractional"),
                                      ("score", "Fractional")])
    group = store.create(spec)
    frame = pd.read_csv(csv)
    group.ingest(frame)
    base = pd.DataFrame({"userId": [1, 2], "ts": [20.0, 20.0], "label": [1.0, 0.0]})
    training = store.training_set(base, event_time="ts").join("users", on="userId")
    table = training.to_dataframe()
    tracker = LineageTracker(backend)
    arn = carried_arn(table)
    graph = tracker.query(arn, max_depth=5)
    kinds = {(v.kind, v.type) for v in graph.vertices}
    assert (EntityKind.CONTEXT, "FeatureGroup") in kinds
    assert (EntityKind.ACTION, "Ingest") in kinds
    (context,) = graph.of_type("FeatureGroup")
    assert context.properties["group"] == "users"
    assert context.source_uri == group.describe().uri
    # the ingested frame is the input of the ingest, which produced the group
    ingest = graph.of_type("Ingest")[0]
    assert [a.destination_arn for a in tracker.associations(source=ingest)] == [context.arn]
    assert ingest.properties["rows"] == "4"
    inputs = [tracker.get(a.source_arn) for a in tracker.associations(destination=ingest)]
    assert [i.type for i in inputs] == ["DataSet"]


def test_a_training_job_records_its_inputs_and_model(backend: mlcycle.Backend) -> None:
    df = pd.DataFrame({"x": range(60), "y": [i % 5 for i in range(60)]})
    parent = LineageTracker(backend).artifact("s3://bucket/all.csv", type="DataSet")
    df.attrs[LINEAGE_KEY] = parent.arn
    train, validation = df.iloc[:40], df.iloc[40:]
    spec = TrainingJobSpec(hyperparameters={"num_round": 3, "max_depth": 2, "nthread": 1},
                           train=train, validation=validation, label="y")
    job = TrainingJob.submit(backend, spec, name="lineage-job")
    job.wait(timeout=60)
    tracker = LineageTracker(backend)
    action = tracker.find("Action", "training-job/lineage-job")
    assert action is not None and action.status == "Completed"
    assert action.properties["hp:max_depth"] == "2"
    models = list(tracker.list("Artifact", type="Model"))
    assert len(models) == 1
    assert models[0].source_uri == backend.artifacts.uri(job.describe().model_key)
    graph = tracker.query(models[0], max_depth=4)
    # model <- job <- train/validation splits <- the frame they were cut from
    assert _types(graph)[:2] == ["Model", "TrainingJob"]
    assert parent.arn in graph
    derived = {(e.source_arn, e.type) for e in graph.edges}
    assert (parent.arn, AssociationType.DERIVED_FROM) in derived


def test_a_failing_lineage_store_does_not_fail_the_operation(
    backend: mlcycle.Backend, csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise BackendError("lineage database is gone", backend="local")

    monkeypatch.setattr(type(backend.lineage), "create_entity", broken)
    with caplog.at_level(logging.WARNING, logger="mlcycle"), _flow().run(
            {"users": str(csv)}, backend=backend) as run:
        path = run.to_parquet("double", tmp_path / "out.parquet")
    assert path.exists()
    assert any("lineage not recorded" in r.getMessage() for r in caplog.records)


def test_graph_pictures(backend: mlcycle.Backend, csv: Path, tmp_path: Path) -> None:
    with _flow().run({"users": str(csv)}, backend=backend) as run:
        written = run.to_parquet("double", tmp_path / "double.parquet")
    tracker = LineageTracker(backend)
    graph = tracker.query(tracker.find_artifact(written.absolute().as_uri(),
                                                digest=digest_file(written)))
    svg = graph.to_svg()
    assert svg.startswith("<svg") and svg.count("<rect") == len(graph.vertices)
    assert "users.csv" in svg and "Produced" in svg
    dot = graph.to_dot()
    assert dot.startswith("digraph lineage") and dot.count("->") == len(graph.edges)


def test_a_group_created_again_is_another_context(backend: mlcycle.Backend) -> None:
    store = FeatureStore(backend)
    spec = FeatureGroupSpec(name="g", record_identifier="k", event_time="t",
                            features=[("k", "Integral"), ("t", "Fractional")])
    store.create(spec)
    store.delete("g")
    store.create(spec)
    contexts = list(LineageTracker(backend).list("Context", type="FeatureGroup"))
    assert len(contexts) == 2
    assert {c.properties["group"] for c in contexts} == {"g"}


def test_ingesting_a_flow_run_links_its_output_to_the_ingest(
    backend: mlcycle.Backend, csv: Path
) -> None:
    flow = Flow(name="users", sources=[Source(name="users", format="csv")],
                steps=[Formula(name="with_double", input="users", output="double",
                               expression="score * 2")],
                outputs=["with_double"])
    store = FeatureStore(backend)
    group = store.create(FeatureGroupSpec(
        name="users", record_identifier="userId", event_time="ts",
        features=[("userId", "Integral"), ("score", "Fractional"), ("ts", "Fractional"),
                  ("double", "Fractional")]))
    with flow.run({"users": str(csv)}, backend=backend) as run:
        group.ingest(run)
    tracker = LineageTracker(backend)
    (ingest,) = tracker.list("Action", type="Ingest")
    graph = tracker.query(ingest, max_depth=3)
    assert [v.type for v in graph.vertices[:3]] == ["Ingest", "DataSet", "FlowRun"]
    assert graph.vertices[1].name == "users.with_double"
    assert csv.absolute().as_uri() in {v.source_uri for v in graph.vertices}
