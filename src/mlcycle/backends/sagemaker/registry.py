"""The model registry on the sagemaker backend: model package groups and model packages.

How each part maps to AWS (see ``docs/guides/registry_sagemaker.rst``):

* a group is a model package group (``CreateModelPackageGroup`` with ``Tags``,
  ``DescribeModelPackageGroup``, ``ListModelPackageGroups`` newest first); its tags are read
  with ``ListTags``, since ``DescribeModelPackageGroup`` returns none;
* a version is a versioned model package (``CreateModelPackage`` with
  ``ModelPackageGroupName``): SageMaker numbers it (``ModelPackageVersion``). The model is
  ``InferenceSpecification.Containers[0]`` (``Image``, the region's built-in XGBoost
  1.7-1 image when the spec names none; ``ModelDataUrl``; ``Framework``;
  ``FrameworkVersion``), the content types are ``SupportedContentTypes`` and
  ``SupportedResponseMIMETypes``, the status is ``ModelApprovalStatus`` and the reason of its
  last change ``ApprovalDescription``;
* the metrics are a JSON file in S3 (``ModelMetrics.ModelQuality.Statistics``), and
  mlcycle's own fields (digest, artifact key, source, who registered it, client token,
  lineage ARN, who changed the status and when, metrics and tags) are
  ``CustomerMetadataProperties`` under ``mlcycle:``, ``metric:`` and ``tag:`` keys. What does
  not fit there (50 entries, values of at most 256 characters of a restricted alphabet) lives
  in a JSON record in S3, and ``mlcycle:record`` says ``s3``;
* aliases, which SageMaker lacks, are tags ``mlcycle:alias:<name>`` = ``<version>`` on the
  group (``AddTags``, ``DeleteTags``, ``ListTags``);
* the audit log, which SageMaker lacks too, is one JSON object per event under
  ``s3://BUCKET/PREFIX/registry/<group>/audit/<sequence>.json``, written with
  ``If-None-Match: *`` so that two writers never take the same sequence number.

Idempotency: a registration writes its record under
``registry/<group>/tokens/<sha256 of the token>/`` first, passes a ``ClientToken`` derived
from the group and the token, and writes ``package.json`` (the token's model package) last.
A retry finds ``package.json``; after a crash before it, the retry finds the model package by
the token in its ``CustomerMetadataProperties`` and appends the audit event if it is missing.

Unlike the local backend, a change and its audit event are two requests, not one transaction:
a process killed between them leaves the change without its event. Two writers who change the
same version's status or the same alias at once both succeed, last writer wins, and each
appends its own event.

Every botocore error becomes an mlcycle error in ``mlcycle.backends.sagemaker._errors``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from mlcycle._logging import logger
from mlcycle.backends.sagemaker._errors import is_write_conflict, translate, translated
from mlcycle.errors import (
    AlreadyExistsError,
    NotFoundError,
    SpecValidationError,
    TransientBackendError,
)
from mlcycle.registry.backend import RegistryBackend
from mlcycle.registry.entities import (
    ApprovalStatus,
    AuditEvent,
    InferenceSpec,
    ModelPackageGroupInfo,
    ModelVersion,
    NewModelVersion,
)

if TYPE_CHECKING:  # pragma: no cover
    from mlcycle.backends.sagemaker import SageMakerBackend

__all__ = [
    "ALIAS_TAG",
    "MAX_METADATA",
    "SageMakerRegistryBackend",
    "client_token_for",
    "metadata_value_ok",
]

#: The prefix of the group tags that hold aliases (``mlcycle:alias:<name>`` = ``<version>``).
ALIAS_TAG = "mlcycle:alias:"
#: SageMaker's limit on the entries of ``CustomerMetadataProperties``.
MAX_METADATA = 50
#: Entries kept free at registration for the status fields that a status change writes.
_STATUS_RESERVE = 3
_MAX_KEY = 128
_MAX_VALUE = 256
_MAX_DESCRIPTION = 1024
_GROUP = "model-package-group"
_VERSION = "model-version"
_ALIAS = "model-alias"
_SCHEMA = "1"
_JSON = "application/json"
# CustomerMetadataProperties keys
_K_SCHEMA = "mlcycle:schema"
_K_RECORD = "mlcycle:record"
_K_TOKEN = "mlcycle:client-token"
_K_TOKEN_HASH = "mlcycle:token-sha256"
_K_DIGEST = "mlcycle:digest"
_K_KEY = "mlcycle:model-key"
_K_SOURCE = "mlcycle:source"
_K_CREATED_BY = "mlcycle:created-by"
_K_LINEAGE = "mlcycle:lineage-arn"
_K_RUNTIME = "mlcycle:runtime"
_K_DEFAULT_IMAGE = "mlcycle:default-image"
_K_STATUS_BY = "mlcycle:status-by"
_K_STATUS_AT = "mlcycle:status-at"
_K_STATUS_RECORD = "mlcycle:status-record"
_METRIC = "metric:"
_TAG = "tag:"
#: The characters SageMaker allows in metadata and tag keys and values besides letters,
#: digits and separators (``[\p{L}\p{Z}\p{N}_.:/=+\-@]``).
_EXTRA_CHARS = frozenset("_.:/=+-@")
_URL_RE = re.compile(r"^(https|s3)://([^/]+)/?(.*)$")
_FRAMEWORK_VERSION_RE = re.compile(r"^[0-9]\.[A-Za-z0-9.-]+$")
_NAME_CONTAINS_RE = re.compile(r"^[a-zA-Z0-9-]+$")
_CLIENT_TOKEN_RE = re.compile(r"^[a-zA-Z0-9-]{1,36}$")
_TOKEN_NAMESPACE = uuid.UUID("6f1f6a52-5c1e-4c3e-9d0a-6d6c79636c65")
#: Tries to take the next audit sequence number before giving up.
_AUDIT_TRIES = 50
#: How long before a registration's record was written its model package may have been
#: created, by SageMaker's clock (allowance for clock skew when a retry looks for it).
_SKEW = dt.timedelta(minutes=5)


# -- encoding ---------------------------------------------------------------------------------
def _char_ok(char: str) -> bool:
    return char in _EXTRA_CHARS or unicodedata.category(char)[0] in "LNZ"


def metadata_value_ok(value: str, *, limit: int = _MAX_VALUE) -> bool:
    """Whether SageMaker accepts ``value`` as a metadata (or tag) key or value.

    1 to ``limit`` characters, each a letter, a digit, a separator or one of ``_.:/=+-@``.

    Examples
    --------
    >>> metadata_value_ok("sha256:0a1b"), metadata_value_ok("ana (ops)"), metadata_value_ok("")
    (True, False, False)
    """
    return 0 < len(value) <= limit and all(_char_ok(c) for c in value)


def _tag_value_ok(value: str) -> bool:
    return len(value) <= _MAX_VALUE and all(_char_ok(c) for c in value)


def _description_ok(value: str) -> bool:
    # [\p{L}\p{M}\p{Z}\p{S}\p{N}\p{P}]*: anything but control and other characters
    return len(value) <= _MAX_DESCRIPTION and all(
        unicodedata.category(c)[0] in "LMZSNP" for c in value)


def _reason_ok(value: str) -> bool:
    # ApprovalDescription's pattern is ".*": no line breaks
    return len(value) <= _MAX_DESCRIPTION and not any(c in value for c in "\r\n\x85\u2028\u2029")


def _clean(value: str, ok: Callable[[str], bool], limit: int) -> str:
    return "".join(c if ok(c) else " " for c in value)[:limit]


def token_hash(token: str) -> str:
    """The S3 folder name of a client token: the first 32 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def client_token_for(group: str, token: str) -> str:
    """The ``ClientToken`` sent to ``CreateModelPackage`` for mlcycle's ``client_token``.

    A UUID derived from the group and the token, so it meets SageMaker's pattern
    (``[a-zA-Z0-9-]{1,36}``) and a token reused in two groups makes two packages.

    Examples
    --------
    >>> client_token_for("ratings", "t1") == client_token_for("ratings", "t1")
    True
    >>> len(client_token_for("ratings", "t1"))
    36
    """
    return str(uuid.uuid5(_TOKEN_NAMESPACE, f"{group}\n{token}"))


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _iso(value: dt.datetime) -> str:
    return _utc(value).isoformat(timespec="microseconds")


def _parse_time(value: str) -> dt.datetime:
    return _utc(dt.datetime.fromisoformat(value))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _missing_version(group: str, version: int) -> NotFoundError:
    return NotFoundError(f"model package group {group!r} has no version {version}",
                         kind=_VERSION, name=f"{group}/{version}")


class SageMakerRegistryBackend(RegistryBackend):
    """The model registry of a :class:`~mlcycle.backends.sagemaker.SageMakerBackend`.

    Parameters
    ----------
    backend : mlcycle.backends.sagemaker.SageMakerBackend
        The backend whose SageMaker and S3 clients, bucket and prefix the registry uses.
    clock : callable, optional
        Returns the current time (UTC), for audit events and status changes.
    max_workers : int
        How many ``DescribeModelPackage`` calls a listing makes at a time (1: one by one).
    """

    def __init__(
        self,
        backend: SageMakerBackend,
        *,
        clock: Callable[[], dt.datetime] = _now,
        max_workers: int = 8,
    ) -> None:
        self._backend = backend
        self._clock = clock
        self.max_workers = max(1, int(max_workers))
        self._group_arns: dict[str, str] = {}
        self._audit_seq: dict[str, int] = {}

    # -- places ------------------------------------------------------------------------------
    def _sagemaker(self) -> Any:
        return self._backend.client("sagemaker")

    def _s3(self) -> Any:
        return self._backend.client("s3")

    def _key(self, group: str, *parts: str) -> str:
        base = self._backend.prefix
        path = "/".join(("registry", group, *parts))
        return f"{base}/{path}" if base else path

    def _s3_uri(self, key: str) -> str:
        return f"s3://{self._backend.bucket}/{key}"

    def _put_json(self, key: str, data: Mapping[str, Any], **extra: Any) -> None:
        body = json.dumps(dict(data), sort_keys=True, indent=1).encode()
        self._s3().put_object(Bucket=self._backend.bucket, Key=key, Body=body,
                              ContentType=_JSON, **extra)

    def _get_json(self, key: str) -> dict[str, Any] | None:
        """The object's JSON, or None if there is no such object."""
        try:
            with translated(kind="registry-record", name=key):
                body = self._s3().get_object(Bucket=self._backend.bucket, Key=key)["Body"]
                data = body.read()
        except NotFoundError:
            return None
        return json.loads(data)  # type: ignore[no-any-return]

    # -- groups ------------------------------------------------------------------------------
    def _describe_group_raw(self, name: str) -> dict[str, Any]:
        with translated(kind=_GROUP, name=name):
            found = self._sagemaker().describe_model_package_group(ModelPackageGroupName=name)
        self._group_arns[name] = found["ModelPackageGroupArn"]
        return found  # type: ignore[no-any-return]

    def _group_arn(self, name: str) -> str:
        """The group's ARN (cached: a group's ARN never changes)."""
        arn = self._group_arns.get(name)
        return arn if arn is not None else self._describe_group_raw(name)["ModelPackageGroupArn"]

    def _require_group(self, name: str) -> str:
        """Check that the group exists now; return its ARN."""
        return self._describe_group_raw(name)["ModelPackageGroupArn"]  # type: ignore[no-any-return]

    def _group_tags(self, name: str, arn: str) -> list[tuple[str, str]]:
        """The group's tags in SageMaker's order (a key may repeat on moto: the last wins)."""
        out: list[tuple[str, str]] = []
        with translated(kind=_GROUP, name=name):
            for page in self._sagemaker().get_paginator("list_tags").paginate(ResourceArn=arn):
                out.extend((tag["Key"], tag.get("Value", "")) for tag in page.get("Tags", []))
        return out

    def _group_info(self, name: str, arn: str, description: str | None,
                    created: dt.datetime) -> ModelPackageGroupInfo:
        tags = {k: v for k, v in self._group_tags(name, arn) if not k.startswith(ALIAS_TAG)}
        return ModelPackageGroupInfo(name=name, arn=arn, description=description or "",
                                     created_at=_utc(created), tags=tags)

    def create_group(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> ModelPackageGroupInfo:
        """Create a model package group (``CreateModelPackageGroup`` with its tags).

        Raises
        ------
        AlreadyExistsError
            If it exists (``kind="model-package-group"``).
        SpecValidationError
            If a tag is one SageMaker refuses (``field="tags"``: keys and values of letters,
            digits, spaces and ``_.:/=+-@``; no ``mlcycle:alias:`` keys).
        """
        tags = dict(tags or {})
        for key, value in tags.items():
            if not metadata_value_ok(key, limit=_MAX_KEY) or not _tag_value_ok(value) \
                    or key.startswith(ALIAS_TAG):
                raise SpecValidationError(
                    f"SageMaker refuses the tag {key!r}={value!r}: keys and values hold "
                    "letters, digits, spaces and _.:/=+-@ only", field="tags")
        try:
            self._describe_group_raw(name)
        except NotFoundError:
            pass
        else:  # moto would silently replace the group: check first, as AWS refuses
            raise AlreadyExistsError(f"a model package group {name!r} exists already",
                                     kind=_GROUP, name=name)
        with translated(kind=_GROUP, name=name):
            self._sagemaker().create_model_package_group(
                ModelPackageGroupName=name, ModelPackageGroupDescription=description,
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        logger.debug("created model package group %s", name)
        return self.describe_group(name)

    def describe_group(self, name: str) -> ModelPackageGroupInfo:
        """Return a group (``DescribeModelPackageGroup`` and ``ListTags``).

        Raises
        ------
        NotFoundError
            If there is none (``kind="model-package-group"``).
        """
        found = self._describe_group_raw(name)
        return self._group_info(name, found["ModelPackageGroupArn"],
                                found.get("ModelPackageGroupDescription"), found["CreationTime"])

    def list_groups(self, *, name_contains: str | None = None) -> Iterator[ModelPackageGroupInfo]:
        """Iterate over the groups, newest first (``ListModelPackageGroups``, paginated).

        ``name_contains`` is case-sensitive, as on the local backend.
        """
        params: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
        if name_contains:
            if not _NAME_CONTAINS_RE.match(name_contains) or len(name_contains) > 63:
                return  # no group name holds other characters
            params["NameContains"] = name_contains
        with translated(kind=_GROUP, name=name_contains or ""):
            pages = self._sagemaker().get_paginator("list_model_package_groups")
            for page in pages.paginate(**params):
                for item in page.get("ModelPackageGroupSummaryList", []):
                    name = item["ModelPackageGroupName"]
                    if name_contains and name_contains not in name:
                        continue
                    self._group_arns[name] = item["ModelPackageGroupArn"]
                    try:
                        yield self._group_info(name, item["ModelPackageGroupArn"],
                                               item.get("ModelPackageGroupDescription"),
                                               item["CreationTime"])
                    except NotFoundError:  # deleted between the list and the tags
                        continue

    # -- versions: reading -------------------------------------------------------------------
    def _aliases_of(self, group: str, arn: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for key, value in self._group_tags(group, arn):
            if key.startswith(ALIAS_TAG):
                try:
                    out[key[len(ALIAS_TAG):]] = int(value)
                except ValueError:
                    logger.warning("ignoring alias tag %s=%r on %s", key, value, group)
        return dict(sorted(out.items()))

    def _describe_package(self, group: str, arn: str, version: int) -> dict[str, Any]:
        with translated(kind=_VERSION, name=f"{group}/{version}"):
            return self._sagemaker().describe_model_package(  # type: ignore[no-any-return]
                ModelPackageName=arn)

    def _summaries(self, group: str, *, status: ApprovalStatus | None = None,
                   ascending: bool = False,
                   after: dt.datetime | None = None) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"ModelPackageGroupName": group, "SortBy": "CreationTime",
                                  "SortOrder": "Ascending" if ascending else "Descending"}
        if status is not None:
            params["ModelApprovalStatus"] = ApprovalStatus(status).value
        if after is not None:
            params["CreationTimeAfter"] = after
        with translated(kind=_GROUP, name=group):
            for page in self._sagemaker().get_paginator("list_model_packages").paginate(
                    **params):
                items = [i for i in page.get("ModelPackageSummaryList", [])
                         if i.get("ModelPackageVersion") is not None]
                # packages made within one clock tick may come in either order
                items.sort(key=lambda i: i["ModelPackageVersion"], reverse=not ascending)
                yield from items

    def _find_package(self, group: str, version: int) -> dict[str, Any]:
        """Describe version ``version`` of ``group``; NotFoundError for a missing one."""
        group_arn = self._group_arn(group)
        head, _, name = group_arn.partition(":model-package-group/")
        arn = f"{head}:model-package/{name.lower()}/{version}"
        try:
            return self._describe_package(group, arn, version)
        except NotFoundError:
            pass
        self._require_group(group)  # the group may be gone; else look the version up
        for item in self._summaries(group):
            number = item["ModelPackageVersion"]
            if number == version:
                return self._describe_package(group, item["ModelPackageArn"], version)
            if number < version:
                break
        raise _missing_version(group, version)

    def _record(self, group: str, meta: Mapping[str, str]) -> dict[str, Any]:
        digest = meta.get(_K_TOKEN_HASH)
        record = self._get_json(self._key(group, "tokens", digest, "record.json")) \
            if digest else None
        if record is None:
            raise NotFoundError(f"the registry record of a {group!r} version is missing",
                                kind="registry-record", name=group)
        return record

    def _to_version(self, found: Mapping[str, Any], aliases: Mapping[str, int]) -> ModelVersion:
        group = found["ModelPackageGroupName"]
        number = int(found["ModelPackageVersion"])
        meta: dict[str, str] = dict(found.get("CustomerMetadataProperties") or {})
        spec = found.get("InferenceSpecification") or {}
        container = (spec.get("Containers") or [{}])[0]
        created_at = _utc(found["CreationTime"])
        fields: dict[str, Any] = {
            "model_key": meta.get(_K_KEY),
            "model_digest": meta.get(_K_DIGEST, ""),
            "source": meta.get(_K_SOURCE),
            "created_by": meta.get(_K_CREATED_BY)
            or (found.get("CreatedBy") or {}).get("UserProfileName") or "unknown",
            "lineage_arn": meta.get(_K_LINEAGE),
            "description": found.get("ModelPackageDescription") or "",
            "metrics": {k[len(_METRIC):]: float(v) for k, v in meta.items()
                        if k.startswith(_METRIC)},
            "tags": {k[len(_TAG):]: v for k, v in meta.items() if k.startswith(_TAG)},
        }
        inference = {
            "image": None if meta.get(_K_DEFAULT_IMAGE) == "true" else container.get("Image"),
            "runtime": meta.get(_K_RUNTIME),
            "content_types": tuple(spec.get("SupportedContentTypes") or ()),
            "response_types": tuple(spec.get("SupportedResponseMIMETypes") or ()),
            "framework": container.get("Framework") or "",
            "framework_version": container.get("FrameworkVersion"),
        }
        if meta.get(_K_RECORD) == "s3":  # some fields did not fit: the record holds them all
            record = self._record(group, meta)
            fields.update({k: record[k] for k in fields if k in record})
            inference.update(record.get("inference", {}))
        status_by = meta.get(_K_STATUS_BY) or fields["created_by"]
        status_at = _parse_time(meta[_K_STATUS_AT]) if _K_STATUS_AT in meta else created_at
        status_reason = found.get("ApprovalDescription") or ""
        if meta.get(_K_STATUS_RECORD) == "s3":
            status = self._get_json(self._key(group, "versions", str(number), "status.json"))
            if status is not None:
                status_by, status_reason = status["by"], status["reason"]
                status_at = _parse_time(status["at"])
        return ModelVersion(
            group=group, version=number, arn=found["ModelPackageArn"],
            model_uri=container.get("ModelDataUrl", ""),
            inference=InferenceSpec.from_dict(inference),
            approval_status=found.get("ModelApprovalStatus") or ApprovalStatus.PENDING,
            status_changed_at=status_at, status_changed_by=status_by,
            status_reason=status_reason, created_at=created_at,
            aliases=[a for a, v in aliases.items() if v == number], **fields)

    def describe_version(self, group: str, version: int) -> ModelVersion:
        """Return one version (``DescribeModelPackage`` by ARN).

        Raises
        ------
        NotFoundError
            If the group (``kind="model-package-group"``) or the version
            (``kind="model-version"``, ``name="<group>/<version>"``) does not exist.
        """
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            self._require_group(group)
            raise _missing_version(group, version)  # type: ignore[arg-type]
        found = self._find_package(group, version)
        return self._to_version(found, self._aliases_of(group, self._group_arn(group)))

    def list_versions(
        self,
        group: str,
        *,
        status: ApprovalStatus | None = None,
        ascending: bool = False,
    ) -> Iterator[ModelVersion]:
        """Iterate over a group's versions, newest first unless ``ascending``.

        ``ListModelPackages`` (paginated, by creation time), then one
        ``DescribeModelPackage`` per version as the iteration goes (up to ``max_workers`` at
        a time). The group is checked, and
        its aliases read, when this is called.

        Raises
        ------
        NotFoundError
            If the group does not exist.
        """
        arn = self._require_group(group)
        aliases = self._aliases_of(group, arn)
        return self._versions(group, status=status, ascending=ascending, aliases=aliases)

    def _versions(self, group: str, *, status: ApprovalStatus | None, ascending: bool,
                  aliases: Mapping[str, int]) -> Iterator[ModelVersion]:
        from concurrent.futures import ThreadPoolExecutor

        def describe(item: Mapping[str, Any]) -> ModelVersion | None:
            try:
                found = self._describe_package(group, item["ModelPackageArn"],
                                               item["ModelPackageVersion"])
            except NotFoundError:  # deleted between the list and the describe
                return None
            return self._to_version(found, aliases)

        summaries = self._summaries(group, status=status, ascending=ascending)
        if self.max_workers <= 1:
            yield from (v for v in map(describe, summaries) if v is not None)
            return
        # describe in order, in chunks of 1, 2, 4, ... max_workers: the first version (the
        # latest) costs one call, a long listing runs max_workers calls at a time
        size = 1
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="mlcycle-registry") as pool:
            while True:
                chunk = list(itertools.islice(summaries, size))
                if not chunk:
                    return
                yield from (v for v in pool.map(describe, chunk) if v is not None)
                size = min(size * 2, self.max_workers)

    # -- versions: registering ---------------------------------------------------------------
    def _metadata(self, new: NewModelVersion, digest: str) -> tuple[dict[str, str], bool]:
        """``CustomerMetadataProperties`` for ``new``, and whether all of it fits there."""
        meta = {_K_SCHEMA: _SCHEMA, _K_TOKEN_HASH: digest}
        complete = True
        wanted = {
            _K_TOKEN: new.client_token, _K_DIGEST: new.model_digest,
            _K_CREATED_BY: new.created_by, _K_KEY: new.model_key, _K_SOURCE: new.source,
            _K_LINEAGE: new.lineage_arn, _K_RUNTIME: new.inference.runtime,
            _K_DEFAULT_IMAGE: "true" if new.inference.image is None else None,
        }
        for key, value in wanted.items():
            if value is None:
                continue
            if metadata_value_ok(value):
                meta[key] = value
            else:
                complete = False
        room = MAX_METADATA - _STATUS_RESERVE - len(meta) - 1  # and _K_RECORD
        extra = [(_METRIC + k, repr(float(v))) for k, v in sorted(new.metrics.items())]
        extra += [(_TAG + k, v) for k, v in sorted(new.tags.items())]
        for key, value in extra:
            if room > 0 and metadata_value_ok(key, limit=_MAX_KEY) and metadata_value_ok(value):
                meta[key] = value
                room -= 1
            else:
                complete = False
        if not _description_ok(new.description):
            complete = False
        fv = new.inference.framework_version
        if fv is not None and not (3 <= len(fv) <= 10 and _FRAMEWORK_VERSION_RE.match(fv)):
            complete = False
        meta[_K_RECORD] = "inline" if complete else "s3"
        return meta, complete

    def _request(self, group: str, new: NewModelVersion, *, digest: str,
                 metrics_uri: str) -> dict[str, Any]:
        """The ``CreateModelPackage`` request for ``new``."""
        from mlcycle.backends.sagemaker.training import xgboost_image_uri

        if not _URL_RE.match(new.model_uri) or len(new.model_uri) > 1024:
            raise SpecValidationError(
                f"SageMaker needs the model at an s3:// or https:// URL, not {new.model_uri!r}",
                field="model_uri")
        inference = new.inference
        container: dict[str, Any] = {
            "Image": inference.image or xgboost_image_uri(self._backend.region),
            "ModelDataUrl": new.model_uri,
        }
        if inference.framework:
            container["Framework"] = inference.framework
        fv = inference.framework_version
        if fv is not None and 3 <= len(fv) <= 10 and _FRAMEWORK_VERSION_RE.match(fv):
            container["FrameworkVersion"] = fv
        meta, _ = self._metadata(new, digest)
        request: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "InferenceSpecification": {
                "Containers": [container],
                "SupportedContentTypes": list(inference.content_types),
                "SupportedResponseMIMETypes": list(inference.response_types),
            },
            "ModelApprovalStatus": ApprovalStatus(new.approval_status).value,
            "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": _JSON,
                                                             "S3Uri": metrics_uri}}},
            "CustomerMetadataProperties": meta,
            "ClientToken": client_token_for(group, new.client_token),
        }
        if new.description:
            request["ModelPackageDescription"] = (
                new.description if _description_ok(new.description)
                else _clean(new.description, lambda c: _description_ok(c), _MAX_DESCRIPTION))
        tags = [{"Key": k, "Value": v} for k, v in sorted(new.tags.items())
                if metadata_value_ok(k, limit=_MAX_KEY) and _tag_value_ok(v)
                and not k.startswith("aws:")]
        if tags:
            request["Tags"] = tags[:50]
        return request

    @staticmethod
    def _record_of(new: NewModelVersion) -> dict[str, Any]:
        return {
            "schema": _SCHEMA, "client_token": new.client_token, "model_uri": new.model_uri,
            "model_key": new.model_key, "model_digest": new.model_digest,
            "inference": new.inference.to_dict(), "metrics": dict(new.metrics),
            "tags": dict(new.tags), "description": new.description,
            "approval_status": ApprovalStatus(new.approval_status).value,
            "created_by": new.created_by, "source": new.source,
            "lineage_arn": new.lineage_arn,
        }

    def _by_token(self, group: str, digest: str,
                  since: dt.datetime) -> dict[str, Any] | None:
        """The group's model package registered with this token after ``since``, if any."""
        for item in self._summaries(group, after=since - _SKEW):
            found = self._describe_package(group, item["ModelPackageArn"],
                                           item["ModelPackageVersion"])
            if (found.get("CustomerMetadataProperties") or {}).get(_K_TOKEN_HASH) == digest:
                return found
        return None

    def _finish(self, group: str, found: Mapping[str, Any], digest: str, *,
                actor: str, append: bool) -> None:
        """Append the ``registered`` event (if ``append``), then write ``package.json``."""
        number = int(found["ModelPackageVersion"])
        if append:
            # the local clock, as for every event, so that the log's times never go back
            self._append(group, at=_utc(self._clock()), actor=actor,
                         event="registered", version=number, old=None,
                         new=found.get("ModelApprovalStatus") or ApprovalStatus.PENDING.value,
                         alias=None, reason="")
        with translated(kind="registry-record", name=group):
            self._put_json(self._key(group, "tokens", digest, "package.json"),
                           {"arn": found["ModelPackageArn"], "version": number})

    def create_version(self, group: str, new: NewModelVersion) -> tuple[ModelVersion, bool]:
        """Register the next version of ``group`` (``CreateModelPackage``; SageMaker numbers it).

        Returns
        -------
        version : mlcycle.registry.ModelVersion
            The version.
        created : bool
            True if this call created it; False if a version with the same ``client_token``
            existed, which is returned unchanged.

        Raises
        ------
        NotFoundError
            If the group does not exist.
        SpecValidationError
            If the model is not at an ``s3://`` or ``https://`` URL (``field="model_uri"``).
        """
        group_arn = self._require_group(group)
        digest = token_hash(new.client_token)
        folder = ("tokens", digest)
        done = self._get_json(self._key(group, *folder, "package.json"))
        if done is not None:
            found = self._describe_package(group, done["arn"], int(done["version"]))
            return self._to_version(found, self._aliases_of(group, group_arn)), False
        record_key = self._key(group, *folder, "record.json")
        try:
            with translated(kind="registry-record", name=record_key):
                head = self._s3().head_object(Bucket=self._backend.bucket, Key=record_key)
        except NotFoundError:  # the usual case: no earlier try
            head = None
        if head is not None:  # an earlier try wrote its record: did it get further?
            found = self._by_token(group, digest, _utc(head["LastModified"]))
            if found is not None:
                number = int(found["ModelPackageVersion"])
                logged = any(e.event == "registered" and e.version == number
                             for e in self.audit_log(group))
                self._finish(group, found, digest, actor=new.created_by, append=not logged)
                return self._to_version(found, self._aliases_of(group, group_arn)), False
        metrics_key = self._key(group, *folder, "metrics.json")
        request = self._request(group, new, digest=digest,
                                metrics_uri=self._s3_uri(metrics_key))
        with translated(kind="registry-record", name=group):
            self._put_json(metrics_key, {"metrics": dict(new.metrics)})
            self._put_json(record_key, self._record_of(new))
        with translated(kind=_GROUP, name=group):
            arn = self._sagemaker().create_model_package(**request)["ModelPackageArn"]
        found = self._describe_package(group, arn, 0)  # 0: not numbered yet
        self._finish(group, found, digest, actor=new.created_by, append=True)
        logger.debug("registered %s version %s as %s", group, found["ModelPackageVersion"], arn)
        return self._to_version(found, self._aliases_of(group, group_arn)), True

    # -- status ------------------------------------------------------------------------------
    def update_status(
        self, group: str, version: int, status: ApprovalStatus, *, actor: str, reason: str
    ) -> ModelVersion:
        """Set a version's status (``UpdateModelPackage``), then append the audit event.

        ``ModelApprovalStatus`` holds the status and ``ApprovalDescription`` the reason;
        ``mlcycle:status-by`` and ``mlcycle:status-at`` in ``CustomerMetadataProperties``
        hold who and when (or a JSON record in S3, if they do not fit there). Setting the
        status it already has changes nothing and appends nothing.

        Raises
        ------
        NotFoundError
            If the group or version does not exist.
        """
        status = ApprovalStatus(status)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            self._require_group(group)
            raise _missing_version(group, version)  # type: ignore[arg-type]
        found = self._find_package(group, version)
        old = found.get("ModelApprovalStatus") or ApprovalStatus.PENDING.value
        if old == status.value:
            return self._to_version(found, self._aliases_of(group, self._group_arn(group)))
        now = _utc(self._clock())
        meta: dict[str, str] = dict(found.get("CustomerMetadataProperties") or {})
        removed: list[str] = []
        meta[_K_STATUS_AT] = _iso(now)
        if metadata_value_ok(actor) and _reason_ok(reason):
            meta[_K_STATUS_BY] = actor
            if meta.pop(_K_STATUS_RECORD, None) is not None:
                removed.append(_K_STATUS_RECORD)
            description = reason
        else:
            with translated(kind="registry-record", name=group):
                self._put_json(self._key(group, "versions", str(version), "status.json"),
                               {"by": actor, "at": _iso(now), "reason": reason})
            meta[_K_STATUS_RECORD] = "s3"
            if meta.pop(_K_STATUS_BY, None) is not None:
                removed.append(_K_STATUS_BY)
            description = _clean(reason, _reason_ok, _MAX_DESCRIPTION)
        request: dict[str, Any] = {
            "ModelPackageArn": found["ModelPackageArn"], "ModelApprovalStatus": status.value,
            "ApprovalDescription": description, "CustomerMetadataProperties": meta,
        }
        if removed:
            request["CustomerMetadataPropertiesToRemove"] = removed
        with translated(kind=_VERSION, name=f"{group}/{version}"):
            self._sagemaker().update_model_package(**request)
        self._append(group, at=now, actor=actor, event="status", version=version, old=old,
                     new=status.value, alias=None, reason=reason)
        return self.describe_version(group, version)

    # -- aliases -----------------------------------------------------------------------------
    def set_alias(
        self, group: str, alias: str, version: int | None, *, actor: str, reason: str
    ) -> None:
        """Point ``alias`` at ``version`` (None removes it) and append the audit event.

        The alias is the group's tag ``mlcycle:alias:<alias>`` (``AddTags``; ``DeleteTags``
        to remove it). Pointing an alias where it points already changes nothing and appends
        nothing.

        Raises
        ------
        NotFoundError
            If the group or version does not exist, or (removing) the alias does not
            (``kind="model-alias"``).
        """
        arn = self._require_group(group)
        old = self._aliases_of(group, arn).get(alias)
        key = ALIAS_TAG + alias
        now = _utc(self._clock())
        if version is None:
            if old is None:
                raise NotFoundError(f"model package group {group!r} has no alias {alias!r}",
                                    kind=_ALIAS, name=f"{group}/{alias}")
            with translated(kind=_ALIAS, name=f"{group}/{alias}"):
                self._sagemaker().delete_tags(ResourceArn=arn, TagKeys=[key])
            self._append(group, at=now, actor=actor, event="alias-removed", version=None,
                         old=str(old), new=None, alias=alias, reason=reason)
            return
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise _missing_version(group, version)  # type: ignore[arg-type]
        self._find_package(group, version)
        if old == version:
            return
        with translated(kind=_ALIAS, name=f"{group}/{alias}"):
            self._sagemaker().add_tags(ResourceArn=arn,
                                       Tags=[{"Key": key, "Value": str(version)}])
        self._append(group, at=now, actor=actor, event="alias-set", version=version,
                     old=None if old is None else str(old), new=str(version), alias=alias,
                     reason=reason)

    def aliases(self, group: str) -> dict[str, int]:
        """Return the group's aliases and their versions, by alias name (``ListTags``).

        Raises
        ------
        NotFoundError
            If the group does not exist.
        """
        return self._aliases_of(group, self._require_group(group))

    # -- audit -------------------------------------------------------------------------------
    def _audit_prefix(self, group: str) -> str:
        return self._key(group, "audit") + "/"

    def _last_sequence(self, group: str) -> int:
        """The highest sequence number in S3 (listing only past the last one seen here)."""
        prefix = self._audit_prefix(group)
        last = self._audit_seq.get(group, 0)
        params: dict[str, Any] = {"Bucket": self._backend.bucket, "Prefix": prefix}
        if last:
            params["StartAfter"] = f"{prefix}{last:012d}.json"
        with translated(kind="audit-log", name=group):
            for page in self._s3().get_paginator("list_objects_v2").paginate(**params):
                for item in page.get("Contents", []):
                    stem = item["Key"][len(prefix):].removesuffix(".json")
                    if stem.isdigit():
                        last = max(last, int(stem))
        self._audit_seq[group] = last
        return last

    def _append(self, group: str, *, at: dt.datetime, actor: str, event: str,
                version: int | None, old: str | None, new: str | None, alias: str | None,
                reason: str) -> None:
        """Write the next audit event with ``If-None-Match: *``; retry on a lost race."""
        prefix = self._audit_prefix(group)
        sequence = self._last_sequence(group) + 1
        for _ in range(_AUDIT_TRIES):
            body = {"group": group, "sequence": sequence, "at": _iso(at), "actor": actor,
                    "event": event, "version": version, "old": old, "new": new,
                    "alias": alias, "reason": reason}
            try:
                self._put_json(f"{prefix}{sequence:012d}.json", body, IfNoneMatch="*")
            except Exception as exc:
                if is_write_conflict(exc):  # another writer took this number
                    sequence = max(sequence, self._last_sequence(group)) + 1
                    continue
                raise translate(exc, kind="audit-log", name=group) from exc
            self._audit_seq[group] = max(self._audit_seq.get(group, 0), sequence)
            return
        raise TransientBackendError(
            f"could not append to the audit log of {group!r}: {_AUDIT_TRIES} writers were "
            "faster", backend="sagemaker", code="AuditConflict")

    def audit_log(self, group: str) -> Iterator[AuditEvent]:
        """Iterate over the group's audit events, oldest first (one S3 object each).

        Raises
        ------
        NotFoundError
            If the group does not exist.
        """
        self._require_group(group)
        prefix = self._audit_prefix(group)
        keys: list[tuple[int, str]] = []
        with translated(kind="audit-log", name=group):
            for page in self._s3().get_paginator("list_objects_v2").paginate(
                    Bucket=self._backend.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    stem = item["Key"][len(prefix):].removesuffix(".json")
                    if stem.isdigit():
                        keys.append((int(stem), item["Key"]))
        keys.sort()
        events = []
        for sequence, key in keys:
            data = self._get_json(key)
            if data is None:  # pragma: no cover - the log is append-only
                continue
            events.append(AuditEvent(
                group=group, sequence=sequence, at=_parse_time(data["at"]),
                actor=data["actor"], event=data["event"], version=data.get("version"),
                old=data.get("old"), new=data.get("new"), alias=data.get("alias"),
                reason=data.get("reason") or ""))
        return iter(events)
