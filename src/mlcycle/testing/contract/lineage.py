"""The lineage contract: what every backend with the ``lineage`` capability does.

The suite drives the facade (:class:`mlcycle.lineage.LineageTracker`) and asserts on returned
entities, graphs and typed errors only, so a remote backend (SageMaker, with its lineage calls
answered by an in-process fake) passes the same tests. A backend's test module subclasses it
and supplies a ``backend`` fixture::

    from mlcycle.testing.contract.lineage import LineageContract

    class TestMyLineage(LineageContract): ...
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from mlcycle.backends.base import Backend, Capability
from mlcycle.errors import AlreadyExistsError, NotFoundError, SpecValidationError
from mlcycle.lineage import (
    Association,
    AssociationType,
    Direction,
    EntityKind,
    LineageBackend,
    LineageEntity,
    LineageGraph,
    LineageTracker,
)

__all__ = ["LineageContract"]


class LineageContract:
    """Tests every lineage backend passes; subclasses provide a ``backend`` fixture."""

    @pytest.fixture
    def tracker(self, backend: Backend) -> LineageTracker:
        assert backend.supports(Capability.LINEAGE)
        return LineageTracker(backend)

    @pytest.fixture
    def chain(self, tracker: LineageTracker) -> dict[str, LineageEntity]:
        """A chain: csv -> flow run -> parquet -> training job -> model -> package -> group."""
        e = {
            "csv": tracker.artifact("s3://b/raw/ratings.csv", type="DataSet",
                                    digest="sha256:" + "1" * 64),
            "flow": tracker.action("flow-run/prep-1", type="FlowRun", status="Completed"),
            "parquet": tracker.artifact("s3://b/prep/ratings.parquet", type="DataSet"),
            "job": tracker.action("training-job/job-1", type="TrainingJob",
                                  status="Completed"),
            "model": tracker.artifact("s3://b/job-1/model.tar.gz", type="Model",
                                      digest="sha256:" + "2" * 64),
            "package": tracker.artifact("arn:aws:sagemaker:us-east-1:1:model-package/g/1",
                                        type="ModelPackage"),
            "group": tracker.context("model-package-group/g", type="ModelPackageGroup"),
        }
        tracker.associate(e["csv"], e["flow"], "ContributedTo")
        tracker.associate(e["flow"], e["parquet"], "Produced")
        tracker.associate(e["parquet"], e["job"], "ContributedTo")
        tracker.associate(e["job"], e["model"], "Produced")
        tracker.associate(e["model"], e["package"], "ContributedTo")
        tracker.associate(e["package"], e["group"], "AssociatedWith")
        return e

    # -- the interface -----------------------------------------------------------------------
    def test_an_incomplete_backend_cannot_be_instantiated(self) -> None:
        class Incomplete(LineageBackend):
            def describe_entity(self, arn: str) -> LineageEntity:  # pragma: no cover
                raise NotImplementedError

        with pytest.raises(TypeError):
            Incomplete()  # type: ignore[abstract]

    def test_backend_declares_lineage(self, backend: Backend) -> None:
        assert isinstance(backend.lineage, LineageBackend)

    # -- entities ----------------------------------------------------------------------------
    def test_artifact_is_recorded_with_its_fields(self, tracker: LineageTracker) -> None:
        before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
        art = tracker.artifact("s3://bucket/data/tracks.csv", type="DataSet",
                               digest="sha256:" + "a" * 64, properties={"rows": 1000})
        assert isinstance(art, LineageEntity)
        assert art.kind is EntityKind.ARTIFACT
        assert (art.type, art.name) == ("DataSet", "tracks.csv")
        assert art.source_uri == "s3://bucket/data/tracks.csv"
        assert art.digest == "sha256:" + "a" * 64
        assert art.properties == {"rows": "1000"}
        assert art.created_at.tzinfo is not None and art.created_at >= before
        assert tracker.get(art.arn) == art

    def test_artifacts_are_deduplicated_by_source_uri_and_digest(
        self, tracker: LineageTracker
    ) -> None:
        first = tracker.artifact("s3://b/k.csv", type="DataSet", digest="sha256:" + "a" * 64)
        again = tracker.artifact("s3://b/k.csv", type="DataSet", digest="sha256:" + "a" * 64)
        changed = tracker.artifact("s3://b/k.csv", type="DataSet", digest="sha256:" + "b" * 64)
        assert again.arn == first.arn
        assert changed.arn != first.arn
        assert tracker.find_artifact("s3://b/k.csv", digest="sha256:" + "b" * 64) == changed
        assert tracker.find_artifact("s3://b/other.csv") is None
        assert {e.arn for e in tracker.list(source_uri="s3://b/k.csv")} == {first.arn,
                                                                              changed.arn}

    def test_properties_are_merged_into_an_existing_artifact(
        self, tracker: LineageTracker
    ) -> None:
        tracker.artifact("s3://b/m.tar.gz", type="Model", properties={"a": "1"})
        art = tracker.artifact("s3://b/m.tar.gz", type="Model", properties={"b": "2"})
        assert art.properties == {"a": "1", "b": "2"}
        assert tracker.get(art.arn).properties == {"a": "1", "b": "2"}

    def test_actions_and_contexts_are_unique_by_name(self, tracker: LineageTracker) -> None:
        job = tracker.action("training-job/j1", type="TrainingJob", status="InProgress")
        assert (job.kind, job.status) == (EntityKind.ACTION, "InProgress")
        done = tracker.action("training-job/j1", type="TrainingJob", status="Completed")
        assert done.arn == job.arn and done.status == "Completed"
        assert tracker.get(job.arn).status == "Completed"
        ctx = tracker.context("feature-group/users", type="FeatureGroup",
                              source_uri="s3://b/offline/users")
        assert ctx.kind is EntityKind.CONTEXT
        assert tracker.context("feature-group/users", type="FeatureGroup").arn == ctx.arn
        assert tracker.find("Context", "feature-group/users") == ctx
        assert tracker.find("Action", "feature-group/users") is None
        assert tracker.find(EntityKind.ACTION, "training-job/j1").arn == job.arn

    def test_listing_filters_by_kind_and_type_newest_first(
        self, tracker: LineageTracker
    ) -> None:
        a = tracker.artifact("s3://b/1.csv", type="DataSet")
        time.sleep(0.01)
        b = tracker.artifact("s3://b/2.csv", type="DataSet")
        time.sleep(0.01)
        tracker.artifact("s3://b/m.tar.gz", type="Model")
        tracker.action("flow-run/x", type="FlowRun")
        data = list(tracker.list("Artifact", type="DataSet"))
        assert [e.arn for e in data] == [b.arn, a.arn]
        assert {e.kind for e in tracker.list(EntityKind.ACTION)} == {EntityKind.ACTION}
        later = list(tracker.list(type="DataSet", created_after=b.created_at))
        assert [e.arn for e in later] == [b.arn]

    def test_a_missing_entity_is_not_found(self, tracker: LineageTracker) -> None:
        art = tracker.artifact("s3://b/x.csv", type="DataSet")
        missing = art.arn[:-6] + "000000"
        with pytest.raises(NotFoundError) as info:
            tracker.get(missing)
        assert info.value.kind == "lineage-entity"

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"source_uri": "", "type": "DataSet"}, "source_uri"),
            ({"source_uri": "s3://b/x", "type": "Data Set"}, "type"),
            ({"source_uri": "s3://b/x", "type": "DataSet", "digest": "abc"}, "digest"),
            ({"source_uri": "https://user:pw@host/x", "type": "DataSet"}, "source_uri"),
            ({"source_uri": "s3://b/x", "type": "DataSet",
              "properties": {"aws_secret_access_key": "x"}}, "properties"),
            ({"source_uri": "s3://b/x", "type": "DataSet", "name": "-bad-"}, "name"),
        ],
    )
    def test_bad_input_is_a_spec_error(
        self, tracker: LineageTracker, kwargs: dict[str, object], field: str
    ) -> None:
        with pytest.raises(SpecValidationError) as info:
            tracker.artifact(**kwargs)  # type: ignore[arg-type]
        assert info.value.field == field
        assert list(tracker.list()) == []

    # -- associations ------------------------------------------------------------------------
    def test_associations_are_idempotent_and_listed(self, tracker: LineageTracker) -> None:
        data = tracker.artifact("s3://b/d.csv", type="DataSet")
        job = tracker.action("training-job/j", type="TrainingJob")
        first = tracker.associate(data, job, AssociationType.CONTRIBUTED_TO)
        again = tracker.associate(data.arn, job.arn, "ContributedTo")
        assert isinstance(first, Association)
        assert (first.source_arn, first.destination_arn, first.type) == (
            data.arn, job.arn, AssociationType.CONTRIBUTED_TO)
        assert (again.source_arn, again.destination_arn, again.type) == (
            first.source_arn, first.destination_arn, first.type)
        assert len(list(tracker.associations(source=data))) == 1
        assert [a.source_arn for a in tracker.associations(destination=job)] == [data.arn]
        assert list(tracker.associations(destination=job, type="Produced")) == []

    def test_a_pair_has_one_association_type(self, tracker: LineageTracker) -> None:
        data = tracker.artifact("s3://b/d.csv", type="DataSet")
        job = tracker.action("training-job/j", type="TrainingJob")
        tracker.associate(data, job, "ContributedTo")
        with pytest.raises(AlreadyExistsError):
            tracker.associate(data, job, "Produced")

    def test_bad_associations(self, tracker: LineageTracker) -> None:
        data = tracker.artifact("s3://b/d.csv", type="DataSet")
        job = tracker.action("training-job/j", type="TrainingJob")
        with pytest.raises(SpecValidationError) as info:
            tracker.associate(data, job, "CausedBy")
        assert info.value.field == "type"
        with pytest.raises(SpecValidationError):
            tracker.associate(data, data, "SameAs")
        tracker.associate(data, job)
        missing = job.arn[:-6] + "000000"
        with pytest.raises(NotFoundError):
            tracker.associate(missing, job, "ContributedTo")
        with pytest.raises(NotFoundError):
            tracker.associate(data, missing, "DerivedFrom")

    # -- queries -----------------------------------------------------------------------------
    def test_ascendants_of_a_model_reach_back_to_the_csv(
        self, tracker: LineageTracker, chain: dict[str, LineageEntity]
    ) -> None:
        graph = tracker.query(chain["model"], direction="Ascendants")
        assert isinstance(graph, LineageGraph)
        assert graph.start == (chain["model"].arn,)
        assert graph.direction is Direction.ASCENDANTS
        assert [v.arn for v in graph.vertices] == [
            chain[k].arn for k in ("model", "job", "parquet", "flow", "csv")]
        assert {(e.source_arn, e.destination_arn, e.type) for e in graph.edges} == {
            (chain["csv"].arn, chain["flow"].arn, AssociationType.CONTRIBUTED_TO),
            (chain["flow"].arn, chain["parquet"].arn, AssociationType.PRODUCED),
            (chain["parquet"].arn, chain["job"].arn, AssociationType.CONTRIBUTED_TO),
            (chain["job"].arn, chain["model"].arn, AssociationType.PRODUCED),
        }
        assert graph.vertex(chain["csv"].arn).digest == "sha256:" + "1" * 64
        assert chain["package"].arn not in graph

    def test_descendants_and_both(
        self, tracker: LineageTracker, chain: dict[str, LineageEntity]
    ) -> None:
        down = tracker.query(chain["parquet"], direction=Direction.DESCENDANTS)
        assert [v.arn for v in down.vertices] == [
            chain[k].arn for k in ("parquet", "job", "model", "package", "group")]
        both = tracker.query(chain["job"], direction="Both")
        assert {v.arn for v in both.vertices} == {e.arn for e in chain.values()}
        assert both.vertices[0].arn == chain["job"].arn
        assert len(both.edges) == 6

    def test_both_does_not_turn_round_to_siblings(self, tracker: LineageTracker) -> None:
        data = tracker.artifact("s3://b/d.csv", type="DataSet")
        job_a = tracker.action("training-job/a", type="TrainingJob")
        job_b = tracker.action("training-job/b", type="TrainingJob")
        model_a = tracker.artifact("s3://b/a/model.tar.gz", type="Model")
        tracker.associate(data, job_a)
        tracker.associate(data, job_b)
        tracker.associate(job_a, model_a, "Produced")
        graph = tracker.query(job_a, direction="Both")
        assert {v.arn for v in graph.vertices} == {job_a.arn, data.arn, model_a.arn}

    def test_max_depth_limits_the_walk(
        self, tracker: LineageTracker, chain: dict[str, LineageEntity]
    ) -> None:
        one = tracker.query(chain["model"], max_depth=1)
        assert [v.arn for v in one.vertices] == [chain["model"].arn, chain["job"].arn]
        assert len(one.edges) == 1
        two = tracker.query(chain["model"], max_depth=2)
        assert [v.arn for v in two.vertices][-1] == chain["parquet"].arn

    def test_filters_select_vertices_and_the_walk_passes_through(
        self, tracker: LineageTracker, chain: dict[str, LineageEntity]
    ) -> None:
        data = tracker.query(chain["group"], types=["DataSet"])
        assert [v.arn for v in data.vertices] == [
            chain["group"].arn, chain["parquet"].arn, chain["csv"].arn]
        assert data.edges == ()  # no walked edge has both ends among the returned
        actions = tracker.query(chain["model"], kinds=["Action"])
        assert [v.arn for v in actions.vertices] == [
            chain["model"].arn, chain["job"].arn, chain["flow"].arn]
        future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        assert [v.arn for v in tracker.query(chain["model"], created_after=future).vertices
                ] == [chain["model"].arn]
        bare = tracker.query(chain["model"], include_edges=False)
        assert len(bare.vertices) == 5 and bare.edges == ()

    def test_several_starts_and_cycles(self, tracker: LineageTracker) -> None:
        a = tracker.artifact("s3://b/a", type="DataSet")
        b = tracker.artifact("s3://b/b", type="DataSet")
        tracker.associate(a, b, "SameAs")
        tracker.associate(b, a, "SameAs")
        graph = tracker.query([a, b], direction="Both", max_depth=10)
        assert [v.arn for v in graph.vertices] == [a.arn, b.arn]
        assert len(graph.edges) == 2

    def test_query_errors(self, tracker: LineageTracker,
                          chain: dict[str, LineageEntity]) -> None:
        missing = chain["model"].arn[:-6] + "000000"
        with pytest.raises(NotFoundError):
            tracker.query(missing)
        for kwargs, field in (({"direction": "Up"}, "direction"), ({"max_depth": 0}, "max_depth"),
                              ({"max_depth": True}, "max_depth"),
                              ({"created_after": dt.datetime(2026, 1, 1)}, "created_after"),
                              ({"kinds": ["Trial"]}, "kinds")):
            with pytest.raises(SpecValidationError) as info:
                tracker.query(chain["model"], **kwargs)  # type: ignore[arg-type]
            assert info.value.field == field
        with pytest.raises(SpecValidationError):
            tracker.query([])
