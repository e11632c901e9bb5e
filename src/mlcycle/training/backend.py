"""The training backend interface and the snapshots its backends return.

The facade (:class:`mlcycle.training.TrainingJob`) reads and checks the input data, then hands a
validated spec and the data to a backend's :class:`TrainingBackend`, which records the job,
runs it and reports its state as :class:`TrainingJobInfo` snapshots. The model, the capture and
the report are artifacts in the backend's artifact store, under the job's output prefix.
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from mlcycle.errors import NotFoundError
from mlcycle.training.rules import RuleResult
from mlcycle.training.spec import TrainingJobSpec

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from mlcycle.progress import ProgressCallback

__all__ = ["JobStatus", "TrainingBackend", "TrainingJobInfo"]


class JobStatus(enum.StrEnum):
    """A training job's status, as SageMaker names ``TrainingJobStatus``."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"

    @property
    def is_terminal(self) -> bool:
        """Whether the job has ended (Completed, Failed or Stopped)."""
        return self in {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED}


@attrs.frozen(kw_only=True)
class TrainingJobInfo:
    """Observed state of a training job.

    Parameters
    ----------
    name : str
        The job's name.
    status : JobStatus
        ``InProgress``, ``Completed``, ``Failed``, ``Stopping`` or ``Stopped``.
    spec : mlcycle.training.TrainingJobSpec
        What the job trains; its features are resolved, and in-memory inputs are recorded by
        their shape only.
    created_at : datetime.datetime
        When the job was submitted (UTC).
    started_at, ended_at : datetime.datetime, optional
        When training started and when the job ended (UTC).
    rounds : int
        Boosting rounds completed so far.
    final_metrics : dict
        The last value of every evaluation metric (``train-rmse``, ``validation-rmse``, ...).
    best_iteration : int, optional
        The best round, when the job used ``early_stopping_rounds``.
    failure_reason : str, optional
        Why the job failed.
    stop_reason : str, optional
        Why the job stopped early.
    stopped_by : str, optional
        What stopped it: ``"user"``, ``"max_runtime"`` or ``"rule:<name>"``.
    output_prefix : str
        The artifact key prefix of the job's outputs.
    model_key : str, optional
        The artifact key of ``model.tar.gz``, set only once the archive is whole and in place.
    model_uri : str, optional
        Its URI (``file://...`` or ``s3://...``).
    capture_prefix : str, optional
        The artifact key prefix of the captured tensors, if the job captures.
    feature_names : tuple of str
        The features the model expects, in order.
    rule_results : tuple of mlcycle.training.RuleResult
        The status of every rule.
    """

    name: str
    status: JobStatus = attrs.field(converter=JobStatus)
    spec: TrainingJobSpec
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    rounds: int = 0
    final_metrics: dict[str, float] = attrs.field(factory=dict)
    best_iteration: int | None = None
    failure_reason: str | None = None
    stop_reason: str | None = None
    stopped_by: str | None = None
    output_prefix: str = ""
    model_key: str | None = None
    model_uri: str | None = None
    capture_prefix: str | None = None
    feature_names: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    rule_results: tuple[RuleResult, ...] = attrs.field(default=(), converter=tuple)

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end (or to now, while running); None before it starts."""
        if self.started_at is None:
            return None
        end = self.ended_at or dt.datetime.now(dt.UTC)
        return (end - self.started_at).total_seconds()

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The job's hyperparameters."""
        return dict(self.spec.hyperparameters)


class TrainingBackend(abc.ABC):
    """What a backend does for training.

    The facade has validated the spec and the data; a backend records the job, runs it and
    reports it. Errors are mlcycle errors (:class:`~mlcycle.errors.NotFoundError`,
    :class:`~mlcycle.errors.AlreadyExistsError`, ...), never the backend's own.
    """

    @abc.abstractmethod
    def create_job(
        self,
        name: str,
        spec: TrainingJobSpec,
        *,
        train: pd.DataFrame,
        validation: pd.DataFrame | None,
        progress: ProgressCallback | None = None,
    ) -> TrainingJobInfo:
        """Record the job and start it; return at once.

        Parameters
        ----------
        name : str
            The job's name; :class:`~mlcycle.errors.AlreadyExistsError` if it is taken.
        spec : mlcycle.training.TrainingJobSpec
            The validated spec, its features resolved.
        train, validation : pandas.DataFrame
            The validated data of the channels.
        progress : callable, optional
            ``progress("train", rounds_done, num_round)``, called as rounds finish (from the
            thread or process that trains).
        """

    @abc.abstractmethod
    def describe_job(self, name: str) -> TrainingJobInfo:
        """Return the job's state; raise NotFoundError if there is none."""

    @abc.abstractmethod
    def list_jobs(self) -> Iterator[TrainingJobInfo]:
        """Iterate over every job, newest first."""

    @abc.abstractmethod
    def stop_job(self, name: str) -> None:
        """Ask a running job to stop; do nothing if it has ended. NotFoundError if unknown."""

    @abc.abstractmethod
    def read_logs(self, name: str, *, start: int = 0) -> list[str]:
        """Return the job's log lines from line ``start`` on."""

    @abc.abstractmethod
    def read_metric_history(self, name: str) -> dict[str, list[tuple[int, float]]]:
        """Return every evaluation metric's ``(round, value)`` pairs, rounds ascending."""

    def wait_for_job(self, name: str, timeout: float) -> None:
        """Block until the job may have changed, at most ``timeout`` seconds.

        :meth:`mlcycle.training.TrainingJob.wait` calls this between polls; the default sleeps
        ``timeout``; a backend that can tell when a job ends returns sooner.
        """
        import time

        time.sleep(timeout)

    def find_job(self, name: str) -> TrainingJobInfo | None:
        """Return the job's state, or None if there is no such job."""
        try:
            return self.describe_job(name)
        except NotFoundError:
            return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def metric_history_from_rows(rows: Any) -> dict[str, list[tuple[int, float]]]:
    """Group ``(metric, round, value)`` rows by metric, rounds ascending."""
    out: dict[str, list[tuple[int, float]]] = {}
    for metric, step, value in rows:
        out.setdefault(str(metric), []).append((int(step), float(value)))
    for values in out.values():
        values.sort()
    return out

