"""Validate and normalize ingest input into an :class:`~mlcycle.featurestore.backend.IngestBatch`.

The facade calls :func:`prepare_batch` before a backend writes anything, so bad input fails
with a :class:`~mlcycle.errors.SpecValidationError` whose ``field`` is the column at fault, and
nothing is written. Accepted input: a pandas DataFrame, a pyarrow Table or RecordBatch, the path
of a Parquet file (or a folder of them), or a :class:`~mlcycle.flow.FlowRun` with the name of
one of its outputs.

Normalization
-------------
* every feature of the spec must be present, and no other column: Integral becomes ``int64``
  (booleans and whole floats are accepted), Fractional ``float64`` (integers are accepted, NaN
  becomes null), String ``string``;
* the record identifier and the event time must never be null (nor an empty string);
* the event time may be given as epoch seconds, as timestamps (naive ones are UTC) or as
  ISO-8601 strings in the two forms SageMaker accepts, ``yyyy-MM-ddTHH:mm:ssZ`` and
  ``yyyy-MM-ddTHH:mm:ss.SSSZ``. A Fractional event time is stored as epoch seconds, a String
  one as such an ISO string; the batch carries it as epoch seconds in the column
  :data:`~mlcycle.featurestore.backend.EVENT_EPOCH` as well.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcycle.errors import SpecValidationError
from mlcycle.featurestore.backend import EVENT_EPOCH, IngestBatch
from mlcycle.featurestore.spec import FeatureGroupSpec, FeatureType
from mlcycle.progress import ProgressCallback, report

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "CHUNK_ROWS",
    "MAX_EPOCH",
    "event_epochs",
    "flow_output",
    "format_iso",
    "normalize_record_id",
    "normalize_table",
    "prepare_batch",
    "to_epoch",
]

#: Rows validated (and reported to the progress callback) at a time.
CHUNK_ROWS = 100_000
#: Event times lie in ``[0, MAX_EPOCH)``, 1970 to the end of year 9999.
MAX_EPOCH = 253402300800.0
_ISO_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$"
_ISO_PY_RE = re.compile(_ISO_RE)
_INT64_MAX = 2**63 - 1


# -- scalars -------------------------------------------------------------------------------
def to_epoch(value: object, *, field: str) -> float:
    """Turn a user-given time into epoch seconds.

    Parameters
    ----------
    value : datetime.datetime, float, int or str
        A timezone-aware datetime (naive ones are rejected), epoch seconds, or an ISO-8601
        string (a missing offset means UTC).
    field : str
        The parameter to name in errors.

    Returns
    -------
    float

    Raises
    ------
    SpecValidationError
        If the value is no time.

    Examples
    --------
    >>> to_epoch("2020-01-01T00:00:00Z", field="t")
    1577836800.0
    >>> import datetime as dt
    >>> to_epoch(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), field="t")
    1577836800.0
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise SpecValidationError(
                f"{field}: use a timezone-aware datetime (UTC), not {value!r}", field=field
            )
        return value.timestamp()
    if isinstance(value, bool):
        raise SpecValidationError(f"{field}: {value!r} is no time", field=field)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise SpecValidationError(f"{field}: {value!r} is no time", field=field)
        return number
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise SpecValidationError(
                f"{field}: {value!r} is not an ISO-8601 time", field=field
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.timestamp()
    raise SpecValidationError(
        f"{field}: expected a datetime, epoch seconds or an ISO-8601 string, not "
        f"{type(value).__name__}",
        field=field,
    )


def format_iso(epoch: float) -> str:
    """Write epoch seconds as SageMaker's ISO-8601 form with milliseconds.

    Examples
    --------
    >>> format_iso(1577836800.25)
    '2020-01-01T00:00:00.250Z'
    """
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def normalize_record_id(spec: FeatureGroupSpec, value: object) -> int | str:
    """Check and normalize one record identifier value for ``spec``.

    An Integral identifier takes an int or a string of decimal digits; a String identifier
    takes a string (an int is written in decimal).

    Raises
    ------
    SpecValidationError
        With ``field="record_id"``.
    """
    kind = spec.feature(spec.record_identifier).type
    if isinstance(value, bool) or value is None:
        raise SpecValidationError(f"bad record identifier {value!r}", field="record_id")
    if kind == FeatureType.INTEGRAL:
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,19}", value.strip()):
            return int(value)
    elif isinstance(value, str):
        if value:
            return value
    elif isinstance(value, numbers.Integral):
        return str(int(value))
    raise SpecValidationError(
        f"bad record identifier {value!r} for a {kind.value} identifier", field="record_id"
    )


# -- sources -------------------------------------------------------------------------------
def flow_output(data: Any, *, output: str | None) -> Any:
    """Return the table a flow run gives for ``output``; any other input unchanged.

    Raises
    ------
    SpecValidationError
        If ``output`` is missing for a flow with several outputs, names no output, or is given
        for an input that is not a flow run (``field="output"``).
    """
    from mlcycle.flow.engine import FlowRun

    if isinstance(data, FlowRun):
        names = data.flow.output_names
        if output is None:
            if len(names) != 1:
                raise SpecValidationError(
                    f"flow {data.flow.name!r} has outputs {list(names)}: name one with output=",
                    field="output",
                )
            output = names[0]
        elif output not in names:
            raise SpecValidationError(
                f"flow {data.flow.name!r} has no output {output!r}", field="output"
            )
        return data.to_arrow(output)
    if output is not None:
        raise SpecValidationError("output= is for a flow run only", field="output")
    return data


def _source(data: Any, *, output: str | None) -> tuple[pa.Schema, Iterator[pa.Table], int]:
    """Return the input's schema, an iterator over chunks of it, and its number of rows."""
    import pyarrow as pa

    data = flow_output(data, output=output)
    if isinstance(data, str | os.PathLike):
        return _parquet_source(Path(data))
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    elif type(data).__module__.startswith("pandas") and type(data).__name__ == "DataFrame":
        data = _from_pandas(data)
    if not isinstance(data, pa.Table):
        raise SpecValidationError(
            "ingest a pandas DataFrame, a pyarrow Table, a Parquet path or a flow run, not "
            f"{type(data).__name__}",
            field="data",
        )
    table = data
    chunks = (table.slice(i, CHUNK_ROWS) for i in range(0, table.num_rows, CHUNK_ROWS))
    return table.schema, chunks, table.num_rows


def _parquet_source(path: Path) -> tuple[pa.Schema, Iterator[pa.Table], int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if not p.name.startswith("."))
    elif path.is_file():
        files = [path]
    else:
        raise SpecValidationError(f"no Parquet file or folder at {str(path)!r}", field="data")
    if not files:
        raise SpecValidationError(f"no Parquet files under {str(path)!r}", field="data")
    try:
        handles = [pq.ParquetFile(f) for f in files]
    except (OSError, pa.ArrowInvalid) as exc:
        raise SpecValidationError(f"cannot read Parquet at {str(path)!r}: {exc}",
                                  field="data") from None
    schema = handles[0].schema_arrow
    for f, handle in zip(files, handles, strict=True):
        if handle.schema_arrow.names != schema.names:
            raise SpecValidationError(
                f"{str(f)!r} has columns {handle.schema_arrow.names}, not {schema.names}",
                field="data",
            )
    total = sum(h.metadata.num_rows for h in handles)

    def chunks() -> Iterator[pa.Table]:
        for handle in handles:
            for batch in handle.iter_batches(batch_size=CHUNK_ROWS):
                yield pa.Table.from_batches([batch])

    return schema, chunks(), total


def _from_pandas(df: Any) -> pa.Table:
    import pyarrow as pa

    names = [c for c in df.columns]
    for name in names:
        if not isinstance(name, str):
            raise SpecValidationError(f"column names must be strings, not {name!r}",
                                      field=str(name))
    _check_unique(names)
    arrays = []
    for i, name in enumerate(names):
        column = df.iloc[:, i]
        try:
            arrays.append(pa.array(column, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise SpecValidationError(
                f"column {name!r} holds values of mixed or unsupported types ({exc})",
                field=name,
            ) from None
    return pa.Table.from_arrays(arrays, names=names)


def _check_unique(names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SpecValidationError(f"column {name!r} appears twice", field=name)
        seen.add(name)


def _check_columns(spec: FeatureGroupSpec, names: list[str]) -> None:
    _check_unique(names)
    wanted = spec.feature_names
    for name in names:
        if name not in wanted:
            raise SpecValidationError(
                f"column {name!r} is not a feature of group {spec.name!r}", field=name
            )
    for name in wanted:
        if name not in names:
            raise SpecValidationError(
                f"feature {name!r} of group {spec.name!r} is missing from the data", field=name
            )


# -- columns -------------------------------------------------------------------------------
def _bad(name: str, array: pa.ChunkedArray, mask: pa.ChunkedArray, what: str) -> None:
    import pyarrow.compute as pc

    index = pc.index(mask, True).as_py()
    if index >= 0:
        value = array[index].as_py()
        raise SpecValidationError(
            f"column {name!r}: {what} (row {index}: {value!r})", field=name
        )


def _integral(name: str, col: pa.ChunkedArray) -> pa.ChunkedArray:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_null(t) or pa.types.is_boolean(t) or pa.types.is_signed_integer(t):
        return col.cast(pa.int64())
    if pa.types.is_unsigned_integer(t):
        _bad(name, col, pc.fill_null(pc.greater(col.cast(pa.uint64()),
                                                  pa.scalar(_INT64_MAX, pa.uint64())), False),
             "value too large for Integral")
        return col.cast(pa.int64())
    if pa.types.is_floating(t):
        col = col.cast(pa.float64())
        col = pc.if_else(pc.is_nan(col), None, col)
        whole = pc.and_(pc.equal(pc.floor(col), col),
                        pc.less(pc.abs(col), 9.2e18))
        _bad(name, col, pc.invert(pc.fill_null(whole, True)),
             "Integral feature holds a value that is not a whole number")
        return col.cast(pa.int64())
    raise SpecValidationError(
        f"column {name!r} has type {t}; an Integral feature takes integers", field=name
    )


def _fractional(name: str, col: pa.ChunkedArray) -> pa.ChunkedArray:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_null(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
        return col.cast(pa.float64())
    if pa.types.is_floating(t):
        col = col.cast(pa.float64())
        return pc.if_else(pc.is_nan(col), None, col)
    raise SpecValidationError(
        f"column {name!r} has type {t}; a Fractional feature takes numbers", field=name
    )


def _string(name: str, col: pa.ChunkedArray) -> pa.ChunkedArray:
    import pyarrow as pa

    t = col.type
    if pa.types.is_null(t) or _is_text(t):
        return col.cast(pa.string())
    raise SpecValidationError(
        f"column {name!r} has type {t}; a String feature takes strings", field=name
    )


def _is_text(t: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(t) or pa.types.is_large_string(t)
                or pa.types.is_string_view(t))


def event_epochs(name: str, col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Return the epoch seconds (float64) of an event-time column of any accepted type.

    Parameters
    ----------
    name : str
        The column's name, for errors.
    col : pyarrow.ChunkedArray
        Epoch seconds, timestamps (naive ones are UTC), dates or ISO-8601 strings in
        SageMaker's two forms.

    Returns
    -------
    pyarrow.ChunkedArray

    Raises
    ------
    SpecValidationError
        With ``field=name`` on a null, unreadable or out-of-range time.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_null(t):
        epoch = col.cast(pa.float64())
    elif pa.types.is_timestamp(t):
        micros = col.cast(pa.timestamp("us", tz=t.tz)).cast(pa.int64())
        epoch = pc.divide(micros.cast(pa.float64()), 1e6)
    elif pa.types.is_date(t):
        epoch = pc.multiply(col.cast(pa.date32()).cast(pa.int32()).cast(pa.float64()), 86400.0)
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        epoch = col.cast(pa.float64())
        epoch = pc.if_else(pc.is_nan(epoch), None, epoch)
    elif _is_text(t):
        col = col.cast(pa.string())
        ok = pc.match_substring_regex(col, _ISO_RE)
        _bad(name, col, pc.invert(pc.fill_null(ok, True)),
             "event time must be ISO-8601 as yyyy-MM-ddTHH:mm:ssZ or yyyy-MM-ddTHH:mm:ss.SSSZ")
        head = pc.utf8_slice_codeunits(col, 0, 19)
        seconds = pc.strptime(head, format="%Y-%m-%dT%H:%M:%S", unit="s", error_is_null=True)
        # strptime rolls 2020-02-30 over to March: a round trip catches impossible dates
        same = pc.equal(pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S"), head)
        _bad(name, col, pc.invert(pc.fill_null(same, False)), "not a valid date and time")
        millis = pc.utf8_slice_codeunits(col, 20, 23)
        millis = pc.if_else(pc.equal(pc.utf8_length(millis), 3), millis, "0")
        epoch = pc.add(seconds.cast(pa.int64()).cast(pa.float64()),
                       pc.divide(millis.cast(pa.int64()).cast(pa.float64()), 1000.0))
    else:
        raise SpecValidationError(
            f"column {name!r} has type {t}; an event time takes epoch seconds, timestamps or "
            "ISO-8601 strings",
            field=name,
        )
    if epoch.null_count:
        _bad(name, col, pc.is_null(epoch), "the event time must not be null")
    in_range = pc.and_(pc.greater_equal(epoch, 0.0), pc.less(epoch, MAX_EPOCH))
    _bad(name, col, pc.invert(in_range), "event time out of range (1970 to 9999)")
    return epoch


def _iso_strings(epoch: pa.ChunkedArray) -> pa.ChunkedArray:
    """SageMaker's ``yyyy-MM-ddTHH:mm:ss.SSSZ`` for non-negative epoch seconds."""
    import pyarrow as pa
    import pyarrow.compute as pc

    millis = pc.floor(pc.multiply(epoch, 1000.0)).cast(pa.int64())
    seconds = pc.divide(millis, 1000)
    head = pc.strftime(seconds.cast(pa.timestamp("s", tz="UTC")), format="%Y-%m-%dT%H:%M:%S")
    tail = pc.utf8_lpad(pc.subtract(millis, pc.multiply(seconds, 1000)).cast(pa.string()),
                        width=3, padding="0")
    return pc.binary_join_element_wise(head, ".", tail, "Z", "")


def normalize_table(spec: FeatureGroupSpec, table: pa.Table) -> pa.Table:
    """Validate one table of records for ``spec`` and return it normalized.

    Parameters
    ----------
    spec : mlcycle.featurestore.FeatureGroupSpec
        The group.
    table : pyarrow.Table
        The records: one column per feature, nothing else.

    Returns
    -------
    pyarrow.Table
        The features in the spec's order, typed ``int64``, ``float64`` and ``string``, then
        :data:`~mlcycle.featurestore.backend.EVENT_EPOCH`.

    Raises
    ------
    SpecValidationError
        Naming the column (``field``) on a missing, unknown or mistyped column, a null record
        identifier or event time, or an event time that cannot be read.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    _check_columns(spec, list(table.column_names))
    columns = []
    epoch = None
    for feature in spec.features:
        name = feature.name
        col = table.column(name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if name == spec.event_time:
            epoch = event_epochs(name, col)
            if feature.type == FeatureType.FRACTIONAL:
                col = epoch
            elif _is_text(col.type):
                col = col.cast(pa.string())
            else:
                col = _iso_strings(epoch)
        elif feature.type == FeatureType.INTEGRAL:
            col = _integral(name, col)
        elif feature.type == FeatureType.FRACTIONAL:
            col = _fractional(name, col)
        else:
            col = _string(name, col)
        if name == spec.record_identifier:
            if col.null_count:
                _bad(name, col, pc.is_null(col), "the record identifier must not be null")
            if feature.type == FeatureType.STRING:
                _bad(name, col, pc.equal(pc.utf8_length(col), 0),
                     "the record identifier must not be empty")
        columns.append(col)
    assert epoch is not None
    return pa.Table.from_arrays([*columns, epoch], names=[*spec.feature_names, EVENT_EPOCH])


def prepare_batch(
    spec: FeatureGroupSpec,
    data: Any,
    *,
    write_time: dt.datetime,
    output: str | None = None,
    progress: ProgressCallback | None = None,
) -> IngestBatch:
    """Validate and normalize ``data`` into one batch for ``spec``.

    The data is checked in chunks of :data:`CHUNK_ROWS` rows, reporting
    ``progress("validate <group>", rows_done, rows_total)`` after each; every chunk is checked
    before anything is returned, so a bad row anywhere means nothing is written.

    Parameters
    ----------
    spec : mlcycle.featurestore.FeatureGroupSpec
        The group.
    data : pandas.DataFrame, pyarrow.Table, path or mlcycle.flow.FlowRun
        The records.
    write_time : datetime.datetime
        The batch's write time (UTC).
    output : str, optional
        The flow output to ingest, when ``data`` is a flow run with several outputs.
    progress : callable, optional
        The progress callback.

    Returns
    -------
    mlcycle.featurestore.backend.IngestBatch

    Raises
    ------
    SpecValidationError
        On bad input, with ``field`` the column (or ``"data"`` / ``"output"``).
    """
    import pyarrow as pa

    schema, chunks, total = _source(data, output=output)
    _check_columns(spec, list(schema.names))
    stage = f"validate {spec.name}"
    parts = []
    done = 0
    for chunk in chunks:
        parts.append(normalize_table(spec, chunk))
        done += chunk.num_rows
        report(progress, stage, done, total)
    if not parts:
        parts.append(normalize_table(spec, schema.empty_table()))
    table = pa.concat_tables(parts).combine_chunks()
    return IngestBatch(table=table, write_time=write_time, batch_id=uuid.uuid4().hex)
