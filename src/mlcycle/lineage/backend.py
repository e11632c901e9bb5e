"""The lineage backend interface.

The facade (:class:`mlcycle.lineage.LineageTracker`) validates, deduplicates (get or create)
and records lineage for the other components; a backend stores entities and associations and
answers queries. A backend implements the abstract core of :class:`LineageBackend`;
:meth:`LineageBackend.walk` is a derived, breadth-first query over :meth:`list_associations`
for a backend without a native one.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping

import attrs

from mlcycle.lineage.entities import (
    Association,
    AssociationType,
    Direction,
    EntityKind,
    LineageEntity,
    LineageGraph,
)

__all__ = ["LineageBackend", "QueryFilter", "assemble_graph", "breadth_first"]


@attrs.frozen(kw_only=True)
class QueryFilter:
    """Which vertices a query returns (the walk itself passes through every entity).

    Parameters
    ----------
    kinds : iterable of EntityKind, optional
        Only these kinds.
    types : iterable of str, optional
        Only these entity types (``"Model"``, ``"DataSet"``, ...).
    created_after, created_before : datetime.datetime, optional
        Only entities recorded in this time range (inclusive, timezone-aware).
    """

    kinds: frozenset[EntityKind] | None = attrs.field(
        default=None, converter=lambda v: None if v is None else frozenset(map(EntityKind, v)))
    types: frozenset[str] | None = attrs.field(
        default=None, converter=lambda v: None if v is None else frozenset(v))
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None

    def __call__(self, entity: LineageEntity) -> bool:
        """Return whether ``entity`` passes."""
        return ((self.kinds is None or entity.kind in self.kinds)
                and (self.types is None or entity.type in self.types)
                and (self.created_after is None or entity.created_at >= self.created_after)
                and (self.created_before is None or entity.created_at <= self.created_before))


class LineageBackend(abc.ABC):
    """Where lineage entities and associations are stored.

    Subclasses implement the abstract methods; :meth:`walk` is derived from them.
    """

    @abc.abstractmethod
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
        """Record a new entity and return it.

        Raises
        ------
        AlreadyExistsError
            If an action or context of that kind and name exists, or an artifact with that
            source URI and digest (``kind`` is the entity kind, ``name`` its name or URI).
        """

    @abc.abstractmethod
    def describe_entity(self, arn: str) -> LineageEntity:
        """Return the entity with this ARN.

        Raises
        ------
        NotFoundError
            If there is none (``kind="lineage-entity"``).
        """

    @abc.abstractmethod
    def find_entity(
        self,
        kind: EntityKind,
        *,
        name: str | None = None,
        source_uri: str | None = None,
        digest: str | None = None,
    ) -> LineageEntity | None:
        """Return the named action or context, or the artifact of a source URI and digest.

        ``digest=None`` matches only an artifact recorded without one. None if there is none.
        """

    @abc.abstractmethod
    def update_entity(
        self,
        arn: str,
        *,
        status: str | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> LineageEntity:
        """Set an entity's status and merge ``properties`` into its own; return the result.

        Raises
        ------
        NotFoundError
            If there is no such entity.
        """

    @abc.abstractmethod
    def list_entities(
        self,
        kind: EntityKind | None = None,
        *,
        type: str | None = None,
        source_uri: str | None = None,
        created_after: dt.datetime | None = None,
        created_before: dt.datetime | None = None,
    ) -> Iterator[LineageEntity]:
        """Iterate over the entities that match, newest first."""

    @abc.abstractmethod
    def add_association(
        self, source_arn: str, destination_arn: str, type: AssociationType
    ) -> Association:
        """Record the edge ``source -> destination``; return it.

        Adding an edge that exists with the same type returns the existing one (idempotent).

        Raises
        ------
        NotFoundError
            If either end does not exist.
        AlreadyExistsError
            If the pair is already associated with another type (one edge per ordered pair,
            as on SageMaker).
        """

    @abc.abstractmethod
    def list_associations(
        self,
        *,
        source_arn: str | None = None,
        destination_arn: str | None = None,
        type: AssociationType | None = None,
    ) -> Iterator[Association]:
        """Iterate over the edges that match."""

    @abc.abstractmethod
    def query(
        self,
        start_arns: tuple[str, ...],
        *,
        direction: Direction,
        max_depth: int,
        where: QueryFilter,
        include_edges: bool,
    ) -> LineageGraph:
        """Walk the graph from ``start_arns`` up to ``max_depth`` edges away.

        The start entities are always returned; every other entity reached is returned if
        ``where`` lets it through. The walk passes through entities the filter leaves out.
        ``edges`` are the edges walked whose both ends are returned.

        Raises
        ------
        NotFoundError
            If a start entity does not exist.
        """

    # -- derived -----------------------------------------------------------------------------
    def walk(
        self,
        start_arns: tuple[str, ...],
        *,
        direction: Direction,
        max_depth: int,
        where: QueryFilter,
        include_edges: bool,
    ) -> LineageGraph:
        """Answer :meth:`query` breadth first, for backends without a native query.

        It calls :meth:`list_associations` per entity and :meth:`describe_entity` per vertex.
        ``Both`` is the union of the ascendants and the descendants walk (it does not turn
        round: a model's siblings are not its lineage).
        """
        start = tuple(dict.fromkeys(start_arns))
        entities = {arn: self.describe_entity(arn) for arn in start}

        def neighbours(arns: list[str], up: bool) -> list[Association]:
            found: list[Association] = []
            for arn in arns:
                found += (self.list_associations(destination_arn=arn) if up
                          else self.list_associations(source_arn=arn))
            return found

        depths, edges = breadth_first(start, direction, max_depth, neighbours)
        for arn in depths:
            if arn not in entities:
                entities[arn] = self.describe_entity(arn)
        return assemble_graph(start, direction, depths, edges, entities, where, include_edges)


def breadth_first(
    start: tuple[str, ...],
    direction: Direction,
    max_depth: int,
    neighbours: Callable[[list[str], bool], Iterable[Association]],
) -> tuple[dict[str, int], dict[tuple[str, str], Association]]:
    """Walk from ``start`` level by level; return each reached ARN's depth and the edges walked.

    Parameters
    ----------
    start : tuple of str
        The start ARNs (depth 0).
    direction : mlcycle.lineage.Direction
        Which way; ``Both`` walks up and down separately and merges.
    max_depth : int
        Levels to walk at most.
    neighbours : callable
        ``neighbours(frontier, up)``: the edges ending at (``up``) or starting from the
        frontier's ARNs, one call per level, so a backend can fetch a level in one query.
    """
    depths: dict[str, int] = dict.fromkeys(start, 0)
    edges: dict[tuple[str, str], Association] = {}
    ways = {Direction.ASCENDANTS: (True,), Direction.DESCENDANTS: (False,),
            Direction.BOTH: (True, False)}[direction]
    for up in ways:
        seen = set(start)
        frontier = list(start)
        for depth in range(1, max_depth + 1):
            following: list[str] = []
            for assoc in neighbours(frontier, up):
                edges.setdefault((assoc.source_arn, assoc.destination_arn), assoc)
                other = assoc.source_arn if up else assoc.destination_arn
                if other not in seen:
                    seen.add(other)
                    following.append(other)
                    if depths.get(other, depth + 1) > depth:
                        depths[other] = depth
            if not following:
                break
            frontier = following
    return depths, edges


def assemble_graph(
    start: tuple[str, ...],
    direction: Direction,
    depths: Mapping[str, int],
    edges: Mapping[tuple[str, str], Association],
    entities: Mapping[str, LineageEntity],
    where: QueryFilter,
    include_edges: bool,
) -> LineageGraph:
    """Build the :class:`~mlcycle.lineage.LineageGraph` of a walk.

    Start entities first, the rest by depth (then by time recorded), filtered by ``where``;
    the edges between the kept ones.
    """
    first = set(start)
    rest = sorted((arn for arn in depths if arn not in first),
                  key=lambda arn: (depths[arn], entities[arn].created_at, arn))
    vertices = [entities[arn] for arn in start]
    vertices += [entities[arn] for arn in rest if where(entities[arn])]
    kept = {v.arn for v in vertices}
    walked = ([e for e in edges.values() if e.source_arn in kept and e.destination_arn in kept]
              if include_edges else [])
    return LineageGraph(start=start, direction=direction, vertices=vertices, edges=walked)
