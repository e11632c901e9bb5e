"""Training on the local backend: XGBoost in a thread of this process, records in SQLite.

A job runs :func:`mlcycle.training.runner.run_training` in a daemon thread of the process that
submitted it. Its record lives in ``<workspace>/training.sqlite`` (WAL): the spec, the status,
the final metrics, the rule statuses, and every log line and metric value, written in batches
about once a second and in full when the job ends. Its outputs are artifacts under
``<output>/<job name>/``: ``output/model.tar.gz`` and, if it captures, ``debug-output/``.

Crash safety: the archive is written atomically, and only then is the job recorded as
``Completed`` (or ``Stopped``) with its model key, in one transaction. A job whose process ended
before that (killed, crashed, or exited without waiting) is reported ``Failed``, with no model
key, by the next reader on the same host.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from mlcycle._logging import logger
from mlcycle.backends.local._errors import translated
from mlcycle.errors import AlreadyExistsError, NotFoundError
from mlcycle.training.artifact import build_model_tarball
from mlcycle.training.backend import JobStatus, TrainingBackend, TrainingJobInfo
from mlcycle.training.rules import RuleResult, RuleStatus
from mlcycle.training.runner import RunHooks, RunResult, failure_reason, run_training
from mlcycle.training.spec import TrainingJobSpec

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from mlcycle.backends.base import ArtifactStore
    from mlcycle.backends.local.sqlite import SQLiteDatabase
    from mlcycle.progress import ProgressCallback

__all__ = ["MIGRATIONS", "LocalTrainingBackend"]

#: Schema migrations of ``training.sqlite``.
MIGRATIONS = (
    """
    CREATE TABLE training_jobs (
        name TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        spec TEXT NOT NULL,
        created_at REAL NOT NULL,
        started_at REAL,
        ended_at REAL,
        rounds INTEGER NOT NULL DEFAULT 0,
        final_metrics TEXT NOT NULL DEFAULT '{}',
        best_iteration INTEGER,
        failure_reason TEXT,
        stop_reason TEXT,
        stopped_by TEXT,
        output_prefix TEXT NOT NULL,
        model_key TEXT,
        capture_prefix TEXT,
        feature_names TEXT NOT NULL DEFAULT '[]',
        rule_results TEXT NOT NULL DEFAULT '[]',
        stop_requested INTEGER NOT NULL DEFAULT 0,
        owner_host TEXT,
        owner_pid INTEGER,
        heartbeat REAL
    );
    CREATE INDEX training_jobs_by_time ON training_jobs (created_at);
    CREATE TABLE training_logs (
        name TEXT NOT NULL REFERENCES training_jobs (name) ON DELETE CASCADE,
        line_no INTEGER NOT NULL,
        line TEXT NOT NULL,
        PRIMARY KEY (name, line_no)
    );
    CREATE TABLE training_metrics (
        name TEXT NOT NULL REFERENCES training_jobs (name) ON DELETE CASCADE,
        metric TEXT NOT NULL,
        step INTEGER NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (name, metric, step)
    )
    """,
)

_KIND = "training-job"
_TERMINAL = tuple(s.value for s in JobStatus if s.is_terminal)


def _utc(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _stopped(result: RuleResult) -> RuleResult:
    """A rule still in progress when its job failed: ``Stopped``."""
    if result.status is RuleStatus.IN_PROGRESS:
        return attrs.evolve(result, status=RuleStatus.STOPPED)
    return result


class _Run:
    """The live state of a job running in this process."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.done = threading.Event()
        self.logs: list[str] = []
        self.rows: list[tuple[str, int, float]] = []
        self.rounds = 0
        self.rules: tuple[RuleResult, ...] = ()
        self.flushed_logs = 0
        self.flushed_rows = 0
        self.last_flush = time.monotonic()


class _Hooks(RunHooks):
    def __init__(self, backend: LocalTrainingBackend, run: _Run) -> None:
        self._backend = backend
        self._run = run

    def on_round(self, step: int, metrics: dict[str, float], line: str) -> None:
        run = self._run
        with run.lock:
            run.logs.append(line)
            run.rows.extend((name, step, value) for name, value in metrics.items())
            run.rounds = step + 1
        if time.monotonic() - run.last_flush >= self._backend.flush_interval:
            self._backend._flush(run)

    def on_rules(self, results: tuple[RuleResult, ...]) -> None:
        with self._run.lock:
            self._run.rules = results

    def should_stop(self) -> tuple[str, str] | None:
        if self._run.stop.is_set():
            return ("user", "stopped on request")
        return None


class LocalTrainingBackend(TrainingBackend):
    """Training jobs in threads of this process, recorded in a SQLite database.

    Parameters
    ----------
    artifacts : mlcycle.backends.base.ArtifactStore
        The workspace's artifact store (models, captures, reports).
    database : mlcycle.backends.local.SQLiteDatabase
        The job records (``training.sqlite`` with :data:`MIGRATIONS`).
    flush_interval : float
        Seconds between writes of a running job's logs and metrics to the database (readers in
        other processes see them that often; a stop requested from another process is seen as
        often).
    """

    def __init__(self, *, artifacts: ArtifactStore, database: SQLiteDatabase,
                 flush_interval: float = 1.0) -> None:
        self._artifacts = artifacts
        self._db = database
        self.flush_interval = flush_interval
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        self._host = socket.gethostname()

    # -- writing -----------------------------------------------------------------------------
    def create_job(
        self,
        name: str,
        spec: TrainingJobSpec,
        *,
        train: pd.DataFrame,
        validation: pd.DataFrame | None,
        progress: ProgressCallback | None = None,
    ) -> TrainingJobInfo:
        """Record the job and start training it in a daemon thread."""
        prefix = f"{spec.output or 'training'}/{name}"
        capture_prefix = f"{prefix}/debug-output" if spec.capture else None
        now = time.time()
        run = _Run(name)
        try:
            self._insert(name, spec, prefix, capture_prefix, now)
        except AlreadyExistsError:
            raise AlreadyExistsError(f"a training job {name!r} exists already", kind=_KIND,
                                     name=name) from None
        with self._lock:
            self._runs[name] = run
        thread = threading.Thread(
            target=self._execute,
            args=(run, spec, train, validation, prefix, capture_prefix, progress),
            name=f"mlcycle-training-{name}",
            daemon=True,
        )
        thread.start()
        logger.info("training job %s started in thread %s", name, thread.name)
        return self.describe_job(name)

    def _insert(self, name: str, spec: TrainingJobSpec, prefix: str,
                capture_prefix: str | None, now: float) -> None:
        with translated(kind=_KIND, name=name), self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO training_jobs (name, status, spec, created_at, started_at, "
                "output_prefix, capture_prefix, feature_names, rule_results, owner_host, "
                "owner_pid, heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, JobStatus.IN_PROGRESS.value, json.dumps(spec.to_dict()), now, now,
                 prefix, capture_prefix, json.dumps(list(spec.features or ())),
                 json.dumps([RuleResult(name=r.name, kind=r.kind,
                                        status=RuleStatus.IN_PROGRESS).to_dict()
                             for r in spec.rules]),
                 self._host, os.getpid(), now),
            )

    def _execute(self, run: _Run, spec: TrainingJobSpec, train: pd.DataFrame,
                 validation: pd.DataFrame | None, prefix: str, capture_prefix: str | None,
                 progress: ProgressCallback | None) -> None:
        try:
            try:
                result = run_training(spec, train, validation, hooks=_Hooks(self, run),
                                      artifacts=self._artifacts, capture_prefix=capture_prefix,
                                      metadata={"job": run.name}, progress=progress)
                model_key = f"{prefix}/output/model.tar.gz"
                tarball = build_model_tarball(result.booster, mtime=time.time(), metadata={
                    "job": run.name,
                    "label": spec.label,
                    "objective": spec.objective,
                    "num_round": spec.num_round,
                    "rounds": result.rounds,
                    "best_iteration": result.best_iteration,
                })
                self._artifacts.put_bytes(model_key, tarball)  # atomic: whole or absent
                self._finish(run, result=result, model_key=model_key)
            except Exception as exc:
                reason = failure_reason(exc)
                logger.warning("training job %s failed: %s", run.name, reason)
                try:
                    orphan = f"{prefix}/output/model.tar.gz"
                    if self._artifacts.exists(orphan):  # written, but the job never completed
                        self._artifacts.delete(orphan)
                    self._fail(run, reason)
                except Exception:  # the record stays InProgress; nothing more can be done here
                    logger.exception("training job %s: could not record the failure", run.name)
        finally:
            with self._lock:
                self._runs.pop(run.name, None)
            run.done.set()
            self._db.close()

    def _flush(self, run: _Run, conn: Any = None) -> None:
        with run.lock:
            logs = run.logs[run.flushed_logs:]
            rows = run.rows[run.flushed_rows:]
            rounds = run.rounds
            rules = run.rules
            first_line = run.flushed_logs
            run.flushed_logs += len(logs)
            run.flushed_rows += len(rows)
            run.last_flush = time.monotonic()

        def write(c: Any) -> None:
            c.executemany("INSERT INTO training_logs (name, line_no, line) VALUES (?, ?, ?)",
                          [(run.name, first_line + i, line) for i, line in enumerate(logs)])
            c.executemany(
                "INSERT OR REPLACE INTO training_metrics (name, metric, step, value) "
                "VALUES (?, ?, ?, ?)", [(run.name, m, s, v) for m, s, v in rows])
            c.execute("UPDATE training_jobs SET rounds = ?, heartbeat = ? WHERE name = ?",
                      (rounds, time.time(), run.name))
            if rules:
                c.execute("UPDATE training_jobs SET rule_results = ? WHERE name = ?",
                          (json.dumps([r.to_dict() for r in rules]), run.name))
            flag = c.execute("SELECT stop_requested FROM training_jobs WHERE name = ?",
                             (run.name,)).fetchone()
            if flag is not None and flag[0]:
                run.stop.set()

        if conn is not None:
            write(conn)
            return
        with translated(kind=_KIND, name=run.name), self._db.transaction() as c:
            write(c)

    def _finish(self, run: _Run, *, result: RunResult, model_key: str) -> None:
        status = JobStatus.STOPPED if result.stopped_by else JobStatus.COMPLETED
        with run.lock:
            run.rules = result.rule_results or run.rules
        with translated(kind=_KIND, name=run.name), self._db.transaction() as conn:
            self._flush(run, conn)
            conn.execute(
                "UPDATE training_jobs SET status = ?, ended_at = ?, rounds = ?, "
                "final_metrics = ?, best_iteration = ?, stop_reason = ?, stopped_by = ?, "
                "model_key = ?, feature_names = ? WHERE name = ?",
                (status.value, time.time(), result.rounds, json.dumps(result.final_metrics),
                 result.best_iteration, result.stop_reason, result.stopped_by, model_key,
                 json.dumps(list(result.feature_names)), run.name),
            )
        logger.info("training job %s %s after %d rounds", run.name, status.value.lower(),
                    result.rounds)

    def _fail(self, run: _Run, reason: str) -> None:
        with run.lock:
            rules = run.rules
        if not rules:
            recorded = self._row(run.name)["rule_results"]
            rules = tuple(RuleResult.from_dict(r) for r in json.loads(recorded))
        with run.lock:
            run.rules = tuple(_stopped(r) for r in rules)
        metrics = self._final_from_rows(run)
        with translated(kind=_KIND, name=run.name), self._db.transaction() as conn:
            self._flush(run, conn)
            conn.execute(
                "UPDATE training_jobs SET status = ?, ended_at = ?, failure_reason = ?, "
                "final_metrics = ? WHERE name = ?",
                (JobStatus.FAILED.value, time.time(), reason, json.dumps(metrics), run.name),
            )

    @staticmethod
    def _final_from_rows(run: _Run) -> dict[str, float]:
        with run.lock:
            final: dict[str, tuple[int, float]] = {}
            for metric, step, value in run.rows:
                if metric not in final or step >= final[metric][0]:
                    final[metric] = (step, value)
        return {m: v for m, (_, v) in final.items()}

    def stop_job(self, name: str) -> None:
        """Ask the job to stop after its current round; nothing happens if it has ended."""
        info = self.describe_job(name)
        if info.status.is_terminal:
            return
        with translated(kind=_KIND, name=name), self._db.transaction() as conn:
            conn.execute(
                "UPDATE training_jobs SET stop_requested = 1, status = ? "
                "WHERE name = ? AND status = ?",
                (JobStatus.STOPPING.value, name, JobStatus.IN_PROGRESS.value),
            )
        with self._lock:
            run = self._runs.get(name)
        if run is not None:
            run.stop.set()

    # -- reading -----------------------------------------------------------------------------
    def _row(self, name: str) -> Any:
        rows = self._db.query("SELECT * FROM training_jobs WHERE name = ?", (name,))
        if not rows:
            raise NotFoundError(f"no training job {name!r}", kind=_KIND, name=name)
        return rows[0]

    def _info(self, row: Any) -> TrainingJobInfo:
        model_key = row["model_key"]
        return TrainingJobInfo(
            name=row["name"],
            status=row["status"],
            spec=TrainingJobSpec.from_dict(json.loads(row["spec"])),
            created_at=_utc(row["created_at"]),
            started_at=_utc(row["started_at"]),
            ended_at=_utc(row["ended_at"]),
            rounds=row["rounds"],
            final_metrics=json.loads(row["final_metrics"]),
            best_iteration=row["best_iteration"],
            failure_reason=row["failure_reason"],
            stop_reason=row["stop_reason"],
            stopped_by=row["stopped_by"],
            output_prefix=row["output_prefix"],
            model_key=model_key,
            model_uri=self._artifacts.uri(model_key) if model_key else None,
            capture_prefix=row["capture_prefix"],
            feature_names=json.loads(row["feature_names"]),
            rule_results=[RuleResult.from_dict(r) for r in json.loads(row["rule_results"])],
        )

    def _orphaned(self, row: Any) -> bool:
        """Whether a running job's process has ended (on this host) without finishing it."""
        if row["status"] in _TERMINAL or row["name"] in self._runs:
            return False
        if row["owner_host"] != self._host or row["owner_pid"] is None:
            return False
        return not _pid_alive(int(row["owner_pid"]))

    def _repair(self, row: Any) -> None:
        reason = (f"the process that ran the job (pid {row['owner_pid']} on "
                  f"{row['owner_host']}) ended before the job finished")
        rules = [_stopped(RuleResult.from_dict(r)) for r in json.loads(row["rule_results"])]
        with translated(kind=_KIND, name=row["name"]), self._db.transaction() as conn:
            conn.execute(
                "UPDATE training_jobs SET status = ?, failure_reason = ?, ended_at = ?, "
                "model_key = NULL, rule_results = ? WHERE name = ? AND status NOT IN (?, ?, ?)",
                (JobStatus.FAILED.value, reason, row["heartbeat"] or time.time(),
                 json.dumps([r.to_dict() for r in rules]), row["name"], *_TERMINAL),
            )
        orphan = f"{row['output_prefix']}/output/model.tar.gz"
        if self._artifacts.exists(orphan):  # whole (writes are atomic) but never registered
            self._artifacts.delete(orphan)
        logger.warning("training job %s: %s", row["name"], reason)

    def describe_job(self, name: str) -> TrainingJobInfo:
        """Return the job's state (live figures for a job running in this process)."""
        row = self._row(name)
        if self._orphaned(row):
            self._repair(row)
            row = self._row(name)
        info = self._info(row)
        with self._lock:
            run = self._runs.get(name)
        if run is not None and not info.status.is_terminal:
            with run.lock:
                rounds, rules = run.rounds, run.rules
            info = attrs.evolve(info, rounds=rounds, final_metrics=self._final_from_rows(run),
                                rule_results=rules or info.rule_results)
        return info

    def list_jobs(self) -> Iterator[TrainingJobInfo]:
        """Iterate over every job, newest first."""
        rows = self._db.query("SELECT name FROM training_jobs ORDER BY created_at DESC, name")
        for row in rows:
            info = self.find_job(row["name"])
            if info is not None:
                yield info

    def read_logs(self, name: str, *, start: int = 0) -> list[str]:
        """Return the job's log lines from line ``start`` on."""
        with self._lock:
            run = self._runs.get(name)
        if run is not None:
            with run.lock:
                return run.logs[start:]
        self._row(name)
        rows = self._db.query("SELECT line FROM training_logs WHERE name = ? AND line_no >= ? "
                              "ORDER BY line_no", (name, start))
        return [r["line"] for r in rows]

    def read_metric_history(self, name: str) -> dict[str, list[tuple[int, float]]]:
        """Return every metric's ``(round, value)`` pairs."""
        from mlcycle.training.backend import metric_history_from_rows

        with self._lock:
            run = self._runs.get(name)
        if run is not None:
            with run.lock:
                return metric_history_from_rows(list(run.rows))
        self._row(name)
        rows = self._db.query("SELECT metric, step, value FROM training_metrics WHERE name = ? "
                              "ORDER BY metric, step", (name,))
        return metric_history_from_rows((r["metric"], r["step"], r["value"]) for r in rows)

    def wait_for_job(self, name: str, timeout: float) -> None:
        """Block until the job ends or ``timeout`` seconds pass."""
        with self._lock:
            run = self._runs.get(name)
        if run is not None:
            run.done.wait(timeout)
        else:
            time.sleep(timeout)

    def close(self) -> None:
        """Close this thread's database connection (running jobs keep their own)."""
        self._db.close()
