"""The steps of a data-prep :class:`~mlcycle.flow.Flow`: frozen, validated, JSON-serializable.

A *source* names an input table (a CSV or Parquet file, or a DataFrame bound at run time). A
*step* reads one or two named inputs (sources or other steps) and defines one output table.
Steps hold no data and no connection; :mod:`mlcycle.flow.engine` runs them on DuckDB.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from mlcycle.errors import SpecValidationError
from mlcycle.flow.expr import Expression

__all__ = [
    "AGGREGATIONS",
    "TYPES",
    "AddEventTime",
    "Aggregate",
    "CastColumns",
    "DropColumns",
    "DropMissing",
    "FillMissing",
    "Filter",
    "Formula",
    "Join",
    "OneHotEncode",
    "PythonStep",
    "RenameColumns",
    "SelectColumns",
    "Source",
    "Step",
    "step_from_dict",
]

#: Logical column types and the DuckDB types they map to.
TYPES: Mapping[str, str] = {
    "int": "BIGINT",
    "float": "DOUBLE",
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
    "date": "DATE",
}
#: Aggregation functions of :class:`Aggregate`.
AGGREGATIONS: Mapping[str, str] = {
    "mean": "avg",
    "sum": "sum",
    "count": "count",
    "min": "min",
    "max": "max",
}

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$")
_FUNCTION_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _check_name(value: str, *, what: str, step: str | None = None, field: str = "name") -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise SpecValidationError(
            f"invalid {what} name {value!r}: start with a letter or '_', then letters, digits, "
            "'_' or '-' (at most 128)",
            field=field,
            step=step,
        )
    return value


def _check_column(value: object, *, step: str, field: str) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise SpecValidationError(
            f"column names must be non-empty strings, not {value!r}", field=field, step=step
        )
    return value


def _columns(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)  # type: ignore[arg-type]


def _mapping(value: object) -> dict[str, Any]:
    return dict(value)  # type: ignore[call-overload, no-any-return]


def _optional_path(value: object) -> object:
    # a pathlib.Path is kept as its text, so the source stays JSON-serializable
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _json_value(value: Any) -> Any:
    """Return ``value`` with tuples made lists, as a JSON round trip gives it back."""
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def _json_params(value: object) -> dict[str, Any]:
    return _json_value(_mapping(value))  # type: ignore[no-any-return]


def _check_json(value: Any, *, step: str, field: str) -> None:
    """Raise unless ``value`` survives a JSON round trip unchanged."""
    try:
        same = json.loads(json.dumps(value, allow_nan=False)) == value
    except (TypeError, ValueError):
        same = False
    if not same:
        raise SpecValidationError(
            f"{field} must be JSON data (str keys; no NaN, infinity or other objects): {value!r}",
            field=field,
            step=step,
        )


def _check_type(type_name: object, *, step: str, field: str) -> None:
    if type_name not in TYPES:
        raise SpecValidationError(
            f"unknown type {type_name!r} for column {field!r}; known: {', '.join(TYPES)}",
            field=field,
            step=step,
        )


@attrs.frozen(kw_only=True)
class Source:
    """A named input table.

    Parameters
    ----------
    name : str
        Name that steps use to read it.
    format : {"csv", "parquet", "dataframe"}
        How to read it; ``"dataframe"`` means the data is always bound at run time.
    path : str or path-like, optional
        The file (or glob) to read, kept as text; a path bound at run time overrides it.
    schema : dict, optional
        Types to cast named columns to (``int``, ``float``, ``string``, ``bool``, ``timestamp``,
        ``date``); other columns keep the inferred type. A value that cannot be cast is a
        :class:`~mlcycle.errors.SpecValidationError` naming the column.
    delimiter : str
        CSV field separator.
    """

    kind: ClassVar[str] = "source"

    name: str
    format: str = "csv"
    path: str | None = attrs.field(default=None, converter=_optional_path)
    schema: dict[str, str] = attrs.field(factory=dict, converter=_mapping)
    delimiter: str = ","

    def __attrs_post_init__(self) -> None:
        _check_name(self.name, what="source")
        if self.path is not None and not isinstance(self.path, str):
            raise SpecValidationError(
                f"path must be a string, not {type(self.path).__name__}",
                field="path",
                step=self.name,
            )
        if self.format not in {"csv", "parquet", "dataframe"}:
            raise SpecValidationError(
                f"unknown source format {self.format!r}; use csv, parquet or dataframe",
                field="format",
                step=self.name,
            )
        for column, type_name in self.schema.items():
            _check_column(column, step=self.name, field="schema")
            _check_type(type_name, step=self.name, field=column)
        if len(self.delimiter) != 1:
            raise SpecValidationError(
                "the delimiter must be one character", field="delimiter", step=self.name
            )

    @property
    def inputs(self) -> tuple[str, ...]:
        """Sources read nothing."""
        return ()


@attrs.frozen(kw_only=True)
class Step:
    """Base class of flow steps: a name and the names of the tables it reads.

    Subclasses set ``kind`` (the name in JSON) and define their parameters as attrs fields.
    """

    kind: ClassVar[str] = ""
    #: Whether the step runs user code in this process (and so only on the local backend).
    local_only: ClassVar[bool] = False

    name: str

    def __attrs_post_init__(self) -> None:
        _check_name(self.name, what="step")
        for field in self.input_fields():
            _check_name(getattr(self, field), what="input", step=self.name, field=field)
        self.validate()

    @classmethod
    def input_fields(cls) -> tuple[str, ...]:
        """The fields that name input tables."""
        return ("input",)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The tables this step reads, in order."""
        return tuple(getattr(self, f) for f in self.input_fields())

    def validate(self) -> None:
        """Check the parameters; raise :class:`~mlcycle.errors.SpecValidationError` if wrong."""

    def expressions(self) -> tuple[Expression, ...]:
        """The expressions the step evaluates."""
        return ()

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form: ``kind`` and every field, lists for tuples."""
        out: dict[str, Any] = {"kind": self.kind}
        for field in attrs.fields(type(self)):
            out[field.name] = _jsonable(getattr(self, field.name))
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Expression):
        return value.text
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _expression(value: object, step: Any, field: attrs.Attribute[Any]) -> Expression:
    """Parse an expression field; an error names the step and the field."""
    name = getattr(step, "name", None)
    if isinstance(value, Expression):
        return value
    if not isinstance(value, str):
        raise SpecValidationError(
            f"an expression must be a string, not {type(value).__name__}",
            field=field.name,
            step=name,
        )
    try:
        return Expression.parse(value)
    except SpecValidationError as exc:
        raise SpecValidationError(str(exc), field=field.name, step=name) from None


_EXPRESSION = attrs.Converter(_expression, takes_self=True, takes_field=True)  # type: ignore[call-overload]


@attrs.frozen(kw_only=True)
class CastColumns(Step):
    """Cast columns to other types.

    Parameters
    ----------
    name, input : str
        This step's name and the table it reads.
    columns : dict
        Column name to type (``int``, ``float``, ``string``, ``bool``, ``timestamp``, ``date``).
    """

    kind: ClassVar[str] = "cast"
    input: str
    columns: dict[str, str] = attrs.field(converter=_mapping)

    def validate(self) -> None:  # noqa: D102
        if not self.columns:
            raise SpecValidationError("name at least one column", field="columns", step=self.name)
        for column, type_name in self.columns.items():
            _check_column(column, step=self.name, field="columns")
            _check_type(type_name, step=self.name, field=column)


@attrs.frozen(kw_only=True)
class DropColumns(Step):
    """Drop columns.

    Parameters
    ----------
    name, input : str
        This step's name and the table it reads.
    columns : sequence of str
        The columns to drop; each must exist.
    """

    kind: ClassVar[str] = "drop_columns"
    input: str
    columns: tuple[str, ...] = attrs.field(converter=_columns)

    def validate(self) -> None:  # noqa: D102
        if not self.columns:
            raise SpecValidationError("name at least one column", field="columns", step=self.name)
        for column in self.columns:
            _check_column(column, step=self.name, field="columns")


@attrs.frozen(kw_only=True)
class SelectColumns(Step):
    """Keep only the named columns, in the given order.

    Parameters
    ----------
    name, input : str
        This step's name and the table it reads.
    columns : sequence of str
        The columns to keep.
    """

    kind: ClassVar[str] = "select_columns"
    input: str
    columns: tuple[str, ...] = attrs.field(converter=_columns)

    def validate(self) -> None:  # noqa: D102
        if not self.columns:
            raise SpecValidationError("name at least one column", field="columns", step=self.name)
        if len(set(self.columns)) != len(self.columns):
            raise SpecValidationError("columns are repeated", field="columns", step=self.name)
        for column in self.columns:
            _check_column(column, step=self.name, field="columns")


@attrs.frozen(kw_only=True)
class RenameColumns(Step):
    """Rename columns.

    Parameters
    ----------
    name, input : str
        This step's name and the table it reads.
    mapping : dict
        Old name to new name.
    """

    kind: ClassVar[str] = "rename_columns"
    input: str
    mapping: dict[str, str] = attrs.field(converter=_mapping)

    def validate(self) -> None:  # noqa: D102
        if not self.mapping:
            raise SpecValidationError("name at least one column", field="mapping", step=self.name)
        for old, new in self.mapping.items():
            _check_column(old, step=self.name, field="mapping")
            _check_column(new, step=self.name, field=old)
        if len(set(self.mapping.values())) != len(self.mapping):
            raise SpecValidationError("two columns get one name", field="mapping", step=self.name)


@attrs.frozen(kw_only=True)
class FillMissing(Step):
    """Replace missing values (NULL, and NaN in float columns) by constants.

    Parameters
    ----------
    name, input : str
        This step's name and the table it reads.
    values : dict
        Column name to fill value (a number, string or bool).
    """

    kind: ClassVar[str] = "fill_missing"
    input: str
    values: dict[str, Any] = attrs.field(converter=_mapping)

    def validate(self) -> None:  # noqa: D102
        if not self.values:
            raise SpecValidationError("name at least one column", field="values", step=self.name)
        for column, value in self.values.items():
            _check_column(column, step=self.name, field="values")
            if not isinstance(value, str | int | float | bool) or (
                isinstance(value, float) and not math.isfinite(value)
            ):
                raise SpecValidationError(
                    f"fill value {value!r} is not a finite number, string or bool",
                    field=column,
                    step=self.name,
                )


@attrs.frozen(kw_only=True)
class DropMissing(Step):
    """Drop rows with a missing value (NULL, or NaN in float columns).

    Parameters
    ----------
    name, input : str
        This step's name and the table it reads.
    columns : sequence of str, optional
        The columns to look at (default: every column).
    """

    kind: ClassVar[str] = "drop_missing"
    input: str
    columns: tuple[str, ...] = attrs.field(default=(), converter=_columns)

    def validate(self) -> None:  # noqa: D102
        for column in self.columns:
            _check_column(column, step=self.name, field="columns")


@attrs.frozen(kw_only=True)
class OneHotEncode(Step):
    """One column of 0/1 per category of a categorical column.

    The categories are learned by :meth:`mlcycle.flow.Flow.fit` (sorted) and saved with the
    flow, so training data, a batch and one online record are encoded identically.

    Parameters
    ----------
    name, input : str
        This step's name and the table it reads.
    column : str
        The categorical column.
    prefix : str, optional
        Prefix of the new columns (default ``"<column>_"``): ``genre`` gives ``genre_Jazz``.
    drop : {None, "first"} or str
        Keep every category (``None``), drop the first, or drop the named one.
    handle_unknown : {"ignore", "error", "keep"}
        A category not seen by ``fit``: all zeros, a
        :class:`~mlcycle.errors.SpecValidationError`, or a 1 in an extra ``<prefix>other``.
    keep_input : bool
        Keep the categorical column too.
    categories : sequence of str, optional
        The fitted categories; given by hand, ``fit`` leaves them as they are.
    """

    kind: ClassVar[str] = "one_hot"
    input: str
    column: str
    prefix: str | None = None
    drop: str | None = None
    handle_unknown: str = "ignore"
    keep_input: bool = False
    categories: tuple[str, ...] | None = attrs.field(
        default=None, converter=attrs.converters.optional(_columns)
    )

    def validate(self) -> None:  # noqa: D102
        _check_column(self.column, step=self.name, field="column")
        if self.handle_unknown not in {"ignore", "error", "keep"}:
            raise SpecValidationError(
                f"handle_unknown must be ignore, error or keep, not {self.handle_unknown!r}",
                field="handle_unknown",
                step=self.name,
            )
        if self.prefix is not None and not isinstance(self.prefix, str):
            raise SpecValidationError("prefix must be a string", field="prefix", step=self.name)
        if self.categories is not None:
            if not all(isinstance(c, str) for c in self.categories):
                raise SpecValidationError(
                    "categories must be strings", field="categories", step=self.name
                )
            if len(set(self.categories)) != len(self.categories):
                raise SpecValidationError(
                    "categories are repeated", field="categories", step=self.name
                )
            if self.drop not in (None, "first") and self.drop not in self.categories:
                raise SpecValidationError(
                    f"drop={self.drop!r} is not a category", field="drop", step=self.name
                )
            # DuckDB matches column names case-insensitively: two names that differ only in
            # case cannot both be columns
            seen: dict[str, str] = {}
            for name in self.output_columns():
                if name.lower() in seen:
                    raise SpecValidationError(
                        f"the output columns {seen[name.lower()]!r} and {name!r} clash "
                        "(column names are case-insensitive; with handle_unknown='keep', "
                        "'<prefix>other' is taken)",
                        field="categories",
                        step=self.name,
                    )
                seen[name.lower()] = name

    @property
    def column_prefix(self) -> str:
        """The prefix of the output columns."""
        return f"{self.column}_" if self.prefix is None else self.prefix

    def encoded_categories(self) -> tuple[str, ...]:
        """The categories that get a column, after ``drop``."""
        cats = self.categories or ()
        if self.drop == "first":
            return cats[1:]
        return tuple(c for c in cats if c != self.drop)

    def output_columns(self) -> tuple[str, ...]:
        """The columns the step adds: one per encoded category, and ``<prefix>other``."""
        names = [f"{self.column_prefix}{c}" for c in self.encoded_categories()]
        if self.handle_unknown == "keep":
            names.append(f"{self.column_prefix}other")
        return tuple(names)


@attrs.frozen(kw_only=True)
class Formula(Step):
    """Add (or replace) a column computed by an expression over columns.

    Parameters
    ----------
    name, input : str
        This step's name and the table it reads.
    output : str
        The column to write.
    expression : str
        In mlcycle's expression language, e.g. ``"0.3*valence + 0.1*liveness + 0.1*energy"``
        (see :mod:`mlcycle.flow.expr`); never evaluated as Python.
    """

    kind: ClassVar[str] = "formula"
    input: str
    output: str
    expression: Expression = attrs.field(converter=_EXPRESSION)

    def validate(self) -> None:  # noqa: D102
        _check_column(self.output, step=self.name, field="output")

    def expressions(self) -> tuple[Expression, ...]:  # noqa: D102
        return (self.expression,)


@attrs.frozen(kw_only=True)
class Filter(Step):
    """Keep the rows for which a predicate is true.

    Parameters
    ----------
    name, input : str
        This step's name and the table it reads.
    predicate : str
        A boolean expression, e.g. ``"Rating == 5"``; one of another type (``"x + 1"``) is a
        :class:`~mlcycle.errors.SpecValidationError` when the flow is run. Rows where it is
        missing (NULL) are dropped.
    """

    kind: ClassVar[str] = "filter"
    input: str
    predicate: Expression = attrs.field(converter=_EXPRESSION)

    def expressions(self) -> tuple[Expression, ...]:  # noqa: D102
        return (self.predicate,)


@attrs.frozen(kw_only=True)
class Join(Step):
    """Join two tables on key columns.

    Parameters
    ----------
    name : str
        This step's name.
    left, right : str
        The tables to join.
    on : sequence of str, optional
        Key columns with the same name on both sides.
    left_on, right_on : sequence of str, optional
        Key columns with different names (give both, of equal length, instead of ``on``).
    how : {"inner", "left", "right", "outer"}
        The kind of join.
    suffixes : tuple of str
        Added to non-key columns that both sides have.
    """

    kind: ClassVar[str] = "join"
    left: str
    right: str
    on: tuple[str, ...] = attrs.field(default=(), converter=_columns)
    left_on: tuple[str, ...] = attrs.field(default=(), converter=_columns)
    right_on: tuple[str, ...] = attrs.field(default=(), converter=_columns)
    how: str = "inner"
    suffixes: tuple[str, str] = attrs.field(default=("", "_right"), converter=tuple)

    @classmethod
    def input_fields(cls) -> tuple[str, ...]:  # noqa: D102
        return ("left", "right")

    def validate(self) -> None:  # noqa: D102
        if self.how not in {"inner", "left", "right", "outer"}:
            raise SpecValidationError(
                f"how must be inner, left, right or outer, not {self.how!r}",
                field="how",
                step=self.name,
            )
        if self.on and (self.left_on or self.right_on):
            raise SpecValidationError(
                "give either on or left_on/right_on", field="on", step=self.name
            )
        if not self.on and (not self.left_on or len(self.left_on) != len(self.right_on)):
            raise SpecValidationError(
                "give on, or left_on and right_on of equal length", field="on", step=self.name
            )
        if len(self.suffixes) != 2 or self.suffixes[0] == self.suffixes[1]:
            raise SpecValidationError(
                "suffixes must be two different strings", field="suffixes", step=self.name
            )

    @property
    def keys(self) -> tuple[tuple[str, str], ...]:
        """The (left, right) key column pairs."""
        if self.on:
            return tuple((k, k) for k in self.on)
        return tuple(zip(self.left_on, self.right_on, strict=True))


def _aggregations(value: object) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for key, spec in _mapping(value).items():
        out[key] = tuple(spec)  # type: ignore[assignment]
    return out


@attrs.frozen(kw_only=True)
class Aggregate(Step):
    """Group rows and aggregate columns.

    Parameters
    ----------
    name, input : str
        This step's name and the table it reads.
    group_by : sequence of str
        The grouping columns (none: one row for the whole table).
    aggregations : dict
        Output column to ``(function, column)``; functions are mean, sum, count, min and max;
        ``("count", "*")`` counts rows.
    """

    kind: ClassVar[str] = "aggregate"
    input: str
    group_by: tuple[str, ...] = attrs.field(converter=_columns)
    aggregations: dict[str, tuple[str, str]] = attrs.field(converter=_aggregations)

    def validate(self) -> None:  # noqa: D102
        if not self.aggregations:
            raise SpecValidationError(
                "name at least one aggregation", field="aggregations", step=self.name
            )
        for column in self.group_by:
            _check_column(column, step=self.name, field="group_by")
        for output, spec in self.aggregations.items():
            _check_column(output, step=self.name, field="aggregations")
            if len(spec) != 2 or spec[0] not in AGGREGATIONS:
                raise SpecValidationError(
                    f"aggregation {output!r} must be (function, column) with function one of "
                    f"{', '.join(AGGREGATIONS)}, not {spec!r}",
                    field=output,
                    step=self.name,
                )
            if not isinstance(spec[1], str) or not spec[1]:
                raise SpecValidationError(
                    f"aggregation {output!r} names no column", field=output, step=self.name
                )
            if spec[1] == "*" and spec[0] != "count":
                raise SpecValidationError("only count takes '*'", field=output, step=self.name)
        clash = set(self.group_by) & set(self.aggregations)
        if clash:
            raise SpecValidationError(
                f"{sorted(clash)} are both grouped by and aggregated",
                field="aggregations",
                step=self.name,
            )


@attrs.frozen(kw_only=True)
class AddEventTime(Step):
    """Add an event-time column, from a column or a constant.

    The output is fractional epoch seconds (``format="epoch"``) or an ISO-8601 UTC string with
    milliseconds such as ``2020-01-01T00:00:01.250Z`` (``format="iso"``), the two event-time
    types SageMaker Feature Store accepts.

    Parameters
    ----------
    name, input : str
        This step's name and the table it reads.
    output : str
        The column to write.
    column : str, optional
        The column holding the time: epoch numbers (see ``unit``), timestamps, or ISO strings.
    value : str or float, optional
        A constant time instead (ISO-8601 string or epoch seconds); give column or value.
    unit : {"s", "ms"}
        The unit of numeric epoch values.
    format : {"epoch", "iso"}
        The output form.
    """

    kind: ClassVar[str] = "event_time"
    input: str
    output: str = "EventTime"
    column: str | None = None
    value: str | float | None = None
    unit: str = "s"
    format: str = "epoch"

    def validate(self) -> None:  # noqa: D102
        _check_column(self.output, step=self.name, field="output")
        if (self.column is None) == (self.value is None):
            raise SpecValidationError(
                "give exactly one of column and value", field="column", step=self.name
            )
        if self.column is not None:
            _check_column(self.column, step=self.name, field="column")
        if self.value is not None and (
            isinstance(self.value, bool)
            or not isinstance(self.value, str | int | float)
            or (isinstance(self.value, float) and not math.isfinite(self.value))
        ):
            raise SpecValidationError(
                "value must be an ISO-8601 string or epoch seconds", field="value", step=self.name
            )
        if self.unit not in {"s", "ms"}:
            raise SpecValidationError("unit must be s or ms", field="unit", step=self.name)
        if self.format not in {"epoch", "iso"}:
            raise SpecValidationError("format must be epoch or iso", field="format", step=self.name)


@attrs.frozen(kw_only=True)
class PythonStep(Step):
    """Call a Python function ``f(df: pandas.DataFrame, **params) -> pandas.DataFrame``.

    For what the declarative steps lack. It runs user code in this process, so it is local-only
    (:attr:`~mlcycle.Capability.FLOW_PYTHON_STEPS`), and its input is materialized as pandas.

    Parameters
    ----------
    name, input : str
        This step's name and the table it reads.
    function : str
        Dotted import path ``"package.module:function"``.
    params : dict
        JSON-serializable keyword arguments for the function (tuples are kept as lists, as
        JSON gives them back).
    """

    kind: ClassVar[str] = "python"
    local_only: ClassVar[bool] = True
    input: str
    function: str
    params: dict[str, Any] = attrs.field(factory=dict, converter=_json_params)

    def validate(self) -> None:  # noqa: D102
        if not isinstance(self.function, str) or not _FUNCTION_RE.match(self.function):
            raise SpecValidationError(
                f"function must be 'package.module:function', not {self.function!r}",
                field="function",
                step=self.name,
            )
        _check_json(self.params, step=self.name, field="params")


STEP_KINDS: Mapping[str, type[Step]] = {
    cls.kind: cls
    for cls in (
        CastColumns,
        DropColumns,
        SelectColumns,
        RenameColumns,
        FillMissing,
        DropMissing,
        OneHotEncode,
        Formula,
        Filter,
        Join,
        Aggregate,
        AddEventTime,
        PythonStep,
    )
}


def _from_fields(cls: type, data: Mapping[str, Any], *, where: str) -> Any:
    names = {f.name for f in attrs.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise SpecValidationError(
            f"unknown field(s) {sorted(unknown)} for {cls.__name__}", field=min(unknown), step=where
        )
    try:
        return cls(**data)
    except TypeError as exc:  # a required field is missing
        raise SpecValidationError(f"{cls.__name__} {where!r}: {exc}", step=where) from None


def step_from_dict(data: Mapping[str, Any]) -> Step | Source:
    """Build a step or source from its :meth:`~mlcycle.flow.Step.to_dict` form.

    Parameters
    ----------
    data : mapping
        Holds ``kind`` and the step's fields.

    Returns
    -------
    Step or Source

    Raises
    ------
    SpecValidationError
        If the kind or a field is unknown, or a value invalid.
    """
    data = dict(data)
    kind = data.pop("kind", None)
    where = str(data.get("name", "?"))
    if kind == Source.kind:
        return _from_fields(Source, data, where=where)  # type: ignore[no-any-return]
    if kind not in STEP_KINDS:
        raise SpecValidationError(
            f"unknown step kind {kind!r}; known: {', '.join(sorted(STEP_KINDS))}",
            field="kind",
            step=where,
        )
    return _from_fields(STEP_KINDS[kind], data, where=where)  # type: ignore[no-any-return]


def source_to_dict(source: Source) -> dict[str, Any]:
    """Return the JSON-ready form of a source."""
    out: dict[str, Any] = {"kind": Source.kind}
    for field in attrs.fields(Source):
        out[field.name] = _jsonable(getattr(source, field.name))
    return out
