"""The feature store of the sagemaker backend: SageMaker Feature Store, S3, Glue and Athena.

How each operation maps to AWS (see ``docs/guide/featurestore_sagemaker.rst``):

* groups: ``CreateFeatureGroup``, ``DescribeFeatureGroup`` (+ ``ListTags``),
  ``ListFeatureGroups`` and ``DeleteFeatureGroup`` on the ``sagemaker`` client;
* the online store: ``PutRecord``, ``GetRecord``, ``BatchGetRecord`` and ``DeleteRecord`` on the
  ``sagemaker-featurestore-runtime`` client, always with ``TargetStores=["OnlineStore"]``;
* the offline store: Parquet objects that mlcycle writes itself, in the S3 layout SageMaker
  uses (``.../offline-store/<group>-<creation-epoch>/data/year=YYYY/month=MM/day=DD/hour=HH/``),
  so a batch is visible to queries as soon as
  :meth:`SageMakerFeatureStoreBackend.write_batch` returns (SageMaker's own
  replication from ``PutRecord`` takes up to 15 minutes);
* SQL: Athena over the Glue table SageMaker creates for each group's offline store.

Every botocore error becomes an mlcycle error in ``mlcycle.backends.sagemaker._errors``.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import io
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from mlcycle._logging import logger
from mlcycle._sql import quote_ident
from mlcycle.backends.sagemaker._errors import (
    translate,
    translate_code,
    translate_query_failure,
    translated,
)
from mlcycle.errors import (
    BackendError,
    ConfigurationError,
    InvalidStateError,
    JobTimeoutError,
    MlcycleError,
    NotFoundError,
    SpecValidationError,
    TransientBackendError,
)
from mlcycle.featurestore.backend import (
    EVENT_EPOCH,
    OFFLINE_COLUMNS,
    FeatureGroupInfo,
    FeatureStoreBackend,
    IngestBatch,
    IngestResult,
)
from mlcycle.featurestore.spec import FeatureGroupSpec, FeatureType
from mlcycle.progress import report

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from mlcycle.backends.sagemaker import SageMakerBackend
    from mlcycle.progress import ProgressCallback

__all__ = [
    "BATCH_GET_LIMIT",
    "TAG_PREFIX",
    "TTL_TAG",
    "SageMakerFeatureStoreBackend",
    "format_value",
    "offline_object_key",
    "parse_value",
    "ttl_duration",
]

#: Tags whose keys start with this prefix hold what SageMaker's own fields cannot.
TAG_PREFIX = "mlcycle:"
#: The tag holding the exact ``ttl`` in seconds (``TtlDuration`` holds whole units only).
TTL_TAG = "mlcycle:ttl"
#: The most record identifiers one ``BatchGetRecord`` call may carry.
BATCH_GET_LIMIT = 100
_KIND = "feature-group"
_TTL_UNITS = (("Weeks", 604800), ("Days", 86400), ("Hours", 3600), ("Minutes", 60), ("Seconds", 1))
_UNIT_SECONDS = dict(_TTL_UNITS)
_S3_URI = re.compile(r"^s3://([^/]+)/?(.*)$")
# What DeleteFeatureGroup may leave behind; only such a folder is ever deleted by mlcycle.
_GROUP_FOLDER = re.compile(r"/offline-store/(?P<group>[A-Za-z0-9_\-]+)-\d+/data/?$")
_DONE_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_PARQUET_IN = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
_PARQUET_OUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
_PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


# -- values as SageMaker's ValueAsString ---------------------------------------------------------
def format_value(value: Any, feature_type: FeatureType) -> str:
    """Write a feature value as ``ValueAsString``.

    Integral values are written as decimal digits, Fractional ones with ``repr`` (the
    shortest text that reads back to the same float; NaN and the infinities as Java spells
    them), Strings as they are.

    Parameters
    ----------
    value : int, float or str
        The value (not None).
    feature_type : mlcycle.featurestore.spec.FeatureType
        The feature's type.

    Returns
    -------
    str

    Examples
    --------
    >>> format_value(0.1, FeatureType.FRACTIONAL), format_value(7, FeatureType.INTEGRAL)
    ('0.1', '7')
    >>> format_value(float("-inf"), FeatureType.FRACTIONAL)
    '-Infinity'
    """
    if feature_type == FeatureType.INTEGRAL:
        return str(int(value))
    if feature_type == FeatureType.FRACTIONAL:
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return repr(number)
    return str(value)


def parse_value(text: str, feature_type: FeatureType) -> Any:
    """Read a ``ValueAsString`` back into an int, float or str.

    Examples
    --------
    >>> parse_value("0.1", FeatureType.FRACTIONAL) == 0.1
    True
    >>> parse_value("-3", FeatureType.INTEGRAL)
    -3
    """
    if feature_type == FeatureType.INTEGRAL:
        return int(text)
    if feature_type == FeatureType.FRACTIONAL:
        return float(text)
    return text


def ttl_duration(seconds: float) -> dict[str, Any]:
    """Return SageMaker's ``TtlDuration`` for a ttl: whole units, rounded up to a second.

    The largest unit that divides the (whole) seconds exactly is chosen.

    Examples
    --------
    >>> ttl_duration(7200), ttl_duration(90)
    ({'Unit': 'Hours', 'Value': 2}, {'Unit': 'Seconds', 'Value': 90})
    >>> ttl_duration(1.5)
    {'Unit': 'Seconds', 'Value': 2}
    """
    whole = max(1, math.ceil(seconds))
    for unit, size in _TTL_UNITS:
        if whole % size == 0:
            return {"Unit": unit, "Value": whole // size}
    raise AssertionError("unreachable: Seconds divides every whole number")  # pragma: no cover


def offline_object_key(
    data_prefix: str, *, event_epoch: float, latest_epoch: float, token: str
) -> str:
    """Return the key of an offline-store Parquet object, as SageMaker names them.

    Parameters
    ----------
    data_prefix : str
        The key of the group's ``.../data`` folder (no trailing ``/``).
    event_epoch : float
        An event time (epoch seconds) of the file's hour partition.
    latest_epoch : float
        The latest event time in the file, which starts the file's name.
    token : str
        16 random letters and digits that make the name unique.

    Examples
    --------
    >>> offline_object_key("p/fg-1700000000/data", event_epoch=0.0, latest_epoch=59.0,
    ...                    token="0123456789abcdef")
    'p/fg-1700000000/data/year=1970/month=01/day=01/hour=00/19700101T000059Z_0123456789abcdef.parquet'
    """
    hour = dt.datetime.fromtimestamp(math.floor(event_epoch), tz=dt.UTC)
    latest = dt.datetime.fromtimestamp(math.floor(latest_epoch), tz=dt.UTC)
    return (
        f"{data_prefix}/year={hour:%Y}/month={hour:%m}/day={hour:%d}/hour={hour:%H}/"
        f"{latest:%Y%m%dT%H%M%SZ}_{token}.parquet"
    )


def _iso_epoch(text: str) -> float:
    """Epoch seconds of an ISO-8601 string (UTC when it names no zone)."""
    moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _iso_text(epoch: float) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSSZ``, one of the two String event-time formats SageMaker takes."""
    moment = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _arrow_type(feature_type: FeatureType) -> pa.DataType:
    import pyarrow as pa

    if feature_type == FeatureType.INTEGRAL:
        return pa.int64()
    if feature_type == FeatureType.FRACTIONAL:
        return pa.float64()
    return pa.string()


def _refused_as_older(exc: Any) -> bool:
    """Whether SageMaker refused a HardDelete because the stored record is later."""
    error = exc.response.get("Error", {})
    message = str(error.get("Message", "")).lower().replace(" ", "").replace("_", "")
    return error.get("Code") in {"ValidationError", "ValidationException"} and "eventtime" in (
        message
    )


def _split_s3(uri: str) -> tuple[str, str]:
    match = _S3_URI.match(uri)
    if not match:
        raise BackendError(f"not an S3 URI: {uri!r}", backend="sagemaker")
    return match.group(1), match.group(2).strip("/")


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


class SageMakerFeatureStoreBackend(FeatureStoreBackend):
    """Feature groups on SageMaker Feature Store, with the offline store queried by Athena.

    Parameters
    ----------
    backend : mlcycle.backends.sagemaker.SageMakerBackend
        The bundle: its region, bucket, prefix, role and boto3 clients.
    offline_uri : str, optional
        Where offline stores live (``OfflineStoreConfig.S3StorageConfig.S3Uri``); default
        ``s3://BUCKET/PREFIX/offline-store``.
    athena_workgroup : str
        The Athena workgroup queries run in.
    athena_output : str, optional
        Where Athena writes query results; default ``s3://BUCKET/PREFIX/athena-results/``
        (a workgroup that enforces its own location overrides it).
    athena_database : str
        The Glue database for temporary input tables when a query reads no group.
    inline_limit : int
        The longest query (bytes) that carries its input tables inline as ``VALUES``; larger
        inputs go to S3 with a temporary Glue table (Athena takes queries up to 256 KB).
    query_timeout : float
        Seconds an Athena query may run before it is stopped
        (:class:`~mlcycle.errors.JobTimeoutError`).
    wait_timeout : float
        Seconds to wait for a feature group to be created or deleted.
    max_workers : int
        Concurrent ``PutRecord`` calls during an ingest.
    sleep, clock : callable
        ``time.sleep`` and ``time.monotonic`` unless a test injects its own.

    Notes
    -----
    No client is created, and nothing is called, until a method needs it.
    """

    #: The ``ansi`` strategy of :data:`mlcycle.featurestore.training.DIALECTS`: window
    #: functions and Trino's time functions, which is what Athena runs.
    dialect: ClassVar[str] = "athena"

    def __init__(
        self,
        backend: SageMakerBackend,
        *,
        offline_uri: str | None = None,
        athena_workgroup: str = "primary",
        athena_output: str | None = None,
        athena_database: str = "sagemaker_featurestore",
        inline_limit: int = 200_000,
        query_timeout: float = 600.0,
        wait_timeout: float = 600.0,
        max_workers: int = 8,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        base = (
            f"s3://{backend.bucket}/{backend.prefix}"
            if backend.prefix
            else (f"s3://{backend.bucket}")
        )
        self.offline_uri = (offline_uri or f"{base}/offline-store").rstrip("/")
        self.athena_workgroup = athena_workgroup
        self.athena_output = athena_output or f"{base}/athena-results/"
        self.athena_database = athena_database
        self.inline_limit = int(inline_limit)
        self.query_timeout = float(query_timeout)
        self.wait_timeout = float(wait_timeout)
        if max_workers < 1:
            raise ConfigurationError(f"max_workers must be at least 1, not {max_workers!r}")
        self.max_workers = int(max_workers)
        self._sleep = sleep
        self._clock = clock
        self._account: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._backend.uri}>"

    # -- clients -------------------------------------------------------------------------------
    def _sm(self) -> Any:
        return self._backend.client("sagemaker")

    def _runtime(self) -> Any:
        return self._backend.client("sagemaker-featurestore-runtime")

    def _s3(self) -> Any:
        return self._backend.client("s3")

    # -- groups --------------------------------------------------------------------------------
    def create_group(self, spec: FeatureGroupSpec) -> FeatureGroupInfo:
        """Create the group with ``CreateFeatureGroup`` and wait until it is ``Created``.

        Raises
        ------
        AlreadyExistsError
            If a group of that name exists.
        ConfigurationError
            If the group has an offline store and the backend has no ``role`` (SageMaker
            assumes it to write the offline store and create its Glue table).
        SpecValidationError
            If a tag key starts with ``mlcycle:`` (reserved) or AWS rejects the request.
        BackendError
            If SageMaker reports ``CreateFailed`` (``code="CreateFailed"``, with the reason).
        JobTimeoutError
            If the group is still ``Creating`` after ``wait_timeout`` seconds.
        """
        request = self._create_request(spec)
        logger.info("creating feature group %r on SageMaker", spec.name)
        with translated(kind=_KIND, name=spec.name):
            self._sm().create_feature_group(**request)
        return self._wait_created(spec.name)

    def _create_request(self, spec: FeatureGroupSpec) -> dict[str, Any]:
        reserved = sorted(k for k in spec.tags if k.startswith(TAG_PREFIX))
        if reserved:
            raise SpecValidationError(
                f"tag keys starting with {TAG_PREFIX!r} are reserved for mlcycle: {reserved}",
                field="tags",
            )
        if spec.offline and not self._backend.role:
            raise ConfigurationError(
                f"feature group {spec.name!r} has an offline store, which needs an IAM role for "
                "SageMaker to write to S3: sagemaker://REGION?bucket=...&role=ROLE_ARN"
            )
        request: dict[str, Any] = {
            "FeatureGroupName": spec.name,
            "RecordIdentifierFeatureName": spec.record_identifier,
            "EventTimeFeatureName": spec.event_time,
            "FeatureDefinitions": [
                {"FeatureName": f.name, "FeatureType": f.type.value} for f in spec.features
            ],
        }
        if spec.online:
            online: dict[str, Any] = {"EnableOnlineStore": True}
            if spec.ttl is not None:
                online["TtlDuration"] = ttl_duration(spec.ttl)
            request["OnlineStoreConfig"] = online
        if spec.offline:
            # SageMaker creates the Glue table (database sagemaker_featurestore) itself.
            request["OfflineStoreConfig"] = {
                "S3StorageConfig": {"S3Uri": self.offline_uri},
                "DisableGlueTableCreation": False,
            }
        if self._backend.role:
            request["RoleArn"] = self._backend.role
        if spec.description:
            request["Description"] = spec.description
        tags = [{"Key": k, "Value": v} for k, v in sorted(spec.tags.items())]
        if spec.ttl is not None:
            tags.append({"Key": TTL_TAG, "Value": repr(spec.ttl)})
        if tags:
            request["Tags"] = tags
        return request

    def _wait_created(self, name: str) -> FeatureGroupInfo:
        started = self._clock()
        delay = 0.5
        while True:
            raw = self._describe_raw(name)
            status = raw.get("FeatureGroupStatus", "Created")
            if status == "CreateFailed":
                reason = raw.get("FailureReason", "no reason given")
                raise BackendError(
                    f"SageMaker could not create feature group {name!r}: {reason}",
                    backend="sagemaker",
                    code="CreateFailed",
                )
            if status != "Creating":
                return self._info(raw)
            if self._clock() - started > self.wait_timeout:
                raise JobTimeoutError(
                    f"feature group {name!r} is still Creating after {self.wait_timeout:g} s",
                    job=name,
                    timeout=self.wait_timeout,
                )
            self._sleep(delay)
            delay = min(delay * 1.5, 5.0)

    def describe_group(self, name: str) -> FeatureGroupInfo:
        """Return the group's state from ``DescribeFeatureGroup`` and its tags.

        Raises
        ------
        NotFoundError
            If there is no such group.
        """
        return self._info(self._describe_raw(name))

    def _describe_raw(self, name: str) -> dict[str, Any]:
        with translated(kind=_KIND, name=name):
            raw: dict[str, Any] = self._sm().describe_feature_group(FeatureGroupName=name)
        return raw

    def _tags(self, arn: str, name: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        with translated(kind=_KIND, name=name):
            for page in self._sm().get_paginator("list_tags").paginate(ResourceArn=arn):
                for tag in page.get("Tags", []):
                    tags[tag["Key"]] = tag.get("Value", "")
        return tags

    def _info(self, raw: dict[str, Any]) -> FeatureGroupInfo:
        name = raw["FeatureGroupName"]
        tags = self._tags(raw["FeatureGroupArn"], name)
        online_config = raw.get("OnlineStoreConfig") or {}
        offline_config = raw.get("OfflineStoreConfig")
        ttl: float | None = None
        if TTL_TAG in tags:
            try:
                ttl = float(tags[TTL_TAG])
            except ValueError:
                ttl = None
        if ttl is None and online_config.get("TtlDuration"):
            duration = online_config["TtlDuration"]
            ttl = float(duration["Value"] * _UNIT_SECONDS[duration["Unit"]])
        spec = FeatureGroupSpec(
            name=name,
            record_identifier=raw["RecordIdentifierFeatureName"],
            event_time=raw["EventTimeFeatureName"],
            features=[(f["FeatureName"], f["FeatureType"]) for f in raw["FeatureDefinitions"]],
            description=raw.get("Description", ""),
            tags={k: v for k, v in tags.items() if not k.startswith(TAG_PREFIX)},
            online=bool(online_config.get("EnableOnlineStore", False)),
            offline=offline_config is not None,
            ttl=ttl,
        )
        offline_uri = None
        if offline_config is not None:
            offline_uri = self._data_uri(raw)
        return FeatureGroupInfo(
            spec=spec,
            status=raw.get("FeatureGroupStatus", "Created"),
            created_at=_utc(raw["CreationTime"]),
            uri=raw["FeatureGroupArn"],
            offline_uri=offline_uri,
        )

    def _data_uri(self, raw: dict[str, Any]) -> str:
        """The ``s3://.../data`` folder of a group's offline store.

        SageMaker reports it as ``ResolvedOutputS3Uri``; should it be missing, it is built
        from the documented layout (account id from STS).
        """
        storage = raw["OfflineStoreConfig"]["S3StorageConfig"]
        resolved = storage.get("ResolvedOutputS3Uri")
        if resolved:
            return str(resolved).rstrip("/")
        epoch = int(_utc(raw["CreationTime"]).timestamp())
        return (
            f"{str(storage['S3Uri']).rstrip('/')}/{self._account_id()}/sagemaker/"
            f"{self._backend.region}/offline-store/{raw['FeatureGroupName']}-{epoch}/data"
        )

    def _account_id(self) -> str:
        if self._account is None:
            with translated(kind="account", name=""):
                self._account = str(self._backend.client("sts").get_caller_identity()["Account"])
        return self._account

    def list_groups(self) -> Iterator[FeatureGroupInfo]:
        """Iterate over the groups (``ListFeatureGroups``, paginated), sorted by name.

        Groups that are being deleted are left out.
        """
        names: list[str] = []
        with translated(kind=_KIND, name=""):
            pages = self._sm().get_paginator("list_feature_groups")
            for page in pages.paginate(SortBy="Name", SortOrder="Ascending"):
                for summary in page.get("FeatureGroupSummaries", []):
                    if summary.get("FeatureGroupStatus") != "Deleting":
                        names.append(summary["FeatureGroupName"])
        for name in sorted(names):
            try:
                info = self.describe_group(name)
            except NotFoundError:  # deleted between the list and the describe
                continue
            if info.status != "Deleting":
                yield info

    def delete_group(self, name: str) -> None:
        """Delete the group, its offline data in S3 and the Glue table SageMaker created.

        ``DeleteFeatureGroup`` removes the online store but leaves the offline store's objects
        and its Glue table behind; mlcycle removes them too, once the group is gone.

        Raises
        ------
        NotFoundError
            If there is no such group.
        JobTimeoutError
            If the group is still ``Deleting`` after ``wait_timeout`` seconds.
        """
        raw = self._describe_raw(name)
        logger.info("deleting feature group %r on SageMaker", name)
        with translated(kind=_KIND, name=name):
            self._sm().delete_feature_group(FeatureGroupName=name)
        self._wait_deleted(name)
        offline = raw.get("OfflineStoreConfig")
        if offline is None:
            return
        self._delete_offline_objects(name, self._data_uri(raw))
        catalog = offline.get("DataCatalogConfig")
        if catalog and not offline.get("DisableGlueTableCreation", False):
            try:
                with translated(kind="glue-table", name=catalog["TableName"]):
                    self._backend.client("glue").delete_table(
                        DatabaseName=catalog["Database"], Name=catalog["TableName"]
                    )
            except NotFoundError:
                pass

    def _wait_deleted(self, name: str) -> None:
        started = self._clock()
        delay = 0.5
        while True:
            try:
                raw = self._describe_raw(name)
            except NotFoundError:
                return
            if raw.get("FeatureGroupStatus") == "DeleteFailed":
                raise BackendError(
                    f"SageMaker could not delete feature group {name!r}: "
                    f"{raw.get('FailureReason', 'no reason given')}",
                    backend="sagemaker",
                    code="DeleteFailed",
                )
            if self._clock() - started > self.wait_timeout:
                raise JobTimeoutError(
                    f"feature group {name!r} is still Deleting after {self.wait_timeout:g} s",
                    job=name,
                    timeout=self.wait_timeout,
                )
            self._sleep(delay)
            delay = min(delay * 1.5, 5.0)

    def _delete_offline_objects(self, name: str, data_uri: str) -> None:
        match = _GROUP_FOLDER.search(data_uri)
        if not match or match.group("group") != name:
            logger.warning(
                "not deleting the offline store of %r: %s is not a SageMaker group folder",
                name,
                data_uri,
            )
            return
        bucket, key = _split_s3(data_uri)
        folder = key[: -len("data")].rstrip("/") + "/"
        s3 = self._s3()
        with translated(kind="offline-store", name=name):
            batch: list[dict[str, str]] = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
                for item in page.get("Contents", []):
                    batch.append({"Key": item["Key"]})
                    if len(batch) == 1000:
                        self._delete_objects(bucket, batch)
                        batch = []
            if batch:
                self._delete_objects(bucket, batch)

    def _delete_objects(self, bucket: str, keys: list[dict[str, str]]) -> None:
        answer = self._s3().delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        errors = answer.get("Errors") or []
        if errors:
            first = errors[0]
            raise translate_code(
                str(first.get("Code", "")),
                str(first.get("Message", "")),
                kind="offline-store",
                name=str(first.get("Key", "")),
            )

    # -- records -------------------------------------------------------------------------------
    def write_batch(
        self, spec: FeatureGroupSpec, batch: IngestBatch, *, progress: ProgressCallback | None
    ) -> IngestResult:
        """Write the batch: Parquet objects to the offline store, ``PutRecord`` to the online one.

        The offline store gets every row, one object per event-time hour. The online store gets,
        per record identifier, the batch's latest row if it is at least as late as the stored
        record (read first with ``BatchGetRecord``); SageMaker enforces the same rule itself.

        Notes
        -----
        S3 has no multi-object transaction: a batch that spans several hours is several
        objects, and a failure part-way leaves the objects already written. Object names hold
        the batch id, so writing the same batch again replaces them rather than adding copies.
        """
        table = batch.table
        rows = table.num_rows
        updated = 0
        stage = f"ingest {spec.name}"
        total = rows * (int(spec.offline) + int(spec.online))
        offline_rows = rows if spec.offline else 0

        def offline_done(done: int) -> None:
            report(progress, stage, done, total)

        def online_done(done: int, of: int) -> None:
            report(progress, stage, offline_rows + (done * rows // of if of else rows), total)

        if rows:
            if spec.offline:
                raw = self._describe_raw(spec.name)
                if raw.get("OfflineStoreConfig") is None:
                    raise InvalidStateError(
                        f"feature group {spec.name!r} has no offline store on SageMaker"
                    )
                self._write_offline(
                    spec,
                    table,
                    raw=raw,
                    write_time=batch.write_time,
                    deleted=False,
                    token=batch.batch_id.replace("-", "")[:16],
                    progress=offline_done,
                )
            if spec.online:
                updated = self._put_online(spec, table, progress=online_done)
        if total == 0:
            report(progress, stage, 0, 0)
        return IngestResult(
            group=spec.name,
            rows=rows,
            online_updated=updated,
            write_time=batch.write_time,
            batch_id=batch.batch_id,
        )

    def _offline_table(
        self, spec: FeatureGroupSpec, table: pa.Table, *, write_time: dt.datetime, deleted: bool
    ) -> pa.Table:
        import pyarrow as pa

        n = table.num_rows
        moment = _utc(write_time)
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)  # Athena: ms
        stamp = pa.array([moment] * n, type=pa.timestamp("ms", tz="UTC"))
        arrays = [table.column(f.name).cast(_arrow_type(f.type)) for f in spec.features]
        arrays += [stamp, stamp, pa.array([deleted] * n, type=pa.bool_())]
        return pa.Table.from_arrays(arrays, names=[*spec.feature_names, *OFFLINE_COLUMNS])

    def _write_offline(
        self,
        spec: FeatureGroupSpec,
        table: pa.Table,
        *,
        raw: dict[str, Any],
        write_time: dt.datetime,
        deleted: bool,
        token: str,
        progress: Callable[[int], None] | None,
    ) -> list[str]:
        import numpy as np
        import pyarrow.parquet as pq

        data_uri = self._data_uri(raw)
        bucket, prefix = _split_s3(data_uri)
        offline = self._offline_table(spec, table, write_time=write_time, deleted=deleted)
        epochs = np.asarray(table.column(EVENT_EPOCH).to_numpy(zero_copy_only=False), dtype=float)
        hours = np.floor(epochs / 3600.0)
        parts = np.unique(hours)
        keys = []
        s3 = self._s3()
        written = 0
        for hour in parts:
            index = np.flatnonzero(hours == hour)
            key = offline_object_key(
                prefix,
                event_epoch=float(hour) * 3600.0,
                latest_epoch=float(epochs[index].max()),
                token=token,
            )
            buffer = io.BytesIO()
            pq.write_table(offline.take(index), buffer, compression="snappy")
            with translated(kind="offline-store", name=spec.name):
                s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
            keys.append(key)
            written += len(index)
            if progress is not None:
                progress(written)
        logger.debug("wrote %d offline object(s) for %r", len(keys), spec.name)
        self._register_partitions(spec.name, raw, data_uri, [float(h) * 3600.0 for h in parts])
        return keys

    def _register_partitions(
        self, name: str, raw: dict[str, Any], data_uri: str, hours: list[float]
    ) -> None:
        """Add the hour partitions to the group's Glue table, if that table has partitions.

        A Glue table without partition keys reads every object under its location, so new
        objects need nothing; one partitioned by ``year, month, day, hour`` needs each new
        partition registered (``BatchCreatePartition``; existing ones are left alone).
        """
        catalog = raw["OfflineStoreConfig"].get("DataCatalogConfig")
        if not catalog:
            return
        glue = self._backend.client("glue")
        try:
            with translated(kind="glue-table", name=catalog["TableName"]):
                table = glue.get_table(DatabaseName=catalog["Database"], Name=catalog["TableName"])[
                    "Table"
                ]
        except NotFoundError:
            logger.debug("no Glue table %s for %r yet", catalog["TableName"], name)
            return
        keys = [k["Name"].lower() for k in table.get("PartitionKeys", [])]
        if not keys:
            return
        if keys != ["year", "month", "day", "hour"]:
            logger.warning(
                "Glue table %s is partitioned by %s, not by the hour: partitions not added",
                catalog["TableName"],
                keys,
            )
            return
        storage = dict(table.get("StorageDescriptor", {}))
        inputs = []
        for hour in hours:
            moment = dt.datetime.fromtimestamp(hour, tz=dt.UTC)
            values = [f"{moment:%Y}", f"{moment:%m}", f"{moment:%d}", f"{moment:%H}"]
            location = f"{data_uri}/year={values[0]}/month={values[1]}/day={values[2]}/" + (
                f"hour={values[3]}/"
            )
            inputs.append(
                {"Values": values, "StorageDescriptor": {**storage, "Location": location}}
            )
        for start in range(0, len(inputs), 100):
            with translated(kind="glue-table", name=catalog["TableName"]):
                answer = glue.batch_create_partition(
                    DatabaseName=catalog["Database"],
                    TableName=catalog["TableName"],
                    PartitionInputList=inputs[start : start + 100],
                )
            for error in answer.get("Errors", []):
                detail = error.get("ErrorDetail", {})
                if detail.get("ErrorCode") != "AlreadyExistsException":
                    raise translate_code(
                        str(detail.get("ErrorCode", "")),
                        str(detail.get("ErrorMessage", "")),
                        kind="glue-table",
                        name=catalog["TableName"],
                    )

    def _put_online(
        self, spec: FeatureGroupSpec, table: pa.Table, *, progress: Callable[[int, int], None]
    ) -> int:
        import numpy as np

        rid = spec.record_identifier
        id_type = spec.feature(rid).type
        epochs = np.asarray(table.column(EVENT_EPOCH).to_numpy(zero_copy_only=False), dtype=float)
        ids = [format_value(v, id_type) for v in table.column(rid).to_pylist()]
        # The batch's winner per record identifier: latest event time, the later row on a tie.
        winner: dict[str, int] = {}
        for row, key in enumerate(ids):
            best = winner.get(key)
            if best is None or epochs[row] >= epochs[best]:
                winner[key] = row
        stored = self._stored_event_epochs(spec, list(winner))
        chosen = [
            row for key, row in winner.items() if key not in stored or epochs[row] >= stored[key]
        ]
        chosen.sort()
        if not chosen:
            progress(0, 0)
            return 0
        records = table.select(list(spec.feature_names)).take(chosen).to_pylist()
        types = {f.name: f.type for f in spec.features}
        runtime = self._runtime()

        def put(record: dict[str, Any]) -> None:
            body = [
                {"FeatureName": name, "ValueAsString": format_value(value, types[name])}
                for name, value in record.items()
                if value is not None
            ]
            with translated(kind=_KIND, name=spec.name):
                runtime.put_record(
                    FeatureGroupName=spec.name, Record=body, TargetStores=["OnlineStore"]
                )

        total = len(records)
        if self.max_workers == 1 or total == 1:
            for done, record in enumerate(records, start=1):
                put(record)
                progress(done, total)
            return total
        with concurrent.futures.ThreadPoolExecutor(self.max_workers) as pool:
            futures = [pool.submit(put, record) for record in records]
            try:
                for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
                    future.result()
                    progress(done, total)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return total

    def _stored_event_epochs(self, spec: FeatureGroupSpec, ids: list[str]) -> dict[str, float]:
        """Event times (epoch seconds) of the stored online records among ``ids``."""
        event_type = spec.feature(spec.event_time).type
        out: dict[str, float] = {}
        for key, record in self._batch_get(spec, ids, feature_names=[spec.event_time]).items():
            text = record.get(spec.event_time)
            if text is None:
                continue
            out[key] = float(text) if event_type == FeatureType.FRACTIONAL else _iso_epoch(text)
        return out

    def _batch_get(
        self, spec: FeatureGroupSpec, ids: list[str], *, feature_names: list[str] | None = None
    ) -> dict[str, dict[str, str]]:
        """``{id: {feature: ValueAsString}}`` for the ids that have an online record.

        One id is read with ``GetRecord``, more with ``BatchGetRecord`` in chunks of
        :data:`BATCH_GET_LIMIT`; unprocessed identifiers are asked for again (a few times).
        """
        runtime = self._runtime()
        found: dict[str, dict[str, str]] = {}
        unique = list(dict.fromkeys(ids))
        if len(unique) == 1:
            request: dict[str, Any] = {
                "FeatureGroupName": spec.name,
                "RecordIdentifierValueAsString": unique[0],
            }
            if feature_names:
                request["FeatureNames"] = feature_names
            with translated(kind=_KIND, name=spec.name):
                answer = runtime.get_record(**request)
            if answer.get("Record"):
                found[unique[0]] = {
                    v["FeatureName"]: v["ValueAsString"]
                    for v in answer["Record"]
                    if "ValueAsString" in v
                }
            return found
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            pending = unique[start : start + BATCH_GET_LIMIT]
            for attempt in range(6):
                identifier: dict[str, Any] = {
                    "FeatureGroupName": spec.name,
                    "RecordIdentifiersValueAsString": pending,
                }
                if feature_names:
                    identifier["FeatureNames"] = feature_names
                with translated(kind=_KIND, name=spec.name):
                    answer = runtime.batch_get_record(Identifiers=[identifier])
                for error in answer.get("Errors", []):
                    problem = translate_code(
                        error.get("ErrorCode", ""),
                        error.get("ErrorMessage", ""),
                        kind=_KIND,
                        name=spec.name,
                    )
                    if not isinstance(problem, NotFoundError):  # a missing record is absent
                        raise problem
                for item in answer.get("Records", []):
                    found[item["RecordIdentifierValueAsString"]] = {
                        v["FeatureName"]: v["ValueAsString"]
                        for v in item.get("Record", [])
                        if "ValueAsString" in v
                    }
                pending = [
                    key
                    for unprocessed in answer.get("UnprocessedIdentifiers", [])
                    for key in unprocessed.get("RecordIdentifiersValueAsString", [])
                ]
                if not pending:
                    break
                if attempt < 5:
                    self._sleep(min(0.1 * 2**attempt, 2.0))
            else:
                raise TransientBackendError(
                    f"BatchGetRecord left {len(pending)} record(s) of {spec.name!r} unprocessed",
                    backend="sagemaker",
                    code="UnprocessedIdentifiers",
                )
        return found

    def read_online(
        self, spec: FeatureGroupSpec, record_ids: Sequence[Any]
    ) -> list[dict[str, Any] | None]:
        """Read online records with ``GetRecord`` (one id) or ``BatchGetRecord`` (chunks of 100).

        Raises
        ------
        InvalidStateError
            If the group has no online store.
        """
        if not spec.online:
            raise InvalidStateError(
                f"feature group {spec.name!r} has no online store", state="offline-only"
            )
        if not record_ids:
            return []
        id_type = spec.feature(spec.record_identifier).type
        keys = [format_value(v, id_type) for v in record_ids]
        found = self._batch_get(spec, keys)
        out: list[dict[str, Any] | None] = []
        for key in keys:
            record = found.get(key)
            if record is None:
                out.append(None)
                continue
            out.append(
                {
                    f.name: (parse_value(record[f.name], f.type) if f.name in record else None)
                    for f in spec.features
                }
            )
        return out

    def delete_record(
        self,
        spec: FeatureGroupSpec,
        record_id: Any,
        *,
        event_time: float,
        hard: bool,
        write_time: dt.datetime,
    ) -> None:
        """Delete a record with ``DeleteRecord`` and append the deletion marker offline.

        As SageMaker does: a soft delete whose event time is earlier than the stored record's
        leaves the online record but still writes the marker; such a hard delete is refused by
        SageMaker (``ValidationError``) and writes no marker.
        """
        id_type = spec.feature(spec.record_identifier).type
        event_type = spec.feature(spec.event_time).type
        key = format_value(record_id, id_type)
        event_text = (
            format_value(event_time, FeatureType.FRACTIONAL)
            if event_type == FeatureType.FRACTIONAL
            else _iso_text(event_time)
        )
        if spec.online:
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                self._runtime().delete_record(
                    FeatureGroupName=spec.name,
                    RecordIdentifierValueAsString=key,
                    EventTime=event_text,
                    DeletionMode="HardDelete" if hard else "SoftDelete",
                    TargetStores=["OnlineStore"],
                )
            except ClientError as exc:
                if hard and _refused_as_older(exc):
                    logger.info(
                        "hard delete of %r in %r is earlier than the stored record: kept",
                        key,
                        spec.name,
                    )
                    return
                raise translate(exc, kind=_KIND, name=spec.name) from exc
            except BotoCoreError as exc:
                raise translate(exc, kind=_KIND, name=spec.name) from exc
        if spec.offline:
            import pyarrow as pa

            columns = {}
            for f in spec.features:
                if f.name == spec.record_identifier:
                    value: Any = parse_value(key, f.type)
                elif f.name == spec.event_time:
                    value = event_time if event_type == FeatureType.FRACTIONAL else event_text
                else:
                    value = None
                columns[f.name] = pa.array([value], type=_arrow_type(f.type))
            columns[EVENT_EPOCH] = pa.array([float(event_time)], type=pa.float64())
            marker = pa.table(columns)
            raw = self._describe_raw(spec.name)
            if raw.get("OfflineStoreConfig") is not None:
                self._write_offline(
                    spec,
                    marker,
                    raw=raw,
                    write_time=write_time,
                    deleted=True,
                    token=uuid.uuid4().hex[:16],
                    progress=None,
                )

    # -- SQL -----------------------------------------------------------------------------------
    def sql(
        self,
        query: str,
        *,
        tables: Sequence[FeatureGroupSpec] = (),
        inputs: Mapping[str, pa.Table] | None = None,
    ) -> pa.Table:
        """Run ``query`` on Athena; each group in ``tables`` is visible under its own name.

        Each group becomes a common table expression over its Glue table
        (``"sagemaker_featurestore"."<group>_<epoch>"``): the features, then ``write_time``,
        ``api_invocation_time`` and ``is_deleted`` (see
        :func:`~mlcycle.featurestore.athena_sql.resolve_tables`). Each table in ``inputs`` (a
        training set's base rows) is visible under its name too: inline as ``VALUES`` while
        the query stays under ``inline_limit`` bytes, else as a Parquet object under
        ``s3://BUCKET/PREFIX/athena-inputs/`` with a temporary Glue table, both removed
        afterwards. Results are read with
        ``GetQueryResults`` (paginated) and typed by the result set's metadata. Athena
        lowercases column names; a result column whose name matches a double-quoted identifier
        of the query but for case gets that identifier's spelling back.

        Raises
        ------
        SpecValidationError
            With ``field="sql"``, if Athena rejects the query itself (a syntax error, an
            unknown column or table: Athena's user-error category); the message holds
            Athena's reason.
        JobFailedError
            If the query fails otherwise or is cancelled (``reason`` holds Athena's reason,
            ``job`` the query execution id).
        JobTimeoutError
            If it runs longer than ``query_timeout`` (it is stopped first).
        InvalidStateError
            If a group in ``tables`` has no offline store or no Glue table.
        """
        from mlcycle.featurestore.athena_sql import resolve_tables, values_relation

        sources: dict[str, tuple[str, str]] = {}
        for spec in tables:
            raw = self._describe_raw(spec.name)
            offline = raw.get("OfflineStoreConfig")
            catalog = (offline or {}).get("DataCatalogConfig")
            if not catalog:
                raise InvalidStateError(
                    f"feature group {spec.name!r} has no offline store table to query",
                    state="no-offline-store" if offline is None else "no-glue-table",
                )
            sources[spec.name] = (catalog["Database"], catalog["TableName"])
        inline = {name: values_relation(table) for name, table in (inputs or {}).items()}
        text = resolve_tables(query, tables=list(tables), sources=sources, inputs=inline)
        if not inputs or len(text.encode()) <= self.inline_limit:
            return self._run_athena(text)
        database = next(iter(sources.values()))[0] if sources else self.athena_database
        uploaded: list[tuple[str, str, str]] = []
        try:
            relations = {}
            for name, table in inputs.items():
                uploaded.append(self._upload_input(table, database=database))
                relations[name] = f"{quote_ident(database)}.{quote_ident(uploaded[-1][0])}"
            text = resolve_tables(query, tables=list(tables), sources=sources, inputs=relations)
            return self._run_athena(text)
        finally:
            for table_name, bucket, folder in uploaded:
                self._drop_input(table_name, database=database, bucket=bucket, folder=folder)

    def _upload_input(self, table: pa.Table, *, database: str) -> tuple[str, str, str]:
        """Put ``table`` in S3 as Parquet under a Glue table; return (table, bucket, folder)."""
        import pyarrow.parquet as pq

        from mlcycle.featurestore.athena_sql import glue_type

        token = uuid.uuid4().hex
        name = f"mlcycle_input_{token}"
        bucket = self._backend.bucket
        prefix = f"{self._backend.prefix}/" if self._backend.prefix else ""
        folder = f"{prefix}athena-inputs/{token}/"
        columns = [
            {"Name": field.name.lower(), "Type": glue_type(field.type)} for field in table.schema
        ]
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="snappy")
        with translated(kind="athena-input", name=name):
            self._s3().put_object(
                Bucket=bucket, Key=folder + "data.parquet", Body=buffer.getvalue()
            )
        glue = self._backend.client("glue")
        try:
            with translated(kind="athena-input", name=name):
                glue.create_table(
                    DatabaseName=database,
                    TableInput={
                        "Name": name,
                        "TableType": "EXTERNAL_TABLE",
                        "Parameters": {"classification": "parquet", "mlcycle": "temporary"},
                        "StorageDescriptor": {
                            "Columns": columns,
                            "Location": f"s3://{bucket}/{folder}",
                            "InputFormat": _PARQUET_IN,
                            "OutputFormat": _PARQUET_OUT,
                            "SerdeInfo": {"SerializationLibrary": _PARQUET_SERDE},
                        },
                    },
                )
        except MlcycleError:
            self._drop_input(None, database=database, bucket=bucket, folder=folder)
            raise
        logger.debug("uploaded an input of %d rows as %s.%s", table.num_rows, database, name)
        return name, bucket, folder

    def _drop_input(self, name: str | None, *, database: str, bucket: str, folder: str) -> None:
        try:
            if name is not None:
                with translated(kind="athena-input", name=name):
                    self._backend.client("glue").delete_table(DatabaseName=database, Name=name)
            with translated(kind="athena-input", name=folder):
                self._s3().delete_object(Bucket=bucket, Key=folder + "data.parquet")
        except MlcycleError as exc:  # the query's own outcome is what the caller needs
            logger.warning("could not remove the temporary input %s: %s", name or folder, exc)

    def _run_athena(self, query: str) -> pa.Table:
        athena = self._backend.client("athena")
        with translated(kind="athena-query", name=""):
            qid = athena.start_query_execution(
                QueryString=query,
                WorkGroup=self.athena_workgroup,
                ResultConfiguration={"OutputLocation": self.athena_output},
            )["QueryExecutionId"]
        logger.debug("athena query %s started", qid)
        started = self._clock()
        delay = 0.2
        while True:
            with translated(kind="athena-query", name=qid):
                execution = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
            status = execution.get("Status", {})
            state = status.get("State", "")
            if state in _DONE_STATES:
                break
            if self._clock() - started > self.query_timeout:
                try:
                    with translated(kind="athena-query", name=qid):
                        athena.stop_query_execution(QueryExecutionId=qid)
                except MlcycleError as exc:  # the timeout is the error to report
                    logger.warning("could not stop athena query %s: %s", qid, exc)
                raise JobTimeoutError(
                    f"Athena query {qid} ran longer than {self.query_timeout:g} s and was stopped",
                    job=qid,
                    timeout=self.query_timeout,
                )
            self._sleep(delay)
            delay = min(delay * 1.5, 2.0)
        if state != "SUCCEEDED":
            raise translate_query_failure(qid, state, status)
        logger.debug("athena query %s succeeded", qid)
        return self._results(qid, header=execution.get("StatementType"), query=query)

    def _results(self, qid: str, *, header: str | None, query: str) -> pa.Table:
        from mlcycle.featurestore.athena_sql import result_table

        athena = self._backend.client("athena")
        columns: list[dict[str, Any]] | None = None
        rows: list[list[str | None]] = []
        first = True
        with translated(kind="athena-query", name=qid):
            pages = athena.get_paginator("get_query_results")
            for page in pages.paginate(QueryExecutionId=qid, PaginationConfig={"PageSize": 1000}):
                result = page.get("ResultSet", {})
                if columns is None:
                    columns = list(result.get("ResultSetMetadata", {}).get("ColumnInfo", []))
                for row in result.get("Rows", []):
                    values = [cell.get("VarCharValue") for cell in row.get("Data", [])]
                    if first:
                        first = False
                        names = [c.get("Name") for c in columns]
                        if header == "DML" or (header is None and values == names):
                            continue
                    rows.append(values)
        return result_table(columns or [], rows, query=query)
