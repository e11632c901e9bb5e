"""Local-backend behaviour the contract cannot see: threads, processes, files, crashes."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pytest
import xgboost

import mlcycle
from mlcycle.backends.base import ArtifactStore, Backend, Capability
from mlcycle.backends.local import LocalBackend
from mlcycle.errors import (
    BackendError,
    JobFailedError,
    NotFoundError,
    UnsupportedOperationError,
)
from mlcycle.testing.contract.training import FEATURES, regression_frame
from mlcycle.training import (
    CaptureConfig,
    JobStatus,
    Resources,
    Rule,
    RuleStatus,
    TrainingInput,
    TrainingJob,
    TrainingJobSpec,
    list_training_jobs,
)

HP = {"num_round": 6, "max_depth": 3, "nthread": 1}


def spec(**changes):
    frame = regression_frame()
    values = {"hyperparameters": HP, "train": frame.iloc[:180], "validation": frame.iloc[180:],
              "label": "y"}
    values.update(changes)
    return TrainingJobSpec(**values)


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_the_package_exports_the_handle_and_spec_lazily():
    assert mlcycle.TrainingJob is TrainingJob and mlcycle.TrainingJobSpec is TrainingJobSpec
    assert Capability.TRAINING in LocalBackend.capabilities


def test_a_backend_without_training_says_so(tmp_path):
    class NoTraining(Backend):
        scheme = "none"
        capabilities: ClassVar = frozenset({Capability.ARTIFACTS})
        uri = "none://"
        artifacts: ArtifactStore = None  # type: ignore[assignment]

    with pytest.raises(UnsupportedOperationError) as info:
        TrainingJob.submit(NoTraining(), spec())
    assert info.value.capability == "training"


def test_progress_is_reported_per_round_and_names_are_generated(local_backend):
    calls = []
    job = TrainingJob.submit(local_backend, spec(), progress=lambda *a: calls.append(a))
    job.wait(timeout=60)
    assert job.name.startswith("xgboost-")
    assert calls == [("train", i, 6) for i in range(1, 7)]


@pytest.mark.parametrize("kind", ["parquet", "csv", "file-uri", "artifact", "arrow", "object",
                                  "to-dataframe"])
def test_every_input_kind_trains_the_same_model(local_backend, tmp_path, kind):
    frame = regression_frame()
    train = frame.iloc[:180].reset_index(drop=True)
    if kind == "parquet":
        train.to_parquet(tmp_path / "t.parquet")
        source = str(tmp_path / "t.parquet")
    elif kind == "csv":
        train.to_csv(tmp_path / "t.csv", index=False)
        source = tmp_path / "t.csv"
    elif kind == "file-uri":
        train.to_parquet(tmp_path / "t.parquet")
        source = (tmp_path / "t.parquet").as_uri()
    elif kind == "artifact":
        local_backend.artifacts.put_bytes("datasets/train.csv", train.to_csv(index=False).encode())
        source = TrainingInput(artifact="datasets/train.csv")
    elif kind == "arrow":
        source = pa.Table.from_pandas(train)
    elif kind == "object":
        class Table:  # anything with to_pandas()
            def to_pandas(self):
                return train

        source = Table()
    else:
        class TrainingSet:  # the feature store's: to_dataframe() and to_arrow()
            def to_dataframe(self):
                return train

            def to_arrow(self):
                return pa.Table.from_pandas(train)

        source = TrainingSet()
    reference = TrainingJob.submit(local_backend, spec(train=train), name="reference")
    job = TrainingJob.submit(local_backend, spec(train=source), name=f"input-{kind}")
    dmatrix = xgboost.DMatrix(frame[list(FEATURES)])
    np.testing.assert_allclose(job.wait(timeout=60) and job.model().predict(dmatrix),
                               reference.wait(timeout=60) and reference.model().predict(dmatrix),
                               rtol=1e-6)


def test_a_missing_input_file_is_not_found(local_backend, tmp_path):
    with pytest.raises(NotFoundError):
        TrainingJob.submit(local_backend, spec(train=str(tmp_path / "nope.parquet")))
    with pytest.raises(NotFoundError):
        TrainingJob.submit(local_backend, spec(train=TrainingInput(artifact="no/such.csv")))
    assert list(list_training_jobs(local_backend)) == []


def test_an_error_inside_the_training_loop_fails_the_job(local_backend, monkeypatch):
    from mlcycle.training import runner

    def explode(self, booster, metrics):
        raise RuntimeError("capture broke")

    monkeypatch.setattr(runner._Capture, "compute", explode)
    job = TrainingJob.submit(local_backend, spec(
        capture=CaptureConfig(save_interval=2),
        rules=[Rule(kind="LossNotDecreasing", parameters={"num_steps": 2})]), name="boom")
    with pytest.raises(JobFailedError) as info:
        job.wait(timeout=60)
    assert info.value.reason == "RuntimeError: capture broke"
    described = job.describe()
    assert described.status is JobStatus.FAILED and described.model_key is None
    assert [r.status for r in described.rule_results] == [RuleStatus.STOPPED]
    assert not local_backend.artifacts.exists(f"{described.output_prefix}/output/model.tar.gz")


def test_a_failed_model_write_registers_no_model(local_backend, monkeypatch):
    store = local_backend.artifacts
    real = store.put_bytes

    def put(key, data):
        if key.endswith("model.tar.gz"):
            raise BackendError("disk full", backend="local")
        return real(key, data)

    monkeypatch.setattr(store, "put_bytes", put)
    job = TrainingJob.submit(local_backend, spec(), name="no-space")
    with pytest.raises(JobFailedError) as info:
        job.wait(timeout=60)
    assert "disk full" in info.value.reason
    assert job.describe().model_key is None


def test_max_runtime_stops_the_job(local_backend):
    job = TrainingJob.submit(local_backend, spec(
        hyperparameters={**HP, "num_round": 1_000_000},
        resources=Resources(max_runtime_s=1)), name="too-long")
    info = job.wait(timeout=60)
    assert info.status is JobStatus.STOPPED and info.stopped_by == "max_runtime"
    assert info.model_key is not None and job.model().num_boosted_rounds() == info.rounds


def test_early_stopping_records_the_best_round(local_backend):
    frame = regression_frame(rows=400)
    noise = frame.assign(y=np.random.default_rng(5).normal(size=400))  # nothing to learn
    job = TrainingJob.submit(local_backend, spec(
        train=noise.iloc[:300], validation=noise.iloc[300:],
        hyperparameters={**HP, "num_round": 500, "eta": 0.5, "early_stopping_rounds": 3}))
    info = job.wait(timeout=60)
    assert info.status is JobStatus.COMPLETED
    assert info.best_iteration is not None and info.rounds == info.best_iteration + 4
    assert info.rounds < 500


def test_jobs_run_concurrently(local_backend):
    jobs = [TrainingJob.submit(local_backend, spec(), name=f"together-{i}") for i in range(3)]
    assert all(j.wait(timeout=60).status is JobStatus.COMPLETED for j in jobs)


def test_another_backend_on_the_workspace_sees_and_stops_the_job(tmp_path):
    first = LocalBackend(tmp_path / "ws")
    second = mlcycle.connect(f"local://{tmp_path / 'ws'}")
    job = TrainingJob.submit(first, spec(hyperparameters={**HP, "num_round": 1_000_000}),
                             name="shared")
    other = TrainingJob.get(second, "shared")
    wait_for(lambda: other.describe().rounds > 0)  # flushed to the database about every second
    assert other.status() is JobStatus.IN_PROGRESS
    assert other.logs()[0].startswith("[0]\ttrain-rmse:")
    other.stop()  # seen by the job at its next flush
    info = job.wait(timeout=30)
    assert info.status is JobStatus.STOPPED and info.stopped_by == "user"
    seen = other.describe()
    assert seen.status is JobStatus.STOPPED and seen.model_key == info.model_key
    assert other.metrics().final == job.metrics().final
    assert len(other.logs()) == info.rounds
    first.close()
    second.close()


_CHILD = textwrap.dedent(
    """
    import sys
    import mlcycle
    from mlcycle.testing.contract.training import regression_frame
    from mlcycle.training import TrainingJob, TrainingJobSpec, CaptureConfig

    backend = mlcycle.connect(sys.argv[1])
    if sys.argv[2] == "after-model":
        import os
        from mlcycle.backends.local import training

        def die(self, run, **kwargs):  # the model is written; the process dies before recording
            sys.stdout.write("model written\\n")
            sys.stdout.flush()
            os._exit(9)

        training.LocalTrainingBackend._finish = die
        rounds = 5
    else:
        rounds = 1_000_000
    frame = regression_frame()
    spec = TrainingJobSpec(
        hyperparameters={"num_round": rounds, "max_depth": 3, "nthread": 1},
        train=frame, label="y", capture=CaptureConfig(save_interval=50, collections=["metrics"]),
    )
    job = TrainingJob.submit(backend, spec, name="doomed")
    job.wait()
    """
)


def _child(workspace, mode):
    return subprocess.Popen([sys.executable, "-c", _CHILD, f"local://{workspace}", mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _assert_nothing_registered(backend):
    job = TrainingJob.get(backend, "doomed")
    info = job.describe()
    assert info.status is JobStatus.FAILED
    assert info.failure_reason and info.model_key is None and info.model_uri is None
    with pytest.raises(JobFailedError):
        job.model()
    assert not [k for k in backend.artifacts.list_keys(info.output_prefix)
                if k.endswith("model.tar.gz")]
    assert list(list_training_jobs(backend, status="Completed")) == []
    with pytest.raises(JobFailedError):
        job.wait(timeout=1)


def test_a_job_killed_mid_training_leaves_no_model_and_no_completed_record(tmp_path):
    workspace = tmp_path / "ws"
    child = _child(workspace, "train")
    try:
        backend = LocalBackend(workspace)
        wait_for(lambda: (workspace / "training.sqlite").exists()
                 and any(j.rounds > 0 for j in list_training_jobs(backend)), timeout=60)
        job = TrainingJob.get(backend, "doomed")
        wait_for(lambda: job.capture().steps(), timeout=60)  # the capture is written apart
        assert job.status() is JobStatus.IN_PROGRESS
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.communicate()
    _assert_nothing_registered(backend)
    job = TrainingJob.get(backend, "doomed")
    assert job.logs() and job.capture().steps()[0] == 0  # what was flushed stays readable


def test_a_job_killed_after_writing_its_model_registers_none(tmp_path):
    workspace = tmp_path / "ws"
    child = _child(workspace, "after-model")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 9, err
    assert "model written" in out
    backend = LocalBackend(workspace)
    orphans = [k for k in backend.artifacts.list_keys() if k.endswith("model.tar.gz")]
    assert len(orphans) == 1  # whole, in place, but never recorded
    _assert_nothing_registered(backend)  # ... and removed by the reader that found the record


def test_changing_the_callers_frame_after_submit_does_not_reach_the_job(local_backend):
    frame = regression_frame()
    train = frame.iloc[:180].copy()
    reference = TrainingJob.submit(local_backend, spec(train=train.copy()), name="untouched")
    job = TrainingJob.submit(local_backend, spec(train=train), name="touched")
    train["y"] = 0.0
    train["f0"] = 1.0
    dmatrix = xgboost.DMatrix(frame[list(FEATURES)])
    job.wait(timeout=60)
    reference.wait(timeout=60)
    np.testing.assert_array_equal(job.model().predict(dmatrix),
                                  reference.model().predict(dmatrix))


def test_captured_importance_equals_xgboosts_own_scores(local_backend):
    job = TrainingJob.submit(local_backend, spec(capture=CaptureConfig(
        save_interval=2, collections=["feature_importance", "trees", "predictions", "labels"])),
        name="importance")
    job.wait(timeout=60)
    reader = job.capture()
    last = reader.steps()[-1]
    booster = job.model()
    for kind in ("weight", "gain", "cover", "total_gain", "total_cover"):
        scores = booster.get_score(importance_type=kind)
        for feature in FEATURES:
            assert float(reader.tensor(f"feature_importance/{kind}/{feature}", last)) == \
                pytest.approx(scores.get(feature, 0.0), rel=1e-6)
    from mlcycle.training.runner import tree_depths

    assert reader.tensor("trees/depth", last).tolist() == tree_depths(booster)
    rows = list(reader.sample_rows)
    sample = regression_frame().iloc[:180].iloc[rows]
    np.testing.assert_allclose(reader.tensor("predictions", last),
                               booster.predict(xgboost.DMatrix(sample[list(FEATURES)])),
                               rtol=1e-6)
    np.testing.assert_array_equal(reader.tensor("labels", last), sample["y"].to_numpy())


def test_without_xgboost_submit_names_the_extra(local_backend, monkeypatch):
    import importlib.util

    from mlcycle.errors import MissingDependencyError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "xgboost" else real(name, *a))
    with pytest.raises(MissingDependencyError) as info:
        TrainingJob.submit(local_backend, spec())
    assert info.value.extra == "train" and info.value.package == "xgboost-cpu"


def test_a_feature_store_training_set_trains_and_is_recorded_by_shape(local_backend):
    store_module = pytest.importorskip("mlcycle.featurestore.store")
    from mlcycle.featurestore import FeatureGroupSpec

    frame = regression_frame()
    store = store_module.FeatureStore(local_backend)
    group = store.create(FeatureGroupSpec(
        name="points", record_identifier="id", event_time="t",
        features=[("id", "Integral"), ("t", "Fractional"),
                  *[(f, "Fractional") for f in FEATURES]]))
    group.ingest(frame[list(FEATURES)].assign(id=range(len(frame)), t=1.0))
    base = frame[["y"]].assign(id=range(len(frame)), ts=2.0)
    training_set = store.training_set(base, event_time="ts").join(group)
    job = TrainingJob.submit(local_backend, spec(train=training_set, validation=None,
                                                 features=list(FEATURES)))
    info = job.wait(timeout=60)
    assert info.status is JobStatus.COMPLETED and info.feature_names == FEATURES
    assert info.spec.train.summary == {"rows": 240, "columns": [*FEATURES, "y"]}
