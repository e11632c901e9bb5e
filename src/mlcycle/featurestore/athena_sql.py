"""Athena (Trino) SQL for the sagemaker feature store: dialect, group tables, typed results.

The feature store's SQL is generated once, in :mod:`mlcycle.featurestore.training`, for a
dialect. Athena runs its window-function strategy (``row_number``, ``lag``, ``bool_or``: Athena
has no ``ASOF JOIN``), with Trino's time functions ``to_unixtime``, ``from_iso8601_timestamp``.
:class:`AthenaDialect` is that strategy with Trino's literals. What else Athena needs lives here:

* :func:`resolve_tables` makes each feature group visible under its own name (a common table
  expression over its Glue table), and each input table (a training set's base rows) too,
  also when the query already defines a CTE of that name that reads the real table (as
  :func:`~mlcycle.featurestore.training.ttl_views` does);
* :func:`values_relation` inlines a small input table as typed ``VALUES``;
* :func:`result_table` turns ``GetQueryResults`` rows into a typed :class:`pyarrow.Table`.

Every name goes through ``mlcycle._sql.quote_ident`` and every value through
:func:`athena_literal`; nothing from the data can end the token it is placed in.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from mlcycle._sql import quote_ident
from mlcycle.errors import SpecValidationError
from mlcycle.featurestore.backend import OFFLINE_COLUMNS
from mlcycle.featurestore.spec import FeatureGroupSpec
from mlcycle.featurestore.training import SQLDialect

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "ATHENA_QUERY_LIMIT",
    "AthenaDialect",
    "athena_literal",
    "glue_type",
    "resolve_tables",
    "result_table",
    "values_relation",
]

#: Athena's limit on the length of a query string, in bytes.
ATHENA_QUERY_LIMIT = 262_144
_QUOTED = re.compile(r'"((?:[^"]|"")+)"')
_TOKEN = re.compile(
    r"""(?P<ws>\s+)|(?P<comment>--[^\n]*|/\*.*?\*/)|(?P<string>'(?:[^']|'')*')"""
    r"""|(?P<qident>"(?:[^"]|"")*")|(?P<word>[A-Za-z_][A-Za-z0-9_$]*)|(?P<punct>.)""",
    re.S,
)
# Words that may follow a table reference and are not an alias.
_NOT_ALIAS = frozenset(
    {
        "where", "join", "left", "right", "inner", "full", "outer", "cross", "natural", "on",
        "using", "group", "order", "limit", "having", "union", "intersect", "except", "window",
        "offset", "fetch", "tablesample", "for",
    }
)  # fmt: skip


def athena_literal(value: object) -> str:
    """Write a Python scalar as an Athena (Trino) literal that reads back exactly.

    ``None`` -> ``NULL``; booleans -> ``TRUE``/``FALSE``; ints -> digits; floats -> their
    shortest round-trip ``repr`` with an exponent, so Trino reads a ``DOUBLE`` and not a
    ``DECIMAL`` (NaN and the infinities as ``nan()``, ``infinity()``, ``-infinity()``);
    strings single-quoted with quotes doubled; datetimes as ``TIMESTAMP '...'`` in UTC.
    Negative numbers are parenthesized, so no ``--`` comment can form.

    Raises
    ------
    SpecValidationError
        With ``field="value"`` for any other type, or a string with a NUL character.

    Examples
    --------
    >>> athena_literal(0.1), athena_literal(-2), athena_literal("it's")
    ('0.1e0', '(-2)', "'it''s'")
    >>> athena_literal(dt.datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=dt.UTC))
    "TIMESTAMP '2024-01-02 03:04:05.006000'"
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool) or type(value).__name__ in ("bool_", "bool"):
        return "TRUE" if value else "FALSE"
    if isinstance(value, numbers.Integral):
        number = int(value)
        return f"({number})" if number < 0 else str(number)
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Rational):
        number = float(value)
        if math.isnan(number):
            return "nan()"
        if math.isinf(number):
            return "infinity()" if number > 0 else "(-infinity())"
        text = repr(number)
        if "e" not in text:
            text += "e0"
        return f"({text})" if text.startswith("-") else text
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is None else value.astimezone(dt.UTC)
        return f"TIMESTAMP '{moment.strftime('%Y-%m-%d %H:%M:%S.%f')}'"
    if isinstance(value, str):
        if "\x00" in value:
            raise SpecValidationError(
                "a string literal must not hold a NUL character", field="value"
            )
        return "'" + value.replace("'", "''") + "'"
    raise SpecValidationError(
        f"cannot write a value of type {type(value).__name__} as an Athena literal",
        field="value",
    )


class AthenaDialect(SQLDialect):
    """The window-function strategy of the ``ansi`` dialect, with Trino's literals.

    It is :class:`~mlcycle.featurestore.training.SQLDialect` but for :meth:`literal`
    (``nan()``, ``infinity()``, ``TIMESTAMP '...'``; Trino has no ``::`` casts).

    Group tables keep their names; the sagemaker backend's ``sql`` maps them to Glue tables
    with :func:`resolve_tables`.
    """

    name: ClassVar[str] = "athena"

    def literal(self, value: object) -> str:
        """Write a scalar as an Athena literal (:func:`athena_literal`)."""
        return athena_literal(value)


# -- group and input tables ------------------------------------------------------------------
@attrs.frozen
class _Token:
    kind: str
    text: str
    start: int
    end: int


def _tokens(query: str) -> list[_Token]:
    return [
        _Token(m.lastgroup or "punct", m.group(), m.start(), m.end())
        for m in _TOKEN.finditer(query)
    ]


def _name(token: _Token) -> str | None:
    """The identifier a token spells (lowercased, as Trino compares them), or None."""
    if token.kind == "qident":
        return token.text[1:-1].replace('""', '"').lower()
    if token.kind == "word":
        return token.text.lower()
    return None


@attrs.frozen
class _With:
    """A query's top-level ``WITH`` list: where to insert, and each CTE's name and body."""

    insert_at: int
    ctes: tuple[tuple[str, int, int], ...]  # (name, body start, body end)


def _top_level_with(query: str, tokens: list[_Token]) -> _With | None:
    code = [t for t in tokens if t.kind not in ("ws", "comment")]
    if not code or code[0].kind != "word" or code[0].text.lower() != "with":
        return None
    i = 1
    insert_at = code[0].end
    if i < len(code) and code[i].kind == "word" and code[i].text.lower() == "recursive":
        insert_at = code[i].end
        i += 1
    ctes = []

    def closing(j: int) -> int:  # index of the ")" matching the "(" at code[j]
        depth = 0
        for k in range(j, len(code)):
            if code[k].text == "(":
                depth += 1
            elif code[k].text == ")":
                depth -= 1
                if depth == 0:
                    return k
        raise ValueError("unbalanced parentheses")

    try:
        while True:
            name = _name(code[i])
            if name is None:
                return None
            i += 1
            if code[i].text == "(":  # a column list
                i = closing(i) + 1
            if code[i].kind != "word" or code[i].text.lower() != "as":
                return None
            i += 1
            while code[i].kind == "word" and code[i].text.lower() in ("not", "materialized"):
                i += 1
            if code[i].text != "(":
                return None
            end = closing(i)
            ctes.append((name, code[i].end, code[end].start))
            i = end + 1
            if i < len(code) and code[i].text == ",":
                i += 1
                continue
            break
    except (IndexError, ValueError):
        return None
    return _With(insert_at=insert_at, ctes=tuple(ctes))


def _replace_refs(body: str, name: str, relation: str) -> str:
    """Point ``FROM name`` / ``JOIN name`` in ``body`` at ``relation`` (keeping the name)."""
    tokens = [t for t in _tokens(body) if t.kind not in ("ws", "comment")]
    edits = []
    for k in range(1, len(tokens)):
        before, here = tokens[k - 1], tokens[k]
        if (
            before.kind == "word"
            and before.text.lower() in ("from", "join")
            and (_name(here) == name)
        ):
            after = tokens[k + 1] if k + 1 < len(tokens) else None
            aliased = after is not None and (
                (after.kind == "word" and after.text.lower() not in _NOT_ALIAS)
                or after.kind == "qident"
            )
            text = relation if aliased else f"{relation} AS {quote_ident(name)}"
            edits.append((here.start, here.end, text))
    for start, end, text in reversed(edits):
        body = body[:start] + text + body[end:]
    return body


def _body(relation: str) -> str:
    """The SELECT of a relation: a parenthesized subquery's inside, or one over a table name."""
    if relation.startswith("(") and relation.endswith(")"):
        return relation[1:-1]
    return f"SELECT * FROM {relation}"


def resolve_tables(
    query: str,
    *,
    tables: Sequence[FeatureGroupSpec] = (),
    sources: Mapping[str, tuple[str, str]] | None = None,
    inputs: Mapping[str, str] | None = None,
) -> str:
    """Make each group (and input) visible to ``query`` under its own name.

    Each group becomes a common table expression named after it that reads its Glue table:
    the features, then ``write_time``, ``api_invocation_time`` and ``is_deleted``. Each input
    becomes one over its relation. When the query itself defines a CTE of that name at its
    top level (to filter the real table, as :func:`~mlcycle.featurestore.training.ttl_views`
    does), no CTE is added; the ``FROM``/``JOIN`` references to the name inside that CTE's body
    are pointed at the real relation instead.

    Parameters
    ----------
    query : str
        SQL that reads each group as a table named after it (``FROM "tracks"``).
    tables : sequence of mlcycle.featurestore.spec.FeatureGroupSpec
        The groups.
    sources : mapping
        Group name -> ``(database, table)`` of its Glue table.
    inputs : mapping
        Input name -> a relation: a parenthesized subquery (:func:`values_relation`) or a
        qualified table name.

    Returns
    -------
    str

    Examples
    --------
    >>> spec = FeatureGroupSpec(name="fg", record_identifier="id", event_time="t",
    ...                         features=[("id", "String"), ("t", "Fractional")])
    >>> print(resolve_tables('SELECT * FROM "fg"', tables=[spec],
    ...                      sources={"fg": ("sagemaker_featurestore", "fg_1700000000")}))
    WITH "fg" AS (SELECT "id", "t", "write_time", "api_invocation_time", "is_deleted"
      FROM "sagemaker_featurestore"."fg_1700000000")
    SELECT * FROM "fg"
    """
    relations: dict[str, tuple[str, str]] = {}
    for spec in tables:
        database, table = (sources or {})[spec.name]
        columns = ", ".join(quote_ident(c) for c in (*spec.feature_names, *OFFLINE_COLUMNS))
        relations[spec.name.lower()] = (
            spec.name,
            f"(SELECT {columns}\n  FROM {quote_ident(database)}.{quote_ident(table)})",
        )
    for name, relation in (inputs or {}).items():
        relations[name.lower()] = (name, relation)
    if not relations:
        return query
    found = _top_level_with(query, _tokens(query))
    defined = {name: (start, end) for name, start, end in (found.ctes if found else ())}
    edits = []
    ctes = []
    for key, (name, relation) in relations.items():
        if key in defined:
            start, end = defined[key]
            edits.append((start, end, _replace_refs(query[start:end], key, relation)))
        else:
            ctes.append(f"{quote_ident(name)} AS ({_body(relation)})")
    for start, end, text in sorted(edits, reverse=True):
        query = query[:start] + text + query[end:]
    if not ctes:
        return query
    if found is not None:
        at = found.insert_at
        return f"{query[:at]} " + ",\n".join(ctes) + "," + query[at:]
    return "WITH " + ",\n".join(ctes) + "\n" + query


# -- results ---------------------------------------------------------------------------------------
def _timestamp(text: str) -> dt.datetime:
    body, _, zone = text.strip().partition(" UTC")
    parts = text.strip().split(" ")
    if not zone and len(parts) == 3:  # "2024-01-01 00:00:00.000 Europe/Paris"
        from zoneinfo import ZoneInfo

        moment = dt.datetime.fromisoformat(f"{parts[0]} {parts[1]}")
        return moment.replace(tzinfo=ZoneInfo(parts[2])).astimezone(dt.UTC)
    moment = dt.datetime.fromisoformat(body.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _column(kind: str, values: list[str | None], info: Mapping[str, Any]) -> pa.Array:
    import pyarrow as pa

    base = kind.lower().split("(")[0].strip()
    if base in ("tinyint", "smallint", "integer", "int", "bigint"):
        return pa.array([None if v is None else int(v) for v in values], type=pa.int64())
    if base in ("double", "float", "real"):
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    if base == "boolean":
        return pa.array(
            [None if v is None else v.lower() == "true" for v in values], type=pa.bool_()
        )
    if base == "decimal":
        precision = int(info.get("Precision") or 38)
        scale = int(info.get("Scale") or 0)
        return pa.array(
            [None if v is None else decimal.Decimal(v) for v in values],
            type=pa.decimal128(max(1, min(precision, 38)), scale),
        )
    if base == "date":
        return pa.array(
            [None if v is None else dt.date.fromisoformat(v) for v in values], type=pa.date32()
        )
    if base.startswith("timestamp"):
        stamps = [None if v is None else _timestamp(v) for v in values]
        return pa.array(stamps, type=pa.timestamp("us", tz="UTC"))
    return pa.array(values, type=pa.string())


def result_table(
    columns: Sequence[Mapping[str, Any]], rows: Sequence[Sequence[str | None]], *, query: str = ""
) -> pa.Table:
    """Build a typed table from Athena's ``ColumnInfo`` and row values (header row removed).

    Integer types become int64, ``double``/``real`` float64, ``boolean`` bool, ``decimal``
    decimal128, ``date`` date32, timestamps timezone-aware UTC, everything else strings;
    ``None`` cells are nulls. A lowercase column name that matches a double-quoted identifier
    of ``query`` but for case gets the identifier's spelling back (Athena lowercases names).

    Examples
    --------
    >>> t = result_table([{"Name": "trackid", "Type": "varchar"}, {"Name": "n", "Type": "bigint"}],
    ...                  [["a", "1"], ["b", None]], query='SELECT "trackId", n FROM x')
    >>> t.column_names, t.column("n").to_pylist()
    (['trackId', 'n'], [1, None])
    """
    import pyarrow as pa

    spelled: dict[str, set[str]] = {}
    for match in _QUOTED.finditer(query):
        name = match.group(1).replace('""', '"')
        spelled.setdefault(name.lower(), set()).add(name)
    names = []
    for info in columns:
        name = str(info.get("Name", ""))
        options = spelled.get(name.lower(), set())
        if name == name.lower() and len(options) == 1:
            name = next(iter(options))
        names.append(name)
    arrays = [
        _column(
            str(info.get("Type", "varchar")),
            [row[i] if i < len(row) else None for row in rows],
            info,
        )
        for i, info in enumerate(columns)
    ]
    return pa.Table.from_arrays(arrays, names=names)


# -- input tables -----------------------------------------------------------------------------
def glue_type(arrow_type: pa.DataType) -> str:
    """The Glue (Hive) column type for an Arrow type, for a table sent to Athena.

    Raises
    ------
    SpecValidationError
        With ``field="inputs"`` for a type other than boolean, integer, floating point, string
        or timestamp.
    """
    import pyarrow as pa

    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "bigint"
    if pa.types.is_floating(arrow_type):
        return "double"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    raise SpecValidationError(
        f"a column of type {arrow_type} cannot be sent to Athena", field="inputs"
    )


def values_relation(table: pa.Table) -> str:
    """Inline a (small) table as a typed ``VALUES`` relation.

    Parameters
    ----------
    table : pyarrow.Table
        Booleans, integers, floats, strings and timestamps (written in UTC).

    Returns
    -------
    str
        ``(SELECT CAST(c0 AS bigint) AS "a", ... FROM (VALUES ...) AS v(c0, ...))``; a table
        without rows gives a typed ``SELECT ... WHERE false``.

    Raises
    ------
    SpecValidationError
        With ``field="inputs"`` for a column of another type.

    Examples
    --------
    >>> import pyarrow as pa
    >>> print(values_relation(pa.table({"t": [1.5, 2.0], "n": [0, 1]})))
    (SELECT CAST(c0 AS double) AS "t", CAST(c1 AS bigint) AS "n"
      FROM (VALUES (1.5e0, 0), (2.0e0, 1)) AS v(c0, c1))
    """
    names = table.column_names
    types = [glue_type(t).replace("string", "varchar") for t in table.schema.types]
    if table.num_rows == 0:
        selects = ", ".join(
            f"CAST(NULL AS {kind}) AS {quote_ident(name)}"
            for name, kind in zip(names, types, strict=True)
        )
        return f"(SELECT {selects} WHERE false)"
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    rows = ", ".join(
        "(" + ", ".join(athena_literal(c[r]) for c in columns) + ")" for r in range(table.num_rows)
    )
    selects = ", ".join(
        f"CAST(c{i} AS {kind}) AS {quote_ident(name)}"
        for i, (name, kind) in enumerate(zip(names, types, strict=True))
    )
    aliases = ", ".join(f"c{i}" for i in range(len(names)))
    return f"(SELECT {selects}\n  FROM (VALUES {rows}) AS v({aliases}))"
