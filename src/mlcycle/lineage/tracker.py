"""The lineage facade: :class:`LineageTracker`.

Every component records its own lineage through this facade (see :mod:`mlcycle.lineage.record`);
users read it back with :meth:`LineageTracker.query`, or record their own entities.

Examples
--------
>>> import mlcycle
>>> from mlcycle.lineage import LineageTracker
>>> tracker = LineageTracker(mlcycle.connect(str(getfixture("tmp_path"))))
>>> data = tracker.artifact("file:///data/ratings.csv", type="DataSet", digest="sha256:ab12cd34")
>>> job = tracker.action("train-1", type="TrainingJob", status="Completed")
>>> model = tracker.artifact("file:///models/model.tar.gz", type="Model")
>>> _ = tracker.associate(data, job, "ContributedTo")
>>> _ = tracker.associate(job, model, "Produced")
>>> graph = tracker.query(model, direction="Ascendants")
>>> [v.label for v in graph.vertices]
['Model: model.tar.gz', 'TrainingJob: train-1', 'DataSet: ratings.csv']
>>> tracker.artifact("file:///data/ratings.csv", type="DataSet", digest="sha256:ab12cd34") == data
True
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from mlcycle.backends.base import Backend, Capability
from mlcycle.errors import AlreadyExistsError, SpecValidationError
from mlcycle.lineage.backend import QueryFilter
from mlcycle.lineage.entities import (
    Association,
    AssociationType,
    Direction,
    EntityKind,
    LineageEntity,
    LineageGraph,
)

if TYPE_CHECKING:  # pragma: no cover
    from mlcycle.lineage.backend import LineageBackend

__all__ = ["LineageTracker"]

_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._:/=+@-]{0,118}[A-Za-z0-9])?$")
_TYPE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")
_SECRET_RE = re.compile(r"(secret|password|token|credential|access[_-]?key)", re.IGNORECASE)
#: SageMaker's limit on a source URI.
MAX_URI = 2048


def _check_name(name: object, field: str = "name") -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SpecValidationError(
            f"invalid lineage {field} {name!r}: 1 to 120 letters, digits and ._:/=+@-, "
            "starting and ending with a letter or digit", field=field)
    return name


def _check_type(type: object) -> str:
    if not isinstance(type, str) or not _TYPE_RE.match(type):
        raise SpecValidationError(
            f"invalid lineage entity type {type!r}: a letter, then up to 63 letters or digits "
            "(for example 'DataSet')", field="type")
    return type


def _check_uri(uri: object) -> str:
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI or not uri.isprintable():
        raise SpecValidationError(f"invalid source URI {uri!r}: 1 to {MAX_URI} printable "
                                  "characters", field="source_uri")
    if "@" in uri.split("://", 1)[-1].split("/", 1)[0]:
        raise SpecValidationError("a source URI must not carry credentials (user@host)",
                                  field="source_uri")
    return uri


def _check_properties(properties: Mapping[str, object] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (properties or {}).items():
        if not isinstance(key, str) or not key or len(key) > 256:
            raise SpecValidationError(f"invalid property name {key!r}", field="properties")
        if _SECRET_RE.search(key):
            raise SpecValidationError(
                f"property {key!r} looks like a credential; lineage never stores credentials",
                field="properties")
        out[key] = str(value)
    return out


def _arn(entity: LineageEntity | str) -> str:
    if isinstance(entity, LineageEntity):
        return entity.arn
    if isinstance(entity, str) and entity:
        return entity
    raise SpecValidationError(f"not a lineage entity or ARN: {entity!r}", field="entity")


class LineageTracker:
    """Record and query lineage on a backend with the ``lineage`` capability.

    Parameters
    ----------
    backend : mlcycle.Backend
        Where lineage is stored. The constructor does no I/O.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def __repr__(self) -> str:
        return f"<LineageTracker on {self.backend.uri}>"

    @property
    def _store(self) -> LineageBackend:
        self.backend.require(Capability.LINEAGE)
        return self.backend.lineage

    # -- recording ---------------------------------------------------------------------------
    def artifact(
        self,
        source_uri: str,
        *,
        type: str,
        name: str | None = None,
        digest: str | None = None,
        properties: Mapping[str, object] | None = None,
    ) -> LineageEntity:
        """Return the artifact of this source URI and digest, recording it if it is new.

        Parameters
        ----------
        source_uri : str
            Where the artifact lives (``file://``, ``s3://``, ...).
        type : str
            Its type: ``"DataSet"``, ``"Model"``, ``"Flow"``, ...
        name : str, optional
            A display name; default the last part of the URI.
        digest : str, optional
            ``"sha256:<hex>"`` of the content (see :func:`mlcycle.lineage.digest_bytes`).
            The same URI with another digest is another artifact: the content changed.
        properties : mapping, optional
            String properties, merged into an existing artifact's.

        Raises
        ------
        SpecValidationError
            For a malformed URI, type, name or digest, or a property that looks like a
            credential.
        """
        source_uri = _check_uri(source_uri)
        type = _check_type(type)
        if digest is not None and (not isinstance(digest, str)
                                   or not re.match(r"^[a-z0-9]+:[0-9a-f]{8,128}$", digest)):
            raise SpecValidationError(f"invalid digest {digest!r}: '<algorithm>:<hex>'",
                                      field="digest")
        if name is None:
            tail = source_uri.rstrip("/").rsplit("/", 1)[-1] or source_uri
            name = re.sub(r"[^A-Za-z0-9._:/=+@-]", "-", tail)[:120].strip("-._:/=+@") or type
        name = _check_name(name)
        props = _check_properties(properties)
        store = self._store
        found = store.find_entity(EntityKind.ARTIFACT, source_uri=source_uri, digest=digest)
        if found is None:
            try:
                return store.create_entity(EntityKind.ARTIFACT, name=name, type=type,
                                           source_uri=source_uri, digest=digest,
                                           properties=props)
            except AlreadyExistsError:  # another writer recorded it first
                found = store.find_entity(EntityKind.ARTIFACT, source_uri=source_uri,
                                          digest=digest)
                if found is None:  # pragma: no cover - deleted in between
                    raise
        if props and any(found.properties.get(k) != v for k, v in props.items()):
            found = store.update_entity(found.arn, properties=props)
        return found

    def _named(
        self,
        kind: EntityKind,
        name: str,
        *,
        type: str,
        status: str | None,
        source_uri: str | None,
        properties: Mapping[str, object] | None,
    ) -> LineageEntity:
        name = _check_name(name)
        type = _check_type(type)
        if source_uri is not None:
            source_uri = _check_uri(source_uri)
        props = _check_properties(properties)
        store = self._store
        found = store.find_entity(kind, name=name)
        if found is None:
            try:
                return store.create_entity(kind, name=name, type=type, source_uri=source_uri,
                                           status=status, properties=props)
            except AlreadyExistsError:
                found = store.find_entity(kind, name=name)
                if found is None:  # pragma: no cover - deleted in between
                    raise
        if (status is not None and status != found.status) or (
                props and any(found.properties.get(k) != v for k, v in props.items())):
            found = store.update_entity(found.arn, status=status, properties=props or None)
        return found

    def action(
        self,
        name: str,
        *,
        type: str,
        status: str | None = None,
        source_uri: str | None = None,
        properties: Mapping[str, object] | None = None,
    ) -> LineageEntity:
        """Return the action of this name, recording it if new.

        A given status or properties update the action.

        Parameters
        ----------
        name : str
            Unique among actions, for example ``"training-job/xgboost-1"``.
        type : str
            ``"TrainingJob"``, ``"FlowRun"``, ``"Ingest"``, ...
        status : str, optional
            ``"InProgress"``, ``"Completed"``, ``"Failed"``, ``"Stopped"``, ...
        source_uri : str, optional
            The run's own URI (a job's ARN), if it has one.
        properties : mapping, optional
            String properties, merged into the action's.
        """
        return self._named(EntityKind.ACTION, name, type=type, status=status,
                           source_uri=source_uri, properties=properties)

    def context(
        self,
        name: str,
        *,
        type: str,
        source_uri: str | None = None,
        properties: Mapping[str, object] | None = None,
    ) -> LineageEntity:
        """Return the context of this name, recording it if new.

        Parameters
        ----------
        name : str
            Unique among contexts, for example ``"feature-group/users"``.
        type : str
            ``"FeatureGroup"``, ``"ModelPackageGroup"``, ``"Endpoint"``, ``"Pipeline"``, ...
        source_uri : str, optional
            The resource's URI or ARN.
        properties : mapping, optional
            String properties, merged into the context's.
        """
        return self._named(EntityKind.CONTEXT, name, type=type, status=None,
                           source_uri=source_uri, properties=properties)

    def associate(
        self,
        source: LineageEntity | str,
        destination: LineageEntity | str,
        type: AssociationType | str = AssociationType.CONTRIBUTED_TO,
    ) -> Association:
        """Record the edge ``source -> destination`` (idempotent).

        Raises
        ------
        NotFoundError
            If either end does not exist.
        AlreadyExistsError
            If the pair is already associated with another type.
        SpecValidationError
            For an unknown association type or an edge from an entity to itself.
        """
        try:
            kind = AssociationType(type)
        except ValueError:
            raise SpecValidationError(
                f"unknown association type {type!r}; one of "
                f"{', '.join(t.value for t in AssociationType)}", field="type") from None
        src, dst = _arn(source), _arn(destination)
        if src == dst:
            raise SpecValidationError("an entity cannot be associated with itself",
                                      field="destination")
        return self._store.add_association(src, dst, kind)

    # -- reading -----------------------------------------------------------------------------
    def get(self, arn: str) -> LineageEntity:
        """Return the entity with this ARN.

        Raises
        ------
        NotFoundError
            If there is none.
        """
        return self._store.describe_entity(_arn(arn))

    def find_artifact(self, source_uri: str, *, digest: str | None = None) -> LineageEntity | None:
        """Return the artifact of this source URI and digest, or None."""
        return self._store.find_entity(EntityKind.ARTIFACT, source_uri=source_uri,
                                       digest=digest)

    def find(self, kind: EntityKind | str, name: str) -> LineageEntity | None:
        """Return the action or context of this name, or None."""
        return self._store.find_entity(EntityKind(kind), name=name)

    def list(
        self,
        kind: EntityKind | str | None = None,
        *,
        type: str | None = None,
        source_uri: str | None = None,
        created_after: dt.datetime | None = None,
        created_before: dt.datetime | None = None,
    ) -> Iterator[LineageEntity]:
        """Iterate over the entities that match, newest first."""
        return self._store.list_entities(
            EntityKind(kind) if kind is not None else None, type=type, source_uri=source_uri,
            created_after=created_after, created_before=created_before)

    def associations(
        self,
        *,
        source: LineageEntity | str | None = None,
        destination: LineageEntity | str | None = None,
        type: AssociationType | str | None = None,
    ) -> Iterator[Association]:
        """Iterate over the edges that match."""
        return self._store.list_associations(
            source_arn=_arn(source) if source is not None else None,
            destination_arn=_arn(destination) if destination is not None else None,
            type=AssociationType(type) if type is not None else None)

    def query(
        self,
        start: LineageEntity | str | Iterable[LineageEntity | str],
        *,
        direction: Direction | str = Direction.ASCENDANTS,
        max_depth: int = 10,
        kinds: Iterable[EntityKind | str] | None = None,
        types: Iterable[str] | None = None,
        created_after: dt.datetime | None = None,
        created_before: dt.datetime | None = None,
        include_edges: bool = True,
    ) -> LineageGraph:
        """Walk the lineage graph from ``start``, in the spirit of SageMaker's QueryLineage.

        Parameters
        ----------
        start : mlcycle.lineage.LineageEntity or str or iterable
            Where to start: an entity, an ARN, or several of them.
        direction : Direction or str
            ``"Ascendants"`` (where it came from; the default), ``"Descendants"`` (what was
            made from it) or ``"Both"``.
        max_depth : int
            How many edges away to go at most (1 to 100).
        kinds, types : iterable, optional
            Return only entities of these kinds (``"Artifact"``, ``"Action"``, ``"Context"``)
            and types (``"Model"``, ...); the walk passes through the others.
        created_after, created_before : datetime.datetime, optional
            Return only entities recorded in this range (timezone-aware).
        include_edges : bool
            Whether to return the edges too.

        Returns
        -------
        mlcycle.lineage.LineageGraph
            The start entities first, then the rest nearest first.

        Raises
        ------
        NotFoundError
            If a start entity does not exist.
        SpecValidationError
            For a bad direction, depth, kind or naive time.
        """
        if isinstance(start, (LineageEntity, str)):
            start = [start]
        arns = tuple(dict.fromkeys(_arn(s) for s in start))
        if not arns:
            raise SpecValidationError("a lineage query needs a start entity", field="start")
        try:
            way = Direction(direction)
        except ValueError:
            raise SpecValidationError(
                f"unknown direction {direction!r}; one of Ascendants, Descendants, Both",
                field="direction") from None
        if isinstance(max_depth, bool) or not isinstance(max_depth, int) or not (
                1 <= max_depth <= 100):
            raise SpecValidationError(f"max_depth must be an integer from 1 to 100, not "
                                      f"{max_depth!r}", field="max_depth")
        for field, moment in (("created_after", created_after),
                              ("created_before", created_before)):
            if moment is not None and (not isinstance(moment, dt.datetime)
                                       or moment.tzinfo is None):
                raise SpecValidationError(f"{field} must be a timezone-aware datetime",
                                          field=field)
        try:
            where = QueryFilter(kinds=kinds, types=types, created_after=created_after,
                                created_before=created_before)
        except ValueError:
            raise SpecValidationError(f"unknown entity kind in {kinds!r}; Artifact, Action "
                                      "or Context", field="kinds") from None
        return self._store.query(arns, direction=way, max_depth=max_depth, where=where,
                                 include_edges=include_edges)
