"""The sagemaker registry backend, below the facade: how it sits on SageMaker and S3.

On moto: numbering, idempotency by client token (and a retry after a crash), the approval
update, aliases as group tags, the audit log in S3 and its order under concurrent writers,
listing order and filter, what does not fit in ``CustomerMetadataProperties``. With
``botocore.stub.Stubber``, which checks every request against the real API model: the exact
``CreateModelPackage`` and ``UpdateModelPackage`` requests. moto's own quirks, which the
backend works around, are pinned as strict xfails, so a marker goes stale when moto changes.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from botocore import exceptions as bce
from botocore.stub import Stubber

from mlcycle.backends.base import Capability
from mlcycle.backends.sagemaker import SageMakerBackend
from mlcycle.backends.sagemaker._errors import is_write_conflict
from mlcycle.backends.sagemaker.registry import (
    ALIAS_TAG,
    SageMakerRegistryBackend,
    client_token_for,
    metadata_value_ok,
    token_hash,
)
from mlcycle.backends.sagemaker.training import xgboost_image_uri
from mlcycle.errors import (
    AlreadyExistsError,
    NotFoundError,
    SpecValidationError,
    TransientBackendError,
)
from mlcycle.registry import ApprovalStatus, AuditEvent, InferenceSpec, NewModelVersion

pytestmark = pytest.mark.aws

GROUP = "ratings"
MODEL = "s3://mlcycle-test/test/artifacts/models/m/model.tar.gz"
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def backend(sagemaker_backend):
    return sagemaker_backend


@pytest.fixture
def reg(backend):
    registry = backend.registry
    registry.create_group(GROUP, description="music ratings", tags={"team": "ml"})
    return registry


def new(token="t1", **changes):
    fields = {"model_uri": MODEL, "model_key": "models/m/model.tar.gz", "model_digest": DIGEST,
              "inference": InferenceSpec(framework_version="3.2.0"),
              "metrics": {"validation-rmse": 0.25}, "tags": {"stage": "dev"},
              "description": "first", "created_by": "ana", "client_token": token}
    fields.update(changes)
    return NewModelVersion(**fields)


def sm(backend):
    return backend.client("sagemaker")


def packages(backend, group=GROUP):
    return sm(backend).list_model_packages(ModelPackageGroupName=group)[
        "ModelPackageSummaryList"]


def s3_keys(backend, prefix):
    listed = backend.client("s3").list_objects_v2(Bucket=backend.bucket,
                                                  Prefix=f"{backend.prefix}/{prefix}")
    return [o["Key"] for o in listed.get("Contents", [])]


def s3_json(backend, key):
    body = backend.client("s3").get_object(Bucket=backend.bucket, Key=key)["Body"].read()
    return json.loads(body)


# -- the backend -------------------------------------------------------------------------------
def test_the_backend_has_the_registry_and_creates_no_client_for_it():
    backend = SageMakerBackend("us-east-1", bucket="some-bucket")
    assert Capability.REGISTRY in SageMakerBackend.capabilities
    assert isinstance(backend.registry, SageMakerRegistryBackend)
    assert backend.registry is backend.registry
    assert backend._clients == {}


# -- groups ------------------------------------------------------------------------------------
def test_a_group_is_a_model_package_group_with_tags(backend, reg):
    info = reg.describe_group(GROUP)
    raw = sm(backend).describe_model_package_group(ModelPackageGroupName=GROUP)
    assert info.arn == raw["ModelPackageGroupArn"]
    assert info.arn.startswith("arn:aws:sagemaker:us-east-1:")
    assert (info.description, dict(info.tags)) == ("music ratings", {"team": "ml"})
    assert info.created_at.tzinfo is not None and info.created_at.utcoffset() == dt.timedelta(0)
    with pytest.raises(AlreadyExistsError) as exc:
        reg.create_group(GROUP)
    assert (exc.value.kind, exc.value.name) == ("model-package-group", GROUP)
    # the check kept moto from replacing the group (and dropping its tags)
    assert reg.describe_group(GROUP).tags == {"team": "ml"}


def test_groups_list_newest_first_and_filter_case_sensitively(reg):
    reg.create_group("churn-a")
    reg.create_group("churn-b")
    assert [g.name for g in reg.list_groups()] == ["churn-b", "churn-a", GROUP]
    assert [g.name for g in reg.list_groups(name_contains="churn")] == ["churn-b", "churn-a"]
    assert list(reg.list_groups(name_contains="CHURN")) == []
    assert list(reg.list_groups(name_contains="under_score")) == []  # no name holds "_"
    assert next(iter(reg.list_groups(name_contains="rat"))).tags == {"team": "ml"}


@pytest.mark.parametrize("tags", [{"k": "a,b"}, {"k!": "v"}, {"mlcycle:alias:x": "1"}])
def test_tags_sagemaker_refuses_are_refused_before_any_call(backend, tags):
    with pytest.raises(SpecValidationError) as exc:
        backend.registry.create_group("tagged", tags=tags)
    assert exc.value.field == "tags"
    with pytest.raises(NotFoundError):
        backend.registry.describe_group("tagged")


# -- registering -------------------------------------------------------------------------------
def test_versions_are_sagemakers_numbers(backend, reg):
    made = [reg.create_version(GROUP, new(f"t{i}")) for i in range(3)]
    assert [(v.version, created) for v, created in made] == [(1, True), (2, True), (3, True)]
    assert [v.arn for v, _ in made] == [
        f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/{n}" for n in (1, 2, 3)]
    assert sorted(p["ModelPackageVersion"] for p in packages(backend)) == [1, 2, 3]
    reg.create_group("Other-Group")
    version, _ = reg.create_version("Other-Group", new("t1"))
    assert version.version == 1 and version.group == "Other-Group"
    assert reg.describe_version("Other-Group", 1) == version  # the ARN is lowercase


def test_a_version_round_trips_and_maps_onto_the_package(backend, reg):
    version, created = reg.create_version(GROUP, new(lineage_arn="arn:aws:sagemaker:x:1:a/b",
                                                     source="train-1"))
    assert created
    assert reg.describe_version(GROUP, 1) == version
    assert (version.model_uri, version.model_key, version.model_digest) == (
        MODEL, "models/m/model.tar.gz", DIGEST)
    assert (dict(version.metrics), dict(version.tags)) == ({"validation-rmse": 0.25},
                                                           {"stage": "dev"})
    assert (version.source, version.lineage_arn) == ("train-1", "arn:aws:sagemaker:x:1:a/b")
    assert version.inference == InferenceSpec(framework_version="3.2.0")
    assert (version.created_by, version.status_changed_by, version.status_reason) == (
        "ana", "ana", "")
    assert version.status_changed_at == version.created_at
    raw = sm(backend).describe_model_package(ModelPackageName=version.arn)
    container = raw["InferenceSpecification"]["Containers"][0]
    assert container == {"Image": xgboost_image_uri("us-east-1"), "ModelDataUrl": MODEL,
                         "Framework": "XGBOOST", "FrameworkVersion": "3.2.0"}
    assert raw["ModelApprovalStatus"] == "PendingManualApproval"
    assert raw["ModelPackageDescription"] == "first"
    meta = raw["CustomerMetadataProperties"]
    assert meta["mlcycle:digest"] == DIGEST and meta["mlcycle:client-token"] == "t1"
    assert meta["metric:validation-rmse"] == "0.25" and meta["tag:stage"] == "dev"
    assert meta["mlcycle:record"] == "inline"
    stats = raw["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert stats["ContentType"] == "application/json"
    key = stats["S3Uri"].removeprefix(f"s3://{backend.bucket}/")
    assert key == f"test/registry/{GROUP}/tokens/{token_hash('t1')}/metrics.json"
    assert s3_json(backend, key) == {"metrics": {"validation-rmse": 0.25}}


def test_a_given_image_is_sent_as_is(backend, reg):
    spec = InferenceSpec(image="1.dkr.ecr.us-east-1.amazonaws.com/mine:2", runtime=None,
                         content_types=("text/csv",), response_types=("application/json",),
                         framework="XGBOOST", framework_version="1.7")
    version, _ = reg.create_version(GROUP, new(inference=spec))
    assert version.inference == spec
    raw = sm(backend).describe_model_package(ModelPackageName=version.arn)
    assert raw["InferenceSpecification"]["Containers"][0]["Image"] == spec.image
    assert raw["InferenceSpecification"]["SupportedContentTypes"] == ["text/csv"]
    assert "mlcycle:runtime" not in raw["CustomerMetadataProperties"]


def test_what_does_not_fit_the_metadata_lives_in_the_s3_record(backend, reg):
    many = {f"metric-{i:02d}": i / 7 for i in range(60)}
    odd = new(created_by="Ana (ops)", metrics=many, tags={"note": "a, b & c"},
              description="two\nlines", inference=InferenceSpec(framework_version="3.2.0rc1+x"))
    version, _ = reg.create_version(GROUP, odd)
    raw = sm(backend).describe_model_package(ModelPackageName=version.arn)
    meta = raw["CustomerMetadataProperties"]
    assert len(meta) <= 50 - 3 and meta["mlcycle:record"] == "s3"
    assert all(metadata_value_ok(k, limit=128) and metadata_value_ok(v) for k, v in meta.items())
    assert "FrameworkVersion" not in raw["InferenceSpecification"]["Containers"][0]
    assert raw["ModelPackageDescription"] == "two lines"
    assert "Tags" not in raw or all(t["Key"] != "note" for t in raw.get("Tags", []))
    assert dict(version.metrics) == many
    assert (version.created_by, dict(version.tags), version.description) == (
        "Ana (ops)", {"note": "a, b & c"}, "two\nlines")
    assert version.inference.framework_version == "3.2.0rc1+x"
    assert reg.describe_version(GROUP, 1) == version
    # the status change fits the 3 entries kept free, and an odd actor goes to S3 too
    approved = reg.update_status(GROUP, 1, ApprovalStatus.APPROVED, actor="Bo (lead)",
                                 reason="line one\nline two")
    assert (approved.status_changed_by, approved.status_reason) == ("Bo (lead)",
                                                                    "line one\nline two")
    raw = sm(backend).describe_model_package(ModelPackageName=version.arn)
    assert raw["ApprovalDescription"] == "line one line two"
    assert raw["CustomerMetadataProperties"]["mlcycle:status-record"] == "s3"
    assert len(raw["CustomerMetadataProperties"]) <= 50
    fine = reg.update_status(GROUP, 1, ApprovalStatus.REJECTED, actor="cy", reason="ok")
    assert (fine.status_changed_by, fine.status_reason) == ("cy", "ok")
    assert "mlcycle:status-record" not in sm(backend).describe_model_package(
        ModelPackageName=version.arn)["CustomerMetadataProperties"]


def test_a_model_must_be_in_s3(reg):
    with pytest.raises(SpecValidationError) as exc:
        reg.create_version(GROUP, new(model_uri="file:///tmp/model.tar.gz"))
    assert exc.value.field == "model_uri"
    assert list(reg.list_versions(GROUP)) == []


def test_registering_into_a_missing_group(backend):
    with pytest.raises(NotFoundError) as exc:
        backend.registry.create_version("nowhere", new())
    assert (exc.value.kind, exc.value.name) == ("model-package-group", "nowhere")


# -- idempotency -------------------------------------------------------------------------------
def test_the_same_token_returns_the_first_version(backend, reg):
    first, created = reg.create_version(GROUP, new("same"))
    again, created_again = reg.create_version(GROUP, new("same", metrics={"other": 1.0}))
    assert (created, created_again) == (True, False)
    assert again == first
    assert len(packages(backend)) == 1
    assert [e.event for e in reg.audit_log(GROUP)] == ["registered"]
    index = s3_json(backend, f"test/registry/{GROUP}/tokens/{token_hash('same')}/package.json")
    assert index == {"arn": first.arn, "version": 1}


@pytest.mark.parametrize("crash_in", ["_finish", "_put_json_package"])
def test_a_retry_after_a_crash_heals_without_a_second_version(backend, reg, monkeypatch,
                                                               crash_in):
    registry_type = type(reg)
    original_finish = registry_type._finish
    original_put = registry_type._put_json

    def finish(self, *args, **kwargs):  # dies after CreateModelPackage, before the audit
        raise KeyboardInterrupt

    def put(self, key, data, **extra):  # dies after the audit, before package.json
        if key.endswith("package.json"):
            raise KeyboardInterrupt
        return original_put(self, key, data, **extra)

    if crash_in == "_finish":
        monkeypatch.setattr(registry_type, "_finish", finish)
    else:
        monkeypatch.setattr(registry_type, "_put_json", put)
    with pytest.raises(KeyboardInterrupt):
        reg.create_version(GROUP, new("crashy"))
    monkeypatch.setattr(registry_type, "_finish", original_finish)
    monkeypatch.setattr(registry_type, "_put_json", original_put)
    version, created = reg.create_version(GROUP, new("crashy"))
    assert (version.version, created) == (1, False)
    assert len(packages(backend)) == 1
    assert [(e.event, e.version) for e in reg.audit_log(GROUP)] == [("registered", 1)]
    again, created = reg.create_version(GROUP, new("crashy"))
    assert (again.version, created) == (1, False)


def test_the_client_token_sent_is_derived_from_group_and_token():
    token = client_token_for(GROUP, "any token at all, even a long one: " + "x" * 100)
    assert len(token) == 36 and token.replace("-", "").isalnum()
    assert client_token_for(GROUP, "t") != client_token_for("other", "t")


# -- reading -----------------------------------------------------------------------------------
def test_missing_versions_are_typed(reg):
    reg.create_version(GROUP, new())
    for number in (2, 0, -1):
        with pytest.raises(NotFoundError) as exc:
            reg.describe_version(GROUP, number)
        assert (exc.value.kind, exc.value.name) == ("model-version", f"{GROUP}/{number}")
    with pytest.raises(NotFoundError) as exc:
        reg.update_status(GROUP, 5, ApprovalStatus.APPROVED, actor="a", reason="")
    assert (exc.value.kind, exc.value.name) == ("model-version", f"{GROUP}/5")
    with pytest.raises(NotFoundError) as exc:
        reg.set_alias(GROUP, "champion", 5, actor="a", reason="")
    assert exc.value.kind == "model-version"
    for call in (lambda: reg.describe_version("nope", 1), lambda: reg.aliases("nope"),
                 lambda: list(reg.audit_log("nope")), lambda: reg.list_versions("nope"),
                 lambda: reg.set_alias("nope", "a", 1, actor="a", reason="")):
        with pytest.raises(NotFoundError) as exc:
            call()
        assert (exc.value.kind, exc.value.name) == ("model-package-group", "nope")


def test_listing_sorts_and_filters_across_pages(backend, reg):
    for i in range(5):
        reg.create_version(GROUP, new(f"t{i}"))
    reg.update_status(GROUP, 2, ApprovalStatus.APPROVED, actor="a", reason="")
    reg.update_status(GROUP, 4, ApprovalStatus.APPROVED, actor="a", reason="")
    seen = []

    def small_pages(params, **_):
        params["MaxResults"] = 2
        seen.append(dict(params))

    sm(backend).meta.events.register("provide-client-params.sagemaker.ListModelPackages",
                                     small_pages)
    assert [v.version for v in reg.list_versions(GROUP)] == [5, 4, 3, 2, 1]
    assert [v.version for v in reg.list_versions(GROUP, ascending=True)] == [1, 2, 3, 4, 5]
    assert [v.version for v in reg.list_versions(GROUP, status=ApprovalStatus.APPROVED)] == [
        4, 2]
    assert reg.latest_version(GROUP, status=ApprovalStatus.PENDING).version == 5
    assert reg.latest_version(GROUP, status=ApprovalStatus.REJECTED) is None
    assert len(seen) > 6  # more than one page each
    assert {(p["SortBy"], p["SortOrder"]) for p in seen} == {
        ("CreationTime", "Descending"), ("CreationTime", "Ascending")}
    assert {p.get("ModelApprovalStatus") for p in seen} == {
        None, "Approved", "PendingManualApproval", "Rejected"}


@pytest.mark.parametrize("workers", [1, 3])
def test_listing_one_or_several_describes_at_a_time_keeps_the_order(reg, workers):
    for i in range(7):
        reg.create_version(GROUP, new(f"t{i}"))
    reg.max_workers = workers
    assert [v.version for v in reg.list_versions(GROUP)] == [7, 6, 5, 4, 3, 2, 1]
    assert [v.version for v in reg.list_versions(GROUP, ascending=True)] == list(range(1, 8))


def test_packages_of_one_clock_tick_still_list_by_number(backend, reg, monkeypatch):
    for i in range(3):
        reg.create_version(GROUP, new(f"t{i}"))
    same = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def one_tick(parsed, **_):
        for item in parsed.get("ModelPackageSummaryList", []):
            item["CreationTime"] = same
        parsed["ModelPackageSummaryList"].sort(key=lambda i: i["ModelPackageVersion"])

    sm(backend).meta.events.register("after-call.sagemaker.ListModelPackages", one_tick)
    assert [v.version for v in reg.list_versions(GROUP)] == [3, 2, 1]


# -- approval ----------------------------------------------------------------------------------
def test_update_status_sets_the_package_and_keeps_the_metadata(backend, reg):
    version, _ = reg.create_version(GROUP, new())
    at = dt.datetime(2026, 12, 24, 10, 0, 0, 123456, tzinfo=dt.UTC)
    reg._clock = lambda: at
    approved = reg.update_status(GROUP, 1, ApprovalStatus.APPROVED, actor="bo",
                                 reason="beats the baseline")
    assert approved.is_approved
    assert (approved.status_changed_by, approved.status_changed_at, approved.status_reason) == (
        "bo", at, "beats the baseline")
    assert (approved.metrics, approved.tags, approved.model_digest) == (
        version.metrics, version.tags, version.model_digest)
    raw = sm(backend).describe_model_package(ModelPackageName=version.arn)
    assert raw["ModelApprovalStatus"] == "Approved"
    assert raw["ApprovalDescription"] == "beats the baseline"
    meta = raw["CustomerMetadataProperties"]
    assert (meta["mlcycle:status-by"], meta["mlcycle:status-at"]) == (
        "bo", "2026-12-24T10:00:00.123456+00:00")
    assert meta["mlcycle:digest"] == DIGEST  # moto would drop what the update did not resend
    # the same status again: nothing changes, nothing is appended
    assert reg.update_status(GROUP, 1, ApprovalStatus.APPROVED, actor="cy",
                             reason="again") == approved
    events = list(reg.audit_log(GROUP))
    assert [(e.event, e.old, e.new, e.actor, e.at) for e in events][1:] == [
        ("status", "PendingManualApproval", "Approved", "bo", at)]


# -- aliases -----------------------------------------------------------------------------------
def group_tags(backend, arn):
    return sm(backend).list_tags(ResourceArn=arn)["Tags"]


def test_aliases_are_tags_on_the_group(backend, reg):
    for i in range(2):
        reg.create_version(GROUP, new(f"t{i}"))
    arn = reg.describe_group(GROUP).arn
    reg.set_alias(GROUP, "champion", 1, actor="ana", reason="ship")
    assert {"Key": ALIAS_TAG + "champion", "Value": "1"} in group_tags(backend, arn)
    assert reg.aliases(GROUP) == {"champion": 1}
    assert reg.describe_version(GROUP, 1).aliases == ("champion",)
    assert reg.describe_group(GROUP).tags == {"team": "ml"}  # aliases are no user tags
    reg.set_alias(GROUP, "champion", 2, actor="bo", reason="")
    reg.set_alias(GROUP, "champion", 2, actor="bo", reason="")  # no change, no event
    reg.set_alias(GROUP, "challenger", 1, actor="bo", reason="")
    assert reg.aliases(GROUP) == {"challenger": 1, "champion": 2}
    assert [v.aliases for v in reg.list_versions(GROUP)] == [("champion",), ("challenger",)]
    reg.set_alias(GROUP, "champion", None, actor="cy", reason="pause")
    assert reg.aliases(GROUP) == {"challenger": 1}
    assert all(t["Key"] != ALIAS_TAG + "champion" for t in group_tags(backend, arn))
    with pytest.raises(NotFoundError) as exc:
        reg.set_alias(GROUP, "champion", None, actor="cy", reason="")
    assert (exc.value.kind, exc.value.name) == ("model-alias", f"{GROUP}/champion")
    assert [(e.event, e.alias, e.old, e.new) for e in reg.audit_log(GROUP)][2:] == [
        ("alias-set", "champion", None, "1"), ("alias-set", "champion", "1", "2"),
        ("alias-set", "challenger", None, "1"), ("alias-removed", "champion", "2", None)]


# -- the audit log -----------------------------------------------------------------------------
def test_the_audit_log_is_one_s3_object_per_event_in_order(backend, reg):
    reg.create_version(GROUP, new())
    reg.update_status(GROUP, 1, ApprovalStatus.REJECTED, actor="bo", reason="no")
    reg.set_alias(GROUP, "old", 1, actor="cy", reason="")
    keys = s3_keys(backend, f"registry/{GROUP}/audit/")
    assert keys == [f"test/registry/{GROUP}/audit/{n:012d}.json" for n in (1, 2, 3)]
    assert s3_json(backend, keys[1])["event"] == "status"
    events = list(reg.audit_log(GROUP))
    assert all(isinstance(e, AuditEvent) for e in events)
    assert [e.sequence for e in events] == [1, 2, 3]
    assert [e.event for e in events] == ["registered", "status", "alias-set"]
    assert all(e.at.utcoffset() == dt.timedelta(0) for e in events)


def test_a_lost_race_for_a_sequence_number_takes_the_next(backend, reg, monkeypatch):
    reg.create_version(GROUP, new())
    other = SageMakerBackend(backend.region, bucket=backend.bucket, prefix=backend.prefix)
    real = SageMakerRegistryBackend._last_sequence
    calls = []

    def stale_once(self, group):
        calls.append(group)
        if len(calls) == 1:  # another writer takes 2 between this listing and the write
            other.registry.set_alias(GROUP, "a", 1, actor="other", reason="")
            return 1
        return real(self, group)

    try:
        monkeypatch.setattr(SageMakerRegistryBackend, "_last_sequence", stale_once)
        reg.set_alias(GROUP, "b", 1, actor="me", reason="")
    finally:
        other.close()
    # mine (stale), the other writer's, mine again after my write of 2 lost (If-None-Match)
    assert len(calls) == 3
    events = list(reg.audit_log(GROUP))
    assert [(e.sequence, e.actor) for e in events] == [(1, "ana"), (2, "other"), (3, "me")]


def test_concurrent_writers_get_distinct_sequence_numbers(backend, reg):
    reg.create_version(GROUP, new())
    writers = [SageMakerBackend(backend.region, bucket=backend.bucket, prefix=backend.prefix)
               for _ in range(4)]
    for writer in writers:  # clients made here: boto3 sessions are not made thread-safely
        writer.client("sagemaker"), writer.client("s3")
    errors = []

    def work(index, writer):
        try:
            for i in range(5):
                writer.registry.set_alias(GROUP, f"w{index}-{i}", 1, actor=f"w{index}",
                                          reason="")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, w)) for i, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for writer in writers:
        writer.close()
    assert errors == []
    events = list(reg.audit_log(GROUP))
    assert [e.sequence for e in events] == list(range(1, 22))
    assert sorted(e.alias for e in events[1:]) == sorted(
        f"w{i}-{j}" for i in range(4) for j in range(5))


def test_an_audit_append_gives_up_after_many_lost_races(reg, monkeypatch):
    reg.create_version(GROUP, new())

    def always_taken(self, key, data, **extra):
        raise bce.ClientError({"Error": {"Code": "PreconditionFailed", "Message": "taken"},
                               "ResponseMetadata": {"HTTPStatusCode": 412}}, "PutObject")

    monkeypatch.setattr(SageMakerRegistryBackend, "_put_json", always_taken)
    with pytest.raises(TransientBackendError):
        reg.set_alias(GROUP, "champion", 1, actor="a", reason="")


@pytest.mark.parametrize(("code", "status", "expected"), [
    ("PreconditionFailed", 412, True),
    ("ConditionalRequestConflict", 409, True),
    ("", 412, True),
    ("AccessDenied", 403, False),
    ("NoSuchKey", 404, False),
])
def test_write_conflicts_are_recognised(code, status, expected):
    exc = bce.ClientError({"Error": {"Code": code, "Message": ""},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")
    assert is_write_conflict(exc) is expected
    assert is_write_conflict(ValueError("no")) is False


# -- request shapes, checked by Stubber against the real API model -----------------------------
GROUP_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:model-package-group/{GROUP}"
PACKAGE_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/1"
CREATED = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _group_response():
    return {"ModelPackageGroupName": GROUP, "ModelPackageGroupArn": GROUP_ARN,
            "CreationTime": CREATED, "CreatedBy": {}, "ModelPackageGroupStatus": "Completed"}


def _package_response(meta, status="PendingManualApproval", **extra):
    return {"ModelPackageName": GROUP, "ModelPackageGroupName": GROUP, "ModelPackageVersion": 1,
            "ModelPackageArn": PACKAGE_ARN, "CreationTime": CREATED,
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "InferenceSpecification": {
                "Containers": [{"Image": xgboost_image_uri("us-east-1"), "ModelDataUrl": MODEL,
                                "Framework": "XGBOOST", "FrameworkVersion": "3.2.0"}],
                "SupportedContentTypes": ["text/csv", "application/json"],
                "SupportedResponseMIMETypes": ["text/csv", "application/json"]},
            "ModelApprovalStatus": status, "CustomerMetadataProperties": meta, **extra}


EXPECTED_META = {
    "mlcycle:schema": "1", "mlcycle:token-sha256": token_hash("t1"),
    "mlcycle:client-token": "t1", "mlcycle:digest": DIGEST, "mlcycle:created-by": "ana",
    "mlcycle:model-key": "models/m/model.tar.gz", "mlcycle:source": "train-1",
    "mlcycle:runtime": "mlcycle-xgboost", "mlcycle:default-image": "true",
    "metric:validation-rmse": "0.25", "tag:stage": "dev", "mlcycle:record": "inline",
}


def test_the_create_model_package_request(backend):
    registry = backend.registry
    stub = Stubber(sm(backend))
    stub.add_response("describe_model_package_group", _group_response(),
                      {"ModelPackageGroupName": GROUP})
    stub.add_response("create_model_package", {"ModelPackageArn": PACKAGE_ARN}, {
        "ModelPackageGroupName": GROUP,
        "ModelPackageDescription": "first",
        "InferenceSpecification": {
            "Containers": [{"Image": xgboost_image_uri("us-east-1"), "ModelDataUrl": MODEL,
                            "Framework": "XGBOOST", "FrameworkVersion": "3.2.0"}],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["text/csv", "application/json"]},
        "ModelApprovalStatus": "PendingManualApproval",
        "ModelMetrics": {"ModelQuality": {"Statistics": {
            "ContentType": "application/json",
            "S3Uri": f"s3://{backend.bucket}/test/registry/{GROUP}/tokens/"
                     f"{token_hash('t1')}/metrics.json"}}},
        "CustomerMetadataProperties": EXPECTED_META,
        "Tags": [{"Key": "stage", "Value": "dev"}],
        "ClientToken": client_token_for(GROUP, "t1"),
    })
    stub.add_response("describe_model_package", _package_response(EXPECTED_META),
                      {"ModelPackageName": PACKAGE_ARN})
    stub.add_response("list_tags", {"Tags": [{"Key": ALIAS_TAG + "champion", "Value": "1"}]},
                      {"ResourceArn": GROUP_ARN})
    with stub:
        version, created = registry.create_version(GROUP, new(source="train-1"))
    stub.assert_no_pending_responses()
    assert created and version.aliases == ("champion",)
    assert version.inference == InferenceSpec(framework_version="3.2.0")
    assert (version.source, version.created_by) == ("train-1", "ana")


def test_the_update_model_package_request(backend):
    registry = backend.registry
    at = dt.datetime(2026, 12, 24, 10, 0, tzinfo=dt.UTC)
    registry._clock = lambda: at
    updated_meta = {**EXPECTED_META, "mlcycle:status-at": "2026-12-24T10:00:00.000000+00:00",
                    "mlcycle:status-by": "bo"}
    stub = Stubber(sm(backend))
    stub.add_response("describe_model_package_group", _group_response(),
                      {"ModelPackageGroupName": GROUP})
    stub.add_response("describe_model_package", _package_response(EXPECTED_META),
                      {"ModelPackageName": PACKAGE_ARN})
    stub.add_response("update_model_package", {"ModelPackageArn": PACKAGE_ARN}, {
        "ModelPackageArn": PACKAGE_ARN, "ModelApprovalStatus": "Approved",
        "ApprovalDescription": "beats the baseline",
        "CustomerMetadataProperties": updated_meta})
    stub.add_response("describe_model_package", _package_response(
        updated_meta, "Approved", ApprovalDescription="beats the baseline"),
        {"ModelPackageName": PACKAGE_ARN})
    stub.add_response("list_tags", {"Tags": []}, {"ResourceArn": GROUP_ARN})
    with stub:
        version = registry.update_status(GROUP, 1, ApprovalStatus.APPROVED, actor="bo",
                                         reason="beats the baseline")
    stub.assert_no_pending_responses()
    assert (version.status_changed_by, version.status_changed_at) == ("bo", at)
    event = list_events(backend)[-1]
    assert (event["event"], event["old"], event["new"], event["actor"]) == (
        "status", "PendingManualApproval", "Approved", "bo")


def list_events(backend):
    return [s3_json(backend, k) for k in s3_keys(backend, f"registry/{GROUP}/audit/")]


def test_a_version_missing_under_its_arn_is_looked_up_by_listing(backend):
    """If AWS kept the group name's case in package ARNs, the listing still finds it."""
    registry = backend.registry
    stub = Stubber(sm(backend))
    stub.add_response("describe_model_package_group", _group_response(),
                      {"ModelPackageGroupName": GROUP})
    stub.add_client_error("describe_model_package", "ValidationException",
                          f"Model package {PACKAGE_ARN} not found",
                          expected_params={"ModelPackageName": PACKAGE_ARN})
    stub.add_response("describe_model_package_group", _group_response(),
                      {"ModelPackageGroupName": GROUP})
    other_arn = PACKAGE_ARN.replace(f"/{GROUP}/", "/Ratings/")
    stub.add_response("list_model_packages", {"ModelPackageSummaryList": [{
        "ModelPackageGroupName": GROUP, "ModelPackageVersion": 1,
        "ModelPackageArn": other_arn, "CreationTime": CREATED,
        "ModelPackageStatus": "Completed"}]}, {
        "ModelPackageGroupName": GROUP, "SortBy": "CreationTime", "SortOrder": "Descending"})
    stub.add_response("describe_model_package", {
        **_package_response(EXPECTED_META), "ModelPackageArn": other_arn},
        {"ModelPackageName": other_arn})
    stub.add_response("list_tags", {"Tags": []}, {"ResourceArn": GROUP_ARN})
    with stub:
        version = registry.describe_version(GROUP, 1)
    stub.assert_no_pending_responses()
    assert version.arn == other_arn


def test_a_group_that_exists_on_aws_is_already_existing(backend):
    stub = Stubber(sm(backend))
    stub.add_client_error("describe_model_package_group", "ValidationException",
                          "ModelPackageGroup x does not exist.")
    stub.add_client_error("create_model_package_group", "ValidationException",
                          f"Model Package Group already exists: {GROUP_ARN}")
    with stub, pytest.raises(AlreadyExistsError) as exc:
        backend.registry.create_group(GROUP)
    assert (exc.value.kind, exc.value.name) == ("model-package-group", GROUP)


# -- moto's quirks, which the backend works around (strict: stale when moto changes) -----------
def _raw_package(backend, **extra):
    return sm(backend).create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={"Containers": [{"Image": "x", "ModelDataUrl": MODEL}]},
        **extra)["ModelPackageArn"]


@pytest.mark.xfail(strict=True, reason="moto 5.2.5's CreateModelPackageGroup replaces an "
                   "existing group instead of refusing it; the backend describes first")
def test_moto_refuses_a_duplicate_group(backend, reg):
    with pytest.raises(bce.ClientError):
        sm(backend).create_model_package_group(ModelPackageGroupName=GROUP)


@pytest.mark.xfail(strict=True, reason="moto 5.2.5's UpdateModelPackage drops the "
                   "CustomerMetadataProperties it is not sent; the backend sends them all")
def test_moto_keeps_metadata_an_update_does_not_name(backend, reg):
    arn = _raw_package(backend, CustomerMetadataProperties={"k": "v"})
    sm(backend).update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    meta = sm(backend).describe_model_package(ModelPackageName=arn).get(
        "CustomerMetadataProperties")
    assert meta == {"k": "v"}


@pytest.mark.xfail(strict=True, reason="moto 5.2.5's DescribeModelPackage does not take "
                   "'<group>/<version>'; the backend describes by ARN")
def test_moto_describes_a_package_by_group_and_version(backend, reg):
    _raw_package(backend)
    sm(backend).describe_model_package(ModelPackageName=f"{GROUP}/1")


@pytest.mark.xfail(strict=True, reason="moto 5.2.5 ignores CreateModelPackage's ClientToken; "
                   "the backend finds a token's package itself")
def test_moto_honours_the_client_token(backend, reg):
    assert _raw_package(backend, ClientToken="tok") == _raw_package(backend, ClientToken="tok")


@pytest.mark.xfail(strict=True, reason="moto 5.2.5's AddTags appends a second tag with the "
                   "same key; the backend reads the last one")
def test_moto_replaces_a_tag_of_the_same_key(backend, reg):
    arn = reg.describe_group(GROUP).arn
    sm(backend).add_tags(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}])
    sm(backend).add_tags(ResourceArn=arn, Tags=[{"Key": "a", "Value": "2"}])
    assert [t for t in group_tags(backend, arn) if t["Key"] == "a"] == [
        {"Key": "a", "Value": "2"}]


@pytest.mark.xfail(strict=True, raises=ValueError, reason="moto 5.2.5's ListTags fails on a "
                   "versioned model package's ARN; version tags are read from the metadata")
def test_moto_lists_the_tags_of_a_versioned_package(backend, reg):
    arn = _raw_package(backend, Tags=[{"Key": "a", "Value": "1"}])
    assert sm(backend).list_tags(ResourceArn=arn)["Tags"] == [{"Key": "a", "Value": "1"}]

