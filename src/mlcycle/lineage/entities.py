"""Lineage snapshots: entities, associations and the graph a query returns.

The vocabulary is SageMaker's ML Lineage Tracking: *artifacts* (data sets, models, flows: things
with a source URI and a content digest), *actions* (a flow run, an ingest, a training job),
*contexts* (a feature group, a model package group, an endpoint, a pipeline) and directed
*associations* between them, typed ``ContributedTo``, ``AssociatedWith``, ``DerivedFrom``,
``Produced`` or ``SameAs``. Edges point the way data flows: the training data ``ContributedTo``
the training job, the job ``Produced`` the model.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping

import attrs

__all__ = [
    "Association",
    "AssociationType",
    "Direction",
    "EntityKind",
    "LineageEntity",
    "LineageGraph",
]


class EntityKind(enum.StrEnum):
    """What a lineage entity is (SageMaker's ``LineageType``)."""

    ARTIFACT = "Artifact"
    ACTION = "Action"
    CONTEXT = "Context"


class AssociationType(enum.StrEnum):
    """How the source of an association relates to its destination (SageMaker's names)."""

    #: The source contributed to the destination (training data to a training job).
    CONTRIBUTED_TO = "ContributedTo"
    #: The source is connected to the destination (a model version to its group).
    ASSOCIATED_WITH = "AssociatedWith"
    #: The destination was derived from the source (a training set from a feature group).
    DERIVED_FROM = "DerivedFrom"
    #: The source produced the destination (a training job its model).
    PRODUCED = "Produced"
    #: Source and destination are the same thing in two places.
    SAME_AS = "SameAs"


class Direction(enum.StrEnum):
    """Which way a lineage query walks from its start entities."""

    #: Against the edges, to where the start came from (a model's data, back to the CSVs).
    ASCENDANTS = "Ascendants"
    #: Along the edges, to what was made from the start (a data set's models, endpoints).
    DESCENDANTS = "Descendants"
    #: Both ways.
    BOTH = "Both"


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("lineage times must be timezone-aware")
    return value.astimezone(dt.UTC)


@attrs.frozen(kw_only=True)
class LineageEntity:
    """One artifact, action or context, as a backend stores it.

    Parameters
    ----------
    arn : str
        The entity's identity: an ARN on SageMaker, ``local:<kind>/<id>`` on the local backend.
    kind : mlcycle.lineage.EntityKind
        Artifact, action or context.
    name : str
        Actions and contexts: the unique name within their kind. Artifacts: a display name.
    type : str
        The entity's type within its kind: ``"DataSet"``, ``"Model"``, ``"Flow"`` (artifacts),
        ``"TrainingJob"``, ``"FlowRun"``, ``"Ingest"`` (actions), ``"FeatureGroup"``,
        ``"ModelPackageGroup"`` (contexts), ...
    source_uri : str, optional
        Where the thing lives (``file://``, ``s3://``, a job's ARN, ...). Artifacts are
        deduplicated by source URI and digest.
    digest : str, optional
        Artifacts: ``"sha256:<hex>"`` of the content.
    status : str, optional
        Actions: ``"InProgress"``, ``"Completed"``, ``"Failed"``, ``"Stopped"``, ...
    properties : mapping of str to str
        Free-form string properties (never credentials).
    created_at : datetime.datetime
        When the entity was recorded (UTC).
    """

    arn: str
    kind: EntityKind = attrs.field(converter=EntityKind)
    name: str
    type: str
    source_uri: str | None = None
    digest: str | None = None
    status: str | None = None
    properties: Mapping[str, str] = attrs.field(factory=dict, converter=dict)
    created_at: dt.datetime = attrs.field(converter=_utc)

    @property
    def label(self) -> str:
        """A short text for pictures, ``"<type>: <name>"``."""
        return f"{self.type}: {self.name}"


@attrs.frozen(kw_only=True)
class Association:
    """A directed edge between two entities.

    Parameters
    ----------
    source_arn, destination_arn : str
        The ends of the edge; data flows from source to destination.
    type : mlcycle.lineage.AssociationType
        How they relate.
    created_at : datetime.datetime, optional
        When it was recorded (UTC); None where a backend's query does not report it.
    """

    source_arn: str
    destination_arn: str
    type: AssociationType = attrs.field(converter=AssociationType)
    created_at: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class LineageGraph:
    """What a lineage query returns: the entities it reached and the edges between them.

    Parameters
    ----------
    start : tuple of str
        The start entities' ARNs.
    direction : mlcycle.lineage.Direction
        Which way the query walked.
    vertices : tuple of mlcycle.lineage.LineageEntity
        The start entities first, then the rest in the order the walk reached them (nearest
        first); each once.
    edges : tuple of mlcycle.lineage.Association
        The edges walked whose both ends are among ``vertices`` (empty when the query was asked
        not to include edges).
    """

    start: tuple[str, ...] = attrs.field(converter=tuple)
    direction: Direction = attrs.field(converter=Direction)
    vertices: tuple[LineageEntity, ...] = attrs.field(converter=tuple)
    edges: tuple[Association, ...] = attrs.field(converter=tuple, default=())

    def __len__(self) -> int:
        return len(self.vertices)

    def __contains__(self, arn: object) -> bool:
        return any(v.arn == arn for v in self.vertices)

    def vertex(self, arn: str) -> LineageEntity:
        """Return the vertex with this ARN.

        Raises
        ------
        KeyError
            If the graph has no such vertex.
        """
        for v in self.vertices:
            if v.arn == arn:
                return v
        raise KeyError(arn)

    def of_type(self, type: str, *, kind: EntityKind | str | None = None) -> list[LineageEntity]:
        """Return the vertices of one type (and kind), in graph order."""
        wanted = EntityKind(kind) if kind is not None else None
        return [v for v in self.vertices
                if v.type == type and (wanted is None or v.kind is wanted)]

    def to_dot(self) -> str:
        """Return the graph in Graphviz's DOT language."""
        from mlcycle.lineage.render import graph_to_dot

        return graph_to_dot(self)

    def to_svg(self, *, title: str | None = None) -> str:
        """Return the graph as a standalone SVG picture, data flowing left to right."""
        from mlcycle.lineage.render import graph_to_svg

        return graph_to_svg(self, title=title)
