"""Lineage on the sagemaker backend: SageMaker ML Lineage Tracking.

How each operation maps to AWS (see ``docs/guide/lineage_sagemaker.rst``):

* entities: ``CreateArtifact``, ``CreateAction``, ``CreateContext``; ``DescribeArtifact``,
  ``DescribeAction``, ``DescribeContext``; ``UpdateArtifact``, ``UpdateAction``,
  ``UpdateContext``; ``ListArtifacts``, ``ListActions``, ``ListContexts`` (paginated, newest
  first, then a describe per entity: the summaries carry no properties);
* an artifact's digest is its ``Source.SourceTypes`` entry ``{"SourceIdType": "Custom",
  "Value": "sha256:<hex>"}``; artifacts are deduplicated by ``ListArtifacts(SourceUri=...)`` and
  that entry. SageMaker does not make artifacts unique, so after ``CreateArtifact`` the twins of
  the same source URI and digest are listed and the oldest wins: a writer that sees itself lose
  deletes its own (``DeleteArtifact``) and reports :class:`~mlcycle.errors.AlreadyExistsError`;
* names: SageMaker's names are ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}``; ours may hold ``/``, ``.``
  and more. :func:`sagemaker_name` derives a valid, lowercase name (the sanitized name and ten
  hex digits of its SHA-256) wherever ours is not one already, and the exact name is kept in the
  reserved property ``mlcycle:name``. Actions and contexts are unique by their SageMaker name,
  which SageMaker enforces, so :meth:`SageMakerLineageBackend.find_entity` is one
  ``DescribeAction`` or ``DescribeContext`` by the derived name;
* an action's status is one of SageMaker's ``ActionStatus`` values (:func:`action_status`); a
  status of ours that is not one of them is kept exactly in ``mlcycle:status``;
* associations: ``AddAssociation`` (after a ``ListAssociations`` of the pair, so a repeat is
  idempotent and another type an :class:`~mlcycle.errors.AlreadyExistsError`) and
  ``ListAssociations``;
* queries: ``QueryLineage`` per start entity (it takes one), with ``IncludeEdges`` and
  ``MaxDepth``, paginated; our breadth-first walk then runs over the edges it returned, so the
  result is the same as the local backend's (``Both`` is the union of the two walks, filters are
  applied here and the walk passes through what they leave out); then a describe per vertex,
  cached for the call. SageMaker walks at most 10 associations deep: a deeper query is answered
  by :meth:`~mlcycle.lineage.LineageBackend.walk` over ``ListAssociations``.

Every botocore error becomes an mlcycle error in ``mlcycle.backends.sagemaker._errors``
(``lineage_translated``). Nothing here records
credentials: properties whose names look like credentials are refused by the facade.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from mlcycle.backends.sagemaker._errors import lineage_translated
from mlcycle.errors import AlreadyExistsError, NotFoundError, SpecValidationError
from mlcycle.lineage.backend import LineageBackend, QueryFilter, assemble_graph, breadth_first
from mlcycle.lineage.entities import (
    Association,
    AssociationType,
    Direction,
    EntityKind,
    LineageEntity,
    LineageGraph,
)

if TYPE_CHECKING:  # pragma: no cover
    from mlcycle.backends.sagemaker import SageMakerBackend

__all__ = [
    "ACTION_STATUSES",
    "MAX_QUERY_DEPTH",
    "NAME_PROPERTY",
    "NO_SOURCE_TYPE",
    "STATUS_PROPERTY",
    "SageMakerLineageBackend",
    "action_status",
    "sagemaker_name",
]

#: The reserved property that holds our exact name where SageMaker's differs.
NAME_PROPERTY = "mlcycle:name"
#: The reserved property that holds our exact status where SageMaker cannot.
STATUS_PROPERTY = "mlcycle:status"
#: ``Source.SourceType`` of an action or context recorded without a source URI (SageMaker
#: requires one: the ``SourceUri`` is then our name).
NO_SOURCE_TYPE = "mlcycle:none"
#: The deepest ``QueryLineage`` SageMaker answers.
MAX_QUERY_DEPTH = 10
#: SageMaker's ``ActionStatus`` values.
ACTION_STATUSES = frozenset({"Unknown", "InProgress", "Completed", "Failed", "Stopping",
                             "Stopped"})
#: SageMaker's limits on an entity's properties.
MAX_PROPERTIES = 30
MAX_PROPERTY_TEXT = 2500

_RESERVED = "mlcycle:"
_ENTITY_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}")
_ARN = re.compile(
    r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:(?P<kind>artifact|action|context)/"
    r"(?P<name>.+)$")
_ASSOCIATION_ARN = re.compile(
    r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:"
    r"(experiment|experiment-trial-component|artifact|action|context)/.+$")
_KINDS = {"artifact": EntityKind.ARTIFACT, "action": EntityKind.ACTION,
          "context": EntityKind.CONTEXT}
_STATUS_ALIASES = {
    "succeeded": "Completed", "success": "Completed", "successful": "Completed",
    "complete": "Completed", "completed": "Completed", "done": "Completed",
    "inprogress": "InProgress", "running": "InProgress", "pending": "InProgress",
    "starting": "InProgress", "queued": "InProgress", "executing": "InProgress",
    "failed": "Failed", "failure": "Failed", "error": "Failed", "errored": "Failed",
    "stopped": "Stopped", "cancelled": "Stopped", "canceled": "Stopped",
    "stopping": "Stopping", "cancelling": "Stopping", "canceling": "Stopping",
    "unknown": "Unknown",
}
#: Margin on the time filters sent to SageMaker (the exact, inclusive filter is applied here).
_MARGIN = dt.timedelta(milliseconds=1)
_PAGE = 100
_QUERY_PAGE = 50
_ASSOCIATION_KIND = "lineage-association"


def sagemaker_name(name: str) -> str:
    """Return the SageMaker name of a lineage entity named ``name``.

    A name that is valid for SageMaker (``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}``) and lowercase is
    its own; any other becomes its lowercase letters and digits, runs of anything else as one
    ``-``, and ``-`` plus the first ten hex digits of the name's SHA-256, so two names never
    share one by accident (``a.b`` and ``a/b`` differ) and the mapping is stable.

    Parameters
    ----------
    name : str
        Our name: 1 to 120 letters, digits and ``._:/=+@-``.

    Returns
    -------
    str
        At most 120 characters, matching SageMaker's pattern.

    Examples
    --------
    >>> sagemaker_name("train-1")
    'train-1'
    >>> sagemaker_name("training-job/xgboost-1")
    'training-job-xgboost-1-45f23e1461'
    >>> sagemaker_name("Train-1") != sagemaker_name("train-1")
    True
    """
    if _ENTITY_NAME.fullmatch(name) and name == name.lower():
        return name
    suffix = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:120 - 11].rstrip("-")
    return f"{base}-{suffix}" if base else suffix


def action_status(status: str) -> tuple[str, bool]:
    """Return SageMaker's ``ActionStatus`` for a status of ours, and whether it is exact.

    SageMaker's own values are exact; others map by meaning, case-insensitively
    (``Succeeded`` to ``Completed``, ``Running`` or ``Pending`` to ``InProgress``,
    ``Cancelled`` to ``Stopped``, ``Error`` to ``Failed``), and the rest to ``Unknown``; an
    inexact one is kept exactly in the ``mlcycle:status`` property.

    Examples
    --------
    >>> action_status("Completed"), action_status("Succeeded"), action_status("Weird")
    (('Completed', True), ('Completed', False), ('Unknown', False))
    """
    if status in ACTION_STATUSES:
        return status, True
    return _STATUS_ALIASES.get(re.sub(r"[^a-z]", "", status.lower()), "Unknown"), False


def _utc(moment: Any) -> dt.datetime:
    if not isinstance(moment, dt.datetime):  # pragma: no cover - botocore parses timestamps
        raise TypeError(f"not a timestamp: {moment!r}")
    if moment.tzinfo is None:  # pragma: no cover - botocore's are aware
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _digest_of(source: Mapping[str, Any]) -> str | None:
    for item in source.get("SourceTypes") or ():
        if item.get("SourceIdType") == "Custom" and item.get("Value"):
            return str(item["Value"])
    return None


def _source_uri(kind: EntityKind, source: Mapping[str, Any]) -> str | None:
    if kind is not EntityKind.ARTIFACT and source.get("SourceType") == NO_SOURCE_TYPE:
        return None
    return source.get("SourceUri")


def _kind_of(arn: object) -> EntityKind | None:
    """The kind of a lineage ARN SageMaker could hold, else None."""
    if not isinstance(arn, str):
        return None
    match = _ARN.match(arn)
    if match is None:
        return None
    kind = _KINDS[match["kind"]]
    if kind is EntityKind.ARTIFACT:
        return kind if len(arn) <= 256 else None
    name = match["name"]
    pattern = (re.compile(r"[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,119}") if kind is EntityKind.CONTEXT
               else _ENTITY_NAME)
    return kind if pattern.fullmatch(name) else None


def _not_found(arn: str) -> NotFoundError:
    return NotFoundError(f"no lineage entity {arn!r}", kind="lineage-entity", name=arn)


class SageMakerLineageBackend(LineageBackend):
    """Lineage in SageMaker's ML Lineage Tracking, for a sagemaker backend.

    Parameters
    ----------
    backend : mlcycle.backends.sagemaker.SageMakerBackend
        The backend whose ``sagemaker`` client is used. The constructor does no I/O.
    """

    def __init__(self, backend: SageMakerBackend) -> None:
        self._backend = backend

    def _sagemaker(self) -> Any:
        return self._backend.client("sagemaker")

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _user_properties(properties: Mapping[str, str] | None) -> dict[str, str]:
        props = {str(k): str(v) for k, v in (properties or {}).items()}
        for key, value in props.items():
            if key.startswith(_RESERVED):
                raise SpecValidationError(
                    f"property {key!r}: names starting with {_RESERVED!r} are reserved on the "
                    "sagemaker backend", field="properties")
            if len(key) > MAX_PROPERTY_TEXT or len(value) > MAX_PROPERTY_TEXT:
                raise SpecValidationError(
                    f"property {key!r}: SageMaker holds names and values of at most "
                    f"{MAX_PROPERTY_TEXT} characters", field="properties")
        return props

    @staticmethod
    def _check_count(props: Mapping[str, str]) -> None:
        if len(props) > MAX_PROPERTIES:
            raise SpecValidationError(
                f"SageMaker holds at most {MAX_PROPERTIES} properties per lineage entity "
                f"(with mlcycle's own), not {len(props)}", field="properties")

    def _pages(self, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        """The items of a paginated list call, page by page, translating errors."""
        client = self._sagemaker()
        call = getattr(client, operation)
        token: str | None = None
        while True:
            with lineage_translated(kind="lineage", name=operation):
                page = call(**params, **({"NextToken": token} if token else {}))
            yield from page.get(key) or ()
            token = page.get("NextToken")
            if not token:
                return

    def _describe_raw(self, kind: EntityKind, arn: str) -> dict[str, Any]:
        client = self._sagemaker()
        with lineage_translated(kind="lineage-entity", name=arn):
            if kind is EntityKind.ARTIFACT:
                return client.describe_artifact(ArtifactArn=arn)
            if kind is EntityKind.ACTION:
                return client.describe_action(ActionName=arn)
            return client.describe_context(ContextName=arn)

    @staticmethod
    def _entity(kind: EntityKind, raw: Mapping[str, Any]) -> LineageEntity:
        field = kind.value
        props = dict(raw.get("Properties") or {})
        name = props.pop(NAME_PROPERTY, None)
        status = props.pop(STATUS_PROPERTY, None)
        for key in [k for k in props if k.startswith(_RESERVED)]:
            del props[key]
        arn = raw[f"{field}Arn"]
        source = raw.get("Source") or {}
        if status is None and kind is EntityKind.ACTION:
            status = raw.get("Status")
        return LineageEntity(
            arn=arn, kind=kind,
            name=name or raw.get(f"{field}Name") or arn.rsplit("/", 1)[-1],
            type=raw.get(f"{field}Type") or "",
            source_uri=_source_uri(kind, source),
            digest=_digest_of(source) if kind is EntityKind.ARTIFACT else None,
            status=status, properties=props,
            created_at=_utc(raw.get("CreationTime") or raw.get("LastModifiedTime")))

    def _artifact_summaries(self, source_uri: str) -> list[dict[str, Any]]:
        """The artifacts of a source URI, oldest first."""
        return [s for s in self._pages("list_artifacts", "ArtifactSummaries",
                                       SourceUri=source_uri, SortBy="CreationTime",
                                       SortOrder="Ascending", MaxResults=_PAGE)
                if (s.get("Source") or {}).get("SourceUri") == source_uri]

    # -- entities ----------------------------------------------------------------------------
    def create_entity(
        self,
        kind: EntityKind,
        *,
        name: str,
        type: str,
        source_uri: str | None = None,
        digest: str | None = None,
        status: str | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> LineageEntity:
        """Create the artifact, action or context, then describe it.

        Raises
        ------
        AlreadyExistsError
            If an action or context of that SageMaker name exists, or another writer recorded
            the artifact of that source URI and digest first.
        SpecValidationError
            For a property SageMaker cannot hold (more than 30 with mlcycle's own, or longer
            than 2,500 characters), a digest longer than 256 characters, or an artifact
            without a source URI.
        """
        kind = EntityKind(kind)
        props = self._user_properties(properties)
        sm_name = sagemaker_name(name)
        if sm_name != name:
            props[NAME_PROPERTY] = name
        client = self._sagemaker()
        if kind is EntityKind.ARTIFACT:
            if not source_uri:
                raise SpecValidationError("an artifact needs a source URI", field="source_uri")
            if digest is not None and len(digest) > 256:
                raise SpecValidationError("SageMaker holds digests of at most 256 characters",
                                          field="digest")
            if status is not None:
                props[STATUS_PROPERTY] = status
            self._check_count(props)
            source: dict[str, Any] = {"SourceUri": source_uri}
            if digest is not None:
                source["SourceTypes"] = [{"SourceIdType": "Custom", "Value": digest}]
            params: dict[str, Any] = {"ArtifactName": sm_name, "Source": source,
                                      "ArtifactType": type}
            if props:
                params["Properties"] = props
            with lineage_translated(kind=kind.value, name=source_uri):
                arn = client.create_artifact(**params)["ArtifactArn"]
            self._settle(arn, source_uri, digest)
            return self.describe_entity(arn)

        source = ({"SourceUri": source_uri} if source_uri
                  else {"SourceUri": name, "SourceType": NO_SOURCE_TYPE})
        params = {"Source": source}
        if kind is EntityKind.ACTION:
            params.update(ActionName=sm_name, ActionType=type)
            if status is not None:
                sm_status, exact = action_status(status)
                params["Status"] = sm_status
                if not exact:
                    props[STATUS_PROPERTY] = status
        else:
            params.update(ContextName=sm_name, ContextType=type)
            if status is not None:
                props[STATUS_PROPERTY] = status
        self._check_count(props)
        if props:
            params["Properties"] = props
        with lineage_translated(kind=kind.value, name=name):
            if kind is EntityKind.ACTION:
                arn = client.create_action(**params)["ActionArn"]
            else:
                arn = client.create_context(**params)["ContextArn"]
        return self.describe_entity(arn)

    def _settle(self, arn: str, source_uri: str, digest: str | None) -> None:
        """Keep one artifact per source URI and digest: the oldest; delete ours if it lost."""
        twins = [s for s in self._artifact_summaries(source_uri)
                 if _digest_of(s.get("Source") or {}) == digest]
        mine = [s for s in twins if s.get("ArtifactArn") == arn]
        if len(twins) < 2 or not mine:
            return  # alone, or not listed yet: keep it (reads pick the oldest anyway)
        winner = min(twins, key=lambda s: (s.get("CreationTime"), s.get("ArtifactArn")))
        if winner.get("ArtifactArn") == arn:
            return
        try:
            with lineage_translated(kind="lineage-entity", name=arn):
                self._sagemaker().delete_artifact(ArtifactArn=arn)
        except NotFoundError:  # pragma: no cover - deleted by someone else
            pass
        raise AlreadyExistsError(f"lineage artifact {source_uri!r} exists already",
                                 kind=EntityKind.ARTIFACT.value, name=source_uri)

    def describe_entity(self, arn: str) -> LineageEntity:
        """Describe the artifact, action or context that the ARN names.

        Raises
        ------
        NotFoundError
            If there is none, or the ARN is not one of a SageMaker artifact, action or context
            (``kind="lineage-entity"``).
        """
        kind = _kind_of(arn)
        if kind is None:
            raise _not_found(str(arn))
        return self._entity(kind, self._describe_raw(kind, arn))

    def find_entity(
        self,
        kind: EntityKind,
        *,
        name: str | None = None,
        source_uri: str | None = None,
        digest: str | None = None,
    ) -> LineageEntity | None:
        """Describe the action or context by its SageMaker name, or list a URI's artifacts."""
        kind = EntityKind(kind)
        if kind is EntityKind.ARTIFACT:
            if not source_uri:
                return None
            for summary in self._artifact_summaries(source_uri):
                if _digest_of(summary.get("Source") or {}) == digest:
                    try:
                        return self.describe_entity(summary["ArtifactArn"])
                    except NotFoundError:  # pragma: no cover - deleted in between
                        continue
            return None
        if not name:
            return None
        try:
            found = self._entity(kind, self._describe_raw(kind, sagemaker_name(name)))
        except NotFoundError:
            return None
        return found if found.name == name else None

    def update_entity(
        self,
        arn: str,
        *,
        status: str | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> LineageEntity:
        """Describe the entity, merge the properties, and send the whole list with its update.

        Raises
        ------
        NotFoundError
            If there is no such entity.
        TransientBackendError
            If another writer updated it at the same moment (``ConflictException``).
        """
        kind = _kind_of(arn)
        if kind is None:
            raise _not_found(str(arn))
        raw = self._describe_raw(kind, arn)
        merged = dict(raw.get("Properties") or {})
        merged.update(self._user_properties(properties))
        remove: list[str] = []
        params: dict[str, Any] = {}
        if status is not None:
            exact = False
            if kind is EntityKind.ACTION:
                params["Status"], exact = action_status(status)
            if exact:
                if merged.pop(STATUS_PROPERTY, None) is not None:
                    remove.append(STATUS_PROPERTY)
            else:
                merged[STATUS_PROPERTY] = status
        self._check_count(merged)
        params["Properties"] = merged
        if remove:
            params["PropertiesToRemove"] = remove
        client = self._sagemaker()
        with lineage_translated(kind="lineage-entity", name=arn):
            if kind is EntityKind.ARTIFACT:
                client.update_artifact(ArtifactArn=arn, **params)
            elif kind is EntityKind.ACTION:
                client.update_action(ActionName=raw["ActionName"], **params)
            else:
                client.update_context(ContextName=raw["ContextName"], **params)
        return self.describe_entity(arn)

    def list_entities(
        self,
        kind: EntityKind | None = None,
        *,
        type: str | None = None,
        source_uri: str | None = None,
        created_after: dt.datetime | None = None,
        created_before: dt.datetime | None = None,
    ) -> Iterator[LineageEntity]:
        """List each kind newest first (``ListArtifacts``, ...), merge, and describe each match."""
        kinds = [EntityKind(kind)] if kind is not None else list(EntityKind)
        streams = [self._listed(k, type=type, source_uri=source_uri,
                                created_after=created_after, created_before=created_before)
                   for k in kinds]
        merged = heapq.merge(*streams, key=lambda item: (item[0], item[1]), reverse=True)
        return (self.describe_entity(arn) for _, arn in merged)

    def _listed(
        self,
        kind: EntityKind,
        *,
        type: str | None,
        source_uri: str | None,
        created_after: dt.datetime | None,
        created_before: dt.datetime | None,
    ) -> Iterator[tuple[dt.datetime, str]]:
        """(creation time, ARN) of one kind's matching entities, newest first."""
        field = kind.value
        params: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending",
                                  "MaxResults": _PAGE}
        if type is not None:
            params[f"{field}Type"] = type
        if source_uri is not None:
            params["SourceUri"] = source_uri
        if created_after is not None:
            params["CreatedAfter"] = created_after - _MARGIN
        if created_before is not None:
            params["CreatedBefore"] = created_before + _MARGIN
        operation = {EntityKind.ARTIFACT: "list_artifacts", EntityKind.ACTION: "list_actions",
                     EntityKind.CONTEXT: "list_contexts"}[kind]
        for summary in self._pages(operation, f"{field}Summaries", **params):
            created = _utc(summary.get("CreationTime") or summary.get("LastModifiedTime"))
            if ((type is not None and summary.get(f"{field}Type") != type)
                    or (source_uri is not None
                        and _source_uri(kind, summary.get("Source") or {}) != source_uri)
                    or (created_after is not None and created < created_after)
                    or (created_before is not None and created > created_before)):
                continue
            yield created, summary[f"{field}Arn"]

    # -- associations ------------------------------------------------------------------------
    @staticmethod
    def _association(summary: Mapping[str, Any]) -> Association:
        created = summary.get("CreationTime")
        return Association(
            source_arn=summary["SourceArn"], destination_arn=summary["DestinationArn"],
            type=summary.get("AssociationType") or AssociationType.ASSOCIATED_WITH,
            created_at=_utc(created) if created is not None else None)

    def _pair(self, source_arn: str, destination_arn: str) -> Association | None:
        for summary in self._pages("list_associations", "AssociationSummaries",
                                   SourceArn=source_arn, DestinationArn=destination_arn,
                                   MaxResults=_PAGE):
            if (summary.get("SourceArn"), summary.get("DestinationArn")) == (
                    source_arn, destination_arn):
                return self._association(summary)
        return None

    def add_association(
        self, source_arn: str, destination_arn: str, type: AssociationType
    ) -> Association:
        """List the pair's association, and ``AddAssociation`` if there is none.

        The association returned for a new edge has no ``created_at`` (``AddAssociation``
        does not report it; listing does).
        """
        type = AssociationType(type)
        for arn in (source_arn, destination_arn):
            if _kind_of(arn) is None:
                raise _not_found(str(arn))
        name = f"{source_arn} -> {destination_arn}"
        try:
            found = self._pair(source_arn, destination_arn)
            if found is None:
                try:
                    with lineage_translated(kind=_ASSOCIATION_KIND, name=name):
                        self._sagemaker().add_association(
                            SourceArn=source_arn, DestinationArn=destination_arn,
                            AssociationType=type.value)
                except AlreadyExistsError:  # another writer added the pair first
                    found = self._pair(source_arn, destination_arn)
                    if found is None:  # pragma: no cover - deleted in between
                        raise
                else:
                    return Association(source_arn=source_arn,
                                       destination_arn=destination_arn, type=type)
        except NotFoundError:
            for arn in (source_arn, destination_arn):
                self.describe_entity(arn)  # raises for the missing end
            raise  # pragma: no cover - both ends exist again
        if found.type is not type:
            raise AlreadyExistsError(
                f"{name} is associated as {found.type.value} already, not {type.value}",
                kind=_ASSOCIATION_KIND, name=name)
        return found

    def list_associations(
        self,
        *,
        source_arn: str | None = None,
        destination_arn: str | None = None,
        type: AssociationType | None = None,
    ) -> Iterator[Association]:
        """``ListAssociations`` with the filters, oldest first."""
        params: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Ascending",
                                  "MaxResults": _PAGE}
        for key, arn in (("SourceArn", source_arn), ("DestinationArn", destination_arn)):
            if arn is not None:
                if not _ASSOCIATION_ARN.match(arn) or len(arn) > 256:
                    return iter(())  # not an ARN SageMaker could hold: no edges
                params[key] = arn
        if type is not None:
            params["AssociationType"] = AssociationType(type).value
        return self._listed_associations(params)

    def _listed_associations(self, params: dict[str, Any]) -> Iterator[Association]:
        try:
            for summary in self._pages("list_associations", "AssociationSummaries", **params):
                yield self._association(summary)
        except NotFoundError:  # an end that does not exist has no edges
            return

    # -- queries -----------------------------------------------------------------------------
    def query(
        self,
        start_arns: tuple[str, ...],
        *,
        direction: Direction,
        max_depth: int,
        where: QueryFilter,
        include_edges: bool,
    ) -> LineageGraph:
        """``QueryLineage`` per start, our walk over the edges returned, a describe per vertex.

        Deeper than :data:`MAX_QUERY_DEPTH`: :meth:`~mlcycle.lineage.LineageBackend.walk`.

        Raises
        ------
        NotFoundError
            If a start entity does not exist.
        """
        direction = Direction(direction)
        if max_depth > MAX_QUERY_DEPTH:
            return self.walk(start_arns, direction=direction, max_depth=max_depth, where=where,
                             include_edges=include_edges)
        start = tuple(dict.fromkeys(start_arns))
        entities = {arn: self.describe_entity(arn) for arn in start}
        by_source: dict[str, list[Association]] = {}
        by_destination: dict[str, list[Association]] = {}
        seen: set[tuple[str, str]] = set()
        for arn in start:
            for edge in self._query_edges(arn, direction, max_depth):
                if (edge.source_arn, edge.destination_arn) in seen:
                    continue
                seen.add((edge.source_arn, edge.destination_arn))
                by_source.setdefault(edge.source_arn, []).append(edge)
                by_destination.setdefault(edge.destination_arn, []).append(edge)

        def neighbours(frontier: list[str], up: bool) -> list[Association]:
            index = by_destination if up else by_source
            return [edge for arn in frontier for edge in index.get(arn, ())]

        depths, edges = breadth_first(start, direction, max_depth, neighbours)
        kept: dict[str, int] = {}
        for arn, depth in depths.items():
            if arn not in entities:
                if _kind_of(arn) is None:  # a trial component or an experiment: walked through
                    continue
                entities[arn] = self.describe_entity(arn)
            kept[arn] = depth
        return assemble_graph(start, direction, kept, edges, entities, where, include_edges)

    def _query_edges(self, arn: str, direction: Direction, max_depth: int
                     ) -> Iterator[Association]:
        for edge in self._pages("query_lineage", "Edges", StartArns=[arn],
                                Direction=direction.value, IncludeEdges=True,
                                MaxDepth=max_depth, MaxResults=_QUERY_PAGE):
            yield Association(source_arn=edge["SourceArn"],
                              destination_arn=edge["DestinationArn"],
                              type=edge.get("AssociationType")
                              or AssociationType.ASSOCIATED_WITH)
