"""Point-in-time training sets: a frozen spec, and the SQL that builds one.

A training set is a *base* (the rows to label: a feature group, or a table of entity keys and
event times) joined with other feature groups. Every base row sees, from each joined group, the
latest record at or before its own event time, and only if that record has not expired
(``base time - record time < ttl``). Nothing written after ``as_of`` is seen.

The SQL is generated here, for one of the dialects in :data:`DIALECTS`:

``duckdb``
    The local backend's engine; the point-in-time join is an ``ASOF LEFT JOIN``.
``ansi``
    Window functions only (``row_number``, ``lag``, ``bool_or``): what Athena (Trino) runs. A
    new engine subclasses :class:`SQLDialect`, overrides the handful of time functions, and is
    added to :data:`DIALECTS` - the one place where dialects are chosen.

Versions of a record
--------------------
Every group is first reduced to its *visible versions* (:meth:`SQLDialect.versions`), one
window over the group partitioned by record identifier and ordered by (event time, write time,
API invocation time) descending:

* a *duplicate* is a write of a (record identifier, event time) that a later write of the same
  pair superseded; it is dropped unless ``include_duplicates``;
* a *delete marker* (``is_deleted``) hides every version of its record that it orders before
  (older event time, or the same event time written earlier), as SageMaker's DatasetBuilder
  does; markers never become rows. ``include_deleted`` ignores the markers instead.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from mlcycle._sql import quote_ident, sql_literal
from mlcycle.errors import ConfigurationError, SpecValidationError
from mlcycle.featurestore.backend import OFFLINE_COLUMNS
from mlcycle.featurestore.spec import FeatureGroupSpec, FeatureType, validate_name

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "BASE_TABLE",
    "DIALECTS",
    "BaseColumns",
    "DuckDBDialect",
    "FeatureJoin",
    "SQLDialect",
    "TrainingSetSpec",
    "get_dialect",
    "records_sql",
    "sort_result",
    "training_sql",
    "ttl_views",
]

#: Name under which a DataFrame base is handed to the backend's SQL engine.
BASE_TABLE = "__base_input"
#: Internal columns of a DataFrame base: its row number and its event time in epoch seconds.
ROW, TIME = "__row", "__t"
#: Prefix of the sort-key columns a query leaves for :func:`sort_result`.
SORT_PREFIX = "__sort_"
#: Column kinds of a DataFrame base, for checking join keys.
_KIND_OF = {FeatureType.INTEGRAL: "integer", FeatureType.FRACTIONAL: "float",
            FeatureType.STRING: "string"}


# -- the spec ------------------------------------------------------------------------------
def _utc(value: object) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise SpecValidationError(f"use a timezone-aware datetime, not {value!r}",
                                  field="time")
    return value.astimezone(dt.UTC)


def _names(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(value)  # type: ignore[arg-type]


@attrs.frozen(kw_only=True)
class FeatureJoin:
    """One feature group joined to the base of a training set.

    Parameters
    ----------
    group : str
        The feature group.
    on : str, optional
        The base column that holds this group's record identifier (default: a base column of
        the identifier's own name).
    features : sequence of str, optional
        The features to take (default: all but the record identifier and the event time).
    prefix : str
        Put before each taken feature's name in the output.
    """

    group: str = attrs.field(validator=lambda _, __, v: validate_name(v, field="group"))
    on: str | None = None
    features: tuple[str, ...] | None = attrs.field(default=None, converter=_names)
    prefix: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {"group": self.group, "on": self.on,
                "features": None if self.features is None else list(self.features),
                "prefix": self.prefix}


def _joins(value: object) -> tuple[FeatureJoin, ...]:
    return tuple(j if isinstance(j, FeatureJoin) else FeatureJoin(**j)  # type: ignore[arg-type]
                 for j in value)  # type: ignore[attr-defined]


@attrs.frozen(kw_only=True)
class TrainingSetSpec:
    """What a training set is: a base, the groups joined to it, and which versions count.

    Parameters
    ----------
    base : str, optional
        The feature group whose records are the rows; None for a table given when the set is
        built (:class:`mlcycle.featurestore.TrainingSet` holds it).
    event_time : str, optional
        The event-time column of a table base (a group base uses its own event time).
    features : sequence of str, optional
        The base columns to keep (default: all of them).
    joins : sequence of FeatureJoin
        The joined groups, in order.
    as_of : datetime.datetime, optional
        Only records written at or before this time are seen (in every group).
    start, end : datetime.datetime, optional
        Keep base rows with ``start <= event time < end`` (a half-open range, so consecutive
        ranges do not overlap).
    include_deleted : bool
        Ignore delete markers: the versions they hid are seen again.
    include_duplicates : bool
        Keep every write of a base record's (record identifier, event time), not only the
        latest (group base only).
    ordered : bool
        Return the rows in a defined order: a table base's own order, a group base's by event
        time, record identifier (and write time). Without it the order is the engine's, which
        saves a sort of the whole result.
    """

    base: str | None = None
    event_time: str | None = None
    features: tuple[str, ...] | None = attrs.field(default=None, converter=_names)
    joins: tuple[FeatureJoin, ...] = attrs.field(default=(), converter=_joins)
    as_of: dt.datetime | None = attrs.field(default=None, converter=_utc)
    start: dt.datetime | None = attrs.field(default=None, converter=_utc)
    end: dt.datetime | None = attrs.field(default=None, converter=_utc)
    include_deleted: bool = False
    include_duplicates: bool = False
    ordered: bool = True

    def __attrs_post_init__(self) -> None:
        if self.base is not None:
            validate_name(self.base, field="base")
            if self.event_time is not None:
                raise SpecValidationError("event_time is for a table base; a group base uses "
                                          "its own event time", field="event_time")
        elif self.include_duplicates:
            raise SpecValidationError("include_duplicates needs a feature group as the base",
                                      field="include_duplicates")
        if self.start and self.end and self.start >= self.end:
            raise SpecValidationError("start must be before end", field="start")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form (times as ISO-8601 strings)."""
        def iso(t: dt.datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "base": self.base,
            "event_time": self.event_time,
            "features": None if self.features is None else list(self.features),
            "joins": [j.to_dict() for j in self.joins],
            "as_of": iso(self.as_of),
            "start": iso(self.start),
            "end": iso(self.end),
            "include_deleted": self.include_deleted,
            "include_duplicates": self.include_duplicates,
            "ordered": self.ordered,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingSetSpec:
        """Build from :meth:`to_dict`'s form.

        Raises
        ------
        SpecValidationError
            On unknown fields or invalid values.
        """
        known = {f.name for f in attrs.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SpecValidationError(f"unknown field(s) {sorted(unknown)}", field=min(unknown))
        return cls(**dict(data))


# -- dialects ------------------------------------------------------------------------------
class SQLDialect:
    """SQL with window functions only: the portable core, and Athena's strategy.

    A subclass for a real engine overrides :meth:`epoch` and :meth:`timestamp` (and may
    override :meth:`point_in_time_join` with a faster construct); everything else is shared.
    """

    name: ClassVar[str] = "ansi"
    #: Whether the query sorts its result (``ORDER BY``). If not, the query returns the sort
    #: keys as trailing ``__sort_<i>`` columns and :func:`sort_result` sorts on the client,
    #: which is much cheaper than an engine sort of wide rows (DuckDB).
    order_in_sql: ClassVar[bool] = True

    @property
    def needs_row_numbers(self) -> bool:
        """Whether :meth:`point_in_time_join` needs the base rows numbered (``__row``)."""
        return True

    def ident(self, name: str) -> str:
        """Quote an identifier."""
        return quote_ident(name)

    def literal(self, value: object) -> str:
        """Write a scalar literal."""
        return sql_literal(value)

    def table(self, name: str) -> str:
        """Refer to a feature group's offline table (or an input table) by name."""
        return self.ident(name)

    def epoch(self, column: str, kind: FeatureType) -> str:
        """SQL for the epoch seconds (a double) of an event-time column of type ``kind``."""
        if kind == FeatureType.FRACTIONAL:
            return f"CAST({column} AS DOUBLE)"
        return f"to_unixtime(from_iso8601_timestamp({column}))"

    def timestamp(self, moment: dt.datetime) -> str:
        """SQL for a ``TIMESTAMP WITH TIME ZONE`` literal of an aware datetime."""
        text = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"from_iso8601_timestamp({self.literal(text)})"

    def point_in_time_join(self, base: str, join: str, on: str, key: str) -> tuple[str, str]:
        """Join the versions ``join`` to the base rows ``base`` as of each row's time.

        Parameters
        ----------
        base, join : str
            Names of the CTEs: the base rows (with ``__row`` and ``__t``) and the joined
            group's visible versions (with ``__e``).
        on, key : str
            The base column and the group's record identifier.

        Returns
        -------
        tuple of str
            A CTE definition to add (``name AS (...)``, or ``""``) and the ``JOIN`` clause that
            makes ``join`` (as alias ``join``) available beside ``base``.
        """
        q = self.ident
        ranked = f"{join}_asof"
        cte = (
            f"{q(ranked)} AS (SELECT * FROM (SELECT g.*, b.{q(ROW)} AS {q('__base_row')}, "
            f"row_number() OVER (PARTITION BY b.{q(ROW)} ORDER BY g.{q('__e')} DESC) "
            f"AS {q('__rank')} FROM {q(base)} b JOIN {q(join)} g ON b.{q(on)} = g.{q(key)} "
            f"AND g.{q('__e')} <= b.{q(TIME)}) AS r WHERE {q('__rank')} = 1)"
        )
        clause = (f"LEFT JOIN {q(ranked)} AS {q(join)} "
                  f"ON {q(join)}.{q('__base_row')} = {q(base)}.{q(ROW)}")
        return cte, clause

    # -- shared builders ---------------------------------------------------------------------
    def versions(
        self,
        spec: FeatureGroupSpec,
        *,
        columns: Sequence[str],
        as_of: dt.datetime | None,
        include_deleted: bool,
        include_duplicates: bool,
        keep_markers: bool = False,
        time: str = "__e",
    ) -> str:
        """A SELECT of the visible versions of ``spec``'s records.

        Parameters
        ----------
        spec : mlcycle.featurestore.FeatureGroupSpec
            The group.
        columns : sequence of str
            Features (and offline columns) to select; the event epoch is added as ``time``.
        as_of : datetime.datetime, optional
            Only rows written at or before it.
        include_deleted : bool
            Ignore delete markers.
        include_duplicates : bool
            Keep superseded writes of a (record identifier, event time).
        keep_markers : bool
            With ``include_deleted``: return the markers too (raw history).
        time : str
            The name of the added event-epoch column.

        Returns
        -------
        str
        """
        q = self.ident
        event = self.epoch(q(spec.event_time), spec.feature(spec.event_time).type)
        wanted = list(dict.fromkeys([*columns, spec.record_identifier]))
        inner_cols = ", ".join(q(c) for c in dict.fromkeys([*wanted, *OFFLINE_COLUMNS]))
        where = []
        if as_of is not None:
            where.append(f"{q('write_time')} <= {self.timestamp(as_of)}")
        if include_deleted and not keep_markers:
            where.append(f"NOT {q('is_deleted')}")
        inner = f"SELECT {inner_cols}, {event} AS {q(time)} FROM {self.table(spec.name)}"
        if where:
            inner += " WHERE " + " AND ".join(where)
        out_cols = ", ".join(q(c) for c in [*wanted, time])
        dedup = not include_duplicates
        hide = not include_deleted
        if not (dedup or hide):
            return f"SELECT {out_cols} FROM ({inner}) AS v"
        window = (f"OVER (PARTITION BY {q(spec.record_identifier)} ORDER BY {q(time)} DESC, "
                  f"{q('write_time')} DESC, {q('api_invocation_time')} DESC")
        parts = []
        keep = []
        if dedup:
            parts.append(f"lag({q(time)}) {window}) AS {q('__prev_e')}")
            keep.append(f"({q('__prev_e')} IS NULL OR {q('__prev_e')} <> {q(time)})")
        if hide:
            parts.append(f"bool_or({q('is_deleted')}) {window} ROWS BETWEEN UNBOUNDED "
                         f"PRECEDING AND 1 PRECEDING) AS {q('__hidden')}")
            keep.append(f"NOT {q('is_deleted')}")
            keep.append(f"NOT coalesce({q('__hidden')}, FALSE)")
        return (f"SELECT {out_cols} FROM (SELECT v.*, {', '.join(parts)} FROM ({inner}) AS v) "
                f"AS w WHERE {' AND '.join(keep)}")


class DuckDBDialect(SQLDialect):
    """DuckDB: the point-in-time join is an ``ASOF LEFT JOIN``.

    A query leaves its final sort to the client: it ends with ``__sort_<i>`` key columns and
    no ``ORDER BY``, and the backend that runs it sorts by them with Arrow (see
    :func:`sort_result`), which is far cheaper than DuckDB's sort of wide rows.

    Parameters
    ----------
    asof : bool
        Use DuckDB's ``ASOF`` join (default); False uses the portable window-function join,
        which gives the same rows (and is how the ``ansi`` strategy is tested on DuckDB).
    """

    name: ClassVar[str] = "duckdb"
    order_in_sql: ClassVar[bool] = False

    def __init__(self, *, asof: bool = True) -> None:
        self.asof = asof

    @property
    def needs_row_numbers(self) -> bool:  # noqa: D102
        return not self.asof

    def epoch(self, column: str, kind: FeatureType) -> str:  # noqa: D102
        if kind == FeatureType.FRACTIONAL:
            return f"CAST({column} AS DOUBLE)"
        return f"epoch(CAST({column} AS TIMESTAMPTZ))"

    def timestamp(self, moment: dt.datetime) -> str:  # noqa: D102
        text = moment.astimezone(dt.UTC).isoformat()
        return f"CAST({self.literal(text)} AS TIMESTAMPTZ)"

    def point_in_time_join(  # noqa: D102
        self, base: str, join: str, on: str, key: str
    ) -> tuple[str, str]:
        if not self.asof:
            return super().point_in_time_join(base, join, on, key)
        q = self.ident
        return "", (f"ASOF LEFT JOIN {q(join)} ON {q(base)}.{q(on)} = {q(join)}.{q(key)} "
                    f"AND {q(base)}.{q(TIME)} >= {q(join)}.{q('__e')}")


#: Dialect name -> class; the one place where a backend's ``dialect`` picks its SQL.
DIALECTS: dict[str, type[SQLDialect]] = {"duckdb": DuckDBDialect, "ansi": SQLDialect}


def get_dialect(name: str) -> SQLDialect:
    """Return the dialect called ``name``.

    Raises
    ------
    ConfigurationError
        If there is none.
    """
    if name == "athena":  # Trino's literals; imported here because athena_sql imports us
        from mlcycle.featurestore.athena_sql import AthenaDialect

        return AthenaDialect()
    try:
        return DIALECTS[name]()
    except KeyError:
        raise ConfigurationError(
            f"no SQL dialect {name!r}; known: {sorted([*DIALECTS, 'athena'])}"
        ) from None


# -- training sets -------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class BaseColumns:
    """The columns of a table base: name -> kind (``integer``, ``float``, ``string``, ...).

    Parameters
    ----------
    kinds : dict
        Column name to kind, in the table's order (internal columns excluded).
    """

    kinds: dict[str, str]


def _output_name(names: dict[str, str], name: str, origin: str) -> None:
    if name in names:
        raise SpecValidationError(
            f"output column {name!r} comes from both {names[name]} and {origin}; choose "
            "features or give the join a prefix",
            field=name,
        )
    names[name] = origin


def training_sql(
    spec: TrainingSetSpec,
    *,
    groups: Mapping[str, FeatureGroupSpec],
    base_columns: BaseColumns | None = None,
    dialect: SQLDialect,
) -> str:
    """Generate the SQL of a point-in-time training set.

    Parameters
    ----------
    spec : TrainingSetSpec
        The training set.
    groups : mapping
        Group name -> spec, for the base group and every joined group.
    base_columns : BaseColumns, optional
        The columns of a table base (visible as :data:`BASE_TABLE`, with ``__row`` and
        ``__t``); needed when ``spec.base`` is None.
    dialect : SQLDialect
        The engine's dialect.

    Returns
    -------
    str

    Raises
    ------
    SpecValidationError
        If a feature, base column or join key is unknown, a key's type does not match, or two
        output columns would share a name (``field`` names it).
    """
    q = dialect.ident
    ctes: list[str] = []
    names: dict[str, str] = {}
    select: list[str] = []
    # the base rows
    if spec.base is not None:
        base = groups[spec.base]
        chosen = list(spec.features) if spec.features is not None else list(base.feature_names)
        for f in chosen:
            base.feature(f)
        kinds = {f.name: _KIND_OF[f.type] for f in base.features}
        # (time, identifier) orders visible versions; duplicates also need the write time
        extra = ["write_time"] if spec.include_duplicates else []
        keys = [j.on or groups[j.group].record_identifier for j in spec.joins]
        keys = [k for k in keys if k in kinds]  # unknown ones fail below, naming the column
        versions = dialect.versions(base, columns=[*chosen, *keys, *extra], as_of=spec.as_of,
                                    include_deleted=spec.include_deleted,
                                    include_duplicates=spec.include_duplicates, time=TIME)
        numbered = f", row_number() OVER () AS {q(ROW)}" if dialect.needs_row_numbers else ""
        rows = f"SELECT *{numbered} FROM ({versions}) AS b" if numbered else versions
        for f in chosen:
            _output_name(names, f, f"base group {spec.base!r}")
            select.append(f"{q('__base')}.{q(f)}")
        order = [TIME, base.record_identifier, *extra]
    else:
        if base_columns is None:
            raise SpecValidationError("a table base needs its columns", field="base")
        kinds = dict(base_columns.kinds)
        if spec.event_time is None:
            raise SpecValidationError("name the base table's event-time column",
                                      field="event_time")
        if spec.event_time not in kinds:
            raise SpecValidationError(f"the base has no column {spec.event_time!r}",
                                      field=spec.event_time)
        chosen = list(spec.features) if spec.features is not None else list(kinds)
        for f in chosen:
            if f not in kinds:
                raise SpecValidationError(f"the base has no column {f!r}", field=f)
            _output_name(names, f, "the base")
            select.append(f"{q('__base')}.{q(f)}")
        rows = f"SELECT * FROM {dialect.table(BASE_TABLE)}"
        order = [ROW]
    where = []
    if spec.start is not None:
        where.append(f"{q(TIME)} >= {dialect.literal(spec.start.timestamp())}")
    if spec.end is not None:
        where.append(f"{q(TIME)} < {dialect.literal(spec.end.timestamp())}")
    if where:
        rows = f"SELECT * FROM ({rows}) AS r WHERE " + " AND ".join(where)
    ctes.append(f"{q('__base')} AS ({rows})")
    # the joined groups
    clauses = []
    for i, join in enumerate(spec.joins):
        group = groups[join.group]
        key = group.record_identifier
        on = join.on if join.on is not None else key
        if on not in kinds:
            raise SpecValidationError(
                f"the base has no column {on!r} to join group {join.group!r} on", field=on
            )
        want = _KIND_OF[group.feature(key).type]
        if kinds[on] != want:
            raise SpecValidationError(
                f"base column {on!r} is {kinds[on]} but {join.group!r}'s record identifier "
                f"{key!r} is {want}",
                field=on,
            )
        if join.features is not None:
            taken = list(join.features)
            for f in taken:
                group.feature(f)
        else:
            taken = [f for f in group.feature_names if f not in (key, group.event_time)]
        alias = f"__g{i}"
        ctes.append(f"{q(alias)} AS ("
                    + dialect.versions(group, columns=taken, as_of=spec.as_of,
                                       include_deleted=spec.include_deleted,
                                       include_duplicates=False)
                    + ")")
        cte, clause = dialect.point_in_time_join("__base", alias, on, key)
        if cte:
            ctes.append(cte)
        clauses.append(clause)
        for f in taken:
            out = join.prefix + f
            _output_name(names, out, f"group {join.group!r}")
            value = f"{q(alias)}.{q(f)}"
            if group.ttl is not None:
                value = (f"CASE WHEN {q('__base')}.{q(TIME)} - {q(alias)}.{q('__e')} < "
                         f"{dialect.literal(group.ttl)} THEN {value} END")
            select.append(f"{value} AS {q(out)}")
    keys = [f"{q('__base')}.{q(c)}" for c in order]
    if not spec.ordered:
        tail = ""
    elif dialect.order_in_sql:
        tail = "ORDER BY " + ", ".join(keys)
    else:
        select += [f"{k} AS {q(f'{SORT_PREFIX}{i}')}" for i, k in enumerate(keys)]
        tail = ""
    return (
        "WITH " + ",\n".join(ctes) + "\n"
        + "SELECT " + ", ".join(select) + "\n"
        + f"FROM {q('__base')}\n" + "".join(c + "\n" for c in clauses)
        + tail
    ).rstrip()


def sort_result(table: pa.Table) -> pa.Table:
    """Sort a query result by its trailing ``__sort_<i>`` columns (if any) and drop them.

    Parameters
    ----------
    table : pyarrow.Table
        What the backend returned for :func:`training_sql` or :func:`records_sql`.

    Returns
    -------
    pyarrow.Table
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = [n for n in table.column_names if n.startswith(SORT_PREFIX)]
    if not keys:
        return table
    kept = [n for n in table.column_names if n not in keys]
    if table.num_rows < 2:
        return table.select(kept)
    order = pc.sort_indices(table.select(keys), sort_keys=[(k, "ascending") for k in keys])
    schema = table.select(kept).schema
    columns = [table.column(n) for n in kept]
    del table  # then each column's old buffers go as soon as its sorted copy exists

    def take(i: int) -> None:
        columns[i] = columns[i].take(order)

    # gathering wide rows is memory-bound: one column per thread (pyarrow releases the GIL)
    workers = min(8, os.cpu_count() or 1, len(columns))
    if workers > 1 and len(order) > 100_000:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(take, range(len(columns))))
    else:
        for i in range(len(columns)):
            take(i)
    return pa.Table.from_arrays(columns, schema=schema)


def records_sql(
    spec: FeatureGroupSpec,
    *,
    dialect: SQLDialect,
    now: float,
    latest: bool = False,
    as_of: dt.datetime | None = None,
    include_expired: bool = False,
    include_deleted: bool = False,
    include_duplicates: bool = False,
) -> str:
    """Generate the SQL that reads one group's offline records as of ``now``.

    Parameters
    ----------
    spec : mlcycle.featurestore.FeatureGroupSpec
        The group.
    dialect : SQLDialect
        The engine's dialect.
    now : float
        The current time (epoch seconds), for TTL.
    latest : bool
        One row per record identifier: its latest visible version.
    as_of : datetime.datetime, optional
        Only rows written at or before it.
    include_expired : bool
        Keep records older than the group's TTL.
    include_deleted : bool
        Keep delete markers and the versions they hide (the raw history).
    include_duplicates : bool
        Keep superseded writes of a (record identifier, event time).

    Returns
    -------
    str
        Selecting the features, then ``write_time``, ``api_invocation_time`` and
        ``is_deleted``, ordered by event time, record identifier and write time.
    """
    q = dialect.ident
    columns = [*spec.feature_names, *OFFLINE_COLUMNS]
    body = dialect.versions(spec, columns=columns, as_of=as_of,
                            include_deleted=include_deleted,
                            include_duplicates=include_duplicates, keep_markers=True)
    where = []
    if spec.ttl is not None and not include_expired:
        where.append(f"{dialect.literal(now)} - {q('__e')} < {dialect.literal(spec.ttl)}")
    if where:
        body = f"SELECT * FROM ({body}) AS t WHERE " + " AND ".join(where)
    if latest:
        body = (f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY "
                f"{q(spec.record_identifier)} ORDER BY {q('__e')} DESC, {q('write_time')} "
                f"DESC, {q('api_invocation_time')} DESC) AS {q('__latest')} FROM ({body}) "
                f"AS l) AS m WHERE {q('__latest')} = 1")
    cols = ", ".join(q(c) for c in columns)
    keys = [q("__e"), q(spec.record_identifier), q("write_time")]
    if dialect.order_in_sql:
        return f"SELECT {cols} FROM ({body}) AS r ORDER BY " + ", ".join(keys)
    sorts = ", ".join(f"{k} AS {q(f'{SORT_PREFIX}{i}')}" for i, k in enumerate(keys))
    return f"SELECT {cols}, {sorts} FROM ({body}) AS r"


_WITH_RE = re.compile(r"^\s*(?:--[^\n]*\n\s*)*WITH(\s+RECURSIVE)?\s", re.IGNORECASE)


def ttl_views(
    query: str, groups: Sequence[FeatureGroupSpec], *, dialect: SQLDialect, now: float
) -> str:
    """Put ``query`` behind CTEs that hide the expired records of the groups with a TTL.

    Each such group ``g`` becomes ``WITH "g" AS (SELECT * FROM "g" WHERE <not expired>)``; a
    non-recursive CTE's body refers to the real table of the same name. A query that starts
    with its own ``WITH`` gets the CTEs added to its list.

    Returns
    -------
    str
    """
    q = dialect.ident
    ctes = []
    for spec in groups:
        if spec.ttl is None:
            continue
        event = dialect.epoch(q(spec.event_time), spec.feature(spec.event_time).type)
        ctes.append(f"{q(spec.name)} AS (SELECT * FROM {dialect.table(spec.name)} WHERE "
                    f"{dialect.literal(now)} - {event} < {dialect.literal(spec.ttl)})")
    if not ctes:
        return query
    match = _WITH_RE.match(query)
    if match is None:
        return "WITH " + ", ".join(ctes) + "\n" + query
    recursive = "RECURSIVE " if match.group(1) else ""
    return f"WITH {recursive}" + ", ".join(ctes) + ",\n" + query[match.end():]
