"""The in-process fake of SageMaker's lineage API, and what the backend does on top of it.

The fake stands in for AWS in the sagemaker lineage contract, so it must hold to the real
API: requests checked as the service checks them, answers valid for the model, AWS's error
codes, and QueryLineage's documented semantics.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest
from botocore.exceptions import ClientError

from mlcycle.backends.sagemaker import SageMakerBackend
from mlcycle.errors import AlreadyExistsError
from mlcycle.lineage import EntityKind, LineageTracker
from mlcycle.testing.aws import FAKE_ROLE, mock_sagemaker_backend
from mlcycle.testing.aws_lineage import SageMakerLineageFake, lineage_store

pytestmark = pytest.mark.aws

ARTIFACT_ARN = re.compile(r"^arn:aws:sagemaker:us-east-1:123456789012:artifact/[0-9a-f]{32}$")


@pytest.fixture
def env():
    """A backend on moto with a fake of its own (to see its calls) and a bare client."""
    import boto3

    with mock_sagemaker_backend() as _:
        session = boto3.session.Session(region_name="us-east-1")
        fake = SageMakerLineageFake()
        fake.install(session)
        backend = SageMakerBackend("us-east-1", bucket="mlcycle-test", role=FAKE_ROLE,
                                   boto3_session=session)
        try:
            yield backend, fake, backend.client("sagemaker")
        finally:
            backend.close()


def code_of(info: pytest.ExceptionInfo[ClientError]) -> str:
    return info.value.response["Error"]["Code"]


def artifact(sm, uri, type="DataSet", **extra):
    return sm.create_artifact(Source={"SourceUri": uri}, ArtifactType=type, **extra)["ArtifactArn"]


def action(sm, name, type="TrainingJob", **extra):
    return sm.create_action(ActionName=name, Source={"SourceUri": name}, ActionType=type,
                            **extra)["ActionArn"]


# -- the API's own rules -------------------------------------------------------------------------
def test_arns_times_and_shapes_are_sagemakers(env):
    _, _, sm = env
    arn = artifact(sm, "s3://b/x.csv", Properties={"a": "1"})
    assert ARTIFACT_ARN.match(arn)
    assert action(sm, "Job-1") == "arn:aws:sagemaker:us-east-1:123456789012:action/job-1"
    got = sm.describe_artifact(ArtifactArn=arn)
    assert got["Properties"] == {"a": "1"} and got["Source"] == {"SourceUri": "s3://b/x.csv"}
    assert isinstance(got["CreationTime"], dt.datetime) and got["CreationTime"].tzinfo
    assert got["CreationTime"].microsecond % 1000 == 0  # SageMaker keeps milliseconds
    assert sm.describe_action(ActionName="job-1")["ActionName"] == "Job-1"


@pytest.mark.parametrize(("call", "kwargs"), [
    ("create_action", {"ActionName": "a/b", "Source": {"SourceUri": "x"}, "ActionType": "T"}),
    ("create_action", {"ActionName": "a" * 121, "Source": {"SourceUri": "x"},
                       "ActionType": "T"}),
    ("create_action", {"ActionName": "a", "Source": {"SourceUri": "x"}, "ActionType": "T",
                       "Status": "Succeeded"}),
    ("create_artifact", {"ArtifactName": "m.tar.gz", "Source": {"SourceUri": "x"},
                         "ArtifactType": "Model"}),
    ("create_artifact", {"Source": {"SourceUri": "x"}, "ArtifactType": "Model",
                         "Properties": {f"k{i}": "v" for i in range(31)}}),
    ("create_context", {"ContextName": "ctx.1", "Source": {"SourceUri": "x"},
                        "ContextType": "T"}),
    ("describe_artifact", {"ArtifactArn": "arn:aws:sagemaker:us-east-1:1:artifact/x"}),
    ("query_lineage", {"StartArns": ["arn:aws:sagemaker:us-east-1:123456789012:artifact/a",
                                     "arn:aws:sagemaker:us-east-1:123456789012:artifact/b"]}),
    ("query_lineage", {"StartArns": ["arn:aws:sagemaker:us-east-1:123456789012:artifact/a"],
                       "MaxDepth": 11}),
    ("query_lineage", {"StartArns": ["arn:aws:sagemaker:us-east-1:123456789012:artifact/a"],
                       "MaxResults": 51}),
    ("list_artifacts", {"MaxResults": 101}),
])
def test_what_botocore_lets_through_the_service_refuses(env, call, kwargs):
    _, _, sm = env
    with pytest.raises(ClientError) as info:
        getattr(sm, call)(**kwargs)
    assert code_of(info) == "ValidationException"
    assert "failed to satisfy constraint" in info.value.response["Error"]["Message"]


def test_missing_and_duplicate_entities(env):
    _, _, sm = env
    missing = "arn:aws:sagemaker:us-east-1:123456789012:artifact/" + "0" * 32
    for call, kwargs in (("describe_artifact", {"ArtifactArn": missing}),
                         ("describe_action", {"ActionName": "nope"}),
                         ("describe_context", {"ContextName": "nope"}),
                         ("update_action", {"ActionName": "nope", "Status": "Failed"}),
                         ("query_lineage", {"StartArns": [missing]})):
        with pytest.raises(ClientError) as info:
            getattr(sm, call)(**kwargs)
        assert code_of(info) == "ResourceNotFound"
    action(sm, "job")
    with pytest.raises(ClientError) as info:
        action(sm, "JOB")
    assert code_of(info) == "ValidationException"
    assert "already exists" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        sm.add_association(SourceArn=missing, DestinationArn=sm.describe_action(
            ActionName="job")["ActionArn"])
    assert code_of(info) == "ResourceNotFound"


def test_update_overwrites_the_property_list(env):
    _, _, sm = env
    arn = artifact(sm, "s3://b/x", Properties={"a": "1", "b": "2"})
    sm.update_artifact(ArtifactArn=arn, Properties={"c": "3"})
    assert sm.describe_artifact(ArtifactArn=arn)["Properties"] == {"c": "3"}
    sm.update_artifact(ArtifactArn=arn, Properties={"c": "3", "d": "4"},
                       PropertiesToRemove=["c"])
    assert sm.describe_artifact(ArtifactArn=arn)["Properties"] == {"d": "4"}


def test_lists_page_and_sort_as_documented(env):
    _, _, sm = env
    arns = [artifact(sm, f"s3://b/{i}") for i in range(5)]
    first = sm.list_artifacts(MaxResults=2)
    assert [s["ArtifactArn"] for s in first["ArtifactSummaries"]] == arns[::-1][:2]
    assert first["NextToken"]
    rest = sm.list_artifacts(MaxResults=3, NextToken=first["NextToken"])
    assert [s["ArtifactArn"] for s in rest["ArtifactSummaries"]] == arns[::-1][2:]
    assert "NextToken" not in rest
    with pytest.raises(ClientError) as info:  # a token belongs to its query
        sm.list_artifacts(ArtifactType="Model", NextToken=first["NextToken"])
    assert code_of(info) == "ValidationException"
    assert len(sm.list_artifacts()["ArtifactSummaries"]) == 5  # 10 by default
    made = sm.describe_artifact(ArtifactArn=arns[2])["CreationTime"]
    after = sm.list_artifacts(CreatedAfter=made, SortOrder="Ascending")
    assert [s["ArtifactArn"] for s in after["ArtifactSummaries"]] == arns[2:]  # inclusive


# -- QueryLineage ---------------------------------------------------------------------------------
@pytest.fixture
def graph(env):
    """data -> job -> model -> endpoint, and data -> other job (a sibling of the first)."""
    _, _, sm = env
    e = {"data": artifact(sm, "s3://b/d.csv"), "job": action(sm, "job"),
         "model": artifact(sm, "s3://b/m.tar.gz", "Model"),
         "endpoint": sm.create_context(ContextName="ep", Source={"SourceUri": "ep"},
                                       ContextType="Endpoint")["ContextArn"],
         "other": action(sm, "other")}
    for src, dst, kind in (("data", "job", "ContributedTo"), ("job", "model", "Produced"),
                           ("model", "endpoint", "ContributedTo"),
                           ("data", "other", "ContributedTo")):
        sm.add_association(SourceArn=e[src], DestinationArn=e[dst], AssociationType=kind)
    return e


def arns(answer):
    return [v["Arn"] for v in answer["Vertices"]]


def test_query_lineage_walks_each_way_and_both_does_not_turn_round(env, graph):
    _, _, sm = env
    up = sm.query_lineage(StartArns=[graph["model"]], Direction="Ascendants", IncludeEdges=True)
    assert arns(up) == [graph[k] for k in ("model", "job", "data")]
    assert len(up["Edges"]) == 2
    down = sm.query_lineage(StartArns=[graph["job"]], Direction="Descendants")
    assert arns(down) == [graph[k] for k in ("job", "model", "endpoint")]
    assert down["Edges"] == []  # IncludeEdges is false unless asked
    both = sm.query_lineage(StartArns=[graph["job"]], Direction="Both", IncludeEdges=True)
    assert set(arns(both)) == {graph[k] for k in ("job", "data", "model", "endpoint")}
    one = sm.query_lineage(StartArns=[graph["endpoint"]], Direction="Ascendants", MaxDepth=1)
    assert arns(one) == [graph["endpoint"], graph["model"]]


def test_query_lineage_filters_select_vertices_and_edges_keep_the_path(env, graph):
    _, _, sm = env
    only = sm.query_lineage(StartArns=[graph["endpoint"]], Direction="Ascendants",
                            Filters={"Types": ["DataSet"]})
    assert arns(only) == [graph["data"]]
    path = sm.query_lineage(StartArns=[graph["endpoint"]], Direction="Ascendants",
                            Filters={"LineageTypes": ["Action"]}, IncludeEdges=True)
    assert arns(path) == [graph[k] for k in ("endpoint", "model", "job")]
    assert {(e["SourceArn"], e["DestinationArn"]) for e in path["Edges"]} == {
        (graph["model"], graph["endpoint"]), (graph["job"], graph["model"])}


def test_query_lineage_pages_vertices_and_gives_each_edge_once(env, graph):
    _, _, sm = env
    seen, edges, token = [], [], None
    while True:
        page = sm.query_lineage(StartArns=[graph["data"]], Direction="Descendants",
                                IncludeEdges=True, MaxResults=2,
                                **({"NextToken": token} if token else {}))
        assert len(page["Vertices"]) <= 2
        seen += arns(page)
        edges += [(e["SourceArn"], e["DestinationArn"]) for e in page["Edges"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen[0] == graph["data"] and len(seen) == len(set(seen)) == 5
    assert len(edges) == len(set(edges)) == 4


# -- the backend on the fake ---------------------------------------------------------------------
def test_a_query_deeper_than_sagemaker_goes_walks(env):
    backend, fake, _ = env
    tracker = LineageTracker(backend)
    chain = [tracker.artifact(f"s3://b/{i}", type="DataSet") for i in range(13)]
    for a, b in itertools.pairwise(chain):
        tracker.associate(a, b, "DerivedFrom")
    fake.calls.clear()
    ten = tracker.query(chain[-1], max_depth=10)
    assert [v.arn for v in ten.vertices] == [e.arn for e in chain[::-1][:11]]
    assert [c for c, _ in fake.calls].count("QueryLineage") == 1
    fake.calls.clear()
    deep = tracker.query(chain[-1], max_depth=20)
    assert [v.arn for v in deep.vertices] == [e.arn for e in chain[::-1]]
    assert "QueryLineage" not in [c for c, _ in fake.calls]
    assert len(deep.edges) == 12


def test_entities_keep_our_names_statuses_and_no_source(env):
    backend, _, sm = env
    tracker = LineageTracker(backend)
    job = tracker.action("training-job/xgb.1", type="TrainingJob", status="Succeeded")
    raw = sm.describe_action(ActionName=job.arn)
    assert raw["ActionName"] != "training-job/xgb.1" and raw["Status"] == "Completed"
    assert (job.name, job.status, job.source_uri) == ("training-job/xgb.1", "Succeeded", None)
    done = tracker.action("training-job/xgb.1", type="TrainingJob", status="Stopped")
    assert done.status == "Stopped"
    assert "mlcycle:status" not in sm.describe_action(ActionName=job.arn)["Properties"]
    ctx = tracker.context("feature-group/users", type="FeatureGroup",
                          source_uri="arn:aws:sagemaker:us-east-1:123456789012:"
                                     "feature-group/users", properties={"n": 1})
    assert ctx.source_uri.endswith(":feature-group/users") and ctx.properties == {"n": "1"}
    assert tracker.find("Context", "feature-group/users") == ctx


def test_a_twin_artifact_made_at_the_same_time_is_settled(env):
    """Two writers record one artifact at once: the later one deletes its own and reuses."""
    backend, _, sm = env
    import boto3

    other = boto3.session.Session(region_name="us-east-1")
    SageMakerLineageFake().install(other)
    rival = other.client("sagemaker")
    twins: list[str] = []

    def race(params, **_):
        if not twins:  # the other writer gets in between our find and our create
            twins.append(rival.create_artifact(
                Source={"SourceUri": "s3://b/k.csv", "SourceTypes": [
                    {"SourceIdType": "Custom", "Value": "sha256:" + "a" * 64}]},
                ArtifactType="DataSet")["ArtifactArn"])

    sm.meta.events.register("before-parameter-build.sagemaker.CreateArtifact", race)
    art = LineageTracker(backend).artifact("s3://b/k.csv", type="DataSet",
                                           digest="sha256:" + "a" * 64)
    assert art.arn == twins[0]
    left = sm.list_artifacts(SourceUri="s3://b/k.csv")["ArtifactSummaries"]
    assert [s["ArtifactArn"] for s in left] == twins
    rival.close()
    with pytest.raises(AlreadyExistsError):
        backend.lineage.create_entity(EntityKind.ARTIFACT, name="k.csv", type="DataSet",
                                      source_uri="s3://b/k.csv", digest="sha256:" + "a" * 64)
    assert len(sm.list_artifacts(SourceUri="s3://b/k.csv")["ArtifactSummaries"]) == 1


def test_every_client_in_one_mock_sees_the_same_lineage():
    from mlcycle.testing.aws_featurestore import mock_feature_store_backend

    with mock_feature_store_backend() as env:
        tracker = LineageTracker(env.backend)
        data = tracker.artifact("s3://b/d.csv", type="DataSet")
        assert lineage_store().entities[data.arn].source["SourceUri"] == "s3://b/d.csv"
    with mock_sagemaker_backend() as backend:  # a new mock starts empty
        assert list(LineageTracker(backend).list()) == []
