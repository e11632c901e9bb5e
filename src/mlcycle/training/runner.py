"""The training loop every backend runs: XGBoost with logging, capture, rules and stopping.

:func:`run_training` trains one job's spec on its (validated) data. It is backend-neutral: the
local backend calls it in a thread; a remote backend's training script calls it on the remote
machine with the same spec and an artifact store there, so both write the same files. It reports
to the caller through :class:`RunHooks` and returns a :class:`RunResult`; it writes the capture
itself but not the model, which the backend stores and registers.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from mlcycle.progress import ProgressCallback, report
from mlcycle.training.capture import MemoryTensorStream, TensorWriter
from mlcycle.training.rules import RULE_COLLECTIONS, RuleEngine, RuleResult

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xgboost

    from mlcycle.backends.base import ArtifactStore
    from mlcycle.training.spec import TrainingJobSpec

__all__ = [
    "RunHooks",
    "RunResult",
    "capture_importance_types",
    "failure_reason",
    "run_training",
    "shap_sample_rows",
    "tree_depths",
]

_SHAP_COLLECTIONS = {"average_shap", "full_shap", "predictions", "labels"}
_TOTALS = {"gain": "total_gain", "cover": "total_cover"}
_XGB_PREFIX = re.compile(r"^\[\d{2}:\d{2}:\d{2}\]\s+\S+:\d+:\s*")


class RunHooks:
    """Callbacks of :func:`run_training`; the default implementation does nothing.

    A backend subclasses it to persist logs and metrics as rounds finish, to publish rule
    statuses and to pass on a request to stop.
    """

    def on_round(self, step: int, metrics: dict[str, float], line: str) -> None:
        """Called after every round with its metrics and its log line."""

    def on_rules(self, results: tuple[RuleResult, ...]) -> None:
        """Called after the rules were evaluated at a saved step."""

    def should_stop(self) -> tuple[str, str] | None:
        """Return ``(stopped_by, reason)`` to stop training after this round, or None."""
        return None


@attrs.frozen(kw_only=True)
class RunResult:
    """What :func:`run_training` produced.

    Parameters
    ----------
    booster : ``xgboost.Booster``
        The trained model.
    rounds : int
        Rounds trained.
    history : dict
        Every metric's ``(round, value)`` pairs.
    stopped_by, stop_reason : str, optional
        What stopped training early, and why (None if it ran every round).
    rule_results : tuple of mlcycle.training.RuleResult
        The final status of every rule.
    best_iteration : int, optional
        The best round, with ``early_stopping_rounds``.
    feature_names : tuple of str
        The model's features.
    """

    booster: Any
    rounds: int
    history: dict[str, list[tuple[int, float]]]
    stopped_by: str | None = None
    stop_reason: str | None = None
    rule_results: tuple[RuleResult, ...] = ()
    best_iteration: int | None = None
    feature_names: tuple[str, ...] = ()

    @property
    def final_metrics(self) -> dict[str, float]:
        """The last value of every metric."""
        return {name: values[-1][1] for name, values in self.history.items() if values}


def failure_reason(exc: BaseException) -> str:
    r"""Say in one line why training failed (XGBoost's time stamp and source line dropped).

    Examples
    --------
    >>> failure_reason(ValueError("[13:19:13] src/obj.cu:83: label must be positive\nStack"))
    'ValueError: label must be positive'
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = _XGB_PREFIX.sub("", text).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def tree_depths(booster: xgboost.Booster) -> list[int]:
    """Return the depth of every tree of ``booster`` (a root alone has depth 0)."""
    depths = []
    for dump in booster.get_dump():
        deepest = 0
        for line in dump.splitlines():
            if line.strip():
                deepest = max(deepest, len(line) - len(line.lstrip("\t")))
        depths.append(deepest)
    return depths


def _hyperparameter_tensors(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    out = {}
    for name, value in hyperparameters.items():
        if isinstance(value, tuple):
            out[f"hyperparameters/{name}"] = np.array([str(v) for v in value])
        elif isinstance(value, str):
            out[f"hyperparameters/{name}"] = np.array(value)
        else:
            out[f"hyperparameters/{name}"] = np.float64(value)
    return out


def capture_importance_types(spec: TrainingJobSpec) -> tuple[str, ...]:
    """The importance types a job computes: its capture's, or every type for its rules."""
    if spec.capture is not None:
        return tuple(spec.capture.importance_types)
    return ("weight", "gain", "cover", "total_gain", "total_cover")


def shap_sample_rows(spec: TrainingJobSpec, rows: int) -> list[int]:
    """Positions of the training rows sampled for SHAP values, predictions and labels.

    Empty if the job computes none of those collections; else ``shap_samples`` rows (all rows
    if fewer), drawn with the capture's ``seed``, ascending.
    """
    import numpy as np

    if not _SHAP_COLLECTIONS & set(spec.stream_collections()):
        return []
    size = spec.capture.shap_samples if spec.capture else 500
    seed = spec.capture.seed if spec.capture else 0
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(rows, size=min(size, rows), replace=False))
    return [int(r) for r in chosen]


class _Capture:
    """Compute the collections of one saved step.

    Everything derived from the trees adds up over trees: TreeSHAP values, the ``weight``,
    ``total_gain`` and ``total_cover`` importances, the list of tree depths. So each saved step
    looks only at the rounds grown since the previous one (a slice of the booster) and adds
    them to running totals; ``gain`` and ``cover`` are ``total_gain`` and ``total_cover`` over
    ``weight``, as XGBoost defines them. A DART model, whose trees are reweighted as it grows,
    is looked at whole every time.
    """

    def __init__(self, spec: TrainingJobSpec, train: pd.DataFrame, features: list[str],
                 collections: tuple[str, ...]) -> None:
        import numpy as np
        import xgboost

        self.spec = spec
        self.features = features
        self.collections = collections
        self.importance_types = capture_importance_types(spec)
        self.sample_rows = shap_sample_rows(spec, len(train))
        self._first = True
        self._dart = spec.hyperparameters.get("booster") == "dart"
        self._done = 0  # rounds already added to the totals
        self._shap: Any = None
        self._totals: dict[str, dict[str, float]] = {}
        self._depths: list[int] = []
        if _SHAP_COLLECTIONS & set(collections):
            sample = train.iloc[np.asarray(self.sample_rows, dtype=np.int64)]
            self.dsample = xgboost.DMatrix(sample[features], feature_names=features,
                                           nthread=spec.hyperparameters.get("nthread"))
            self.sample_labels = sample[spec.label].to_numpy(dtype=float)

    def _advance(self, booster: xgboost.Booster, wanted: set[str]) -> None:
        """Add the trees grown since the last saved step to the running totals."""
        rounds = booster.num_boosted_rounds()
        if self._dart:
            self._done, self._shap, self._totals, self._depths = 0, None, {}, []
        if rounds <= self._done:
            return
        part = booster if self._done == 0 and self._dart else booster[self._done:rounds]
        if wanted & {"average_shap", "full_shap"}:
            new = part.predict(self.dsample, pred_contribs=True,
                               validate_features=False)[..., :-1].astype(float)
            self._shap = new if self._shap is None else self._shap + new
        if "feature_importance" in wanted:
            needed = {"weight"} | {_TOTALS.get(k, k) for k in self.importance_types}
            for kind in sorted(needed):
                totals = self._totals.setdefault(kind, {})
                for feature, value in part.get_score(importance_type=kind).items():
                    totals[feature] = totals.get(feature, 0.0) + float(value)
        if "trees" in wanted:
            self._depths.extend(tree_depths(part))
        self._done = rounds

    def _importance(self) -> dict[str, Any]:
        import numpy as np

        weight = self._totals.get("weight", {})
        tensors = {}
        for kind in self.importance_types:
            for feature in self.features:
                if kind in _TOTALS:
                    count = weight.get(feature, 0.0)
                    total = self._totals.get(_TOTALS[kind], {}).get(feature, 0.0)
                    value = total / count if count else 0.0
                else:
                    value = self._totals.get(kind, {}).get(feature, 0.0)
                tensors[f"feature_importance/{kind}/{feature}"] = np.float64(value)
        return tensors

    def compute(self, booster: xgboost.Booster, metrics: dict[str, float]
                ) -> dict[str, dict[str, Any]]:
        import numpy as np

        out: dict[str, dict[str, Any]] = {}
        wanted = set(self.collections)
        self._advance(booster, wanted)
        if "metrics" in wanted:
            out["metrics"] = {k: np.float64(v) for k, v in metrics.items()}
        if "feature_importance" in wanted:
            out["feature_importance"] = self._importance()
        if wanted & {"average_shap", "full_shap"}:
            contribs = self._shap
            if "full_shap" in wanted:
                out["full_shap"] = {f"full_shap/{f}": contribs[..., i].astype(np.float32)
                                    for i, f in enumerate(self.features)}
            if "average_shap" in wanted:
                means = np.abs(contribs).reshape(-1, contribs.shape[-1]).mean(axis=0)
                out["average_shap"] = {f"average_shap/{f}": np.float64(means[i])
                                       for i, f in enumerate(self.features)}
        if "predictions" in wanted:
            out["predictions"] = {"predictions": booster.predict(self.dsample,
                                                                 validate_features=False)}
        if "labels" in wanted:
            out["labels"] = {"labels": self.sample_labels}
        if "hyperparameters" in wanted and self._first:
            out["hyperparameters"] = _hyperparameter_tensors(self.spec.hyperparameters)
        if "trees" in wanted:
            out["trees"] = {"trees/depth": np.asarray(self._depths, dtype=np.int64)}
        self._first = False
        return out


def run_training(
    spec: TrainingJobSpec,
    train: pd.DataFrame,
    validation: pd.DataFrame | None,
    *,
    hooks: RunHooks | None = None,
    artifacts: ArtifactStore | None = None,
    capture_prefix: str | None = None,
    metadata: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RunResult:
    """Train ``spec`` on the data; log, capture and evaluate rules as rounds finish.

    Parameters
    ----------
    spec : mlcycle.training.TrainingJobSpec
        The validated spec, its features resolved.
    train, validation : pandas.DataFrame
        The validated data.
    hooks : RunHooks, optional
        Where rounds, rule statuses and stop requests go.
    artifacts : mlcycle.backends.base.ArtifactStore, optional
        Where the capture is written (needed if the spec captures).
    capture_prefix : str, optional
        Key prefix of the capture.
    metadata : dict, optional
        Extra entries for the capture's index.
    progress : callable, optional
        ``progress("train", rounds_done, num_round)``.
    clock : callable
        Monotonic seconds, for ``max_runtime_s``.

    Returns
    -------
    RunResult

    Raises
    ------
    Exception
        Whatever XGBoost or a hook raises; the backend records it as the failure.
    """
    import xgboost

    hooks = hooks or RunHooks()
    features = list(spec.features or ())
    params = {k: (list(v) if isinstance(v, tuple) else v)
              for k, v in spec.hyperparameters.items()
              if k not in {"num_round", "early_stopping_rounds"}}
    nthread = spec.hyperparameters.get("nthread")
    dtrain = xgboost.DMatrix(train[features], label=train[spec.label], feature_names=features,
                             nthread=nthread)
    evals = [(dtrain, "train")]
    if validation is not None:
        dvalid = xgboost.DMatrix(validation[features], label=validation[spec.label],
                                 feature_names=features, nthread=nthread)
        evals.append((dvalid, "validation"))

    collections = spec.stream_collections()
    interval = spec.capture.save_interval if spec.capture else 1
    persisted = set(spec.capture.collections) if spec.capture else set()
    in_memory = {c for rule in spec.rules for c in RULE_COLLECTIONS[rule.kind]}
    capture = _Capture(spec, train, features, collections) if collections else None
    stream = MemoryTensorStream()
    engine = RuleEngine(spec.rules, stream) if spec.rules else None
    writer = None
    if spec.capture is not None:
        if artifacts is None or capture_prefix is None:
            raise ValueError("a spec that captures needs an artifact store and a prefix")
        writer = TensorWriter(artifacts, capture_prefix, metadata={
            **(metadata or {}),
            "save_interval": interval,
            "feature_names": features,
            "sample_rows": capture.sample_rows if capture else [],
        }, background=True)
    history: dict[str, list[tuple[int, float]]] = {}
    state: dict[str, Any] = {"rounds": 0, "stop": None, "captured": -1}
    started = clock()
    max_runtime = spec.resources.max_runtime_s
    num_round = spec.num_round

    def save_step(booster: xgboost.Booster, step: int, metrics: dict[str, float]) -> None:
        assert capture is not None
        tensors = capture.compute(booster, metrics)
        for name in in_memory & set(tensors):
            stream.add(step, name, tensors[name])
        if writer is not None:
            writer.write(step, {c: t for c, t in tensors.items() if c in persisted})
        state["captured"] = step

    class _Callback(xgboost.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            metrics = {f"{data}-{metric}": float(values[-1])
                       for data, logs in evals_log.items() for metric, values in logs.items()}
            for name, value in metrics.items():
                history.setdefault(name, []).append((epoch, value))
            line = f"[{epoch}]" + "".join(f"\t{k}:{v:.5f}" for k, v in metrics.items())
            hooks.on_round(epoch, metrics, line)
            state["rounds"] = epoch + 1
            report(progress, "train", epoch + 1, num_round)
            if capture is not None and epoch % interval == 0:
                save_step(model, epoch, metrics)
                if engine is not None:
                    stopper = engine.evaluate()
                    hooks.on_rules(engine.results())
                    if stopper is not None:
                        state["stop"] = (f"rule:{stopper.name}",
                                         f"rule {stopper.name} found an issue at step "
                                         f"{stopper.step}: {stopper.message}")
                        return True
            if clock() - started > max_runtime:
                state["stop"] = ("max_runtime",
                                 f"the job ran past its max_runtime_s of {max_runtime} s")
                return True
            stop = hooks.should_stop()
            if stop is not None:
                state["stop"] = stop
                return True
            return False

    try:
        booster = xgboost.train(
            params,
            dtrain,
            num_boost_round=num_round,
            evals=evals,
            callbacks=[_Callback()],
            early_stopping_rounds=spec.hyperparameters.get("early_stopping_rounds"),
            verbose_eval=False,
        )
        rounds = state["rounds"]
        last = rounds - 1
        if capture is not None and rounds and state["captured"] != last:
            save_step(booster, last, {k: v[-1][1] for k, v in history.items() if v})
            if engine is not None:
                engine.evaluate()
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):  # the training error is the one to report
                writer.close()
        raise
    if writer is not None:
        writer.close()
    results: tuple[RuleResult, ...] = ()
    if engine is not None:
        results = engine.finish(failed=False)
        hooks.on_rules(results)
    best = None
    if "early_stopping_rounds" in spec.hyperparameters:
        best = int(booster.best_iteration)
    stop = state["stop"]
    return RunResult(
        booster=booster,
        rounds=rounds,
        history=history,
        stopped_by=stop[0] if stop else None,
        stop_reason=stop[1] if stop else None,
        rule_results=results,
        best_iteration=best,
        feature_names=tuple(features),
    )
