"""The training facade: :class:`TrainingJob` handles, listing and comparing jobs.

The facade checks a spec's data before anything starts, names the job, logs, and hands the job
to the backend's :class:`~mlcycle.training.TrainingBackend`. Errors are mlcycle errors:
bad input is a :class:`~mlcycle.errors.SpecValidationError` with ``field``, a failed job a
:class:`~mlcycle.errors.JobFailedError` with ``reason``, a wait that runs out a
:class:`~mlcycle.errors.JobTimeoutError`.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from mlcycle._logging import logger
from mlcycle.backends.base import Backend, Capability
from mlcycle.errors import (
    InvalidStateError,
    JobFailedError,
    JobTimeoutError,
    MissingDependencyError,
    SpecValidationError,
)
from mlcycle.training.artifact import ModelArtifact, read_model_tarball
from mlcycle.training.backend import JobStatus, TrainingJobInfo
from mlcycle.training.capture import CaptureReader
from mlcycle.training.data import load_input, validate_frames
from mlcycle.training.rules import RuleResult
from mlcycle.training.spec import TrainingInput, TrainingJobSpec

if TYPE_CHECKING:  # pragma: no cover
    import os

    import pandas as pd
    import xgboost

    from mlcycle.progress import ProgressCallback
    from mlcycle.training.backend import TrainingBackend

__all__ = ["TrainingJob", "TrainingMetrics", "compare_training_jobs", "list_training_jobs"]

_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def _validate_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SpecValidationError(
            f"invalid training job name {name!r}: 1 to 63 letters, digits and '-', starting and "
            "ending with a letter or digit",
            field="name",
        )
    return name


def _new_name() -> str:
    now = dt.datetime.now(dt.UTC)
    return f"xgboost-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def require_xgboost() -> None:
    """Raise :class:`~mlcycle.errors.MissingDependencyError` unless XGBoost is installed."""
    import importlib.util

    if importlib.util.find_spec("xgboost") is None:
        raise MissingDependencyError(
            "training needs XGBoost: pip install 'mlcycle[train]' (or the full 'xgboost' "
            "package, for a GPU)", package="xgboost-cpu", extra="train")


def _training(backend: Backend) -> TrainingBackend:
    backend.require(Capability.TRAINING)
    return backend.training


@attrs.frozen(kw_only=True)
class TrainingMetrics:
    """A job's evaluation metrics.

    Parameters
    ----------
    final : dict
        The last value of every metric (``train-rmse``, ``validation-rmse``, ...).
    history : dict
        Every metric's ``(round, value)`` pairs, rounds ascending.
    """

    final: dict[str, float]
    history: dict[str, list[tuple[int, float]]]

    def to_frame(self) -> pd.DataFrame:
        """One row per round, one column per metric."""
        import pandas as pd

        columns = {name: dict(values) for name, values in self.history.items()}
        frame = pd.DataFrame(columns).sort_index()
        frame.index.name = "round"
        return frame


class TrainingJob:
    """A training job: its name and the backend that runs it.

    Build one with :meth:`submit` (a new job) or :meth:`get` (an existing one); the constructor
    does no I/O.

    Parameters
    ----------
    backend : mlcycle.Backend
        A backend with the ``training`` capability.
    name : str
        The job's name.

    Examples
    --------
    >>> import mlcycle, pandas as pd
    >>> from mlcycle.training import TrainingJob, TrainingJobSpec
    >>> backend = mlcycle.connect(str(getfixture("tmp_path")))
    >>> df = pd.DataFrame({"x": range(40), "y": [i % 7 for i in range(40)]})
    >>> spec = TrainingJobSpec(hyperparameters={"num_round": 5, "max_depth": 2, "nthread": 1},
    ...                        train=df, validation=df, label="y")
    >>> job = TrainingJob.submit(backend, spec, name="doc-example")
    >>> job.wait(timeout=60).status
    <JobStatus.COMPLETED: 'Completed'>
    >>> sorted(job.metrics().final)
    ['train-rmse', 'validation-rmse']
    >>> job.model().feature_names
    ['x']
    """

    def __init__(self, backend: Backend, name: str) -> None:
        self.backend = backend
        self.name = name

    # -- creating and finding ----------------------------------------------------------------
    @classmethod
    def submit(
        cls,
        backend: Backend,
        spec: TrainingJobSpec,
        *,
        name: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> TrainingJob:
        """Check the spec's data, start the job and return its handle at once.

        Parameters
        ----------
        backend : mlcycle.Backend
            Where to run (needs the ``training`` capability).
        spec : mlcycle.training.TrainingJobSpec
            What to train.
        name : str, optional
            The job's name (1 to 63 letters, digits and ``-``); default
            ``xgboost-<UTC time>-<random>``.
        progress : callable, optional
            ``progress("train", rounds_done, num_round)``, called from the job's thread as
            rounds finish.

        Returns
        -------
        TrainingJob

        Raises
        ------
        SpecValidationError
            If the data does not fit the spec (see
            :func:`mlcycle.training.data.validate_frames`); nothing is recorded then.
        NotFoundError
            If an input file or artifact does not exist.
        AlreadyExistsError
            If a job of that name exists.
        UnsupportedOperationError
            If the backend cannot train.
        MissingDependencyError
            If XGBoost is not installed (``extra="train"``).
        """
        if not isinstance(spec, TrainingJobSpec):
            raise SpecValidationError("spec must be a TrainingJobSpec", field="spec")
        training = _training(backend)
        require_xgboost()
        name = _validate_name(name if name is not None else _new_name())
        train = load_input(spec.train, backend.artifacts, field="train")
        validation = (load_input(spec.validation, backend.artifacts, field="validation")
                      if spec.validation is not None else None)
        features = validate_frames(spec, train, validation)
        # the columns the job uses; with pandas' copy-on-write, later changes to the caller's
        # frames do not reach a running job
        columns = [*features, spec.label]
        train = train[columns]
        validation = validation[columns] if validation is not None else None
        resolved = attrs.evolve(
            spec,
            features=features,  # in-memory inputs are recorded by the shape actually read
            train=TrainingInput(data=train) if spec.train.data is not None else spec.train,
            validation=(TrainingInput(data=validation)
                        if spec.validation is not None and spec.validation.data is not None
                        else spec.validation),
        )
        logger.info("submitting training job %s: %d rows, %d features, %d rounds", name,
                    len(train), len(features), spec.num_round)
        training.create_job(name, resolved, train=train, validation=validation,
                            progress=progress)
        from mlcycle.lineage.record import record_training_start

        record_training_start(backend, name, spec, train=train, validation=validation)
        return cls(backend, name)

    @classmethod
    def get(cls, backend: Backend, name: str) -> TrainingJob:
        """Return the handle of an existing job.

        Raises
        ------
        NotFoundError
            If there is no such job (``kind="training-job"``).
        """
        _training(backend).describe_job(name)
        return cls(backend, name)

    # -- state -------------------------------------------------------------------------------
    def describe(self) -> TrainingJobInfo:
        """Return the job's current state."""
        return _training(self.backend).describe_job(self.name)

    def status(self) -> JobStatus:
        """Return the job's current status."""
        return self.describe().status

    def wait(
        self,
        timeout: float | None = None,
        *,
        poll_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> TrainingJobInfo:
        """Block until the job ends and return its final state.

        A ``Stopped`` job (by :meth:`stop`, a rule's action or its ``max_runtime_s``) is
        returned like a completed one; its ``stop_reason`` says why.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait at most; forever if None.
        poll_interval : float
            Seconds between looks at the job.
        clock : callable
            Monotonic seconds (inject a fake one in tests).
        sleep : callable, optional
            ``sleep(seconds)`` between looks; default: the backend's own wait, which returns as
            soon as a local job ends.

        Returns
        -------
        mlcycle.training.TrainingJobInfo

        Raises
        ------
        JobFailedError
            If the job failed (``reason`` says why).
        JobTimeoutError
            If it is still running after ``timeout`` seconds.
        """
        training = _training(self.backend)
        started = clock()
        while True:
            info = training.describe_job(self.name)
            if info.status.is_terminal:
                from mlcycle.lineage.record import record_training_end

                record_training_end(self.backend, info)
            if info.status is JobStatus.FAILED:
                raise JobFailedError(f"training job {self.name!r} failed: "
                                     f"{info.failure_reason}", job=self.name,
                                     reason=info.failure_reason)
            if info.status.is_terminal:
                return info
            waited = clock() - started
            if timeout is not None and waited >= timeout:
                raise JobTimeoutError(
                    f"training job {self.name!r} is still {info.status.value} after "
                    f"{timeout} s", job=self.name, timeout=timeout)
            pause = poll_interval if timeout is None else min(poll_interval, timeout - waited)
            if sleep is not None:
                sleep(pause)
            else:
                training.wait_for_job(self.name, pause)

    def stop(self) -> None:
        """Stop the job after its current round (status ``Stopping``, then ``Stopped``).

        The rounds trained so far are kept: a stopped job has a model. Nothing happens if the
        job has ended.
        """
        logger.info("stopping training job %s", self.name)
        _training(self.backend).stop_job(self.name)

    def logs(self, *, start: int = 0) -> list[str]:
        """Return the job's log lines (one per round, as XGBoost writes them) from ``start``."""
        return _training(self.backend).read_logs(self.name, start=start)

    def metrics(self) -> TrainingMetrics:
        """Return the final and per-round evaluation metrics."""
        training = _training(self.backend)
        history = training.read_metric_history(self.name)
        final = {name: values[-1][1] for name, values in history.items() if values}
        return TrainingMetrics(final=final, history=history)

    def rules(self) -> tuple[RuleResult, ...]:
        """Return the status of every rule of the job."""
        return self.describe().rule_results

    # -- outputs -----------------------------------------------------------------------------
    def _model_key(self) -> str:
        info = self.describe()
        if info.status is JobStatus.FAILED:
            raise JobFailedError(f"training job {self.name!r} failed and has no model: "
                                 f"{info.failure_reason}", job=self.name,
                                 reason=info.failure_reason)
        if not info.status.is_terminal or info.model_key is None:
            raise InvalidStateError(f"training job {self.name!r} is {info.status.value} and "
                                    "has no model yet", state=info.status.value)
        return info.model_key

    def model_artifact(self) -> ModelArtifact:
        """Return the contents of the job's ``model.tar.gz``.

        Raises
        ------
        InvalidStateError
            If the job is still running.
        JobFailedError
            If it failed.
        """
        return read_model_tarball(self.backend.artifacts.get_bytes(self._model_key()))

    def model(self) -> xgboost.Booster:
        """Return the trained model, loaded from the job's ``model.tar.gz``.

        Raises
        ------
        InvalidStateError
            If the job is still running.
        JobFailedError
            If it failed.
        """
        return self.model_artifact().booster()

    def capture(self) -> CaptureReader:
        """Return a reader of the job's captured tensors."""
        return CaptureReader(self)

    def report(self, path: str | os.PathLike[str] | None = None) -> str:
        """Write the job's HTML training report and return its artifact URI.

        The report (learning curves, feature importance, SHAP summary, rule outcomes) is stored
        as ``<output>/report/training-report.html`` in the backend's artifact store, and also
        written to ``path`` if one is given.
        """
        from mlcycle.training.report import training_report

        html = training_report(self)
        info = self.describe()
        if path is not None:
            html.save(path)
        return self.backend.artifacts.put_bytes(
            f"{info.output_prefix}/report/training-report.html", html.to_html().encode())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TrainingJob):
            return NotImplemented
        return (self.backend.uri, self.name) == (other.backend.uri, other.name)

    def __hash__(self) -> int:
        return hash((self.backend.uri, self.name))

    def __repr__(self) -> str:
        return f"<TrainingJob {self.name} on {self.backend.uri}>"


def list_training_jobs(
    backend: Backend,
    *,
    status: JobStatus | str | None = None,
    name_contains: str | None = None,
) -> Iterator[TrainingJobInfo]:
    """Iterate over the backend's training jobs, newest first.

    Parameters
    ----------
    backend : mlcycle.Backend
        A backend with the ``training`` capability.
    status : JobStatus or str, optional
        Only jobs with this status.
    name_contains : str, optional
        Only jobs whose name contains this text.

    Yields
    ------
    mlcycle.training.TrainingJobInfo
    """
    wanted = JobStatus(status) if status is not None else None
    for info in _training(backend).list_jobs():
        if wanted is not None and info.status is not wanted:
            continue
        if name_contains is not None and name_contains not in info.name:
            continue
        yield info


def compare_training_jobs(jobs: Iterable[TrainingJob | TrainingJobInfo]) -> pd.DataFrame:
    """Put jobs side by side: parameters, final metrics and rule outcomes.

    Parameters
    ----------
    jobs : iterable of TrainingJob or TrainingJobInfo
        The jobs, for example ``list_training_jobs(backend)``.

    Returns
    -------
    pandas.DataFrame
        One row per job, indexed by name, with ``status``, ``created_at``, ``duration_s`` and
        ``rounds``, then ``params.<name>`` for every hyperparameter, ``metrics.<name>`` for
        every final metric and ``rules.<name>`` for every rule's status, as experiment trackers
        lay out runs. A value a job lacks is missing (NaN or None).
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for job in jobs:
        info = job.describe() if isinstance(job, TrainingJob) else job
        row: dict[str, Any] = {
            "name": info.name,
            "status": info.status.value,
            "created_at": info.created_at,
            "duration_s": info.duration_s,
            "rounds": info.rounds,
        }
        for key, value in info.spec.hyperparameters.items():
            row[f"params.{key}"] = ",".join(value) if isinstance(value, tuple) else value
        for key, value in info.final_metrics.items():
            row[f"metrics.{key}"] = value
        for result in info.rule_results:
            row[f"rules.{result.name}"] = result.status.value
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["status", "created_at", "duration_s", "rounds"],
                            index=pd.Index([], name="name"))
    fixed = ["name", "status", "created_at", "duration_s", "rounds"]
    ordered = fixed + sorted(c for c in frame.columns if c not in fixed)
    return frame[ordered].set_index("name")
