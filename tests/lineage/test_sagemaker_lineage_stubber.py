"""The sagemaker lineage backend's exact requests, pinned with ``botocore.stub.Stubber``.

Stubber checks each request against the real SageMaker API model and each canned response
against its output shape, and fails on any call that was not expected, so these tests pin
what goes to AWS (and what does not: no ``QueryLineage`` deeper than 10) without moto, which
implements none of the lineage calls.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from botocore import exceptions as bce

from mlcycle.backends.sagemaker import SageMakerBackend
from mlcycle.backends.sagemaker._errors import lineage_translated, translate, translate_lineage
from mlcycle.backends.sagemaker.lineage import (
    ACTION_STATUSES,
    NAME_PROPERTY,
    NO_SOURCE_TYPE,
    STATUS_PROPERTY,
    action_status,
    sagemaker_name,
)
from mlcycle.errors import (
    AlreadyExistsError,
    InvalidStateError,
    NotFoundError,
    SpecValidationError,
    TransientBackendError,
)
from mlcycle.lineage import AssociationType, Direction, EntityKind, LineageTracker, QueryFilter

REGION = "us-east-1"
PREFIX = f"arn:aws:sagemaker:{REGION}:123456789012"
DATA = f"{PREFIX}:artifact/" + "d" * 32
MODEL = f"{PREFIX}:artifact/" + "e" * 32
JOB_NAME = "training-job/job-1"
JOB = f"{PREFIX}:action/{sagemaker_name(JOB_NAME)}"
TRIAL = f"{PREFIX}:experiment-trial-component/job-1-aws-training-job"
DIGEST = "sha256:" + "1" * 64
T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
SM_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}")


@pytest.fixture
def stubbed(monkeypatch):
    import boto3
    from botocore.stub import Stubber

    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    session = boto3.session.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    backend = SageMakerBackend(REGION, bucket="mlcycle-test", boto3_session=session)
    stub = Stubber(backend.client("sagemaker"))
    with stub:
        yield backend, stub
        stub.assert_no_pending_responses()
    backend.close()


def described_artifact(arn, uri, *, type="DataSet", digest=None, props=None, when=T0):
    source = {"SourceUri": uri}
    if digest:
        source["SourceTypes"] = [{"SourceIdType": "Custom", "Value": digest}]
    return {
        "ArtifactArn": arn,
        "ArtifactName": sagemaker_name(uri.rsplit("/", 1)[-1]),
        "Source": source,
        "ArtifactType": type,
        "Properties": props or {},
        "CreationTime": when,
        "LastModifiedTime": when,
    }


def described_job(status="Completed", props=None, when=T0):
    return {
        "ActionArn": JOB,
        "ActionName": sagemaker_name(JOB_NAME),
        "Source": {"SourceUri": JOB_NAME, "SourceType": NO_SOURCE_TYPE},
        "ActionType": "TrainingJob",
        "Status": status,
        "Properties": {NAME_PROPERTY: JOB_NAME, **(props or {})},
        "CreationTime": when,
        "LastModifiedTime": when,
    }


def summary(arn, uri, digest=None, when=T0):
    source = {"SourceUri": uri}
    if digest:
        source["SourceTypes"] = [{"SourceIdType": "Custom", "Value": digest}]
    return {"ArtifactArn": arn, "Source": source, "ArtifactType": "DataSet",
            "CreationTime": when}


def listed(uri):
    return {"SourceUri": uri, "SortBy": "CreationTime", "SortOrder": "Ascending",
            "MaxResults": 100}


# -- names and statuses --------------------------------------------------------------------------
@pytest.mark.parametrize("name", [
    "train-1", "training-job/xgboost-1", "a.b", "a/b", "A.b", "x" * 120, "s3:key=v+w@x",
    "feature-group/users", "9", "a" + "-" * 118 + "b", "model-package-group/G_1",
])
def test_sagemaker_names_are_valid_lowercase_and_stable(name):
    derived = sagemaker_name(name)
    assert SM_NAME.fullmatch(derived) and len(derived) <= 120
    assert derived == derived.lower() == sagemaker_name(name)
    if SM_NAME.fullmatch(name) and name == name.lower():
        assert derived == name
    else:
        assert derived.endswith(hashlib.sha256(name.encode()).hexdigest()[:10])


def test_distinct_names_get_distinct_sagemaker_names():
    names = ["a.b", "a/b", "a-b", "A-b", "a:b", "a--b", "a=b", "a+b", "a@b"]
    assert len({sagemaker_name(n) for n in names}) == len(names)


@pytest.mark.parametrize(("ours", "theirs", "exact"), [
    *((s, s, True) for s in sorted(ACTION_STATUSES)),
    ("Succeeded", "Completed", False), ("running", "InProgress", False),
    ("Pending", "InProgress", False), ("Cancelled", "Stopped", False),
    ("Error", "Failed", False), ("in progress", "InProgress", False),
    ("Whatever", "Unknown", False),
])
def test_statuses_map_onto_action_status(ours, theirs, exact):
    assert action_status(ours) == (theirs, exact)


# -- request shapes ------------------------------------------------------------------------------
def test_recording_an_artifact(stubbed):
    backend, stub = stubbed
    uri = "s3://b/raw/ratings.csv"
    props = {"rows": "10", NAME_PROPERTY: "ratings.csv"}
    stub.add_response("list_artifacts", {"ArtifactSummaries": []}, listed(uri))
    stub.add_response("create_artifact", {"ArtifactArn": DATA}, {
        "ArtifactName": "ratings-csv-" + hashlib.sha256(b"ratings.csv").hexdigest()[:10],
        "Source": {"SourceUri": uri,
                   "SourceTypes": [{"SourceIdType": "Custom", "Value": DIGEST}]},
        "ArtifactType": "DataSet",
        "Properties": props,
    })
    stub.add_response("list_artifacts", {"ArtifactSummaries": [summary(DATA, uri, DIGEST)]},
                      listed(uri))
    stub.add_response("describe_artifact",
                      described_artifact(DATA, uri, digest=DIGEST, props=props),
                      {"ArtifactArn": DATA})
    art = LineageTracker(backend).artifact(uri, type="DataSet", digest=DIGEST,
                                           properties={"rows": 10})
    assert (art.arn, art.kind, art.name, art.type) == (DATA, EntityKind.ARTIFACT, "ratings.csv",
                                                       "DataSet")
    assert (art.source_uri, art.digest, art.properties) == (uri, DIGEST, {"rows": "10"})
    assert art.created_at == T0 and art.created_at.tzinfo is dt.UTC


def test_a_known_artifact_is_found_by_its_digest_not_recreated(stubbed):
    backend, stub = stubbed
    uri = "s3://b/raw/ratings.csv"
    older = f"{PREFIX}:artifact/" + "0" * 32
    stub.add_response("list_artifacts", {"ArtifactSummaries": [
        summary(older, uri, "sha256:" + "9" * 64), summary(DATA, uri, DIGEST)]}, listed(uri))
    stub.add_response("describe_artifact", described_artifact(DATA, uri, digest=DIGEST),
                      {"ArtifactArn": DATA})
    assert LineageTracker(backend).artifact(uri, type="DataSet", digest=DIGEST).arn == DATA


def test_recording_an_action_with_a_status_sagemaker_lacks(stubbed):
    backend, stub = stubbed
    sm_name = sagemaker_name(JOB_NAME)
    stub.add_client_error("describe_action", service_error_code="ResourceNotFound",
                          service_message=f"Action {sm_name} does not exist.",
                          expected_params={"ActionName": sm_name})
    stub.add_response("create_action", {"ActionArn": JOB}, {
        "ActionName": sm_name,
        "Source": {"SourceUri": JOB_NAME, "SourceType": NO_SOURCE_TYPE},
        "ActionType": "TrainingJob",
        "Status": "Completed",
        "Properties": {NAME_PROPERTY: JOB_NAME, STATUS_PROPERTY: "Succeeded"},
    })
    stub.add_response("describe_action",
                      described_job(props={STATUS_PROPERTY: "Succeeded"}), {"ActionName": JOB})
    job = LineageTracker(backend).action(JOB_NAME, type="TrainingJob", status="Succeeded")
    assert (job.arn, job.name, job.status, job.source_uri, job.properties) == (
        JOB, JOB_NAME, "Succeeded", None, {})


def test_updating_an_action_sends_the_whole_property_list(stubbed):
    backend, stub = stubbed
    stub.add_response("describe_action",
                      described_job("Completed", {STATUS_PROPERTY: "Succeeded", "a": "1"}),
                      {"ActionName": JOB})
    stub.add_response("update_action", {"ActionArn": JOB}, {
        "ActionName": sagemaker_name(JOB_NAME), "Status": "Failed",
        "Properties": {NAME_PROPERTY: JOB_NAME, "a": "1", "b": "2"},
        "PropertiesToRemove": [STATUS_PROPERTY],
    })
    stub.add_response("describe_action", described_job("Failed", {"a": "1", "b": "2"}),
                      {"ActionName": JOB})
    job = backend.lineage.update_entity(JOB, status="Failed", properties={"b": "2"})
    assert (job.status, job.properties) == ("Failed", {"a": "1", "b": "2"})


def test_associating(stubbed):
    backend, stub = stubbed
    stub.add_response("list_associations", {"AssociationSummaries": []},
                      {"SourceArn": JOB, "DestinationArn": MODEL, "MaxResults": 100})
    stub.add_response("add_association", {"SourceArn": JOB, "DestinationArn": MODEL},
                      {"SourceArn": JOB, "DestinationArn": MODEL, "AssociationType": "Produced"})
    edge = LineageTracker(backend).associate(JOB, MODEL, "Produced")
    assert (edge.source_arn, edge.destination_arn, edge.type) == (
        JOB, MODEL, AssociationType.PRODUCED)


def test_an_existing_pair_is_not_added_again(stubbed):
    backend, stub = stubbed
    row = {"SourceArn": JOB, "DestinationArn": MODEL, "AssociationType": "Produced",
           "CreationTime": T0}
    for _ in range(2):
        stub.add_response("list_associations", {"AssociationSummaries": [row]},
                          {"SourceArn": JOB, "DestinationArn": MODEL, "MaxResults": 100})
    tracker = LineageTracker(backend)
    assert tracker.associate(JOB, MODEL, "Produced").created_at == T0
    with pytest.raises(AlreadyExistsError) as info:
        tracker.associate(JOB, MODEL, "ContributedTo")
    assert info.value.kind == "lineage-association"


def test_a_missing_end_of_an_association_is_named(stubbed):
    backend, stub = stubbed
    stub.add_response("list_associations", {"AssociationSummaries": []},
                      {"SourceArn": DATA, "DestinationArn": JOB, "MaxResults": 100})
    stub.add_client_error("add_association", service_error_code="ResourceNotFound",
                          service_message="Resource not found")
    stub.add_response("describe_artifact", described_artifact(DATA, "s3://b/d.csv"),
                      {"ArtifactArn": DATA})
    stub.add_client_error("describe_action", service_error_code="ResourceNotFound",
                          service_message="not found", expected_params={"ActionName": JOB})
    with pytest.raises(NotFoundError) as info:
        LineageTracker(backend).associate(DATA, JOB)
    assert (info.value.kind, info.value.name) == ("lineage-entity", JOB)


def test_a_query_is_one_query_lineage_per_start_paginated(stubbed):
    backend, stub = stubbed
    query = {"StartArns": [MODEL], "Direction": "Ascendants", "IncludeEdges": True,
             "MaxDepth": 3, "MaxResults": 50}
    stub.add_response("describe_artifact",
                      described_artifact(MODEL, "s3://b/model.tar.gz", type="Model"),
                      {"ArtifactArn": MODEL})
    stub.add_response("query_lineage", {
        "Vertices": [{"Arn": MODEL, "Type": "Model", "LineageType": "Artifact"},
                     {"Arn": JOB, "Type": "TrainingJob", "LineageType": "Action"}],
        "Edges": [{"SourceArn": JOB, "DestinationArn": MODEL, "AssociationType": "Produced"}],
        "NextToken": "page-2",
    }, query)
    stub.add_response("query_lineage", {
        "Vertices": [{"Arn": TRIAL, "Type": "SageMakerTrainingJob",
                      "LineageType": "TrialComponent"},
                     {"Arn": DATA, "Type": "DataSet", "LineageType": "Artifact"}],
        "Edges": [{"SourceArn": TRIAL, "DestinationArn": JOB, "AssociationType": "SameAs"},
                  {"SourceArn": DATA, "DestinationArn": TRIAL,
                   "AssociationType": "ContributedTo"}],
    }, {**query, "NextToken": "page-2"})
    stub.add_response("describe_action", described_job(), {"ActionName": JOB})
    stub.add_response("describe_artifact", described_artifact(DATA, "s3://b/d.csv"),
                      {"ArtifactArn": DATA})
    graph = LineageTracker(backend).query(MODEL, direction="Ascendants", max_depth=3)
    # the trial component is walked through but is not an entity of ours
    assert [v.arn for v in graph.vertices] == [MODEL, JOB, DATA]
    assert [(e.source_arn, e.destination_arn) for e in graph.edges] == [(JOB, MODEL)]


def test_filters_are_applied_here_not_sent(stubbed):
    backend, stub = stubbed
    stub.add_response("describe_artifact",
                      described_artifact(MODEL, "s3://b/model.tar.gz", type="Model"),
                      {"ArtifactArn": MODEL})
    stub.add_response("query_lineage", {
        "Vertices": [{"Arn": JOB, "Type": "TrainingJob", "LineageType": "Action"}],
        "Edges": [{"SourceArn": JOB, "DestinationArn": MODEL, "AssociationType": "Produced"}],
    }, {"StartArns": [MODEL], "Direction": "Both", "IncludeEdges": True, "MaxDepth": 10,
        "MaxResults": 50})
    stub.add_response("describe_action", described_job(), {"ActionName": JOB})
    graph = backend.lineage.query((MODEL,), direction=Direction.BOTH, max_depth=10,
                                  where=QueryFilter(types=["DataSet"]), include_edges=False)
    assert [v.arn for v in graph.vertices] == [MODEL] and graph.edges == ()


def test_deeper_than_ten_walks_list_associations_instead(stubbed):
    backend, stub = stubbed
    stub.add_response("describe_artifact",
                      described_artifact(MODEL, "s3://b/model.tar.gz", type="Model"),
                      {"ArtifactArn": MODEL})
    stub.add_response("list_associations", {"AssociationSummaries": [
        {"SourceArn": JOB, "DestinationArn": MODEL, "AssociationType": "Produced",
         "CreationTime": T0}]},
        {"DestinationArn": MODEL, "SortBy": "CreationTime", "SortOrder": "Ascending",
         "MaxResults": 100})
    stub.add_response("list_associations", {"AssociationSummaries": []},
                      {"DestinationArn": JOB, "SortBy": "CreationTime", "SortOrder": "Ascending",
                       "MaxResults": 100})
    stub.add_response("describe_action", described_job(), {"ActionName": JOB})
    graph = LineageTracker(backend).query(MODEL, max_depth=11)
    assert [v.arn for v in graph.vertices] == [MODEL, JOB]


def test_listing_merges_the_kinds_newest_first(stubbed):
    backend, stub = stubbed
    after = T0 - dt.timedelta(hours=1)
    base = {"SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 100,
            "CreatedAfter": after - dt.timedelta(milliseconds=1)}
    later = T0 + dt.timedelta(seconds=1)
    stub.add_response("list_artifacts", {"ArtifactSummaries": [
        summary(DATA, "s3://b/d.csv", when=T0)], "NextToken": "n"}, base)
    stub.add_response("list_actions", {"ActionSummaries": [
        {"ActionArn": JOB, "ActionType": "TrainingJob", "CreationTime": later,
         "Source": {"SourceUri": JOB_NAME, "SourceType": NO_SOURCE_TYPE}}]}, base)
    stub.add_response("list_contexts", {"ContextSummaries": []}, base)
    stub.add_response("describe_action", described_job(when=later), {"ActionName": JOB})
    stub.add_response("describe_artifact", described_artifact(DATA, "s3://b/d.csv"),
                      {"ArtifactArn": DATA})
    stub.add_response("list_artifacts", {"ArtifactSummaries": [
        summary(MODEL, "s3://b/m", when=after - dt.timedelta(seconds=1))]},
        {**base, "NextToken": "n"})
    found = list(LineageTracker(backend).list(created_after=after))
    assert [e.arn for e in found] == [JOB, DATA]  # MODEL is older than asked, not described


# -- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "message", "expected"), [
    ("ResourceNotFound", "Artifact does not exist", NotFoundError),
    ("ValidationException", f"Artifact {DATA} does not exist.", NotFoundError),
    ("ThrottlingException", "Rate exceeded", TransientBackendError),
    ("InternalFailure", "", TransientBackendError),
])
def test_describe_errors_translate(stubbed, code, message, expected):
    backend, stub = stubbed
    stub.add_client_error("describe_artifact", service_error_code=code,
                          service_message=message,
                          http_status_code=500 if code == "InternalFailure" else 400,
                          expected_params={"ArtifactArn": DATA})
    with pytest.raises(expected) as info:
        backend.lineage.describe_entity(DATA)
    assert isinstance(info.value.__cause__, bce.ClientError)
    if expected is NotFoundError:
        assert (info.value.kind, info.value.name) == ("lineage-entity", DATA)


def test_a_missing_action_found_by_name_is_none(stubbed):
    backend, stub = stubbed
    stub.add_client_error("describe_action", service_error_code="ValidationException",
                          service_message="Could not find action",
                          expected_params={"ActionName": sagemaker_name(JOB_NAME)})
    assert LineageTracker(backend).find("Action", JOB_NAME) is None


def test_an_action_of_another_name_is_not_ours(stubbed):
    backend, stub = stubbed
    other = described_job()
    other["Properties"] = {NAME_PROPERTY: "training-job/job-2"}  # a clash of derived names
    stub.add_response("describe_action", other, {"ActionName": sagemaker_name(JOB_NAME)})
    assert LineageTracker(backend).find("Action", JOB_NAME) is None


def test_a_duplicate_action_is_already_exists(stubbed):
    backend, stub = stubbed
    stub.add_client_error("create_action", service_error_code="ValidationException",
                          service_message=f"Action with name {sagemaker_name(JOB_NAME)} "
                                          "already exists.")
    with pytest.raises(AlreadyExistsError) as info:
        backend.lineage.create_entity(EntityKind.ACTION, name=JOB_NAME, type="TrainingJob")
    assert (info.value.kind, info.value.name) == ("Action", JOB_NAME)


def test_a_concurrent_update_is_transient(stubbed):
    backend, stub = stubbed
    stub.add_response("describe_action", described_job(), {"ActionName": JOB})
    stub.add_client_error("update_action", service_error_code="ConflictException",
                          service_message="There was a conflict when you attempted to modify "
                                          "the Action.")
    with pytest.raises(TransientBackendError) as info:
        backend.lineage.update_entity(JOB, status="Stopped")
    assert info.value.code == "ConflictException"


def test_arns_that_sagemaker_could_not_hold_are_not_found_without_a_call(stubbed):
    backend, _ = stubbed
    for arn in ("local:artifact/abc", f"{PREFIX}:action/not.valid", f"{PREFIX}:model/x",
                "arn:aws:s3:::bucket/key"):
        with pytest.raises(NotFoundError):
            backend.lineage.describe_entity(arn)
        with pytest.raises(NotFoundError):
            backend.lineage.update_entity(arn, status="Completed")
        if ":sagemaker:" not in arn or ":model/" in arn:  # not an association's end at all
            assert list(backend.lineage.list_associations(source_arn=arn)) == []


@pytest.mark.parametrize(("properties", "field"), [
    ({f"k{i}": "v" for i in range(30)}, "properties"),  # 30 + mlcycle:name
    ({"mlcycle:own": "x"}, "properties"),
    ({"long": "x" * 2501}, "properties"),
])
def test_properties_sagemaker_cannot_hold_are_refused_before_a_call(stubbed, properties, field):
    backend, _ = stubbed
    with pytest.raises(SpecValidationError) as info:
        backend.lineage.create_entity(EntityKind.ACTION, name=JOB_NAME, type="TrainingJob",
                                      properties=properties)
    assert info.value.field == field


def client_error(code, message, status=400):
    return bce.ClientError({"Error": {"Code": code, "Message": message},
                            "ResponseMetadata": {"HTTPStatusCode": status}}, "UpdateAction")


def test_lineage_translation_differs_from_the_general_one_only_where_it_must():
    status_message = ("1 validation error detected: Value 'Done' at 'status' failed to satisfy "
                      "constraint: Member must satisfy enum value set")
    assert type(translate(client_error("ValidationException", status_message))) is (
        InvalidStateError)
    assert type(translate_lineage(client_error("ValidationException", status_message))) is (
        SpecValidationError)
    assert type(translate(client_error("ConflictException", "conflict"))) is AlreadyExistsError
    assert type(translate_lineage(client_error("ConflictException", "conflict"))) is (
        TransientBackendError)
    for code, message, expected in (
        ("ValidationException", "Action x does not exist", NotFoundError),
        ("ValidationException", "Action x already exists", AlreadyExistsError),
        ("ResourceNotFound", "", NotFoundError),
        ("AccessDeniedException", "no", type(translate(client_error("AccessDeniedException",
                                                                    "no")))),
    ):
        assert type(translate_lineage(client_error(code, message))) is expected
    with pytest.raises(TransientBackendError), lineage_translated(kind="lineage-entity",
                                                                  name=JOB):
        raise client_error("ThrottlingException", "Rate exceeded")
