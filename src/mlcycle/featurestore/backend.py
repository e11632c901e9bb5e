"""The feature store's backend interface and the snapshots its backends return.

The facade (:mod:`mlcycle.featurestore.store`) validates and normalizes input, enforces TTL,
and builds point-in-time SQL; a backend stores and executes. A backend implements the small
abstract core of :class:`FeatureStoreBackend`; everything else is derived from it.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from mlcycle.featurestore.spec import FeatureGroupSpec

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from mlcycle.progress import ProgressCallback

__all__ = [
    "EVENT_EPOCH",
    "OFFLINE_COLUMNS",
    "FeatureGroupInfo",
    "FeatureStoreBackend",
    "IngestBatch",
    "IngestResult",
]

#: Columns the offline store adds to every record, after the features.
OFFLINE_COLUMNS = ("write_time", "api_invocation_time", "is_deleted")
#: Name of the normalized event-time column (float epoch seconds) carried in an IngestBatch.
EVENT_EPOCH = "__event_epoch"


@attrs.frozen(kw_only=True)
class FeatureGroupInfo:
    """Observed state of a feature group.

    Parameters
    ----------
    spec : mlcycle.featurestore.FeatureGroupSpec
        What the group is.
    status : str
        ``"Created"`` once usable (SageMaker also reports ``"Creating"``, ``"CreateFailed"``,
        ``"Deleting"``).
    created_at : datetime.datetime
        Creation time (UTC).
    uri : str
        Where the group lives: a ``file://`` folder, or the feature group's ARN.
    offline_uri : str, optional
        Where the offline store's files are (``file://`` or ``s3://``), if it has one.
    """

    spec: FeatureGroupSpec
    status: str
    created_at: dt.datetime
    uri: str
    offline_uri: str | None = None

    @property
    def name(self) -> str:
        """The group's name."""
        return self.spec.name


@attrs.frozen(kw_only=True)
class IngestBatch:
    """A validated, normalized batch of records, ready for a backend to write.

    Parameters
    ----------
    table : pyarrow.Table
        One column per feature of the spec, in the spec's order, typed Integral -> int64,
        Fractional -> float64, String -> string; record identifier and event time never null.
        A last column :data:`EVENT_EPOCH` (float64) holds the event time as epoch seconds.
    write_time : datetime.datetime
        When the batch is written (UTC); every record of it gets this ``write_time``.
    batch_id : str
        A unique id for the batch (a UUID4 hex), for idempotent and atomic commits.
    """

    table: pa.Table
    write_time: dt.datetime
    batch_id: str


@attrs.frozen(kw_only=True)
class IngestResult:
    """What an ingest wrote.

    Parameters
    ----------
    group : str
        The feature group.
    rows : int
        Records written to the offline store (every row of the input), or received.
    online_updated : int
        Record identifiers whose online record changed (older events never replace newer ones).
    write_time : datetime.datetime
        The batch's write time (UTC).
    batch_id : str
        The batch's id.
    """

    group: str
    rows: int
    online_updated: int
    write_time: dt.datetime
    batch_id: str


class FeatureStoreBackend(abc.ABC):
    """What a backend does for the feature store.

    Every method takes specs and normalized data from the facade, which has validated them.
    Errors are raised as mlcycle errors (:class:`~mlcycle.errors.NotFoundError`,
    :class:`~mlcycle.errors.AlreadyExistsError`, ...), never as the backend's own.
    """

    #: The SQL dialect of ``sql``, a key of :data:`mlcycle.featurestore.training.DIALECTS`.
    dialect: ClassVar[str]

    @abc.abstractmethod
    def create_group(self, spec: FeatureGroupSpec) -> FeatureGroupInfo:
        """Create the group's stores; raise AlreadyExistsError if the name is taken."""

    @abc.abstractmethod
    def describe_group(self, name: str) -> FeatureGroupInfo:
        """Return the group's state; raise NotFoundError if there is none."""

    @abc.abstractmethod
    def list_groups(self) -> Iterator[FeatureGroupInfo]:
        """Iterate over every group, sorted by name."""

    @abc.abstractmethod
    def delete_group(self, name: str) -> None:
        """Delete the group and both its stores; raise NotFoundError if there is none."""

    @abc.abstractmethod
    def write_batch(
        self, spec: FeatureGroupSpec, batch: IngestBatch, *, progress: ProgressCallback | None
    ) -> IngestResult:
        """Append the batch to the offline store and upsert the online store, atomically.

        Readers see the whole batch or none of it. In the online store a record replaces the
        stored one only if its event time is at least as late.
        """

    @abc.abstractmethod
    def read_online(
        self, spec: FeatureGroupSpec, record_ids: Sequence[Any]
    ) -> list[dict[str, Any] | None]:
        """Return the online record (every feature, by name) for each id, None where absent.

        The facade applies TTL and chooses features; a soft-deleted record is absent.
        """

    @abc.abstractmethod
    def delete_record(
        self,
        spec: FeatureGroupSpec,
        record_id: Any,
        *,
        event_time: float,
        hard: bool,
        write_time: dt.datetime,
    ) -> None:
        """Delete a record as SageMaker's DeleteRecord does.

        The online record is removed (hard) or marked deleted (soft) if its event time is not
        later than ``event_time``; the offline store gets a record with ``is_deleted`` true.
        """

    @abc.abstractmethod
    def sql(
        self,
        query: str,
        *,
        tables: Sequence[FeatureGroupSpec] = (),
        inputs: Mapping[str, pa.Table] | None = None,
    ) -> pa.Table:
        """Run ``query`` in the backend's SQL engine and return the result.

        Each group in ``tables`` is visible as a table named after the group, holding its
        offline store: the features, then ``write_time``, ``api_invocation_time`` (both
        ``TIMESTAMP WITH TIME ZONE``, UTC) and ``is_deleted``. Each table in ``inputs`` is
        visible under its key (the facade passes a training set's DataFrame base as
        ``__base_input``); the facade passes ``inputs`` only when it has some.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
