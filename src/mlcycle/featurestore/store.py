"""The feature store facade: :class:`FeatureStore`, :class:`FeatureGroup`, :class:`TrainingSet`.

The facade validates and normalizes input, applies TTL with its clock, generates the SQL of
offline reads and training sets, logs to ``logging.getLogger("mlcycle")`` and reports progress
through callbacks; the backend (``backend.feature_store``) stores and executes.

Semantics (SageMaker Feature Store's)
-------------------------------------
* A record is identified by (record identifier, event time).
* The online store keeps, per record identifier, the record with the latest event time: a
  late-arriving older record does not replace a newer one; an equal event time does.
* The offline store keeps every write, append-only, each with its ``write_time``.
* TTL: a record expires ``ttl`` seconds after its event time. Online reads return None for an
  expired record; offline reads "now" leave expired records out unless asked; a training set
  takes a joined record only while ``base row's time - record's time < ttl``.
* Deleting a record: soft (the online record is marked deleted and reads return None; an older
  write cannot bring it back, a newer one can) or hard (the online record is removed). Either
  way the offline store gets a delete marker (``is_deleted`` true).

Examples
--------
>>> import pandas as pd
>>> from mlcycle.featurestore import FeatureGroupSpec, FeatureStore
>>> store = FeatureStore(str(getfixture("tmp_path") / "ws"))
>>> spec = FeatureGroupSpec(
...     name="users", record_identifier="userId", event_time="EventTime",
...     features=[("userId", "Integral"), ("EventTime", "Fractional"), ("score", "Fractional")],
... )
>>> users = store.create(spec)
>>> users.ingest(pd.DataFrame({"userId": [1, 2], "EventTime": [10.0, 10.0],
...                            "score": [0.5, 0.7]})).rows
2
>>> users.get_record(2)
{'userId': 2, 'EventTime': 10.0, 'score': 0.7}
>>> users.get_record(3) is None
True
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from mlcycle._atomic import atomic_path
from mlcycle._logging import logger
from mlcycle.backends.base import Backend, Capability
from mlcycle.errors import (
    ConfigurationError,
    InvalidStateError,
    NotFoundError,
    SpecValidationError,
)
from mlcycle.featurestore.backend import FeatureGroupInfo, FeatureStoreBackend, IngestResult
from mlcycle.featurestore.ingest import (
    event_epochs,
    flow_output,
    normalize_record_id,
    prepare_batch,
    to_epoch,
)
from mlcycle.featurestore.spec import FeatureGroupSpec, FeatureType
from mlcycle.featurestore.training import (
    BASE_TABLE,
    ROW,
    TIME,
    BaseColumns,
    FeatureJoin,
    TrainingSetSpec,
    get_dialect,
    records_sql,
    sort_result,
    training_sql,
    ttl_views,
)
from mlcycle.progress import ProgressCallback

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

__all__ = ["Clock", "FeatureGroup", "FeatureStore", "TrainingSet"]

#: A clock returns the current time as a timezone-aware datetime.
Clock = Callable[[], dt.datetime]
KIND = "feature-group"


def _system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso_epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


class FeatureStore:
    """Feature groups on one backend.

    Parameters
    ----------
    backend : mlcycle.Backend, str or path, optional
        A backend bundle, or a URI or path for :func:`mlcycle.connect` (default: the configured
        backend, ``./.mlcycle`` if none). A store that connected itself closes the backend in
        :meth:`close`.
    clock : callable, optional
        Returns the current time as a timezone-aware datetime; it stamps write times and
        decides expiry (TTL). Default: the system clock. Tests pass a fake one.

    Raises
    ------
    UnsupportedOperationError
        If the backend has no feature store.

    Examples
    --------
    >>> store = FeatureStore(str(getfixture("tmp_path") / "ws"))
    >>> store.find("nothing") is None
    True
    >>> list(store.list())
    []
    """

    def __init__(
        self,
        backend: Backend | str | os.PathLike[str] | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._owned = not isinstance(backend, Backend)
        if backend is None or isinstance(backend, str | os.PathLike):
            import mlcycle

            backend = mlcycle.connect(None if backend is None else os.fspath(backend))
        if not isinstance(backend, Backend):
            raise ConfigurationError(f"not a backend: {type(backend).__name__}")
        backend.require(Capability.FEATURE_STORE)
        if clock is not None and not callable(clock):
            raise ConfigurationError("clock must be a callable returning a datetime")
        self._backend = backend
        self._clock = clock or _system_clock
        self._fs: FeatureStoreBackend | None = None

    def __repr__(self) -> str:
        return f"<FeatureStore {self._backend.uri}>"

    @property
    def backend(self) -> Backend:
        """The backend bundle."""
        return self._backend

    @property
    def _store(self) -> FeatureStoreBackend:
        fs = self._fs
        if fs is None:
            fs = self._fs = self._backend.feature_store
        return fs

    def now(self) -> dt.datetime:
        """Return the clock's current time (UTC).

        Raises
        ------
        ConfigurationError
            If the clock returns anything but a timezone-aware datetime.
        """
        moment = self._clock()
        if not isinstance(moment, dt.datetime) or moment.utcoffset() is None:
            raise ConfigurationError(f"the clock returned {moment!r}, not an aware datetime")
        return moment.astimezone(dt.UTC)

    # -- groups ------------------------------------------------------------------------------
    def create(self, spec: FeatureGroupSpec) -> FeatureGroup:
        """Create a feature group.

        Parameters
        ----------
        spec : mlcycle.featurestore.FeatureGroupSpec
            What the group is.

        Returns
        -------
        FeatureGroup

        Raises
        ------
        AlreadyExistsError
            If a group of that name exists.
        """
        if not isinstance(spec, FeatureGroupSpec):
            raise SpecValidationError(f"create takes a FeatureGroupSpec, not "
                                      f"{type(spec).__name__}", field="spec")
        info = self._store.create_group(spec)
        logger.info("feature group %r created (%d features, online=%s, offline=%s, ttl=%s)",
                    spec.name, len(spec.features), spec.online, spec.offline, spec.ttl)
        from mlcycle.lineage.record import record_feature_group

        record_feature_group(self.backend, info)
        return FeatureGroup(self, info)

    def get(self, name: str) -> FeatureGroup:
        """Return the group called ``name``.

        Raises
        ------
        NotFoundError
            If there is none.
        """
        if isinstance(name, FeatureGroup):
            name = name.name
        return FeatureGroup(self, self._store.describe_group(name))

    def find(self, name: str) -> FeatureGroup | None:
        """Return the group called ``name``, or None if there is none."""
        try:
            return self.get(name)
        except NotFoundError:
            return None

    def list(self) -> Iterator[FeatureGroupInfo]:
        """Iterate over every group's state, sorted by name."""
        yield from self._store.list_groups()

    def delete(self, name: str) -> None:
        """Delete the group called ``name`` with both its stores.

        Raises
        ------
        NotFoundError
            If there is none.
        """
        if isinstance(name, FeatureGroup):
            name = name.name
        self._store.delete_group(name)
        logger.info("feature group %r deleted", name)

    # -- offline SQL -------------------------------------------------------------------------
    def query_arrow(
        self,
        sql: str,
        *,
        groups: Sequence[str | FeatureGroup] | None = None,
        include_expired: bool = False,
    ) -> pa.Table:
        """Run SQL over the offline stores; as :meth:`query`, returning a pyarrow Table."""
        if not isinstance(sql, str) or not sql.strip():
            raise SpecValidationError("give a SQL query", field="sql")
        if groups is None:
            specs = [info.spec for info in self.list() if info.spec.offline]
        else:
            specs = [self._offline_spec(g) for g in groups]
        dialect = get_dialect(self._store.dialect)
        if not include_expired:
            sql = ttl_views(sql, specs, dialect=dialect, now=self.now().timestamp())
        return self._store.sql(sql, tables=specs)

    def query(
        self,
        sql: str,
        *,
        groups: Sequence[str | FeatureGroup] | None = None,
        include_expired: bool = False,
    ) -> pd.DataFrame:
        """Run SQL over the offline stores of feature groups.

        Each group is a table named after it (quote names with ``-``: ``"my-group"``) with the
        features, then ``write_time``, ``api_invocation_time`` (timestamps with time zone,
        UTC) and ``is_deleted``: every write, delete markers and superseded writes included.

        Parameters
        ----------
        sql : str
            The query, in the backend's dialect (DuckDB locally, Athena on SageMaker).
        groups : sequence of str or FeatureGroup, optional
            The groups the query reads (default: every group with an offline store).
        include_expired : bool
            Keep records older than their group's TTL (left out by default).

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        SpecValidationError
            If the SQL is bad (``field="sql"``).
        NotFoundError
            If a group does not exist.
        """
        return self.query_arrow(sql, groups=groups, include_expired=include_expired).to_pandas()

    def _offline_spec(self, group: str | FeatureGroup) -> FeatureGroupSpec:
        spec = group.spec if isinstance(group, FeatureGroup) else self.get(group).spec
        if not spec.offline:
            raise InvalidStateError(f"feature group {spec.name!r} has no offline store",
                                    state="online-only")
        return spec

    # -- training sets -----------------------------------------------------------------------
    def training_set(
        self,
        base: FeatureGroup | str | pd.DataFrame | pa.Table,
        *,
        event_time: str | None = None,
        features: Sequence[str] | None = None,
    ) -> TrainingSet:
        """Start a point-in-time training set.

        Parameters
        ----------
        base : FeatureGroup, str, pandas.DataFrame or pyarrow.Table
            The rows: a feature group (or its name), whose visible records each become a row,
            or a table of entity keys and event times.
        event_time : str, optional
            A table base's event-time column: epoch seconds, timestamps (naive ones are UTC)
            or ISO-8601 strings.
        features : sequence of str, optional
            The base columns to keep (default: all).

        Returns
        -------
        TrainingSet
            Join groups to it with :meth:`TrainingSet.join`.
        """
        if isinstance(base, FeatureGroup | str):
            name = base.name if isinstance(base, FeatureGroup) else base
            spec = TrainingSetSpec(base=name, features=features)
            return TrainingSet(self, spec, None)
        table = _base_table(base, event_time)
        spec = TrainingSetSpec(event_time=event_time, features=features)
        return TrainingSet(self, spec, table)

    def close(self) -> None:
        """Close the backend if this store connected it itself."""
        if self._owned:
            self._backend.close()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _base_table(base: Any, event_time: str | None) -> pa.Table:
    import pyarrow as pa

    if type(base).__module__.startswith("pandas") and type(base).__name__ == "DataFrame":
        from mlcycle.featurestore.ingest import _from_pandas

        table = _from_pandas(base)
    elif isinstance(base, pa.Table):
        table = base
    else:
        raise SpecValidationError(
            "a training set's base is a feature group, a DataFrame or a pyarrow Table, not "
            f"{type(base).__name__}",
            field="base",
        )
    for name in table.column_names:
        if name.startswith("__"):
            raise SpecValidationError(f"base column {name!r}: names starting with '__' are "
                                      "reserved", field=name)
    if event_time is None:
        raise SpecValidationError("name the base's event-time column", field="event_time")
    if event_time not in table.column_names:
        raise SpecValidationError(f"the base has no column {event_time!r}", field=event_time)
    epoch = event_epochs(event_time, table.column(event_time))
    table = table.append_column(ROW, pa.array(range(table.num_rows), type=pa.int64()))
    return table.append_column(TIME, epoch)


def _kind(t: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    return str(t)


class FeatureGroup:
    """A feature group: its name and state, and the methods that read and write it.

    Made by :meth:`FeatureStore.create` and :meth:`FeatureStore.get`; holds the state seen
    then (:attr:`info`); :meth:`describe` reads it again.
    """

    def __init__(self, store: FeatureStore, info: FeatureGroupInfo) -> None:
        self._store = store
        self._info = info
        spec = info.spec
        self._names = spec.feature_names
        self._event = spec.event_time
        self._iso = spec.feature(spec.event_time).type == FeatureType.STRING

    def __repr__(self) -> str:
        return f"<FeatureGroup {self.name!r}>"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, FeatureGroup) and other._store is self._store
                and other._info == self._info)

    def __hash__(self) -> int:
        return hash((id(self._store), self.name))

    @property
    def name(self) -> str:
        """The group's name."""
        return self._info.spec.name

    @property
    def spec(self) -> FeatureGroupSpec:
        """What the group is."""
        return self._info.spec

    @property
    def info(self) -> FeatureGroupInfo:
        """The state seen when this handle was made (or last described)."""
        return self._info

    @property
    def store(self) -> FeatureStore:
        """The store this group belongs to."""
        return self._store

    def describe(self) -> FeatureGroupInfo:
        """Read the group's state again.

        Raises
        ------
        NotFoundError
            If the group was deleted.
        """
        self._info = self._store._store.describe_group(self.name)
        return self._info

    def delete(self) -> None:
        """Delete the group with both its stores."""
        self._store.delete(self.name)

    # -- writing -----------------------------------------------------------------------------
    def ingest(
        self,
        data: Any,
        *,
        output: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestResult:
        """Write records to the offline and online stores.

        The whole input is validated before anything is written; the batch then becomes
        visible whole or not at all (on the local backend).

        Parameters
        ----------
        data : pandas.DataFrame, pyarrow.Table, path or mlcycle.flow.FlowRun
            The records: one column per feature, nothing else. A path names a Parquet file or
            a folder of them; a flow run gives the output named by ``output``.
        output : str, optional
            The flow output to ingest (needed when the flow has several).
        progress : callable, optional
            ``progress(stage, done, total)``: ``"validate <group>"`` then ``"ingest <group>"``,
            in rows.

        Returns
        -------
        mlcycle.featurestore.IngestResult

        Raises
        ------
        SpecValidationError
            On a missing, unknown or mistyped column, or a null record identifier or event
            time; ``field`` names the column. Nothing is written.
        NotFoundError
            If the group was deleted.
        """
        started = time.perf_counter()
        spec = self.spec
        data = flow_output(data, output=output)  # the table, carrying its lineage
        batch = prepare_batch(spec, data, write_time=self._store.now(), progress=progress)
        result = self._store._store.write_batch(spec, batch, progress=progress)
        seconds = time.perf_counter() - started
        logger.info("ingested %d rows into %r in %.2f s (%d online records changed)",
                    result.rows, spec.name, seconds, result.online_updated)
        from mlcycle.lineage.record import record_ingest

        record_ingest(self._store.backend, self.info, data, rows=result.rows)
        return result

    def delete_record(
        self,
        record_id: Any,
        *,
        event_time: dt.datetime | float | str | None = None,
        hard: bool = False,
    ) -> None:
        """Delete a record, as SageMaker's ``DeleteRecord`` does.

        Parameters
        ----------
        record_id : int or str
            The record identifier.
        event_time : datetime.datetime, float or str, optional
            The deletion's event time (default: now). Online, only a record whose event time
            is not later is deleted.
        hard : bool
            Remove the online record (True), or mark it deleted (False, "soft": reads return
            None, and only a write with a later event time brings it back). A hard delete
            older than the stored record changes nothing.
        """
        spec = self.spec
        rid = normalize_record_id(spec, record_id)
        now = self._store.now()
        event = now.timestamp() if event_time is None else to_epoch(event_time,
                                                                    field="event_time")
        self._store._store.delete_record(spec, rid, event_time=event, hard=bool(hard),
                                         write_time=now)
        logger.info("%s-deleted record %r of %r", "hard" if hard else "soft", rid, spec.name)

    # -- online reads ------------------------------------------------------------------------
    def _check_online(self) -> None:
        if not self._info.spec.online:
            raise InvalidStateError(f"feature group {self.name!r} has no online store",
                                    state="offline-only")

    def _select(self, features: Sequence[str]) -> tuple[str, ...]:
        if isinstance(features, str):
            features = (features,)
        for name in features:
            if name not in self._names:
                raise SpecValidationError(f"feature group {self.name!r} has no feature "
                                          f"{name!r}", field=name)
        return tuple(features)

    def _fresh(self, record: dict[str, Any], now: float) -> bool:
        event = record[self._event]
        epoch = _iso_epoch(event) if self._iso else event
        return now - epoch < self._info.spec.ttl  # type: ignore[operator]

    def get_record(
        self, record_id: Any, *, features: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        """Read one record from the online store.

        Parameters
        ----------
        record_id : int or str
            The record identifier.
        features : sequence of str, optional
            The features to return (default: all).

        Returns
        -------
        dict or None
            Feature name -> value (int, float, str or None); None if there is no such record,
            or it was deleted, or it has expired.

        Raises
        ------
        InvalidStateError
            If the group has no online store.
        """
        spec = self._info.spec
        if not spec.online:
            self._check_online()
        record = self._store._store.read_online(spec, [normalize_record_id(spec, record_id)])[0]
        if record is None:
            return None
        if spec.ttl is not None and not self._fresh(record, self._store.now().timestamp()):
            return None
        if features is not None:
            return {name: record[name] for name in self._select(features)}
        return record

    def batch_get_record(
        self, record_ids: Sequence[Any], *, features: Sequence[str] | None = None
    ) -> list[dict[str, Any] | None]:
        """Read several records from the online store.

        Parameters
        ----------
        record_ids : sequence of int or str
            The record identifiers.
        features : sequence of str, optional
            The features to return (default: all).

        Returns
        -------
        list of dict or None
            One entry per identifier, in order; None where there is no live record.
        """
        spec = self._info.spec
        self._check_online()
        ids = [normalize_record_id(spec, r) for r in record_ids]
        if not ids:
            return []
        chosen = None if features is None else self._select(features)
        records = self._store._store.read_online(spec, ids)
        now = self._store.now().timestamp()
        out: list[dict[str, Any] | None] = []
        for record in records:
            if record is None or (spec.ttl is not None and not self._fresh(record, now)):
                out.append(None)
            elif chosen is not None:
                out.append({name: record[name] for name in chosen})
            else:
                out.append(dict(record))
        return out

    # -- offline reads -----------------------------------------------------------------------
    def records_arrow(
        self,
        *,
        latest: bool = False,
        as_of: dt.datetime | None = None,
        include_expired: bool = False,
        include_deleted: bool = False,
        include_duplicates: bool = False,
    ) -> pa.Table:
        """Read the offline store; as :meth:`records`, returning a pyarrow Table."""
        spec = self._store._offline_spec(self)
        sql = records_sql(
            spec,
            dialect=get_dialect(self._store._store.dialect),
            now=self._store.now().timestamp(),
            latest=latest,
            as_of=_aware(as_of, "as_of"),
            include_expired=include_expired,
            include_deleted=include_deleted,
            include_duplicates=include_duplicates,
        )
        return sort_result(self._store._store.sql(sql, tables=[spec]))

    def records(
        self,
        *,
        latest: bool = False,
        as_of: dt.datetime | None = None,
        include_expired: bool = False,
        include_deleted: bool = False,
        include_duplicates: bool = False,
    ) -> pd.DataFrame:
        """Read the offline store as it stands now.

        Parameters
        ----------
        latest : bool
            One row per record identifier: its latest version.
        as_of : datetime.datetime, optional
            See only what was written at or before this time.
        include_expired : bool
            Keep records older than the TTL (left out by default).
        include_deleted : bool
            Keep delete markers and the versions they hide (the raw history).
        include_duplicates : bool
            Keep writes of a (record identifier, event time) that a later write superseded.

        Returns
        -------
        pandas.DataFrame
            The features, then ``write_time``, ``api_invocation_time`` (UTC) and
            ``is_deleted``, ordered by event time, record identifier and write time.

        Raises
        ------
        InvalidStateError
            If the group has no offline store.
        """
        return self.records_arrow(latest=latest, as_of=as_of, include_expired=include_expired,
                                  include_deleted=include_deleted,
                                  include_duplicates=include_duplicates).to_pandas()

    def training_set(self, *, features: Sequence[str] | None = None) -> TrainingSet:
        """Start a training set with this group's records as the base rows."""
        return self._store.training_set(self, features=features)


def _aware(value: dt.datetime | None, field: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise SpecValidationError(f"{field}: use a timezone-aware datetime, not {value!r}",
                                  field=field)
    return value.astimezone(dt.UTC)


class TrainingSet:
    """A point-in-time training set being described; build it with :meth:`to_dataframe`.

    Each method returns a new training set (the spec is frozen). Made by
    :meth:`FeatureStore.training_set`.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlcycle.featurestore import FeatureGroupSpec, FeatureStore
    >>> store = FeatureStore(str(getfixture("tmp_path") / "ws"))
    >>> prices = store.create(FeatureGroupSpec(
    ...     name="prices", record_identifier="item", event_time="t",
    ...     features=[("item", "String"), ("t", "Fractional"), ("price", "Fractional")]))
    >>> _ = prices.ingest(pd.DataFrame({"item": ["a", "a"], "t": [10.0, 20.0],
    ...                                 "price": [1.0, 2.0]}))
    >>> orders = pd.DataFrame({"item": ["a", "a", "a"], "ts": [5.0, 15.0, 25.0]})
    >>> store.training_set(orders, event_time="ts").join(prices).to_dataframe()
      item    ts  price
    0    a   5.0    NaN
    1    a  15.0    1.0
    2    a  25.0    2.0
    """

    def __init__(self, store: FeatureStore, spec: TrainingSetSpec,
                 base: pa.Table | None) -> None:
        self._store = store
        self._spec = spec
        self._base = base

    def __repr__(self) -> str:
        base = repr(self._spec.base) if self._spec.base else "a table"
        joins = ", ".join(repr(j.group) for j in self._spec.joins)
        return f"<TrainingSet of {base} joined with [{joins}]>"

    @property
    def spec(self) -> TrainingSetSpec:
        """What the training set is."""
        return self._spec

    def _evolve(self, **changes: Any) -> TrainingSet:
        return TrainingSet(self._store, attrs.evolve(self._spec, **changes), self._base)

    def join(
        self,
        group: FeatureGroup | str,
        *,
        on: str | None = None,
        features: Sequence[str] | None = None,
        prefix: str = "",
    ) -> TrainingSet:
        """Join a feature group: each row gets its latest record at or before the row's time.

        Parameters
        ----------
        group : FeatureGroup or str
            The group.
        on : str, optional
            The base column holding the group's record identifier (default: the identifier's
            name).
        features : sequence of str, optional
            The features to take (default: all but the record identifier and event time).
        prefix : str
            Put before the taken features' names.

        Returns
        -------
        TrainingSet
        """
        name = group.name if isinstance(group, FeatureGroup) else group
        join = FeatureJoin(group=name, on=on, features=features, prefix=prefix)
        return self._evolve(joins=(*self._spec.joins, join))

    def as_of(self, moment: dt.datetime | None) -> TrainingSet:
        """See only what was written at or before ``moment`` (time travel)."""
        return self._evolve(as_of=_aware(moment, "as_of"))

    def between(self, start: dt.datetime | None = None,
                end: dt.datetime | None = None) -> TrainingSet:
        """Keep base rows with ``start <= event time < end``."""
        return self._evolve(start=_aware(start, "start"), end=_aware(end, "end"))

    def include_deleted(self, include: bool = True) -> TrainingSet:
        """Ignore delete markers: the versions they hid are seen again."""
        return self._evolve(include_deleted=bool(include))

    def include_duplicates(self, include: bool = True) -> TrainingSet:
        """Keep every write of a base record, not only the latest (group base only)."""
        return self._evolve(include_duplicates=bool(include))

    def ordered(self, ordered: bool = True) -> TrainingSet:
        """Choose whether rows come in a defined order (the default).

        Ordered, a table base's rows keep their order and a group base's come by event time
        and record identifier; ``ordered(False)`` takes the engine's order and saves a sort
        of the whole result (about a fifth of the build time at a million rows).
        """
        return self._evolve(ordered=bool(ordered))

    # -- building ----------------------------------------------------------------------------
    def _resolve(self) -> tuple[dict[str, FeatureGroupSpec], BaseColumns | None]:
        names = [j.group for j in self._spec.joins]
        if self._spec.base is not None:
            names.insert(0, self._spec.base)
        groups = {n: self._store._offline_spec(n) for n in dict.fromkeys(names)}
        columns = None
        if self._base is not None:
            kinds = {f.name: _kind(f.type) for f in self._base.schema
                     if f.name not in (ROW, TIME)}
            columns = BaseColumns(kinds=kinds)
        return groups, columns

    def sql(self) -> str:
        """Return the SQL that builds this training set, in the backend's dialect."""
        groups, columns = self._resolve()
        return training_sql(self._spec, groups=groups, base_columns=columns,
                            dialect=get_dialect(self._store._store.dialect))

    def _build(self) -> pa.Table:
        started = time.perf_counter()
        groups, columns = self._resolve()
        sql = training_sql(self._spec, groups=groups, base_columns=columns,
                           dialect=get_dialect(self._store._store.dialect))
        store = self._store._store
        if self._base is not None:
            table = store.sql(sql, tables=list(groups.values()),
                              inputs={BASE_TABLE: self._base})
        else:
            table = store.sql(sql, tables=list(groups.values()))
        table = sort_result(table)
        logger.info("training set of %d rows x %d columns built in %.2f s", table.num_rows,
                    table.num_columns, time.perf_counter() - started)
        return table

    def _record(self, *, table: pa.Table | None = None, path: Path | None = None) -> str | None:
        from mlcycle.lineage.record import record_training_set

        groups = [j.group for j in self._spec.joins]
        if self._spec.base is not None:
            groups.insert(0, self._spec.base)
        as_of = self._spec.as_of
        store = self._store
        if not store.backend.supports(Capability.LINEAGE):
            return None
        infos = [store._store.describe_group(name) for name in dict.fromkeys(groups)]
        return record_training_set(
            store.backend, infos, base=self._base, table=table, path=path,
            properties={"as_of": as_of.isoformat()} if as_of else None)

    def to_arrow(self) -> pa.Table:
        """Build the training set as a pyarrow Table.

        On a backend that records lineage, the table is recorded as a ``DataSet`` the joined
        feature groups contributed to, and carries its lineage ARN in its schema metadata.
        """
        table = self._build()
        from mlcycle.lineage.record import attach_arn

        return attach_arn(table, self._record(table=table))

    def to_dataframe(self) -> pd.DataFrame:
        """Build the training set as a pandas DataFrame (see :meth:`to_arrow`)."""
        from mlcycle.lineage.record import attach_arn, carried_arn

        table = self.to_arrow()
        return attach_arn(table.to_pandas(), carried_arn(table))

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Build the training set into a Parquet file (written atomically); return its path."""
        import pyarrow.parquet as pq

        table = self._build()
        target = Path(path)
        with atomic_path(target, suffix=".parquet") as tmp:
            pq.write_table(table, tmp, compression="zstd")
        self._record(path=target)
        return target

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Build the training set into a CSV file with a header (written atomically)."""
        import pyarrow.csv as pcsv

        table = self._build()
        target = Path(path)
        with atomic_path(target, suffix=".csv") as tmp:
            pcsv.write_csv(table, tmp)
        self._record(path=target)
        return target

