"""mlcycle's training script for SageMaker's XGBoost container (``container_entry``).

The script repeats, in a Python 3.8 dialect without mlcycle, the capture of
``mlcycle.training.runner`` and the rules of ``mlcycle.training.rules``. These tests hold the
two to the same answers: rule by rule on random streams, and job by job through the facade
(the local backend beside the sagemaker backend on moto, whose simulated container runs the
real script), plus what only the script does (its files, SIGTERM, a failure).
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from mlcycle.testing.aws_training import SimulatedContainer
from mlcycle.testing.contract.training import FEATURES, regression_frame
from mlcycle.training import (
    CaptureConfig,
    MemoryTensorStream,
    Rule,
    TrainingJob,
    TrainingJobSpec,
)
from mlcycle.training import container_entry as script
from mlcycle.training import rules as library

SOURCE = Path(script.__file__).read_text()


# -- what the container can run -----------------------------------------------------------------
def test_the_script_is_python_3_8_and_imports_only_what_the_container_has():
    tree = ast.parse(SOURCE, feature_version=(3, 8))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"numpy", "pandas", "xgboost"}
    newer = {"removeprefix", "removesuffix", "UTC", "StrEnum", "cache", "pairwise"}
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not used & newer
    keywords = {k.arg for node in ast.walk(tree) if isinstance(node, ast.Call)
                for k in node.keywords}
    assert "strict" not in keywords  # zip(strict=...) is Python 3.10


def test_the_script_shares_the_librarys_constants_and_defaults():
    from mlcycle.training.capture import CAPTURE_FORMAT
    from mlcycle.training.hyperparameters import MAXIMIZED_METRICS

    assert script.CAPTURE_FORMAT == CAPTURE_FORMAT
    assert script.MAXIMIZED_METRICS == MAXIMIZED_METRICS
    assert set(script.BUILTIN_RULES) == set(library.BUILTIN_RULES)
    for kind, function in library.BUILTIN_RULES.items():
        ours = inspect.signature(script.BUILTIN_RULES[kind]).parameters
        theirs = inspect.signature(function).parameters
        assert {n: p.default for n, p in ours.items()} == {n: p.default
                                                           for n, p in theirs.items()}


def test_failure_reasons_and_packed_steps_are_the_librarys():
    from mlcycle.training.capture import unpack_step
    from mlcycle.training.runner import failure_reason

    for exc in (ValueError("[13:19:13] src/obj.cu:83: label must be positive\nStack"),
                RuntimeError(""), KeyError("x")):
        assert script.failure_reason(exc) == failure_reason(exc)
    step = {"metrics": {"train-rmse": np.float64(0.5)},
            "full_shap": {"full_shap/a": np.arange(3, dtype=np.float32)},
            "hyperparameters": {"hyperparameters/objective": np.array("reg:squarederror"),
                                "hyperparameters/eval_metric": np.array(["rmse", "mae"])}}
    back = unpack_step(script.pack_step(step))
    assert set(back) == {"train-rmse", "full_shap/a", "hyperparameters/objective",
                         "hyperparameters/eval_metric"}
    np.testing.assert_array_equal(back["full_shap/a"], np.arange(3, dtype=np.float32))
    assert back["full_shap/a"].dtype == np.float32
    assert back["hyperparameters/eval_metric"].tolist() == ["rmse", "mae"]


# -- rule by rule -------------------------------------------------------------------------------
def _streams(steps: list[int], tensors: dict[str, dict[str, list[Any]]]
             ) -> tuple[MemoryTensorStream, script.StreamInMemory]:
    ours, theirs = MemoryTensorStream(), script.StreamInMemory()
    for collection, series in tensors.items():
        for name, values in series.items():
            for step, value in zip(steps, values, strict=True):
                ours.add(step, collection, {name: value})
                theirs.add(step, collection, {name: value})
    return ours, theirs


def _outcome(function: Any, stream: Any, parameters: dict[str, Any]) -> tuple[Any, ...]:
    try:
        found = function(stream, **parameters)
    except Exception as exc:  # the engine reports a rule's error as its status
        return ("error", type(exc).__name__, str(exc))
    return (found.fired, found.step, found.message)


def _random_case(rng: np.random.Generator) -> tuple[list[int], dict[str, dict[str, list[Any]]]]:
    n = int(rng.integers(1, 40))
    steps = sorted(int(s) for s in rng.choice(200, size=n, replace=False))

    def loss() -> list[float]:
        level = float(rng.uniform(0.5, 3))
        rate = float(rng.choice([0.7, 0.95, 0.999, 1.0, 1.02]))
        noise = float(rng.choice([0, 0.01, 0.2]))
        return [level * rate**i + noise * float(rng.normal()) for i in range(n)]

    metrics = {"train-rmse": loss(), "validation-rmse": loss()}
    if rng.random() < 0.3:
        metrics["validation-auc"] = [float(v) for v in rng.uniform(0.5, 1, n)]
    if rng.random() < 0.2:
        metrics["train-logloss"] = [0.0] * n
    classes = int(rng.integers(2, 4))
    tensors: dict[str, dict[str, list[Any]]] = {
        "metrics": metrics,
        "trees": {"trees/depth": [rng.integers(0, 7, size=int(rng.integers(0, 5)))
                                  for _ in range(n)]},
        "labels": {"labels": [rng.choice(classes, size=50, p=None if rng.random() < 0.5 else
                                         [0.9] + [0.1 / (classes - 1)] * (classes - 1))
                              .astype(float) for _ in range(n)]},
        "predictions": {"predictions": [rng.uniform(0, classes - 1, size=50)
                                        for _ in range(n)]},
        "feature_importance": {f"feature_importance/weight/f{i}":
                               [float(v) for v in rng.exponential(size=n) * (i + 1) ** 3]
                               for i in range(int(rng.integers(1, 6)))},
    }
    if rng.random() < 0.3:
        tensors["losses"] = {"my-loss": loss()}
    return steps, tensors


_PARAMETERS = {
    "LossNotDecreasing": [{}, {"num_steps": 3}, {"num_steps": 2, "diff_percent": 5.0},
                          {"mode": "TRAIN", "num_steps": 1, "increase_threshold_percent": 0.5},
                          {"mode": "GLOBAL"}, {"mode": "nope"}, {"num_steps": 0},
                          {"tensor_regex": "train-.*", "use_losses_collection": False},
                          {"collection_names": "losses,metrics", "num_steps": 4}],
    "Overfit": [{}, {"patience": 3, "ratio_threshold": 0.01}, {"start_step": 50},
                {"tensor_regex": "nothing"}],
    "Overtraining": [{}, {"patience_train": 2, "patience_validation": 3, "delta": 0.0}],
    "TreeDepth": [{}, {"depth": 6}, {"depth": 0.5}],
    "ClassImbalance": [{}, {"samples": 10, "threshold_imbalance": 2},
                       {"threshold_misprediction": 0.1, "samples": 1}, {"argmax": True},
                       {"labels_regex": "none"}],
    "FeatureImportanceOverweight": [{}, {"nfeatures": 1, "threshold": 0.5},
                                    {"tensor_regex": "nothing"}],
}


@pytest.mark.parametrize("kind", sorted(_PARAMETERS))
def test_every_rule_gives_the_librarys_outcome_on_random_streams(kind):
    rng = np.random.default_rng(sum(map(ord, kind)))
    fired = 0
    for _ in range(40):
        steps, tensors = _random_case(rng)
        ours, theirs = _streams(steps, tensors)
        for parameters in _PARAMETERS[kind]:
            expected = _outcome(library.BUILTIN_RULES[kind], ours, parameters)
            assert _outcome(script.BUILTIN_RULES[kind], theirs, parameters) == expected, (
                kind, parameters, steps)
            fired += expected[0] is True
    assert fired  # the cases reach the rule's condition, not only its quiet path


def test_the_rule_engine_gives_the_librarys_results():
    rules = [Rule(kind="LossNotDecreasing", parameters={"num_steps": 2},
                  actions=("stop_training",)),
             Rule(kind="Overtraining", parameters={"patience_train": 1},
                  actions=("stop_training",)),
             Rule(kind="TreeDepth"), Rule(kind="Overfit", name="over-1")]
    ours, theirs = MemoryTensorStream(), script.StreamInMemory()
    mine = library.RuleEngine(rules, ours)
    engine = script.RuleEngine([r.to_dict() for r in rules], theirs)
    values = [1.0, 0.9, 0.9, 0.9, 0.9]
    for step, value in enumerate(values):
        for stream in (ours, theirs):
            stream.add(step, "metrics", {"train-rmse": value, "validation-rmse": value * 1.2})
        a, b = mine.evaluate(), engine.evaluate()
        assert (a.name if a else None) == (b["name"] if b else None)

    def plain(results: Any) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "evaluated_at"} for r in results]

    mine.finish(failed=False)
    engine.finish(failed=False)
    assert plain(engine.to_list()) == plain(r.to_dict() for r in mine.results())
    for result in engine.to_list():
        library.RuleResult.from_dict(result)  # the library reads what the script writes


# -- job by job: the local backend beside the script on moto ------------------------------------
def _classification_frame(rows: int = 240) -> Any:
    frame = regression_frame(rows, seed=3)
    frame["y"] = (frame["y"] > 1.2).astype(float)  # about one row in four is class 1
    return frame


_JOBS = {
    "all-collections": dict(
        frame=regression_frame,
        hyperparameters={"num_round": 9, "max_depth": 3, "eta": 0.3, "nthread": 1,
                         "eval_metric": ("rmse", "mae")},
        capture=CaptureConfig(save_interval=2, shap_samples=40,
                              collections=("metrics", "feature_importance", "average_shap",
                                           "full_shap", "hyperparameters", "predictions",
                                           "labels", "trees")),
        rules=(Rule(kind="FeatureImportanceOverweight", parameters={"nfeatures": 2}),
               Rule(kind="TreeDepth", parameters={"depth": 4}),
               Rule(kind="Overfit", parameters={"ratio_threshold": 1e6}),
               Rule(kind="LossNotDecreasing", parameters={"num_steps": 2, "diff_percent": 8.0},
                    actions=("stop_training",))),
    ),
    "rules-only-classification": dict(
        frame=_classification_frame,
        hyperparameters={"num_round": 6, "max_depth": 2, "objective": "binary:logistic",
                         "nthread": 1},
        capture=None,
        rules=(Rule(kind="ClassImbalance", parameters={"samples": 100,
                                                       "threshold_imbalance": 2}),
               Rule(kind="Overtraining", parameters={"patience_train": 2, "delta": 0.5})),
    ),
    "dart-early-stopping": dict(
        frame=regression_frame,
        hyperparameters={"num_round": 12, "max_depth": 2, "booster": "dart", "rate_drop": 0.1,
                         "eta": 0.5, "nthread": 1, "seed": 7, "early_stopping_rounds": 2},
        capture=CaptureConfig(save_interval=3, collections=("metrics", "feature_importance",
                                                            "average_shap", "trees"),
                              importance_types=("weight", "gain", "total_cover")),
        rules=(),
    ),
}


def _run_both(case: str, local_backend: Any, sagemaker_backend: Any
              ) -> tuple[TrainingJob, TrainingJob]:
    values = dict(_JOBS[case])
    frame = values.pop("frame")()
    spec = TrainingJobSpec(train=frame.iloc[:180], validation=frame.iloc[180:], label="y",
                           **values)
    SimulatedContainer(sagemaker_backend)
    local = TrainingJob.submit(local_backend, spec, name=f"both-{case}")
    remote = TrainingJob.submit(sagemaker_backend, spec, name=f"both-{case}")
    local.wait(timeout=120)
    remote.wait(timeout=5, sleep=lambda _: None)
    return local, remote


@pytest.mark.aws
@pytest.mark.parametrize("case", sorted(_JOBS))
def test_a_job_on_sagemaker_gives_what_it_gives_locally(case, local_backend,
                                                        sagemaker_backend):
    import xgboost

    local, remote = _run_both(case, local_backend, sagemaker_backend)
    a, b = local.describe(), remote.describe()
    assert (b.status, b.rounds, b.stopped_by, b.stop_reason, b.best_iteration) == (
        a.status, a.rounds, a.stopped_by, a.stop_reason, a.best_iteration)
    assert b.final_metrics == a.final_metrics
    assert remote.metrics().history == local.metrics().history  # the logs keep every digit

    def plain(info: Any) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.to_dict().items() if k != "evaluated_at"}
                for r in info.rule_results]

    assert plain(b) == plain(a)

    frame = regression_frame()
    dmatrix = xgboost.DMatrix(frame[list(FEATURES)])
    np.testing.assert_array_equal(remote.model().predict(dmatrix),
                                  local.model().predict(dmatrix))
    meta_a, meta_b = local.model_artifact().metadata, remote.model_artifact().metadata
    assert {k: v for k, v in meta_b.items() if k != "job"} == {
        k: v for k, v in meta_a.items() if k != "job"}

    if a.capture_prefix is None:
        assert b.capture_prefix is None
        return
    ours, theirs = local.capture(), remote.capture()
    assert theirs.steps() == ours.steps()
    assert theirs.collection_names() == ours.collection_names()
    assert theirs.sample_rows == ours.sample_rows and theirs.feature_names == FEATURES
    for step in ours.steps():
        assert set(theirs.names_at(step)) == set(ours.names_at(step))
        for name in ours.names_at(step):
            want, got = ours.tensor(name, step), theirs.tensor(name, step)
            assert got.dtype == want.dtype, name
            np.testing.assert_array_equal(got, want, err_msg=f"{name} at step {step}")
    assert {k: v for k, v in theirs.index.items() if k != "job"} == {
        k: v for k, v in ours.index.items() if k != "job"}


# -- what only the script does: run it as the container would -----------------------------------
def _lay_out(root: Path, spec: TrainingJobSpec, frame: Any, *, name: str = "script-job"
             ) -> dict[str, str]:
    """Lay ``root`` out as /opt/ml for ``spec`` and return the container's environment."""
    from mlcycle.backends.sagemaker.training import format_hyperparameters, script_plan, to_csv

    features = tuple(spec.features or FEATURES)
    spec = attrs.evolve(spec, features=features)
    data = root / "input" / "data"
    for channel, part in (("train", frame.iloc[:180]), ("validation", frame.iloc[180:])):
        (data / channel).mkdir(parents=True)
        (data / channel / f"{channel}.csv").write_bytes(
            to_csv(part, label="y", features=features))
    (data / "mlcycle").mkdir()
    (data / "mlcycle" / "config.json").write_text(
        json.dumps(script_plan(name, spec, frame.iloc[:180])))
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(
        {**format_hyperparameters(spec.hyperparameters),
         "sagemaker_program": "mlcycle_train.py"}))
    (config / "checkpointconfig.json").write_text(json.dumps(
        {"LocalPath": str(root / "checkpoints")}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    env.update({
        "SM_INPUT_TRAINING_CONFIG_FILE": str(config / "hyperparameters.json"),
        "SM_CHECKPOINT_CONFIG_FILE": str(config / "checkpointconfig.json"),
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DIR": str(root / "output"),
        "SM_HOSTS": '["algo-1"]',
        **{f"SM_CHANNEL_{c.upper()}": str(data / c) for c in ("train", "validation",
                                                               "mlcycle")},
    })
    return env


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, script.__file__, "--num_round", "ignored"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _spec(rounds: int, **changes: Any) -> TrainingJobSpec:
    frame = regression_frame()
    values: dict[str, Any] = {"hyperparameters": {"num_round": rounds, "max_depth": 3,
                                                  "nthread": 1},
                              "train": frame.iloc[:180], "validation": frame.iloc[180:],
                              "label": "y", "capture": CaptureConfig(save_interval=1,
                                                                     collections=("metrics",)),
                              "rules": (Rule(kind="Overfit", parameters={"ratio_threshold": 1e6}),)}
    values.update(changes)
    return TrainingJobSpec(**values)


def test_sigterm_stops_after_the_round_and_keeps_the_rounds_so_far(tmp_path):
    import xgboost

    env = _lay_out(tmp_path, _spec(100_000), regression_frame())
    process = _start(env)
    run_file = tmp_path / "checkpoints" / script.RUN_FILE
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if run_file.exists() and json.loads(run_file.read_text())["rounds"] >= 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    state = json.loads(run_file.read_text())
    assert state["status"] == "Completed" and state["stopped_by"] is None
    assert 3 <= state["rounds"] < 100_000
    assert len(out.splitlines()) == state["rounds"]  # one line per round, nothing else
    booster = xgboost.Booster()
    booster.load_model(bytearray((tmp_path / "model" / "xgboost-model").read_bytes()))
    assert booster.num_boosted_rounds() == state["rounds"]
    assert booster.feature_names == list(FEATURES)
    (result,) = state["rule_results"]
    assert result["status"] == "NoIssuesFound"
    index = json.loads((tmp_path / "checkpoints" / "debug-output" / "index.json").read_text())
    assert index["steps"] == list(range(state["rounds"]))
    # nothing half-written is ever in the folder SageMaker copies: staging sits beside it
    names = {p.name for p in (tmp_path / "checkpoints").rglob("*") if p.is_file()}
    assert names == {"run.json", "index.json"} | {f"{s:09d}.npz" for s in index["steps"]}


def test_a_failure_writes_sagemakers_failure_file_and_stops_the_rules(tmp_path):
    frame = regression_frame()
    frame["y"] = frame["y"].abs() + 1.0
    frame.loc[0, "y"] = 0.0  # gamma regression needs positive labels; XGBoost says so
    spec = _spec(5, hyperparameters={"num_round": 5, "objective": "reg:gamma", "nthread": 1})
    env = _lay_out(tmp_path, spec, frame)
    process = _start(env)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    reason = (tmp_path / "output" / "failure").read_text()
    assert reason.startswith("XGBoostError: ") and "label" in reason
    assert reason in err
    state = json.loads((tmp_path / "checkpoints" / script.RUN_FILE).read_text())
    assert state["status"] == "Failed" and state["failure_reason"] == reason
    assert [r["status"] for r in state["rule_results"]] == ["Stopped"]
    assert not (tmp_path / "model" / "xgboost-model").exists()


def test_a_missing_plan_is_a_failure_with_a_reason(tmp_path):
    env = _lay_out(tmp_path, _spec(3), regression_frame())
    (tmp_path / "input" / "data" / "mlcycle" / "config.json").unlink()
    process = _start(env)
    process.communicate(timeout=60)
    assert process.returncode == 1
    assert (tmp_path / "output" / "failure").read_text().startswith("FileNotFoundError: ")


def test_the_hyperparameters_sagemaker_passes_are_what_it_trains_with(tmp_path):
    """A tuning job rewrites hyperparameters.json; the plan only types the values."""
    env = _lay_out(tmp_path, _spec(4), regression_frame())
    path = Path(env["SM_INPUT_TRAINING_CONFIG_FILE"])
    hyper = json.loads(path.read_text())
    hyper.update({"num_round": "2", "max_depth": "1", "eval_metric": "rmse,mae"})
    path.write_text(json.dumps(hyper))
    process = _start(env)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and "validation-mae:" in lines[0]
    meta = json.loads((tmp_path / "model" / "mlcycle" / "model.json").read_text())
    assert meta["rounds"] == meta["num_round"] == 2


def test_several_hosts_are_refused_by_the_script(tmp_path):
    env = _lay_out(tmp_path, _spec(3), regression_frame())
    env["SM_HOSTS"] = '["algo-1", "algo-2"]'
    process = _start(env)
    process.communicate(timeout=60)
    assert process.returncode == 1
    assert "one instance" in (tmp_path / "output" / "failure").read_text()
