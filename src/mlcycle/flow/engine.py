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
import re
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
from mlcycle.flow.expr import Expression
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

_INT_TEXT = "'[+-]?[0-9]+'"


def _is_int_text(q: str) -> str:
    """SQL: text ``q`` is a whole number (DuckDB's own cast would round ``'1.5'`` to 2)."""
    return f"regexp_full_match(trim({q}), {_INT_TEXT})"


def _cast_sql(column: str, type_name: str, source_type: str | None) -> str:
    """SQL casting ``column`` to logical ``type_name``; text to int only if it is whole."""
    q = quote_ident(column)
    if type_name == "int" and source_type == "VARCHAR":
        message = sql_literal(f"not an integer in column {column!r}")
        return (
            f"CASE WHEN {q} IS NULL OR {_is_int_text(q)} THEN CAST({q} AS BIGINT) "
            f"ELSE CAST(error({message}) AS BIGINT) END"
        )
    return f"CAST({q} AS {TYPES[type_name]})"


_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
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
#: Integer types whose ``sum`` DuckDB widens to HUGEINT and that fit a BIGINT sum again.
_SMALL_INTEGERS = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
}
_CSV_COLUMN_RE = re.compile(r'converting column "((?:[^"]|"")+)"')


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
            field=missing[0] if field in {"columns", "schema"} else field,
            step=step,
        )


def _select_list(columns: Sequence[str], replace: Mapping[str, str] | None = None) -> str:
    replace = replace or {}
    return ", ".join(
        f"{replace[c]} AS {quote_ident(c)}" if c in replace else quote_ident(c) for c in columns
    )


def _check_unique(step: str, names: Sequence[str], *, field: str | None = None) -> None:
    """Raise if two column names are equal up to case (DuckDB would silently rename one)."""
    seen: dict[str, str] = {}
    for name in names:
        key = name.lower()
        if key in seen:
            raise SpecValidationError(
                f"step {step!r}: the output would have columns {seen[key]!r} and {name!r}, "
                "which DuckDB does not tell apart (column names are case-insensitive)",
                field=field or name,
                step=step,
            )
        seen[key] = name


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
        from mlcycle.lineage.record import FlowRecorder

        self._lineage = FlowRecorder(backend, flow, sources)
        self._recorded: dict[str, str | None] = {}

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
            raise self._bind_error(exc, name) from exc
        self._tables[name] = self._describe(view, name)
        logger.debug("flow %s: planned %s", self.flow.name, name)

    def _bind_error(self, exc: Exception, name: str) -> MlcycleError:
        """Name the field behind SQL that DuckDB refuses to plan, else wrap ``exc``."""
        node = self.flow.node(name)
        field = {Formula: "expression", Filter: "predicate"}.get(type(node))
        if field is not None and not isinstance(exc, MlcycleError):
            # the expression does not type-check against its columns (text times a number...)
            return SpecValidationError(
                f"step {name!r}: the {field} cannot be computed: {exc}", field=field, step=name
            )
        return _step_error(exc, name)

    def _cast_sites(self, name: str) -> list[tuple[str, dict[str, str], str | None]]:
        """The casts step ``name`` makes: (view read, column to type, field to blame)."""
        node = self.flow.node(name)
        if isinstance(node, Source) and node.schema:
            return [(f"raw__{name}", dict(node.schema), None)]
        if isinstance(node, CastColumns) and node.input in self._tables:
            return [(self._tables[node.input].view, dict(node.columns), None)]
        if (
            isinstance(node, AddEventTime)
            and node.column is not None
            and node.input in self._tables
            and self.schema(node.input).get(node.column) == "VARCHAR"
        ):
            return [(self._tables[node.input].view, {node.column: "timestamp"}, "column")]
        return []

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
            exists = glob.glob(path) if glob.has_magic(path) else Path(path).exists()
            if not exists:
                raise NotFoundError(
                    f"source {source.name!r}: no file {path}", kind="file", name=path
                )
            fmt = source.format if source.format != "dataframe" else _format_of(path)
            if fmt == "csv":
                reader, inferred = self._csv_reader(source, path)
            else:
                reader, inferred = f"read_parquet({sql_literal(path)})", {}
            sql = f"SELECT * FROM {reader}"
        else:
            inferred = {}
            table = _as_arrow(data, source.name)
            _check_unique(source.name, table.column_names)
            self._con.register(f"data__{source.name}", table)
            sql = f"SELECT * FROM {quote_ident('data__' + source.name)}"
        try:
            self._con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(raw)} AS {sql}")
        except Exception as exc:
            raise _step_error(exc, source.name) from exc
        table = self._describe(raw, source.name)
        if source.schema or inferred:
            _missing(source.name, "schema", list(source.schema), table.columns)
            casts = {c: f"CAST({quote_ident(c)} AS {t})" for c, t in inferred.items()}
            raw_types = dict(zip(table.columns, table.types, strict=True))
            casts.update(
                {c: _cast_sql(c, t, raw_types.get(c)) for c, t in source.schema.items()}
            )
            self._create_view(
                source.name,
                f"SELECT {_select_list(table.columns, casts)} FROM {quote_ident(raw)}",
            )
        else:
            self._tables[source.name] = table

    def _csv_reader(self, source: Source, path: str) -> tuple[str, dict[str, str]]:
        """Sniff the CSV once; return a ``read_csv`` call that never sniffs again, and casts.

        Columns named in the source's schema are read as text and cast by the source's view,
        so a value that does not fit is reported with its column instead of failing the read.
        The sniffer looks at a sample only, and DuckDB's reader would silently round a later
        ``1.5`` or ``5e-05`` in a column it took for integers; so integer-looking columns are
        read as text and typed by one pass over the whole file: integers if every value is
        one, else floats if every value is a number, else text.
        """
        # sniff_csv reads one file: a glob is sniffed from its first file
        sample = sorted(glob.glob(path))[0] if glob.has_magic(path) else path
        try:
            delim, quote, escape, skip, header, columns = self._con.execute(
                "SELECT Delimiter, Quote, Escape, SkipRows, HasHeader, Columns FROM "
                f"sniff_csv({sql_literal(sample)}, delim = {sql_literal(source.delimiter)}, "
                "header = true)"
            ).fetchall()[0]
        except Exception as exc:
            raise _step_error(exc, source.name) from exc
        sniffed = {c["name"]: c["type"] for c in columns}
        integers = [
            n for n, t in sniffed.items() if n not in source.schema and t in _INTEGER_TYPES
        ]
        types = {
            n: "VARCHAR" if n in source.schema or n in integers else t for n, t in sniffed.items()
        }
        spec = ", ".join(f"{sql_literal(n)}: {sql_literal(t)}" for n, t in types.items())
        reader = (
            f"read_csv({sql_literal(path)}, auto_detect = false, header = {bool(header)}, "
            f"delim = {sql_literal(delim)}, quote = {sql_literal(_one_char(quote))}, "
            f"escape = {sql_literal(_one_char(escape))}, skip = {int(skip)}, "
            f"columns = {{{spec}}})"
        )
        if not integers:
            return reader, {}
        checks = []
        for n in integers:
            q = quote_ident(n)
            checks.append(f"bool_and({q} IS NULL OR {_is_int_text(q)})")
            checks.append(f"bool_and({q} IS NULL OR TRY_CAST({q} AS DOUBLE) IS NOT NULL)")
        try:
            flags = self._con.execute(f"SELECT {', '.join(checks)} FROM {reader}").fetchall()[0]
        except Exception as exc:
            raise _step_error(exc, source.name) from exc
        inferred = {}
        for i, n in enumerate(integers):
            all_int, all_float = flags[2 * i], flags[2 * i + 1]
            if all_int is not False:
                inferred[n] = sniffed[n]
            elif all_float:
                inferred[n] = "DOUBLE"
        return reader, inferred

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
        arrow = _as_arrow(result, step.name)
        _check_unique(step.name, arrow.column_names, field="function")
        self._con.register(f"data__{step.name}", arrow)
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
                for view, casts, blame in self._cast_sites(name):
                    for column, type_name in casts.items():
                        q = quote_ident(column)
                        strict = (
                            f" OR (typeof({q}) = 'VARCHAR' AND NOT {_is_int_text(q)})"
                            if type_name == "int"
                            else ""
                        )
                        try:
                            rows = self._con.execute(
                                f"SELECT {q} FROM {quote_ident(view)} WHERE {q} IS NOT NULL "
                                f"AND (TRY_CAST({q} AS {TYPES[type_name]}) IS NULL{strict}) "
                                "LIMIT 1"
                            ).fetchall()
                        except Exception:  # the view read fails upstream of this cast
                            continue
                        if rows:
                            row = rows[0]
                            return SpecValidationError(
                                f"step {name!r}: value {row[0]!r} of column {column!r} cannot "
                                f"be cast to {type_name}",
                                field=blame or column,
                                step=name,
                            )
            csv_error = self._csv_error(exc)
            if csv_error is not None:
                return csv_error
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

    def _csv_error(self, exc: Exception) -> SpecValidationError | None:
        """Name the source and column of a CSV value that does not fit its sniffed type."""
        match = _CSV_COLUMN_RE.search(str(exc))
        if match is None:
            return None
        column = match.group(1).replace('""', '"')
        for name in self.flow.order():
            node = self.flow.node(name)
            if isinstance(node, Source) and name in self._tables:
                data = self._sources.get(name, node.path)
                if isinstance(data, str | os.PathLike) and column in self._tables[name].columns:
                    return SpecValidationError(
                        f"source {name!r}: a value of column {column!r} does not fit the type "
                        f"detected from the file's first rows; give the column a type in the "
                        f"source's schema: {exc}",
                        field=column,
                        step=name,
                    )
        return None

    def to_arrow(self, name: str) -> pa.Table:
        """Compute table ``name`` and return it as a pyarrow Table.

        On a backend that records lineage, the table is recorded as an output of this run
        and carries its lineage ARN in its schema metadata.
        """
        table = self._materialize(self._table(name).view)
        if self._lineage.enabled:
            from mlcycle.lineage.record import attach_arn

            if name not in self._recorded:
                self._recorded[name] = self._lineage.output(name, table=table)
            table = attach_arn(table, self._recorded[name])
        return table

    def to_pandas(self, name: str) -> pd.DataFrame:
        """Compute table ``name`` and return it as a pandas DataFrame (see :meth:`to_arrow`)."""
        # through Arrow: several times faster than DuckDB's own .df() for text columns
        table = self.to_arrow(name)
        frame = table.to_pandas()
        if self._lineage.enabled:
            from mlcycle.lineage.record import attach_arn, carried_arn

            attach_arn(frame, carried_arn(table))
        return frame

    def count(self, name: str) -> int:
        """Compute the number of rows of table ``name``."""
        view = self._table(name).view
        row = self._guarded(
            lambda: self._con.execute(f"SELECT count(*) FROM {quote_ident(view)}").fetchall()[0]
        )
        return int(row[0])

    def to_parquet(self, name: str, path: str | os.PathLike[str]) -> Path:
        """Write table ``name`` to a Parquet file atomically; return the path."""
        return self._copy(name, path, "FORMAT PARQUET, COMPRESSION ZSTD, COMPRESSION_LEVEL 1")

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
                ).fetchall()
            )
        report(self._progress, f"write {self.flow.name}", 1, 1)
        self._lineage.output(name, path=target)
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
    types = dict(zip(t.columns, t.types, strict=True))
    casts = {c: _cast_sql(c, ty, types.get(c)) for c, ty in step.columns.items()}
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
    _check_unique(step.name, names)
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
    for c, v in step.values.items():
        try:  # a constant: DuckDB casts it now, not when the data is read
            run._con.execute(f"SELECT CAST({sql_literal(v)} AS {types[c]})").fetchall()[0]
            # DuckDB would round 0.5 into an integer column; refuse rather than change it
            fits = not (isinstance(v, float) and not v.is_integer() and types[c] in _SMALL_INTEGERS)
        except Exception:
            fits = False
        if not fits:
            raise SpecValidationError(
                f"step {step.name!r}: fill value {v!r} does not fit column {c!r} of type "
                f"{types[c]}",
                field=c,
                step=step.name,
            )
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
    known = ", ".join(sql_literal(c) for c in step.categories)
    # with no categories every value is unknown (NOT IN (NULL) would be NULL, never true)
    unknown = f"{col} IS NOT NULL" + (f" AND {col} NOT IN ({known})" if known else "")
    if step.handle_unknown == "error":
        rows = run._guarded(
            lambda: run._con.execute(
                f"SELECT DISTINCT {col} FROM {quote_ident(t.view)} WHERE {unknown} LIMIT 5"
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
        new[f"{step.column_prefix}other"] = f"CAST({unknown} AS BIGINT)"
    kept = [c for c in t.columns if c != step.column or step.keep_input]
    clash = sorted({n for n in new if n.lower() in {c.lower() for c in kept}})
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
    for field in attrs.fields(type(step)):
        expression = getattr(step, field.name)
        if not isinstance(expression, Expression):
            continue
        try:
            expression.check_columns(t.columns)
        except SpecValidationError as exc:
            raise SpecValidationError(
                f"step {step.name!r}: {exc}", field=field.name, step=step.name
            ) from None


def _check_output(step: Formula | AddEventTime, t: _Table) -> None:
    """A new column must not differ from an existing one only in case."""
    if step.output not in t.columns:
        _check_unique(step.name, [*t.columns, step.output], field="output")


def _formula(run: FlowRun, step: Formula, t: _Table) -> str:
    _checked(step, t)
    _check_output(step, t)
    sql = f"({step.expression.to_sql()})"
    if step.output in t.columns:
        return f"SELECT {_select_list(t.columns, {step.output: sql})} FROM {quote_ident(t.view)}"
    return (
        f"SELECT {_select_list(t.columns)}, {sql} AS {quote_ident(step.output)} "
        f"FROM {quote_ident(t.view)}"
    )


def _filter(run: FlowRun, step: Filter, t: _Table) -> str:
    _checked(step, t)
    predicate = step.predicate.to_sql()
    try:
        kind = run._con.execute(
            f"DESCRIBE SELECT ({predicate}) AS p FROM {quote_ident(t.view)}"
        ).fetchall()[0][1]
    except Exception as exc:
        raise run._bind_error(exc, step.name) from exc
    if str(kind) not in {"BOOLEAN", '"NULL"'}:
        raise SpecValidationError(
            f"step {step.name!r}: the predicate {step.predicate.text!r} gives {kind}, "
            "not a boolean",
            field="predicate",
            step=step.name,
        )
    return f"SELECT * FROM {quote_ident(t.view)} WHERE ({predicate})"


def _join(run: FlowRun, step: Join, left: _Table, right: _Table) -> str:
    pairs = step.keys
    _missing(step.name, "left_on" if step.left_on else "on", [a for a, _ in pairs], left.columns)
    _missing(step.name, "right_on" if step.right_on else "on", [b for _, b in pairs], right.columns)
    left_types = dict(zip(left.columns, left.types, strict=True))
    right_types = dict(zip(right.columns, right.types, strict=True))
    for a, b in pairs:
        if _type_family(left_types[a]) != _type_family(right_types[b]):
            # DuckDB would cast one side to the other's type, and fail (or worse, match
            # '01' to 1) only when the data is read
            raise SpecValidationError(
                f"step {step.name!r}: key {a!r} is {left_types[a]} on the left but {b!r} is "
                f"{right_types[b]} on the right; cast one of them first",
                field="left_on" if step.left_on else "on",
                step=step.name,
            )
    shared_keys = {a for a, b in pairs if a == b}
    left_rest = [c for c in left.columns if c not in shared_keys]
    right_rest = [c for c in right.columns if c not in shared_keys]
    # columns on both sides get the suffixes; like DuckDB, names that differ only in case clash
    both = {c.lower() for c in left_rest} & {c.lower() for c in right_rest}
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
            out = c + lsuf if c.lower() in both else c
            items.append(f"l.{quote_ident(c)} AS {quote_ident(out)}")
    for c in right_rest:
        out = c + rsuf if c.lower() in both else c
        items.append(f"r.{quote_ident(c)} AS {quote_ident(out)}")
    names = [i.rsplit(" AS ", 1)[1].lower() for i in items]
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
    _check_unique(step.name, [*step.group_by, *step.aggregations], field="aggregations")
    types = dict(zip(t.columns, t.types, strict=True))
    items = [quote_ident(c) for c in step.group_by]
    for out, (func, column) in step.aggregations.items():
        arg = "*" if column == "*" else quote_ident(column)
        call = f"{AGGREGATIONS[func]}({arg})"
        if func in {"mean", "sum"}:
            type_name = types[column]
            numeric = type_name.startswith(_NUMERIC_PREFIXES)
            if not numeric and type_name != "BOOLEAN":
                raise SpecValidationError(
                    f"step {step.name!r}: cannot take the {func} of column {column!r} of type "
                    f"{type_name}",
                    field=out,
                    step=step.name,
                )
            if func == "mean" and not type_name.startswith(("DOUBLE", "FLOAT", "REAL")):
                call = f"avg(CAST({arg} AS DOUBLE))"  # as pandas: a float, also for decimals
            elif func == "sum" and (type_name in _SMALL_INTEGERS or type_name == "BOOLEAN"):
                # DuckDB sums integers into HUGEINT (a float in pandas); pandas keeps int64
                call = f"CAST(sum(CAST({arg} AS BIGINT)) AS BIGINT)"
        items.append(f"{call} AS {quote_ident(out)}")
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
        try:  # a constant: DuckDB parses it now, not when the data is read
            run._con.execute(f"SELECT {epoch}").fetchall()[0]
        except Exception:
            raise SpecValidationError(
                f"step {step.name!r}: {step.value!r} is not an ISO-8601 time",
                field="value",
                step=step.name,
            ) from None
    else:
        epoch = f"CAST({sql_literal(float(step.value))} AS DOUBLE)"  # type: ignore[arg-type]
    if step.format == "iso":
        # milliseconds: Feature Store takes yyyy-MM-ddTHH:mm:ssZ and yyyy-MM-ddTHH:mm:ss.SSSZ
        expr = f"strftime(to_timestamp({epoch}), '%Y-%m-%dT%H:%M:%S.%gZ')"
    else:
        expr = epoch
    _check_output(step, t)
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


def _type_family(type_name: str) -> str:
    """Group DuckDB types whose values compare without a lossy cast."""
    if type_name.startswith(_NUMERIC_PREFIXES):
        return "number"
    if type_name.startswith(("TIMESTAMP", "DATE")):
        return "time"
    return type_name


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
