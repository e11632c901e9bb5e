"""The training contract: what every backend with the ``training`` capability does.

The suite drives the facade (:class:`mlcycle.training.TrainingJob`) and asserts on job state,
metrics, artifacts read through the backend's artifact store, and typed errors, never on local
files, so a remote backend (SageMaker on moto, with its container simulated) can pass it too.
A backend's test module subclasses it and supplies a ``backend`` fixture::

    from mlcycle.testing.contract.training import TrainingContract

    class TestMyTraining(TrainingContract): ...

Jobs are small (a few hundred rows, a few rounds, one thread) so the suite runs in seconds.
"""

from __future__ import annotations

import io
import tarfile
import time
import warnings
from typing import TYPE_CHECKING

import pytest

from mlcycle.backends.base import Backend, Capability
from mlcycle.errors import (
    AlreadyExistsError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    SpecValidationError,
)
from mlcycle.training import (
    CaptureConfig,
    JobStatus,
    Rule,
    RuleStatus,
    TrainingJob,
    TrainingJobSpec,
    compare_training_jobs,
    list_training_jobs,
)

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    import pandas as pd
    import xgboost

__all__ = ["TrainingContract", "regression_frame"]

FEATURES = ("f0", "f1", "f2", "f3")


def regression_frame(rows: int = 240, *, seed: int = 0) -> pd.DataFrame:
    """A small regression table: four features, a label ``y`` with signal and noise."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=list(FEATURES))
    frame["y"] = 2 * frame["f0"] - frame["f1"] * frame["f2"] + rng.normal(scale=0.5, size=rows)
    return frame


def _spec(rounds: int = 8, **changes: object) -> TrainingJobSpec:
    frame = regression_frame()
    values: dict[str, object] = {
        "hyperparameters": {"num_round": rounds, "max_depth": 3, "eta": 0.3, "nthread": 1},
        "train": frame.iloc[:180],
        "validation": frame.iloc[180:],
        "label": "y",
    }
    values.update(changes)
    return TrainingJobSpec(**values)  # type: ignore[arg-type]


def _wait_until_training(job: TrainingJob, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = job.describe()
        if info.rounds > 0 or info.status.is_terminal:
            return
        time.sleep(0.02)
    raise AssertionError(f"{job.name} did not start training in {timeout} s")


class _FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _rmse(booster: xgboost.Booster, frame: pd.DataFrame) -> float:
    import numpy as np
    import xgboost

    predictions = booster.predict(xgboost.DMatrix(frame[list(FEATURES)]))
    return float(np.sqrt(np.mean((predictions - frame["y"].to_numpy()) ** 2)))


class TrainingContract:
    """What every training backend does, through the facade."""

    def test_backend_declares_training(self, backend: Backend) -> None:
        assert backend.supports(Capability.TRAINING)

    def test_submit_returns_a_handle_and_the_job_completes(self, backend: Backend) -> None:
        job = TrainingJob.submit(backend, _spec(), name="contract-complete")
        assert isinstance(job, TrainingJob) and job.name == "contract-complete"
        assert job.status() in set(JobStatus)
        info = job.wait(timeout=120)
        assert info.status is JobStatus.COMPLETED
        assert job.status() is JobStatus.COMPLETED
        assert info.rounds == 8
        assert info.feature_names == FEATURES
        assert set(info.final_metrics) == {"train-rmse", "validation-rmse"}
        assert info.model_key is not None and info.model_uri is not None
        assert info.created_at.tzinfo is not None and info.ended_at >= info.started_at
        assert info.spec.hyperparameters["num_round"] == 8
        assert TrainingJob.get(backend, job.name) == job

    def test_metrics_equal_a_recomputation(self, backend: Backend) -> None:
        frame = regression_frame()
        job = TrainingJob.submit(backend, _spec(), name="contract-metrics")
        job.wait(timeout=120)
        metrics = job.metrics()
        assert [step for step, _ in metrics.history["validation-rmse"]] == list(range(8))
        assert metrics.final["validation-rmse"] == metrics.history["validation-rmse"][-1][1]
        assert job.describe().final_metrics == pytest.approx(metrics.final)
        booster = job.model()
        assert metrics.final["validation-rmse"] == pytest.approx(
            _rmse(booster, frame.iloc[180:]), rel=1e-5)
        assert metrics.final["train-rmse"] == pytest.approx(
            _rmse(booster, frame.iloc[:180]), rel=1e-5)
        assert set(metrics.to_frame().columns) == set(metrics.history)

    def test_model_artifact_is_a_sagemaker_model_tarball(self, backend: Backend,
                                                         tmp_path: Path) -> None:
        import numpy as np
        import xgboost

        job = TrainingJob.submit(backend, _spec(), name="contract-model")
        info = job.wait(timeout=120)
        data = backend.artifacts.get_bytes(info.model_key)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        assert "xgboost-model" in files
        assert not any(name.endswith((".pkl", ".pickle")) for name in files)
        path = tmp_path / "xgboost-model"
        path.write_bytes(files["xgboost-model"])
        plain = xgboost.Booster()
        with warnings.catch_warnings():  # XGBoost guesses JSON for the extension-less name
            warnings.filterwarnings("ignore", message=".*Unknown file format.*")
            plain.load_model(str(path))
        assert plain.feature_names == list(FEATURES)
        frame = regression_frame()
        dmatrix = xgboost.DMatrix(frame[list(FEATURES)])
        np.testing.assert_array_equal(plain.predict(dmatrix), job.model().predict(dmatrix))
        assert job.model_artifact().feature_names == FEATURES

    def test_logs_have_a_line_per_round(self, backend: Backend) -> None:
        job = TrainingJob.submit(backend, _spec(rounds=5), name="contract-logs")
        job.wait(timeout=120)
        lines = job.logs()
        assert len(lines) >= 5
        assert sum("validation-rmse" in line for line in lines) == 5
        assert job.logs(start=len(lines)) == []

    def test_duplicate_name_is_rejected(self, backend: Backend) -> None:
        TrainingJob.submit(backend, _spec(rounds=2), name="contract-twice").wait(timeout=120)
        with pytest.raises(AlreadyExistsError):
            TrainingJob.submit(backend, _spec(rounds=2), name="contract-twice")

    def test_unknown_job_is_not_found(self, backend: Backend) -> None:
        with pytest.raises(NotFoundError) as info:
            TrainingJob.get(backend, "contract-no-such-job")
        assert info.value.name == "contract-no-such-job"

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ("missing_label", "label"),
            ("text_feature", "f3"),
            ("empty_train", "train"),
            ("nan_label", "label"),
            ("unknown_hyperparameter", "hyperparameters.max_dept"),
            ("out_of_range", "hyperparameters.subsample"),
            ("bad_name", "name"),
        ],
    )
    def test_bad_input_is_a_typed_error_before_training(
        self, backend: Backend, change: str, field: str
    ) -> None:
        import numpy as np

        frame = regression_frame()
        name = f"contract-bad-{change.replace('_', '-')}"
        with pytest.raises(SpecValidationError) as info:
            if change == "missing_label":
                TrainingJob.submit(backend, _spec(train=frame.drop(columns="y")), name=name)
            elif change == "text_feature":
                TrainingJob.submit(backend, _spec(train=frame.assign(f3="x")), name=name)
            elif change == "empty_train":
                TrainingJob.submit(backend, _spec(train=frame.iloc[:0]), name=name)
            elif change == "nan_label":
                broken = frame.copy()
                broken.loc[3, "y"] = np.nan
                TrainingJob.submit(backend, _spec(train=broken), name=name)
            elif change == "unknown_hyperparameter":
                _spec(hyperparameters={"num_round": 3, "max_dept": 3})
            elif change == "out_of_range":
                _spec(hyperparameters={"num_round": 3, "subsample": 1.5})
            else:
                TrainingJob.submit(backend, _spec(), name="-bad name-")
        assert info.value.field == field
        assert all(job.name != name for job in list_training_jobs(backend))

    def test_a_failure_inside_training_is_a_failed_job_with_a_reason(
        self, backend: Backend
    ) -> None:
        frame = regression_frame()
        frame["y"] = frame["y"].abs() + 1.0
        frame.loc[0, "y"] = 0.0  # gamma regression needs positive labels; XGBoost says so
        spec = _spec(train=frame, validation=None,
                     hyperparameters={"num_round": 5, "objective": "reg:gamma", "nthread": 1})
        job = TrainingJob.submit(backend, spec, name="contract-fails")
        with pytest.raises(JobFailedError) as info:
            job.wait(timeout=120)
        assert info.value.job == job.name
        assert isinstance(info.value.reason, str) and info.value.reason
        described = job.describe()
        assert described.status is JobStatus.FAILED
        assert described.failure_reason == info.value.reason
        assert described.model_key is None
        with pytest.raises(JobFailedError):
            job.model()

    def test_a_running_job_can_be_stopped(self, backend: Backend) -> None:
        job = TrainingJob.submit(backend, _spec(rounds=200_000), name="contract-stop")
        _wait_until_training(job)
        job.stop()
        assert job.status() in {JobStatus.STOPPING, JobStatus.STOPPED}
        info = job.wait(timeout=60)
        assert info.status is JobStatus.STOPPED
        assert info.stopped_by == "user"
        assert 0 < info.rounds < 200_000
        assert job.model().num_boosted_rounds() == info.rounds
        job.stop()  # stopping an ended job does nothing
        assert job.status() is JobStatus.STOPPED

    def test_wait_times_out_with_an_injected_clock(self, backend: Backend) -> None:
        job = TrainingJob.submit(backend, _spec(rounds=200_000), name="contract-timeout")
        clock = _FakeClock()
        try:
            with pytest.raises(JobTimeoutError) as info:
                job.wait(timeout=5, poll_interval=2, clock=clock, sleep=clock.sleep)
            assert info.value.timeout == 5 and info.value.job == job.name
            assert clock.sleeps == [2, 2, 1]
        finally:
            job.stop()
            job.wait(timeout=60)

    def test_a_rule_action_stops_training(self, backend: Backend) -> None:
        rule = Rule(kind="LossNotDecreasing",
                    parameters={"num_steps": 2, "diff_percent": 99.9, "mode": "TRAIN"},
                    actions=("stop_training",))
        spec = _spec(rounds=50, capture=CaptureConfig(save_interval=1,
                                                      collections=("metrics",)),
                     rules=(rule,))
        info = TrainingJob.submit(backend, spec, name="contract-rule-stops").wait(timeout=120)
        assert info.status is JobStatus.STOPPED
        assert info.stopped_by == "rule:LossNotDecreasing"
        assert "LossNotDecreasing" in (info.stop_reason or "")
        (result,) = info.rule_results
        assert result.status is RuleStatus.ISSUES_FOUND and result.stopped_training
        assert result.step == 2 and info.rounds == 3

    def test_rule_outcomes_are_reported_with_the_job(self, backend: Backend) -> None:
        rules = (
            Rule(kind="Overfit", parameters={"ratio_threshold": 1e6}),
            Rule(kind="FeatureImportanceOverweight", parameters={"nfeatures": 4}),
        )
        spec = _spec(capture=CaptureConfig(save_interval=2), rules=rules)
        info = TrainingJob.submit(backend, spec, name="contract-rules").wait(timeout=120)
        assert info.status is JobStatus.COMPLETED
        statuses = {r.name: r for r in info.rule_results}
        assert statuses["Overfit"].status is RuleStatus.NO_ISSUES_FOUND
        fired = statuses["FeatureImportanceOverweight"]
        assert fired.status is RuleStatus.ISSUES_FOUND and fired.step == 0
        assert not fired.stopped_training

    def test_capture_reads_back_by_step_and_name(self, backend: Backend) -> None:
        import numpy as np
        import xgboost

        spec = _spec(rounds=7, capture=CaptureConfig(save_interval=3, shap_samples=50))
        job = TrainingJob.submit(backend, spec, name="contract-capture")
        job.wait(timeout=120)
        reader = job.capture()
        assert reader.steps() == [0, 3, 6]
        history = dict(job.metrics().history["train-rmse"])
        assert float(reader.tensor("train-rmse", 3)) == pytest.approx(history[3])
        assert set(reader.collection("average_shap")) == {f"average_shap/{f}" for f in FEATURES}
        assert reader.collection("hyperparameters") and reader.has("hyperparameters/eta", 0)
        rows = list(reader.sample_rows)
        assert len(rows) == 50
        contribs = job.model().predict(
            xgboost.DMatrix(regression_frame().iloc[:180].iloc[rows][list(FEATURES)]),
            pred_contribs=True)
        for i, feature in enumerate(FEATURES):
            full = reader.tensor(f"full_shap/{feature}", 6)
            np.testing.assert_allclose(full, contribs[:, i], rtol=1e-5, atol=1e-6)
            assert float(reader.tensor(f"average_shap/{feature}", 6)) == pytest.approx(
                float(np.abs(full).mean()), rel=1e-6)
        weights = reader.values("feature_importance", 6)
        assert sum(float(v) for n, v in weights.items() if "/weight/" in n) > 0
        with pytest.raises(NotFoundError):
            reader.tensor("train-rmse", 1)

    def test_jobs_are_listed_and_compared(self, backend: Backend) -> None:
        for depth in (2, 4):
            TrainingJob.submit(backend, _spec(hyperparameters={
                "num_round": 4, "max_depth": depth, "nthread": 1}),
                name=f"contract-compare-{depth}").wait(timeout=120)
        infos = list(list_training_jobs(backend, name_contains="contract-compare"))
        assert [i.name for i in infos] == ["contract-compare-4", "contract-compare-2"]
        table = compare_training_jobs(infos)
        assert table.loc["contract-compare-2", "params.max_depth"] == 2
        assert table.loc["contract-compare-4", "params.max_depth"] == 4
        assert set(table.columns) >= {"status", "metrics.validation-rmse", "metrics.train-rmse"}
        completed = list(list_training_jobs(backend, status="Completed"))
        assert {"contract-compare-2", "contract-compare-4"} <= {i.name for i in completed}

    def test_report_is_an_html_artifact_with_charts(self, backend: Backend) -> None:
        spec = _spec(capture=CaptureConfig(save_interval=2),
                     rules=(Rule(kind="LossNotDecreasing", parameters={"num_steps": 2}),))
        job = TrainingJob.submit(backend, spec, name="contract-report")
        job.wait(timeout=120)
        uri = job.report()
        key = f"{job.describe().output_prefix}/report/training-report.html"
        assert uri == backend.artifacts.uri(key)
        html = backend.artifacts.get_bytes(key).decode()
        assert html.count("<svg") >= 3
        for section in ("Learning curves", "Feature importance", "SHAP summary", "Rules",
                        "LossNotDecreasing"):
            assert section in html
