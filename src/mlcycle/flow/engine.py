"""Run a :class:`~mlcycle.flow.Flow` on DuckDB: every step becomes a SQL view, set-at-a-time.

Planning creates one view per step, only for the ancestors of the outputs asked for, and checks
every column a step names against the real schema of its input (``DESCRIBE``), so a bad flow
fails before any data is read in bulk or written. Outputs are materialized on demand; files are
written to a temporary path and renamed into place, so a failed run leaves nothing behind.
"""

from __future__ import annotations

import difflib
import glob
import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import attrs

from mlcycle._atomic import atomic_path
from mlcycle._logging import logger
from mlcycle._sql import quote_ident, sql_literal
from mlcycle.backends.base import Capability
from mlcycle.errors import (
    BackendError,
    InvalidStateError,
    MlcycleError,
    NotFoundError,
    SpecValidationError,
)
from mlcycle.flow.steps import (
    AGGREGATIONS,
    TYPES,
    AddEventTime,
    Aggregate,
    CastColumns,
    DropColumns,
    DropMissing,
    FillMissing,
    Filter,
    Formula,
    Join,
    OneHotEncode,
    PythonStep,
    RenameColumns,
    SelectColumns,
    Source,
    Step,
)
from mlcycle.progress import ProgressCallback, report

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pandas as pd
    import pyarrow as pa

    from mlcycle.backends.base import Backend
    from mlcycle.flow.graph import Flow

__all__ = ["FlowRun", "SourceData", "fit_flow"]

#: What can be bound to a source: a path, a pandas DataFrame or a pyarrow Table.
SourceData = Union[str, "os.PathLike[str]", "pd.DataFrame", "pa.Table"]

_FLOAT_TYPES = {"DOUBLE", "FLOAT", "REAL"}
_NUMERIC_PREFIXES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UBIGINT",
    "UINTEGER",
    "USMALLINT",
    "UTINYINT",
    "DOUBLE",
    "FLOAT",
    "REAL",
    "DECIMAL",
)


@attrs.frozen
class _Table:
    view: str
    columns: tuple[str, ...]
    types: tuple[str, ...]


def _missing(step: str, field: str, wanted: Sequence[str], have: Sequence[str]) -> None:
    missing = [c for c in wanted if c not in have]
    if missing:
        hints = {c: difflib.get_close_matches(c, have, n=1) for c in missing}
        hint = "; ".join(f"did you mean {h[0]!r} for {c!r}" for c, h in hints.items() if h)
        raise SpecValidationError(
            f"step {step!r}: no column {', '.join(map(repr, missing))} in its input"
            + (f" ({hint})" if hint else "")
            + f"; columns are {list(have)}",
            field=missing[0] if field == "columns" else field,
            step=step,
        )


def _select_list(columns: Sequence[str], replace: Mapping[str, str] | None = None) -> str:
    replace = replace or {}
    return ", ".join(
        f"{replace[c]} AS {quote_ident(c)}" if c in replace else quote_ident(c) for c in columns
    )


class FlowRun:
    """A flow planned on a DuckDB connection; outputs are computed when asked for.

    Made by :meth:`mlcycle.flow.Flow.run`. Close it (or use ``with``) to free the connection.
    """

    def __init__(
        self,
        flow: Flow,
        con: duckdb.DuckDBPyConnection,
        *,
        sources: Mapping[str, SourceData],
        backend: Backend | None,
        progress: ProgressCallback | None,
    ) -> None:
        self.flow = flow
        self._con = con
        self._sources = dict(sources)
        self._backend = backend
        self._progress = progress
        self._tables: dict[str, _Table] = {}

    @classmethod
    def start(
        cls,
        flow: Flow,
        sources: Mapping[str, SourceData],
        *,
        outputs: Sequence[str] | None,
        backend: Backend | None,
        progress: ProgressCallback | None,
    ) -> FlowRun:
        """Plan ``outputs`` (default: the flow's outputs) and return the run."""
        import duckdb

        unknown = set(sources) - {s.name for s in flow.sources}
        if unknown:
            raise SpecValidationError(
                f"flow {flow.name!r} has no source(s) {sorted(unknown)}", field="sources"
            )
        if backend is not None:
            backend.require(Capability.FLOWS)
            if flow.local_only:
                backend.require(Capability.FLOW_PYTHON_STEPS)
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        run = cls(flow, con, sources=sources, backend=backend, progress=progress)
        try:
            wanted = tuple(outputs) if outputs is not None else flow.output_names
            for name in wanted:
                flow.node(name)
            needed = run._ancestors(wanted)
            planned = [n for n in flow.order() if n in needed]
            for i, name in enumerate(planned, start=1):
                run._plan(name)
                report(progress, f"plan {flow.name}", i, len(planned))
        except BaseException:
            con.close()
            raise
        return run

    # -- planning --------------------------------------------------------------------------
    def _ancestors(self, names: Sequence[str]) -> set[str]:
        seen: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(self.flow.node(name).inputs)
        return seen

    def _describe(self, view: str, step: str) -> _Table:
        try:
            rows = self._con.execute(f"DESCRIBE SELECT * FROM {quote_ident(view)}").fetchall()
        except Exception as exc:  # a binder or type error in the generated SQL
            raise _step_error(exc, step) from exc
        return _Table(view, tuple(r[0] for r in rows), tuple(str(r[1]) for r in rows))

    def _create_view(self, name: str, sql: str) -> None:
        view = f"step__{name}"
        try:
            self._con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(view)} AS {sql}")
        except Exception as exc:
            raise _step_error(exc, name) from exc
        self._tables[name] = self._describe(view, name)
        logger.debug("flow %s: planned %s", self.flow.name, name)

    def _plan(self, name: str) -> None:
        node = self.flow.node(name)
        if isinstance(node, Source):
            self._plan_source(node)
            return
        inputs = [self._tables[i] for i in node.inputs]
        compile_step = _COMPILERS.get(type(node))
        if compile_step is None:  # PythonStep
            self._plan_python(node, inputs[0])  # type: ignore[arg-type]
            return
        self._create_view(name, compile_step(self, node, *inputs))

    def _plan_source(self, source: Source) -> None:
        data = self._sources.get(source.name, source.path)
        if data is None:
            raise SpecValidationError(
                f"source {source.name!r} has no path and no data was bound to it",
                field="path",
                step=source.name,
            )
        raw = f"raw__{source.name}"
        if isinstance(data, str | os.PathLike):
            path = os.fspath(data)
            if not glob.has_magic(path) and not Path(path).exists():
                raise NotFoundError(
                    f"source {source.name!r}: no file {path}", kind="file", name=path
                )
            fmt = source.format if source.format != "dataframe" else _format_of(path)
            if fmt == "csv":
                reader = self._csv_reader(source, path)
            else:
                reader = f"read_parquet({sql_literal(path)})"
            sql = f"SELECT * FROM {reader}"
        else:
            table = _as_arrow(data, source.name)
            self._con.register(f"data__{source.name}", table)
            sql = f"SELECT * FROM {quote_ident('data__' + source.name)}"
        try:
            self._con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(raw)} AS {sql}")
        except Exception as exc:
            raise _step_error(exc, source.name) from exc
        table = self._describe(raw, source.name)
        if source.schema:
            _missing(source.name, "schema", list(source.schema), table.columns)
            casts = {c: f"CAST({quote_ident(c)} AS {TYPES[t]})" for c, t in source.schema.items()}
            self._create_view(
                source.name,
                f"SELECT {_select_list(table.columns, casts)} FROM {quote_ident(raw)}",
            )
        else:
            self._tables[source.name] = table

    def _csv_reader(self, source: Source, path: str) -> str:
        """Sniff the CSV once and return a ``read_csv`` call that never sniffs again.

        Columns named in the source's schema are read as text and cast by the source's view,
        so a value that does not fit is reported with its column instead of failing the read.
        """
        try:
            delim, quote, escape, skip, header, columns = self._con.execute(
                "SELECT Delimiter, Quote, Escape, SkipRows, HasHeader, Columns FROM "
                f"sniff_csv({sql_literal(path)}, delim = {sql_literal(source.delimiter)}, "
                "header = true)"
            ).fetchone()
        except Exception as exc:
            raise _step_error(exc, source.name) from exc
        types = {c["name"]: "VARCHAR" if c["name"] in source.schema else c["type"] for c in columns}
        spec = ", ".join(f"{sql_literal(n)}: {sql_literal(t)}" for n, t in types.items())
        return (
            f"read_csv({sql_literal(path)}, auto_detect = false, header = {bool(header)}, "
            f"delim = {sql_literal(delim)}, quote = {sql_literal(_one_char(quote))}, "
            f"escape = {sql_literal(_one_char(escape))}, skip = {int(skip)}, "
            f"columns = {{{spec}}})"
        )

    def _plan_python(self, step: PythonStep, table: _Table) -> None:
        import pandas as pd

        module_name, _, attr = step.function.partition(":")
        try:
            func: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                func = getattr(func, part)
        except (ImportError, AttributeError) as exc:
            raise SpecValidationError(
                f"step {step.name!r}: cannot import {step.function!r}: {exc}",
                field="function",
                step=step.name,
            ) from None
        frame = self._materialize(table.view).to_pandas()
        result = func(frame, **step.params)
        if not isinstance(result, pd.DataFrame):
            raise SpecValidationError(
                f"step {step.name!r}: {step.function} returned {type(result).__name__}, "
                "not a pandas DataFrame",
                field="function",
                step=step.name,
            )
        self._con.register(f"data__{step.name}", _as_arrow(result, step.name))
        self._create_view(step.name, f"SELECT * FROM {quote_ident('data__' + step.name)}")

    # -- results ---------------------------------------------------------------------------
    def _table(self, name: str) -> _Table:
        if name not in self._tables:
            raise SpecValidationError(
                f"{name!r} was not planned in this run; ask for it in outputs=", field="output"
            )
        return self._tables[name]

    def columns(self, name: str) -> tuple[str, ...]:
        """The column names of table ``name``."""
        return self._table(name).columns

    def schema(self, name: str) -> dict[str, str]:
        """Column name to DuckDB type, for table ``name``."""
        table = self._table(name)
        return dict(zip(table.columns, table.types, strict=True))

    def _materialize(self, view: str) -> pa.Table:
        def fetch() -> pa.Table:
            relation = self._con.sql(f"SELECT * FROM {quote_ident(view)}")
            # DuckDB 1.4 named it to_arrow_table; older releases call it arrow
            method = getattr(relation, "to_arrow_table", None) or relation.arrow
            return method()

        return self._guarded(fetch)

    def _guarded(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except MlcycleError:
            raise
        except Exception as exc:
            diagnosed = self._diagnose(exc)
            raise diagnosed from exc

    def _diagnose(self, exc: Exception) -> MlcycleError:
        """Name the step and column behind a failed cast, or wrap the DuckDB error."""
        import duckdb

        if isinstance(exc, duckdb.ConversionException | duckdb.InvalidInputException):
            for name in self.flow.order():
                if name not in self._tables:
                    continue
                node = self.flow.node(name)
                casts: dict[str, str] = {}
                source_view = None
                if isinstance(node, Source) and node.schema:
                    casts, source_view = dict(node.schema), f"raw__{name}"
                elif isinstance(node, CastColumns):
                    casts, source_view = dict(node.columns), self._tables[node.input].view
                for column, type_name in casts.items():
                    q = quote_ident(column)
                    row = self._con.execute(
                        f"SELECT {q} FROM {quote_ident(source_view or '')} WHERE {q} IS NOT NULL "
                        f"AND TRY_CAST({q} AS {TYPES[type_name]}) IS NULL LIMIT 1"
                    ).fetchone()
                    if row is not None:
                        return SpecValidationError(
                            f"step {name!r}: value {row[0]!r} of column {column!r} cannot be "
                            f"cast to {type_name}",
                            field=column,
                            step=name,
                        )
            return SpecValidationError(f"flow {self.flow.name!r}: bad data: {exc}")
        if isinstance(exc, duckdb.IOException):
            return BackendError(
                f"flow {self.flow.name!r}: cannot read or write: {exc}",
                backend="local",
                code="IOException",
            )
        return BackendError(
            f"flow {self.flow.name!r} failed: {exc}", backend="local", code=type(exc).__name__
        )

    def to_arrow(self, name: str) -> pa.Table:
        """Compute table ``name`` and return it as a pyarrow Table."""
        return self._materialize(self._table(name).view)

    def to_pandas(self, name: str) -> pd.DataFrame:
        """Compute table ``name`` and return it as a pandas DataFrame."""
        view = self._table(name).view
        return self._guarded(lambda: self._con.execute(f"SELECT * FROM {quote_ident(view)}").df())

    def count(self, name: str) -> int:
        """Compute the number of rows of table ``name``."""
        view = self._table(name).view
        row = self._guarded(
            lambda: self._con.execute(f"SELECT count(*) FROM {quote_ident(view)}").fetchone()
        )
        return int(row[0])

    def to_parquet(self, name: str, path: str | os.PathLike[str]) -> Path:
        """Write table ``name`` to a Parquet file atomically; return the path."""
        return self._copy(name, path, "FORMAT PARQUET, COMPRESSION ZSTD")

    def to_csv(self, name: str, path: str | os.PathLike[str]) -> Path:
        """Write table ``name`` to a CSV file (with a header) atomically; return the path."""
        return self._copy(name, path, "FORMAT CSV, HEADER true")

    def write(self, name: str, path: str | os.PathLike[str]) -> Path:
        """Write table ``name`` as Parquet or CSV, chosen by the file's suffix."""
        suffix = Path(path).suffix.lower()
        if suffix == ".csv":
            return self.to_csv(name, path)
        if suffix in {".parquet", ".pq"}:
            return self.to_parquet(name, path)
        raise SpecValidationError(f"write to .csv or .parquet, not {suffix!r}", field="path")

    def _copy(self, name: str, path: str | os.PathLike[str], options: str) -> Path:
        view = self._table(name).view
        target = Path(path)
        with atomic_path(target, suffix=target.suffix) as tmp:
            self._guarded(
                lambda: self._con.execute(
                    f"COPY (SELECT * FROM {quote_ident(view)}) TO {sql_literal(str(tmp))} "
                    f"({options})"
                )
            )
        report(self._progress, f"write {self.flow.name}", 1, 1)
        return target

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._con.close()

    def __enter__(self) -> FlowRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- step compilers: (run, step, *input tables) -> SELECT statement ------------------------
def _cast(run: FlowRun, step: CastColumns, t: _Table) -> str:
    _missing(step.name, "columns", list(step.columns), t.columns)
    casts = {c: f"CAST({quote_ident(c)} AS {TYPES[ty]})" for c, ty in step.columns.items()}
    return f"SELECT {_select_list(t.columns, casts)} FROM {quote_ident(t.view)}"


def _drop(run: FlowRun, step: DropColumns, t: _Table) -> str:
    _missing(step.name, "columns", step.columns, t.columns)
    keep = [c for c in t.columns if c not in step.columns]
    if not keep:
        raise SpecValidationError(
            f"step {step.name!r} would drop every column", field="columns", step=step.name
        )
    return f"SELECT {_select_list(keep)} FROM {quote_ident(t.view)}"


def _select(run: FlowRun, step: SelectColumns, t: _Table) -> str:
    _missing(step.name, "columns", step.columns, t.columns)
    return f"SELECT {_select_list(step.columns)} FROM {quote_ident(t.view)}"


def _rename(run: FlowRun, step: RenameColumns, t: _Table) -> str:
    _missing(step.name, "columns", list(step.mapping), t.columns)
    names = [step.mapping.get(c, c) for c in t.columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecValidationError(
            f"step {step.name!r}: renaming gives two columns named {dupes}",
            field=dupes[0],
            step=step.name,
        )
    items = ", ".join(
        f"{quote_ident(c)} AS {quote_ident(n)}" for c, n in zip(t.columns, names, strict=True)
    )
    return f"SELECT {items} FROM {quote_ident(t.view)}"


def _missing_test(column: str, type_name: str) -> str:
    q = quote_ident(column)
    if type_name in _FLOAT_TYPES:
        return f"({q} IS NULL OR isnan({q}))"
    return f"({q} IS NULL)"


def _fill(run: FlowRun, step: FillMissing, t: _Table) -> str:
    _missing(step.name, "columns", list(step.values), t.columns)
    types = dict(zip(t.columns, t.types, strict=True))
    replace = {
        c: f"CASE WHEN {_missing_test(c, types[c])} THEN CAST({sql_literal(v)} AS {types[c]}) "
        f"ELSE {quote_ident(c)} END"
        for c, v in step.values.items()
    }
    return f"SELECT {_select_list(t.columns, replace)} FROM {quote_ident(t.view)}"


def _dropna(run: FlowRun, step: DropMissing, t: _Table) -> str:
    _missing(step.name, "columns", step.columns, t.columns)
    types = dict(zip(t.columns, t.types, strict=True))
    tests = [_missing_test(c, types[c]) for c in (step.columns or t.columns)]
    return f"SELECT * FROM {quote_ident(t.view)} WHERE NOT ({' OR '.join(tests)})"


def _one_hot(run: FlowRun, step: OneHotEncode, t: _Table) -> str:
    _missing(step.name, "column", [step.column], t.columns)
    if step.categories is None:
        raise InvalidStateError(
            f"step {step.name!r} is not fitted: call flow.fit(...) on training data first",
            state="unfitted",
        )
    col = f"CAST({quote_ident(step.column)} AS VARCHAR)"
    known = ", ".join(sql_literal(c) for c in step.categories) or "NULL"
    if step.handle_unknown == "error":
        rows = run._guarded(
            lambda: run._con.execute(
                f"SELECT DISTINCT {col} FROM {quote_ident(t.view)} WHERE {col} IS NOT NULL "
                f"AND {col} NOT IN ({known}) LIMIT 5"
            ).fetchall()
        )
        if rows:
            raise SpecValidationError(
                f"step {step.name!r}: unknown categories {[r[0] for r in rows]} in column "
                f"{step.column!r} (fitted: {list(step.categories)})",
                field=step.column,
                step=step.name,
            )
    new = {
        f"{step.column_prefix}{c}": f"CAST({col} = {sql_literal(c)} AS BIGINT)"
        for c in step.encoded_categories()
    }
    new = {k: f"coalesce({v}, 0)" for k, v in new.items()}
    if step.handle_unknown == "keep":
        new[f"{step.column_prefix}other"] = (
            f"CAST({col} IS NOT NULL AND {col} NOT IN ({known}) AS BIGINT)"
        )
    clash = sorted(set(new) & (set(t.columns) - {step.column}))
    if clash:
        raise SpecValidationError(
            f"step {step.name!r}: output columns {clash} exist already",
            field=clash[0],
            step=step.name,
        )
    items: list[str] = []
    for c in t.columns:
        if c == step.column:
            if step.keep_input:
                items.append(quote_ident(c))
            items.extend(f"{expr} AS {quote_ident(k)}" for k, expr in new.items())
        else:
            items.append(quote_ident(c))
    return f"SELECT {', '.join(items)} FROM {quote_ident(t.view)}"


def _checked(step: Step, t: _Table) -> None:
    for expression in step.expressions():
        try:
            expression.check_columns(t.columns)
        except SpecValidationError as exc:
            raise SpecValidationError(
                f"step {step.name!r}: {exc}", field="expression", step=step.name
            ) from None


def _formula(run: FlowRun, step: Formula, t: _Table) -> str:
    _checked(step, t)
    sql = f"({step.expression.to_sql()})"
    if step.output in t.columns:
        return f"SELECT {_select_list(t.columns, {step.output: sql})} FROM {quote_ident(t.view)}"
    return (
        f"SELECT {_select_list(t.columns)}, {sql} AS {quote_ident(step.output)} "
        f"FROM {quote_ident(t.view)}"
    )


def _filter(run: FlowRun, step: Filter, t: _Table) -> str:
    _checked(step, t)
    return f"SELECT * FROM {quote_ident(t.view)} WHERE ({step.predicate.to_sql()})"


def _join(run: FlowRun, step: Join, left: _Table, right: _Table) -> str:
    pairs = step.keys
    _missing(step.name, "left_on" if step.left_on else "on", [a for a, _ in pairs], left.columns)
    _missing(step.name, "right_on" if step.right_on else "on", [b for _, b in pairs], right.columns)
    shared_keys = {a for a, b in pairs if a == b}
    left_rest = [c for c in left.columns if c not in shared_keys]
    right_rest = [c for c in right.columns if c not in shared_keys]
    both = set(left_rest) & set(right_rest)
    lsuf, rsuf = step.suffixes
    items: list[str] = []
    for c in left.columns:
        if c in shared_keys:
            if step.how == "outer":
                expr = f"coalesce(l.{quote_ident(c)}, r.{quote_ident(c)})"
            elif step.how == "right":
                expr = f"r.{quote_ident(c)}"
            else:
                expr = f"l.{quote_ident(c)}"
            items.append(f"{expr} AS {quote_ident(c)}")
        else:
            out = c + lsuf if c in both else c
            items.append(f"l.{quote_ident(c)} AS {quote_ident(out)}")
    for c in right_rest:
        out = c + rsuf if c in both else c
        items.append(f"r.{quote_ident(c)} AS {quote_ident(out)}")
    names = [i.rsplit(" AS ", 1)[1] for i in items]
    if len(set(names)) != len(names):
        raise SpecValidationError(
            f"step {step.name!r}: the suffixes leave duplicate column names",
            field="suffixes",
            step=step.name,
        )
    condition = " AND ".join(f"l.{quote_ident(a)} = r.{quote_ident(b)}" for a, b in pairs)
    how = {"inner": "INNER", "left": "LEFT", "right": "RIGHT", "outer": "FULL OUTER"}[step.how]
    return (
        f"SELECT {', '.join(items)} FROM {quote_ident(left.view)} AS l "
        f"{how} JOIN {quote_ident(right.view)} AS r ON {condition}"
    )


def _aggregate(run: FlowRun, step: Aggregate, t: _Table) -> str:
    used = [c for _, c in step.aggregations.values() if c != "*"]
    _missing(step.name, "group_by", step.group_by, t.columns)
    _missing(step.name, "aggregations", used, t.columns)
    items = [quote_ident(c) for c in step.group_by]
    for out, (func, column) in step.aggregations.items():
        arg = "*" if column == "*" else quote_ident(column)
        items.append(f"{AGGREGATIONS[func]}({arg}) AS {quote_ident(out)}")
    sql = f"SELECT {', '.join(items)} FROM {quote_ident(t.view)}"
    if step.group_by:
        keys = ", ".join(quote_ident(c) for c in step.group_by)
        sql += f" GROUP BY {keys} ORDER BY {keys}"
    return sql


def _event_time(run: FlowRun, step: AddEventTime, t: _Table) -> str:
    if step.column is not None:
        _missing(step.name, "column", [step.column], t.columns)
        type_name = dict(zip(t.columns, t.types, strict=True))[step.column]
        q = quote_ident(step.column)
        if type_name.startswith(_NUMERIC_PREFIXES):
            epoch = f"CAST({q} AS DOUBLE)" + (" / 1000.0" if step.unit == "ms" else "")
        elif type_name.startswith(("TIMESTAMP", "DATE")):
            epoch = f"epoch({q})"
        elif type_name == "VARCHAR":
            epoch = f"epoch(CAST({q} AS TIMESTAMPTZ))"
        else:
            raise SpecValidationError(
                f"step {step.name!r}: column {step.column!r} of type {type_name} is no time",
                field="column",
                step=step.name,
            )
    elif isinstance(step.value, str):
        epoch = f"epoch(CAST({sql_literal(step.value)} AS TIMESTAMPTZ))"
    else:
        epoch = f"CAST({sql_literal(float(step.value))} AS DOUBLE)"  # type: ignore[arg-type]
    if step.format == "iso":
        expr = f"strftime(to_timestamp({epoch}), '%Y-%m-%dT%H:%M:%S.%fZ')"
    else:
        expr = epoch
    if step.output in t.columns:
        return f"SELECT {_select_list(t.columns, {step.output: expr})} FROM {quote_ident(t.view)}"
    return (
        f"SELECT {_select_list(t.columns)}, {expr} AS {quote_ident(step.output)} "
        f"FROM {quote_ident(t.view)}"
    )


_COMPILERS: dict[type, Callable[..., str]] = {
    CastColumns: _cast,
    DropColumns: _drop,
    SelectColumns: _select,
    RenameColumns: _rename,
    FillMissing: _fill,
    DropMissing: _dropna,
    OneHotEncode: _one_hot,
    Formula: _formula,
    Filter: _filter,
    Join: _join,
    Aggregate: _aggregate,
    AddEventTime: _event_time,
}


def _step_error(exc: Exception, step: str) -> MlcycleError:
    if isinstance(exc, MlcycleError):
        return exc
    return SpecValidationError(f"step {step!r} cannot be planned: {exc}", step=step)


def _one_char(value: object) -> str:
    # the sniffer answers "(empty)" where the sample held no quotes; '"' is then harmless
    return value if isinstance(value, str) and len(value) == 1 else '"'


def _format_of(path: str) -> str:
    return "parquet" if path.lower().endswith((".parquet", ".pq")) else "csv"


def _as_arrow(data: Any, name: str) -> pa.Table:
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise SpecValidationError(
        f"source {name!r}: bind a path, a pandas DataFrame or a pyarrow Table, "
        f"not {type(data).__name__}",
        field="sources",
        step=name,
    )


def fit_flow(flow: Flow, sources: Mapping[str, SourceData], *, refit: bool = False) -> Flow:
    """Learn the categories of every one-hot step, in dependency order; return the new flow.

    Parameters
    ----------
    flow : Flow
        The flow to fit.
    sources : mapping
        The training data.
    refit : bool
        Learn again where categories are set already.
    """
    for name in flow.order():
        step = flow.node(name)
        if not isinstance(step, OneHotEncode) or (step.categories is not None and not refit):
            continue
        with FlowRun.start(flow, sources, outputs=[step.input], backend=None, progress=None) as run:
            t = run._table(step.input)
            _missing(step.name, "column", [step.column], t.columns)
            col = f"CAST({quote_ident(step.column)} AS VARCHAR)"
            rows = run._guarded(
                lambda col=col, t=t: run._con.execute(
                    f"SELECT DISTINCT {col} AS c FROM {quote_ident(t.view)} "
                    f"WHERE {col} IS NOT NULL ORDER BY c"
                ).fetchall()
            )
        categories = tuple(r[0] for r in rows)
        flow = flow.replace_step(attrs.evolve(step, categories=categories))
    return flow
