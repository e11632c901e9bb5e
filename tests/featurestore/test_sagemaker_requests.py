"""Exact request shapes of the sagemaker feature store, pinned with botocore's Stubber.

Stubber checks each request against the real API model and answers from a queue, so these tests
fix what mlcycle sends to AWS. They run inside ``moto.mock_aws()`` with distinctive fake
credentials as well, so a call that is not stubbed could still never reach AWS.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import math
import os
import random
import uuid
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.stub import ANY, Stubber

from mlcycle.backends.sagemaker import SageMakerBackend
from mlcycle.backends.sagemaker._errors import translate_code
from mlcycle.backends.sagemaker.featurestore import (
    BATCH_GET_LIMIT,
    SageMakerFeatureStoreBackend,
    format_value,
    offline_object_key,
    parse_value,
    ttl_duration,
)
from mlcycle.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    BackendError,
    ConfigurationError,
    InvalidStateError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    SpecValidationError,
    TransientBackendError,
)
from mlcycle.featurestore.backend import EVENT_EPOCH, IngestBatch
from mlcycle.featurestore.spec import FeatureGroupSpec, FeatureType

pytestmark = pytest.mark.aws

ACCESS_KEY = "AKIAMLCYCLEFAKE00042"
SECRET_KEY = "mlcycleFakeSecretKeyThatMustNeverBeSeen0042"
SESSION_TOKEN = "mlcycleFakeSessionTokenThatMustNeverBeSeen0042"
SECRETS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
ROLE = "arn:aws:iam::123456789012:role/mlcycle-featurestore"
ACCOUNT = "123456789012"
ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:feature-group/tracks"
CREATED = dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)  # epoch 1700000000
DATA = (
    f"s3://mlcycle-test/ml/offline-store/{ACCOUNT}/sagemaker/us-east-1/offline-store/"
    "tracks-1700000000/data"
)

SPEC = FeatureGroupSpec(
    name="tracks",
    record_identifier="trackId",
    event_time="EventTime",
    features=[
        ("trackId", "String"),
        ("EventTime", "Fractional"),
        ("plays", "Integral"),
        ("tempo", "Fractional"),
        ("genre", "String"),
    ],
    description="audio features",
    tags={"team": "music", "env": "test"},
    ttl=86400,
)
ONLINE = FeatureGroupSpec(
    name="tracks",
    record_identifier="trackId",
    event_time="EventTime",
    features=SPEC.features,
    offline=False,
)


class Clock:
    """An injected clock: ``sleep`` advances it (by ``jump`` seconds when one is set)."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []
        self.jump = None

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds if self.jump is None else self.jump


@pytest.fixture
def backend():
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    import boto3
    import moto

    with mock.patch.dict(os.environ, env), moto.mock_aws():
        os.environ.pop("AWS_PROFILE", None)
        session = boto3.session.Session(region_name="us-east-1")
        b = SageMakerBackend(
            "us-east-1", bucket="mlcycle-test", prefix="ml", role=ROLE, boto3_session=session
        )
        yield b
        b.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fs(backend, clock):
    return SageMakerFeatureStoreBackend(
        backend, max_workers=1, sleep=clock.sleep, clock=clock, query_timeout=30, wait_timeout=30
    )


@contextlib.contextmanager
def stubbed(backend, *services):
    stubs = [Stubber(backend.client(s)) for s in services]
    for s in stubs:
        s.activate()
    try:
        yield stubs if len(stubs) > 1 else stubs[0]
        for s in stubs:
            s.assert_no_pending_responses()
    finally:
        for s in stubs:
            s.deactivate()


def describe(spec=SPEC, *, status="Created", resolved=True, ttl=None):
    answer = {
        "FeatureGroupArn": ARN,
        "FeatureGroupName": spec.name,
        "RecordIdentifierFeatureName": spec.record_identifier,
        "EventTimeFeatureName": spec.event_time,
        "FeatureDefinitions": [
            {"FeatureName": f.name, "FeatureType": f.type.value} for f in spec.features
        ],
        "CreationTime": CREATED,
        "FeatureGroupStatus": status,
        "NextToken": "",
    }
    if spec.description:
        answer["Description"] = spec.description
    if spec.online:
        answer["OnlineStoreConfig"] = {"EnableOnlineStore": True}
        if ttl or spec.ttl:
            answer["OnlineStoreConfig"]["TtlDuration"] = ttl_duration(ttl or spec.ttl)
    if spec.offline:
        storage = {"S3Uri": "s3://mlcycle-test/ml/offline-store"}
        if resolved:
            storage["ResolvedOutputS3Uri"] = DATA
        answer["OfflineStoreConfig"] = {
            "S3StorageConfig": storage,
            "DisableGlueTableCreation": False,
            "DataCatalogConfig": {
                "TableName": "tracks_1700000000",
                "Catalog": "AwsDataCatalog",
                "Database": "sagemaker_featurestore",
            },
        }
    return answer


def tags(spec=SPEC, extra=()):
    out = [{"Key": k, "Value": v} for k, v in sorted(spec.tags.items())]
    if spec.ttl is not None:
        out.append({"Key": "mlcycle:ttl", "Value": repr(spec.ttl)})
    return {"Tags": out + list(extra)}


def batch(table, *, event="EventTime"):
    table = table.append_column(EVENT_EPOCH, table.column(event).cast(pa.float64()))
    return IngestBatch(
        table=table,
        write_time=dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC),
        batch_id="0123456789abcdef" + uuid.uuid4().hex[:16],
    )


def rows(**columns):
    types = {
        "trackId": pa.string(),
        "EventTime": pa.float64(),
        "plays": pa.int64(),
        "tempo": pa.float64(),
        "genre": pa.string(),
    }
    return pa.table({k: pa.array(v, type=types[k]) for k, v in columns.items()})


def full(ids, events, plays=None, tempo=None, genre=None):
    n = len(ids)
    return rows(
        trackId=ids,
        EventTime=events,
        plays=plays or [None] * n,
        tempo=tempo or [None] * n,
        genre=genre or [None] * n,
    )


# -- values ------------------------------------------------------------------------------------
def test_value_as_string_formats_and_floats_round_trip_exactly():
    assert format_value(7, FeatureType.INTEGRAL) == "7"
    assert format_value(-(2**62), FeatureType.INTEGRAL) == str(-(2**62))
    assert format_value(0.1, FeatureType.FRACTIONAL) == "0.1"
    assert format_value(1e-300, FeatureType.FRACTIONAL) == "1e-300"
    assert format_value(float("nan"), FeatureType.FRACTIONAL) == "NaN"
    assert format_value(float("inf"), FeatureType.FRACTIONAL) == "Infinity"
    assert format_value("héllo, wörld", FeatureType.STRING) == "héllo, wörld"
    rng = random.Random(42)
    for _ in range(2000):
        value = rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-300, 300)
        text = format_value(value, FeatureType.FRACTIONAL)
        assert parse_value(text, FeatureType.FRACTIONAL) == value
    assert math.copysign(1, parse_value(format_value(-0.0, "Fractional"), "Fractional")) == -1
    assert math.isnan(parse_value("NaN", FeatureType.FRACTIONAL))


def test_ttl_duration_uses_the_largest_exact_unit():
    assert ttl_duration(604800 * 2) == {"Unit": "Weeks", "Value": 2}
    assert ttl_duration(86400) == {"Unit": "Days", "Value": 1}
    assert ttl_duration(5400) == {"Unit": "Minutes", "Value": 90}
    assert ttl_duration(0.2) == {"Unit": "Seconds", "Value": 1}


# -- groups -----------------------------------------------------------------------------------
def test_create_feature_group_request_with_ttl_and_tags(backend, fs):
    with stubbed(backend, "sagemaker") as sm:
        sm.add_response(
            "create_feature_group",
            {"FeatureGroupArn": ARN},
            {
                "FeatureGroupName": "tracks",
                "RecordIdentifierFeatureName": "trackId",
                "EventTimeFeatureName": "EventTime",
                "FeatureDefinitions": [
                    {"FeatureName": "trackId", "FeatureType": "String"},
                    {"FeatureName": "EventTime", "FeatureType": "Fractional"},
                    {"FeatureName": "plays", "FeatureType": "Integral"},
                    {"FeatureName": "tempo", "FeatureType": "Fractional"},
                    {"FeatureName": "genre", "FeatureType": "String"},
                ],
                "OnlineStoreConfig": {
                    "EnableOnlineStore": True,
                    "TtlDuration": {"Unit": "Days", "Value": 1},
                },
                "OfflineStoreConfig": {
                    "S3StorageConfig": {"S3Uri": "s3://mlcycle-test/ml/offline-store"},
                    "DisableGlueTableCreation": False,
                },
                "RoleArn": ROLE,
                "Description": "audio features",
                "Tags": [
                    {"Key": "env", "Value": "test"},
                    {"Key": "team", "Value": "music"},
                    {"Key": "mlcycle:ttl", "Value": "86400.0"},
                ],
            },
        )
        sm.add_response("describe_feature_group", describe(), {"FeatureGroupName": "tracks"})
        sm.add_response("list_tags", tags(), {"ResourceArn": ARN})
        info = fs.create_group(SPEC)
    assert info.spec == SPEC
    assert info.status == "Created"
    assert info.uri == ARN
    assert info.offline_uri == DATA
    assert info.created_at == CREATED and info.created_at.tzinfo is not None


def test_exact_ttl_survives_in_a_tag_while_sagemaker_gets_whole_seconds(backend, fs):
    spec = FeatureGroupSpec(
        name="tracks",
        record_identifier="trackId",
        event_time="EventTime",
        features=SPEC.features,
        offline=False,
        ttl=90.25,
    )
    with stubbed(backend, "sagemaker") as sm:
        sm.add_response(
            "create_feature_group",
            {"FeatureGroupArn": ARN},
            {
                "FeatureGroupName": "tracks",
                "RecordIdentifierFeatureName": "trackId",
                "EventTimeFeatureName": "EventTime",
                "FeatureDefinitions": ANY,
                "OnlineStoreConfig": {
                    "EnableOnlineStore": True,
                    "TtlDuration": {"Unit": "Seconds", "Value": 91},
                },
                "RoleArn": ROLE,
                "Tags": [{"Key": "mlcycle:ttl", "Value": "90.25"}],
            },
        )
        sm.add_response("describe_feature_group", describe(spec), {"FeatureGroupName": "tracks"})
        sm.add_response("list_tags", tags(spec), {"ResourceArn": ARN})
        info = fs.create_group(spec)
    assert info.spec.ttl == 90.25 and not info.spec.offline and info.offline_uri is None


def test_describe_without_the_tag_takes_ttl_from_ttl_duration(backend, fs):
    with stubbed(backend, "sagemaker") as sm:
        sm.add_response(
            "describe_feature_group", describe(ttl=7200), {"FeatureGroupName": "tracks"}
        )
        sm.add_response("list_tags", {"Tags": [{"Key": "team", "Value": "music"}]}, None)
        info = fs.describe_group("tracks")
    assert info.spec.ttl == 7200.0 and info.spec.tags == {"team": "music"}


def test_offline_store_needs_a_role_and_nothing_is_called(backend, clock):
    norole = SageMakerBackend("us-east-1", bucket="mlcycle-test", prefix="ml")
    fs = SageMakerFeatureStoreBackend(norole, sleep=clock.sleep, clock=clock)
    with stubbed(norole, "sagemaker"), pytest.raises(ConfigurationError):
        fs.create_group(SPEC)


def test_reserved_tag_prefix_is_rejected(backend, fs):
    spec = FeatureGroupSpec(
        name="tracks",
        record_identifier="trackId",
        event_time="EventTime",
        features=SPEC.features,
        tags={"mlcycle:ttl": "1"},
    )
    with stubbed(backend, "sagemaker"), pytest.raises(SpecValidationError) as info:
        fs.create_group(spec)
    assert info.value.field == "tags"


def test_create_waits_while_creating_with_the_injected_sleep(backend, fs, clock):
    with stubbed(backend, "sagemaker") as sm:
        sm.add_response("create_feature_group", {"FeatureGroupArn": ARN}, None)
        for status in ("Creating", "Creating", "Created"):
            sm.add_response("describe_feature_group", describe(status=status), None)
        sm.add_response("list_tags", tags(), None)
        assert fs.create_group(SPEC).status == "Created"
    assert len(clock.sleeps) == 2


def test_create_failed_and_create_timeout(backend, fs, clock):
    with stubbed(backend, "sagemaker") as sm:
        sm.add_response("create_feature_group", {"FeatureGroupArn": ARN}, None)
        failed = describe(status="CreateFailed")
        failed["FailureReason"] = "the role cannot write to the bucket"
        sm.add_response("describe_feature_group", failed, None)
        with pytest.raises(BackendError) as info:
            fs.create_group(SPEC)
    assert info.value.code == "CreateFailed" and "role cannot write" in str(info.value)
    clock.jump = 100.0  # each wait outlasts the 30 s timeout
    with stubbed(backend, "sagemaker") as sm:
        sm.add_response("create_feature_group", {"FeatureGroupArn": ARN}, None)
        for _ in range(2):
            sm.add_response("describe_feature_group", describe(status="Creating"), None)
        with pytest.raises(JobTimeoutError) as timeout:
            fs.create_group(SPEC)
    assert timeout.value.timeout == 30 and timeout.value.job == "tracks"


def test_duplicate_create_is_already_exists(backend, fs):
    with stubbed(backend, "sagemaker") as sm:
        sm.add_client_error("create_feature_group", "ResourceInUse", "Resource Already Exists")
        with pytest.raises(AlreadyExistsError) as info:
            fs.create_group(SPEC)
    assert (info.value.kind, info.value.name) == ("feature-group", "tracks")


def test_describe_of_a_missing_group_is_not_found(backend, fs):
    # moto raises a raw KeyError here; AWS answers ResourceNotFound.
    with stubbed(backend, "sagemaker") as sm:
        sm.add_client_error(
            "describe_feature_group",
            "ResourceNotFound",
            "Resource Not Found: FeatureGroup nope not found",
            http_status_code=400,
            expected_params={"FeatureGroupName": "nope"},
        )
        with pytest.raises(NotFoundError) as info:
            fs.describe_group("nope")
    assert (info.value.kind, info.value.name) == ("feature-group", "nope")
    assert isinstance(info.value.__cause__, Exception)


def test_list_groups_paginates_and_sorts(backend, fs):
    other = FeatureGroupSpec(
        name="albums",
        record_identifier="trackId",
        event_time="EventTime",
        features=SPEC.features,
        offline=False,
    )
    with stubbed(backend, "sagemaker") as sm:
        summary = {"FeatureGroupArn": ARN, "CreationTime": CREATED, "FeatureGroupStatus": "Created"}
        sm.add_response(
            "list_feature_groups",
            {
                "FeatureGroupSummaries": [{"FeatureGroupName": "tracks", **summary}],
                "NextToken": "page2",
            },
            {"SortBy": "Name", "SortOrder": "Ascending"},
        )
        sm.add_response(
            "list_feature_groups",
            {
                "FeatureGroupSummaries": [
                    {"FeatureGroupName": "albums", **summary},
                    {"FeatureGroupName": "going", **{**summary, "FeatureGroupStatus": "Deleting"}},
                ]
            },
            {"SortBy": "Name", "SortOrder": "Ascending", "NextToken": "page2"},
        )
        sm.add_response("describe_feature_group", describe(other), {"FeatureGroupName": "albums"})
        sm.add_response("list_tags", {"Tags": []}, None)
        sm.add_response("describe_feature_group", describe(), {"FeatureGroupName": "tracks"})
        sm.add_response("list_tags", tags(), None)
        names = [i.name for i in fs.list_groups()]
    assert names == ["albums", "tracks"]


def test_delete_group_removes_offline_objects_and_glue_table(backend, fs):
    folder = DATA[len("s3://mlcycle-test/") : -len("data")]
    with stubbed(backend, "sagemaker", "s3", "glue") as (sm, s3, glue):
        sm.add_response("describe_feature_group", describe(), {"FeatureGroupName": "tracks"})
        sm.add_response("delete_feature_group", {}, {"FeatureGroupName": "tracks"})
        sm.add_response("describe_feature_group", describe(status="Deleting"), None)
        sm.add_client_error("describe_feature_group", "ResourceNotFound", "not found")
        s3.add_response(
            "list_objects_v2",
            {"Contents": [{"Key": folder + "data/year=2024/x.parquet"}], "KeyCount": 1},
            {"Bucket": "mlcycle-test", "Prefix": folder},
        )
        s3.add_response(
            "delete_objects",
            {"Deleted": [{"Key": folder + "data/year=2024/x.parquet"}]},
            {
                "Bucket": "mlcycle-test",
                "Delete": {
                    "Objects": [{"Key": folder + "data/year=2024/x.parquet"}],
                    "Quiet": True,
                },
            },
        )
        glue.add_response(
            "delete_table",
            {},
            {"DatabaseName": "sagemaker_featurestore", "Name": "tracks_1700000000"},
        )
        fs.delete_group("tracks")


def test_delete_of_a_missing_group_is_not_found(backend, fs):
    with stubbed(backend, "sagemaker") as sm:
        sm.add_client_error("describe_feature_group", "ResourceNotFound", "not found")
        with pytest.raises(NotFoundError):
            fs.delete_group("tracks")


# -- the online store ------------------------------------------------------------------------
def test_put_record_shapes_and_value_as_string(backend, fs):
    table = full(
        ["a", "b", "c"],
        [1700000000.5, 0.1, 1e-7],
        plays=[2**62, -1, None],
        tempo=[1 / 3, None, 2.5e-300],
        genre=["rock", "naïve ☃", None],
    )
    with stubbed(backend, "sagemaker-featurestore-runtime") as rt:
        rt.add_response(
            "batch_get_record",
            {"Records": [], "Errors": [], "UnprocessedIdentifiers": []},
            {
                "Identifiers": [
                    {
                        "FeatureGroupName": "tracks",
                        "RecordIdentifiersValueAsString": ["a", "b", "c"],
                        "FeatureNames": ["EventTime"],
                    }
                ]
            },
        )
        expected = [
            [
                {"FeatureName": "trackId", "ValueAsString": "a"},
                {"FeatureName": "EventTime", "ValueAsString": "1700000000.5"},
                {"FeatureName": "plays", "ValueAsString": "4611686018427387904"},
                {"FeatureName": "tempo", "ValueAsString": "0.3333333333333333"},
                {"FeatureName": "genre", "ValueAsString": "rock"},
            ],
            [
                {"FeatureName": "trackId", "ValueAsString": "b"},
                {"FeatureName": "EventTime", "ValueAsString": "0.1"},
                {"FeatureName": "plays", "ValueAsString": "-1"},
                {"FeatureName": "genre", "ValueAsString": "naïve ☃"},
            ],
            [
                {"FeatureName": "trackId", "ValueAsString": "c"},
                {"FeatureName": "EventTime", "ValueAsString": "1e-07"},
                {"FeatureName": "tempo", "ValueAsString": "2.5e-300"},
            ],
        ]
        for record in expected:
            rt.add_response(
                "put_record",
                {},
                {"FeatureGroupName": "tracks", "Record": record, "TargetStores": ["OnlineStore"]},
            )
        result = fs.write_batch(ONLINE, batch(table), progress=None)
    assert (result.rows, result.online_updated) == (3, 3)
    for record in expected:
        for item in record:
            if item["FeatureName"] == "tempo":
                assert float(item["ValueAsString"]) in (1 / 3, 2.5e-300)


def test_put_sends_only_the_latest_row_per_id_and_nothing_older_than_stored(backend, fs):
    table = full(["a", "a", "b", "c"], [10.0, 30.0, 5.0, 7.0])
    progress = []
    with stubbed(backend, "sagemaker-featurestore-runtime") as rt:
        rt.add_response(
            "batch_get_record",
            {
                "Records": [
                    {
                        "FeatureGroupName": "tracks",
                        "RecordIdentifierValueAsString": "b",
                        "Record": [{"FeatureName": "EventTime", "ValueAsString": "6.0"}],
                    },
                    {
                        "FeatureGroupName": "tracks",
                        "RecordIdentifierValueAsString": "c",
                        "Record": [{"FeatureName": "EventTime", "ValueAsString": "7.0"}],
                    },
                ],
                "Errors": [],
                "UnprocessedIdentifiers": [],
            },
            None,
        )
        for rid, event in (("a", "30.0"), ("c", "7.0")):  # b is older than stored; c ties
            rt.add_response(
                "put_record",
                {},
                {
                    "FeatureGroupName": "tracks",
                    "Record": [
                        {"FeatureName": "trackId", "ValueAsString": rid},
                        {"FeatureName": "EventTime", "ValueAsString": event},
                    ],
                    "TargetStores": ["OnlineStore"],
                },
            )
        result = fs.write_batch(ONLINE, batch(table), progress=lambda *a: progress.append(a))
    assert (result.rows, result.online_updated) == (4, 2)
    assert progress[-1] == ("ingest tracks", 4, 4)


def test_read_online_uses_get_record_for_one_id(backend, fs):
    with stubbed(backend, "sagemaker-featurestore-runtime") as rt:
        rt.add_response(
            "get_record",
            {
                "Record": [
                    {"FeatureName": "trackId", "ValueAsString": "a"},
                    {"FeatureName": "EventTime", "ValueAsString": "0.1"},
                    {"FeatureName": "plays", "ValueAsString": "3"},
                ]
            },
            {"FeatureGroupName": "tracks", "RecordIdentifierValueAsString": "a"},
        )
        rt.add_response("get_record", {}, None)
        assert fs.read_online(ONLINE, ["a"]) == [
            {"trackId": "a", "EventTime": 0.1, "plays": 3, "tempo": None, "genre": None}
        ]
        assert fs.read_online(ONLINE, ["zz"]) == [None]


def test_batch_get_record_chunks_at_100_and_retries_unprocessed(backend, fs, clock):
    ids = [f"t{i:03d}" for i in range(250)]

    def found(keys):
        return [
            {
                "FeatureGroupName": "tracks",
                "RecordIdentifierValueAsString": k,
                "Record": [
                    {"FeatureName": "trackId", "ValueAsString": k},
                    {"FeatureName": "EventTime", "ValueAsString": "1.0"},
                    {"FeatureName": "plays", "ValueAsString": k[1:]},
                ],
            }
            for k in keys
        ]

    def request(keys):
        return {
            "Identifiers": [{"FeatureGroupName": "tracks", "RecordIdentifiersValueAsString": keys}]
        }

    with stubbed(backend, "sagemaker-featurestore-runtime") as rt:
        first = ids[:100]
        rt.add_response(
            "batch_get_record",
            {
                "Records": found(first[:90]),
                "Errors": [],
                "UnprocessedIdentifiers": [
                    {"FeatureGroupName": "tracks", "RecordIdentifiersValueAsString": first[90:]}
                ],
            },
            request(first),
        )
        rt.add_response(
            "batch_get_record",
            {"Records": found(first[90:]), "Errors": [], "UnprocessedIdentifiers": []},
            request(first[90:]),
        )
        rt.add_response(
            "batch_get_record",
            {"Records": found(ids[100:200]), "Errors": [], "UnprocessedIdentifiers": []},
            request(ids[100:200]),
        )
        missing = ids[200:]
        rt.add_response(
            "batch_get_record",
            {"Records": found(missing[:-1]), "Errors": [], "UnprocessedIdentifiers": []},
            request(missing),
        )
        out = fs.read_online(ONLINE, ids)
    assert BATCH_GET_LIMIT == 100
    assert out[-1] is None
    assert [r["plays"] for r in out[:-1]] == list(range(249))
    assert len(clock.sleeps) == 1


def test_batch_get_errors_raise_and_endless_unprocessed_is_transient(backend, fs):
    with stubbed(backend, "sagemaker-featurestore-runtime") as rt:
        rt.add_response(
            "batch_get_record",
            {
                "Records": [],
                "Errors": [
                    {
                        "FeatureGroupName": "tracks",
                        "RecordIdentifierValueAsString": "a",
                        "ErrorCode": "AccessForbidden",
                        "ErrorMessage": "not allowed",
                    }
                ],
                "UnprocessedIdentifiers": [],
            },
            None,
        )
        with pytest.raises(AccessDeniedError):
            fs.read_online(ONLINE, ["a", "b"])
    with stubbed(backend, "sagemaker-featurestore-runtime") as rt:
        for _ in range(6):
            rt.add_response(
                "batch_get_record",
                {
                    "Records": [],
                    "Errors": [],
                    "UnprocessedIdentifiers": [
                        {"FeatureGroupName": "tracks", "RecordIdentifiersValueAsString": ["a"]}
                    ],
                },
                None,
            )
        with pytest.raises(TransientBackendError):
            fs.read_online(ONLINE, ["a", "b"])


def test_read_online_of_an_offline_only_group_is_invalid_state(backend, fs):
    spec = FeatureGroupSpec(
        name="tracks",
        record_identifier="trackId",
        event_time="EventTime",
        features=SPEC.features,
        online=False,
    )
    with pytest.raises(InvalidStateError):
        fs.read_online(spec, ["a"])


@pytest.mark.parametrize(
    ("hard", "mode", "event_type", "event_text"),
    [
        (False, "SoftDelete", "Fractional", "1700000000.25"),
        (True, "HardDelete", "Fractional", "1700000000.25"),
        (False, "SoftDelete", "String", "2023-11-14T22:13:20.250Z"),
    ],
)
def test_delete_record_modes_and_event_time(backend, fs, hard, mode, event_type, event_text):
    spec = FeatureGroupSpec(
        name="tracks",
        record_identifier="trackId",
        event_time="EventTime",
        features=[("trackId", "Integral"), ("EventTime", event_type)],
        offline=False,
    )
    with stubbed(backend, "sagemaker-featurestore-runtime") as rt:
        rt.add_response(
            "delete_record",
            {},
            {
                "FeatureGroupName": "tracks",
                "RecordIdentifierValueAsString": "42",
                "EventTime": event_text,
                "DeletionMode": mode,
                "TargetStores": ["OnlineStore"],
            },
        )
        fs.delete_record(
            spec,
            42,
            event_time=1700000000.25,
            hard=hard,
            write_time=dt.datetime.now(dt.UTC),
        )


def test_refused_hard_delete_is_kept_and_writes_no_marker(backend, fs):
    with stubbed(backend, "sagemaker-featurestore-runtime", "sagemaker", "s3") as (rt, _sm, _s3):
        rt.add_client_error(
            "delete_record",
            "ValidationError",
            "The EventTime of the record to delete is earlier than the stored EventTime",
        )
        fs.delete_record(SPEC, "a", event_time=1.0, hard=True, write_time=dt.datetime.now(dt.UTC))
    with stubbed(backend, "sagemaker-featurestore-runtime") as rt:
        rt.add_client_error("delete_record", "ValidationError", "Feature group is Deleting state")
        with pytest.raises(InvalidStateError):
            fs.delete_record(
                ONLINE, "a", event_time=1.0, hard=False, write_time=dt.datetime.now(dt.UTC)
            )


# -- the offline store -----------------------------------------------------------------------
def test_backfill_s3_key_layout(backend, fs):
    offline = FeatureGroupSpec(
        name="tracks",
        record_identifier="trackId",
        event_time="EventTime",
        features=SPEC.features,
        online=False,
    )
    hour_a = dt.datetime(2024, 1, 2, 3, 0, tzinfo=dt.UTC).timestamp()
    hour_b = dt.datetime(2024, 12, 31, 23, 0, tzinfo=dt.UTC).timestamp()
    table = full(["a", "b", "c"], [hour_a + 59.9, hour_b + 3599.0, hour_a + 1.0])
    data = batch(table)
    token = data.batch_id[:16]
    prefix = DATA[len("s3://mlcycle-test/") :]
    with stubbed(backend, "sagemaker", "s3", "glue") as (sm, s3, glue):
        sm.add_response("describe_feature_group", describe(offline), None)
        for key in (
            f"{prefix}/year=2024/month=01/day=02/hour=03/20240102T030059Z_{token}.parquet",
            f"{prefix}/year=2024/month=12/day=31/hour=23/20241231T235959Z_{token}.parquet",
        ):
            s3.add_response("put_object", {}, {"Bucket": "mlcycle-test", "Key": key, "Body": ANY})
        glue.add_client_error("get_table", "EntityNotFoundException", "no table")
        result = fs.write_batch(offline, data, progress=None)
    assert (result.rows, result.online_updated) == (3, 0)


def test_offline_layout_is_built_when_sagemaker_does_not_resolve_it(backend, fs):
    assert (
        offline_object_key(
            "p/data", event_epoch=3600.0 * 5 + 17, latest_epoch=3600.0 * 5 + 17, token="x" * 16
        )
        == "p/data/year=1970/month=01/day=01/hour=05/19700101T050017Z_xxxxxxxxxxxxxxxx.parquet"
    )
    offline = FeatureGroupSpec(
        name="tracks",
        record_identifier="trackId",
        event_time="EventTime",
        features=SPEC.features,
        online=False,
    )
    with stubbed(backend, "sagemaker", "sts") as (sm, sts):
        sm.add_response("describe_feature_group", describe(offline, resolved=False), None)
        sm.add_response("list_tags", {"Tags": []}, None)
        sts.add_response(
            "get_caller_identity",
            {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/x", "UserId": "AIDA"},
            {},
        )
        assert fs.describe_group("tracks").offline_uri == DATA


def test_offline_objects_hold_the_offline_columns_with_their_types(backend, fs):
    offline = FeatureGroupSpec(
        name="tracks",
        record_identifier="trackId",
        event_time="EventTime",
        features=SPEC.features,
        online=False,
    )
    bodies = []
    s3 = backend.client("s3")
    s3.meta.events.register(
        "before-parameter-build.s3.PutObject",
        lambda params, **_: bodies.append(params["Body"]),
    )
    with stubbed(backend, "sagemaker", "s3", "glue") as (sm, stub, glue):
        sm.add_response("describe_feature_group", describe(offline), None)
        stub.add_response("put_object", {}, None)
        glue.add_client_error("get_table", "EntityNotFoundException", "no table")
        data = batch(full(["a"], [10.0], plays=[1], tempo=[0.5], genre=["x"]))
        fs.write_batch(offline, data, progress=None)
    table = pq.read_table(io.BytesIO(bodies[0]))
    assert table.column_names == [
        *SPEC.feature_names,
        "write_time",
        "api_invocation_time",
        "is_deleted",
    ]
    assert table.schema.field("write_time").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("is_deleted").type == pa.bool_()
    assert table.column("write_time")[0].as_py() == dt.datetime(
        2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.UTC
    )
    assert table.column("is_deleted").to_pylist() == [False]


# -- Athena -----------------------------------------------------------------------------------
def athena_rows(*rows):
    return [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows]


def test_athena_start_poll_and_paged_typed_results(backend, fs, clock):
    columns = [
        {"Name": "trackid", "Type": "varchar"},
        {"Name": "plays", "Type": "bigint"},
        {"Name": "tempo", "Type": "double"},
        {"Name": "is_deleted", "Type": "boolean"},
        {"Name": "write_time", "Type": "timestamp"},
        {"Name": "price", "Type": "decimal", "Precision": 10, "Scale": 2},
        {"Name": "day", "Type": "date"},
    ]
    query = 'SELECT "trackId", plays, tempo, is_deleted, write_time FROM "tracks"'
    with stubbed(backend, "sagemaker", "athena") as (sm, athena):
        sm.add_response("describe_feature_group", describe(), {"FeatureGroupName": "tracks"})
        athena.add_response(
            "start_query_execution",
            {"QueryExecutionId": "q-1"},
            {
                "QueryString": (
                    'WITH "tracks" AS (SELECT "trackId", "EventTime", "plays", "tempo", "genre", '
                    '"write_time", "api_invocation_time", "is_deleted"\n'
                    '  FROM "sagemaker_featurestore"."tracks_1700000000")\n' + query
                ),
                "WorkGroup": "primary",
                "ResultConfiguration": {"OutputLocation": "s3://mlcycle-test/ml/athena-results/"},
            },
        )
        for state in ("QUEUED", "RUNNING", "SUCCEEDED"):
            athena.add_response(
                "get_query_execution",
                {
                    "QueryExecution": {
                        "QueryExecutionId": "q-1",
                        "StatementType": "DML",
                        "Status": {"State": state},
                    }
                },
                {"QueryExecutionId": "q-1"},
            )
        athena.add_response(
            "get_query_results",
            {
                "ResultSet": {
                    "Rows": athena_rows(
                        [c["Name"] for c in columns],
                        ["a", "1", "0.1", "true", "2024-05-06 07:08:09.123", "12.50", "2024-01-02"],
                    ),
                    "ResultSetMetadata": {"ColumnInfo": columns},
                },
                "NextToken": "next",
            },
            {"QueryExecutionId": "q-1", "MaxResults": 1000},
        )
        athena.add_response(
            "get_query_results",
            {
                "ResultSet": {
                    "Rows": athena_rows(["b", None, "1.0E-7", "false", None, None, None]),
                    "ResultSetMetadata": {"ColumnInfo": columns},
                }
            },
            {"QueryExecutionId": "q-1", "MaxResults": 1000, "NextToken": "next"},
        )
        table = fs.sql(query, tables=[SPEC])
    assert len(clock.sleeps) == 2
    assert table.column_names == [
        "trackId",
        "plays",
        "tempo",
        "is_deleted",
        "write_time",
        "price",
        "day",
    ]
    assert table.schema.field("plays").type == pa.int64()
    assert table.schema.field("write_time").type == pa.timestamp("us", tz="UTC")
    assert table.to_pylist()[0]["write_time"] == dt.datetime(
        2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.UTC
    )
    assert table.column("tempo").to_pylist() == [0.1, 1e-7]
    assert table.column("plays").to_pylist() == [1, None]
    assert table.column("is_deleted").to_pylist() == [True, False]
    assert str(table.column("price")[0].as_py()) == "12.50"


def failed(qid, reason, category=None, error_type=None):
    status = {"State": "FAILED", "StateChangeReason": reason}
    if category is not None:
        status["AthenaError"] = {"ErrorCategory": category, "ErrorType": error_type or 0}
    return {"QueryExecution": {"QueryExecutionId": qid, "Status": status}}


@pytest.mark.parametrize(
    ("reason", "category"),
    [
        ("SYNTAX_ERROR: line 1:8: Column 'nope' cannot be resolved", 2),
        ("COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved", None),
    ],
)
def test_a_wrong_query_is_a_spec_error_on_sql_with_athenas_reason(backend, fs, reason, category):
    with stubbed(backend, "athena") as athena:
        athena.add_response("start_query_execution", {"QueryExecutionId": "q-2"}, None)
        athena.add_response("get_query_execution", failed("q-2", reason, category, 1006), None)
        with pytest.raises(SpecValidationError) as info:
            fs.sql("SELECT nope")
    assert info.value.field == "sql"
    assert reason in str(info.value)


def test_a_failed_athena_query_is_job_failed_with_the_reason(backend, fs):
    reason = "GENERIC_INTERNAL_ERROR: the engine ran out of memory"
    with stubbed(backend, "athena") as athena:
        athena.add_response("start_query_execution", {"QueryExecutionId": "q-4"}, None)
        athena.add_response("get_query_execution", failed("q-4", reason, 1, 401), None)
        athena.add_response("start_query_execution", {"QueryExecutionId": "q-5"}, None)
        athena.add_response(
            "get_query_execution",
            failed("q-5", "Access denied when writing output to url 's3://x/'", 2),
            None,
        )
        with pytest.raises(JobFailedError) as info:
            fs.sql("SELECT 1")
        with pytest.raises(AccessDeniedError):
            fs.sql("SELECT 1")
    assert info.value.job == "q-4"
    assert info.value.reason == f"{reason} (error type 401)"


def test_athena_timeout_stops_the_query(backend, fs, clock):
    clock.jump = 100.0
    with stubbed(backend, "athena") as athena:
        athena.add_response("start_query_execution", {"QueryExecutionId": "q-3"}, None)
        running = {"QueryExecution": {"QueryExecutionId": "q-3", "Status": {"State": "RUNNING"}}}
        for _ in range(2):
            athena.add_response("get_query_execution", running, None)
        athena.add_response("stop_query_execution", {}, {"QueryExecutionId": "q-3"})
        with pytest.raises(JobTimeoutError) as info:
            fs.sql("SELECT 1")
    assert info.value.timeout == 30 and info.value.job == "q-3"
    assert isinstance(info.value, TimeoutError)


def test_sql_over_a_group_without_offline_store_is_invalid_state(backend, fs):
    with stubbed(backend, "sagemaker") as sm:
        sm.add_response("describe_feature_group", describe(ONLINE), None)
        with pytest.raises(InvalidStateError):
            fs.sql('SELECT * FROM "tracks"', tables=[ONLINE])


def test_denied_athena_start_is_access_denied(backend, fs):
    with stubbed(backend, "athena") as athena:
        athena.add_client_error("start_query_execution", "AccessDeniedException", "no", 400)
        with pytest.raises(AccessDeniedError):
            fs.sql("SELECT 1")


# -- errors and secrets ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("ValidationError", "Feature group is Deleting state", InvalidStateError),
        ("ValidationError", "Value 'x' is not Integral", SpecValidationError),
        ("AccessForbidden", "denied", AccessDeniedError),
        ("EntityNotFoundException", "Table not found", NotFoundError),
        ("AlreadyExistsException", "Partition already exists", AlreadyExistsError),
        ("InvalidRequestException", "this statement is bad", SpecValidationError),
        ("InvalidRequestException", "QueryExecution q was not found", NotFoundError),
        ("ServiceUnavailable", "try later", TransientBackendError),
    ],
)
def test_feature_store_error_codes_translate_by_type(code, message, expected):
    assert type(translate_code(code, message, kind="feature-group", name="g")) is expected


def test_no_credentials_in_any_error_message_log_record_or_repr(backend, fs, caplog):
    caplog.set_level(logging.DEBUG)
    errors = []
    with stubbed(backend, "sagemaker", "athena", "sagemaker-featurestore-runtime") as (
        sm,
        athena,
        rt,
    ):
        sm.add_client_error("describe_feature_group", "ResourceNotFound", "not found")
        sm.add_client_error("create_feature_group", "AccessDeniedException", "denied", 400)
        athena.add_response("start_query_execution", {"QueryExecutionId": "q-9"}, None)
        athena.add_response(
            "get_query_execution",
            {
                "QueryExecution": {
                    "QueryExecutionId": "q-9",
                    "Status": {"State": "FAILED", "StateChangeReason": "boom"},
                }
            },
            None,
        )
        rt.add_client_error("get_record", "InternalFailure", "oops", 500)
        for call in (
            lambda: fs.describe_group("nope"),
            lambda: fs.create_group(SPEC),
            lambda: fs.sql("SELECT 1"),
            lambda: fs.read_online(ONLINE, ["a"]),
        ):
            with pytest.raises(Exception) as info:
                call()
            errors.append(info.value)
    texts = [str(e) for e in errors] + [repr(e) for e in errors] + [repr(fs), repr(backend)]
    texts += [r.getMessage() for r in caplog.records]
    assert [type(e) for e in errors] == [
        NotFoundError,
        AccessDeniedError,
        JobFailedError,
        TransientBackendError,
    ]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
