r"""mlcycle's training script for SageMaker's XGBoost container (script mode).

SageMaker Debugger's managed rules are closed to new AWS customers, so on the sagemaker backend
a job that captures tensors or has rules runs this file inside the built-in XGBoost 1.7-1
container, in its script mode: the backend packs it as ``mlcycle_train.py`` into the job's
``sourcedir.tar.gz`` and names it in the ``sagemaker_program`` hyperparameter. It does inside
the job what :func:`mlcycle.training.runner.run_training` does on the local backend, and writes
the same files:

* it reads the job's plan (``config.json`` of the ``mlcycle`` channel: label, features, the
  typed hyperparameters, what to capture, the rules), the hyperparameters SageMaker passes
  (``hyperparameters.json``; those are what it trains with) and the ``train`` and
  ``validation`` channels (CSV, the label first, no header);
* it trains, logging a line per round (``[3]\ttrain-rmse:0.51...``, every digit kept);
* every ``save_interval`` rounds it computes the collections, writes the captured ones in
  mlcycle's capture format (:mod:`mlcycle.training.capture`: ``debug-output/index.json`` and
  ``debug-output/steps/<step>.npz``) and evaluates the rules on the stream, as the local
  backend does; a rule with the ``stop_training`` action that fires stops training;
* it writes ``run.json`` (rounds, what stopped training, every rule's status) whenever that
  changes. Capture and ``run.json`` go to the checkpoint folder, which SageMaker copies to the
  job's ``CheckpointConfig.S3Uri`` while the job runs;
* at the end it saves ``xgboost-model`` (XGBoost JSON, with the feature names) and
  ``mlcycle/model.json`` into the model folder, which SageMaker uploads as ``model.tar.gz``:
  the layout of :mod:`mlcycle.training.artifact`. On SIGTERM (``StopTrainingJob``, the
  stopping condition, when the container passes it on) it stops after the current round and
  saves the rounds so far. If training fails it writes the one-line reason to ``run.json``,
  standard error and ``/opt/ml/output/failure`` (SageMaker's ``FailureReason``, unless the
  container's toolkit writes its own) and exits with status 1.

Paths follow SageMaker's environment variables, with the container's defaults:
``SM_INPUT_TRAINING_CONFIG_FILE`` (``/opt/ml/input/config/hyperparameters.json``),
``SM_CHECKPOINT_CONFIG_FILE`` (``/opt/ml/input/config/checkpointconfig.json``, whose
``LocalPath`` is the checkpoint folder, default ``/opt/ml/checkpoints``), ``SM_CHANNEL_<NAME>``
(``/opt/ml/input/data/<name>``), ``SM_MODEL_DIR`` (``/opt/ml/model``), ``SM_OUTPUT_DIR``
(``/opt/ml/output``) and ``SM_HOSTS``. Command-line arguments (the container passes the
hyperparameters as ``--name value``) are ignored.

The file is self-contained on purpose: the container has Python 3.8 to 3.10, XGBoost 1.7,
NumPy and pandas, and not mlcycle (which needs Python 3.11). So it uses nothing newer than
those and repeats, in that dialect, the capture computation of
:mod:`mlcycle.training.runner` and the rule functions of :mod:`mlcycle.training.rules`;
``tests/training/test_sagemaker_script.py`` checks that both give the same tensors, rule
outcomes and model on the same data.
"""
# ruff: noqa: UP017, B905
# (this file runs on Python 3.8: no datetime.UTC, no zip(strict=...))

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import traceback
from typing import Any

__all__ = [
    "BUILTIN_RULES",
    "CONFIG_CHANNEL",
    "CONFIG_FILE",
    "RUN_FILE",
    "ContainerPaths",
    "StreamInMemory",
    "failure_reason",
    "main",
    "pack_step",
]

#: The ``format`` of the job's plan.
CONFIG_FORMAT = "mlcycle-container-config/1"
#: The ``format`` of ``run.json``.
RUN_FORMAT = "mlcycle-run/1"
#: The ``format`` of a capture's ``index.json`` (:data:`mlcycle.training.capture.CAPTURE_FORMAT`).
CAPTURE_FORMAT = "mlcycle-capture/1"
#: The input channel that holds the job's plan, and the plan's file name in it.
CONFIG_CHANNEL = "mlcycle"
CONFIG_FILE = "config.json"
#: The run's state, in the checkpoint folder.
RUN_FILE = "run.json"
#: The capture's folder, in the checkpoint folder.
CAPTURE_DIR = "debug-output"
#: Metrics where larger is better (as :data:`mlcycle.training.hyperparameters.MAXIMIZED_METRICS`).
MAXIMIZED_METRICS = frozenset({"auc", "aucpr", "map", "ndcg", "pre"})

_SHAP_COLLECTIONS = {"average_shap", "full_shap", "predictions", "labels"}
_TOTALS = {"gain": "total_gain", "cover": "total_cover"}
_XGB_PREFIX = re.compile(r"^\[\d{2}:\d{2}:\d{2}\]\s+\S+:\d+:\s*")
_OPT_ML = "/opt/ml"
_LISTS = {"eval_metric"}


# -- where things are --------------------------------------------------------------------------
class ContainerPaths:
    """The container's folders and files, from SageMaker's environment variables.

    Parameters
    ----------
    environ : mapping
        The environment (``os.environ`` in the container).
    """

    def __init__(self, environ: Any) -> None:
        self._env = environ
        self.hyperparameters = environ.get("SM_INPUT_TRAINING_CONFIG_FILE",
                                           _OPT_ML + "/input/config/hyperparameters.json")
        self.checkpoint_config = environ.get("SM_CHECKPOINT_CONFIG_FILE",
                                             _OPT_ML + "/input/config/checkpointconfig.json")
        self.model_dir = environ.get("SM_MODEL_DIR", _OPT_ML + "/model")
        self.output_dir = environ.get("SM_OUTPUT_DIR", _OPT_ML + "/output")
        self.hosts = json.loads(environ.get("SM_HOSTS", '["algo-1"]'))

    def channel(self, name: str) -> str:
        """The folder of input channel ``name``."""
        return self._env.get("SM_CHANNEL_" + name.upper(), _OPT_ML + "/input/data/" + name)

    @property
    def checkpoints(self) -> str:
        """The checkpoint folder (``LocalPath`` of the checkpoint configuration)."""
        if os.path.exists(self.checkpoint_config):
            with open(self.checkpoint_config) as f:
                local = json.load(f).get("LocalPath")
            if local:
                return str(local)
        return _OPT_ML + "/checkpoints"


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


def _write_atomic(path: str, data: bytes, staging: str) -> None:
    """Write a file whole or not at all, staged in ``staging`` (outside the watched folder).

    SageMaker copies every file that appears in the checkpoint folder to S3, so a half-written
    file must never appear there: it is written in ``staging`` and then moved in.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.makedirs(staging, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=staging)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            os.replace(tmp, path)
        except OSError:  # another file system
            shutil.move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _json_bytes(value: Any) -> bytes:
    """JSON as ``ArtifactStore.put_json`` writes it (keys sorted, no NaN)."""
    return json.dumps(value, sort_keys=True, indent=1, allow_nan=False).encode()


def _staging(root: str) -> str:
    """The staging folder of the folder ``root``: beside it, not in it."""
    root = os.path.abspath(root)
    return os.path.join(os.path.dirname(root), "." + os.path.basename(root) + "-staging")


def failure_reason(exc: BaseException) -> str:
    r"""Say in one line why training failed (as :func:`mlcycle.training.runner.failure_reason`).

    Examples
    --------
    >>> failure_reason(ValueError("[13:19:13] src/obj.cu:83: label must be positive\nStack"))
    'ValueError: label must be positive'
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = _XGB_PREFIX.sub("", text).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


# -- hyperparameters ---------------------------------------------------------------------------
def _convert(name: str, value: Any, example: Any) -> Any:
    """Convert a hyperparameter as SageMaker passes it (a string) to the type of ``example``.

    Without an example (a hyperparameter the spec did not set, as a tuning job may add), a
    number is a number, ``eval_metric`` a comma-separated list, anything else a string.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if example is None and name in _LISTS:
        example = []
    if isinstance(example, bool):
        return text.lower() == "true"
    if isinstance(example, int):
        return int(float(text))
    if isinstance(example, float):
        return float(text)
    if isinstance(example, list):
        return [part for part in text.split(",") if part]
    if isinstance(example, str):
        return text
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def read_hyperparameters(path: str, typed: dict[str, Any]) -> dict[str, Any]:
    """Read SageMaker's ``hyperparameters.json``, typed after the job's plan.

    SageMaker's own entries (``sagemaker_program``, ...) are left out.
    """
    with open(path) as f:
        raw = json.load(f)
    return {name: _convert(name, value, typed.get(name)) for name, value in raw.items()
            if not name.startswith("sagemaker_")}


# -- data --------------------------------------------------------------------------------------
def read_channel(folder: str, n_features: int) -> tuple[Any, Any]:
    """Read a channel's CSV files (label first, no header) as ``(features, labels)`` arrays."""
    import numpy as np
    import pandas as pd

    files = sorted(os.path.join(root, name) for root, _, names in os.walk(folder)
                   for name in names if not name.startswith("."))
    parts = []
    for path in files:
        if os.path.getsize(path) == 0:
            continue
        frame = pd.read_csv(path, header=None, float_precision="round_trip")
        parts.append(frame.to_numpy(dtype=float))
    if not parts:
        raise ValueError(f"channel {folder} holds no rows")
    data = np.concatenate(parts)
    if data.shape[1] != n_features + 1:
        raise ValueError(f"channel {folder} has {data.shape[1]} columns; expected the label "
                         f"and {n_features} features")
    return data[:, 1:], data[:, 0]


# -- the stream and the capture format ---------------------------------------------------------
class NotFoundError(LookupError):
    """A tensor that was not saved at a step (as :class:`mlcycle.errors.NotFoundError`)."""


class StreamInMemory:
    """Tensors by step and name, grouped in collections (as ``MemoryTensorStream``)."""

    def __init__(self) -> None:
        self._steps: dict[int, dict[str, Any]] = {}
        self._collections: dict[str, dict[str, None]] = {}

    def add(self, step: int, collection: str, tensors: dict[str, Any]) -> None:
        """Record ``tensors`` of ``collection`` at ``step``."""
        import numpy as np

        at = self._steps.setdefault(int(step), {})
        names = self._collections.setdefault(collection, {})
        for name, value in tensors.items():
            at[name] = np.asarray(value)
            names[name] = None

    def steps(self) -> list[int]:
        """The saved steps, ascending."""
        return sorted(self._steps)

    def collection_names(self) -> tuple[str, ...]:
        """The collections that hold tensors."""
        return tuple(self._collections)

    def collection(self, name: str) -> tuple[str, ...]:
        """The names of the tensors in collection ``name``, sorted."""
        return tuple(sorted(self._collections.get(name, ())))

    def names_at(self, step: int) -> tuple[str, ...]:
        """The tensors saved at ``step``."""
        return tuple(self._steps.get(int(step), ()))

    def has(self, name: str, step: int) -> bool:
        """Whether tensor ``name`` was saved at ``step``."""
        return name in self._steps.get(int(step), ())

    def tensor(self, name: str, step: int) -> Any:
        """The value of tensor ``name`` at ``step``."""
        try:
            return self._steps[int(step)][name]
        except KeyError:
            raise NotFoundError(f"no tensor {name!r} at step {step}") from None

    def tensor_names(self, collection: str | None = None) -> tuple[str, ...]:
        """Every tensor's name (of one collection, if given), sorted."""
        if collection is not None:
            return self.collection(collection)
        names: set[str] = set()
        for c in self.collection_names():
            names.update(self.collection(c))
        return tuple(sorted(names))

    def scalar_series(self, name: str) -> list[tuple[int, float]]:
        """``(step, value)`` of a scalar tensor at every step where it was saved."""
        return [(s, float(self.tensor(name, s))) for s in self.steps() if self.has(name, s)]


def pack_step(collections: dict[str, dict[str, Any]]) -> bytes:
    """Serialize one step's tensors as ``.npz`` (as :func:`mlcycle.training.capture.pack_step`)."""
    import numpy as np

    groups: dict[tuple[str, tuple[int, ...], str], list[tuple[str, Any]]] = {}
    for collection, tensors in collections.items():
        for name, value in tensors.items():
            array = np.asarray(value)
            groups.setdefault((collection, array.shape, array.dtype.str), []).append(
                (name, array))
    arrays: dict[str, Any] = {}
    for i, members in enumerate(groups.values()):
        arrays[f"g{i}"] = np.stack([a for _, a in members])
        arrays[f"g{i}.names"] = np.array([n for n, _ in members])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


class CaptureWriter:
    """Write the capture as :class:`mlcycle.training.capture.TensorWriter` does, into a folder."""

    def __init__(self, folder: str, metadata: dict[str, Any], *, staging: str) -> None:
        self.folder = folder
        self.staging = staging
        self.index: dict[str, Any] = dict(metadata)
        self.index.update({"format": CAPTURE_FORMAT, "steps": [], "collections": {}})

    def write(self, step: int, collections: dict[str, dict[str, Any]]) -> None:
        """Store the tensors of one step."""
        known = self.index["collections"]
        changed = not self.index["steps"]
        for collection, tensors in collections.items():
            names = known.setdefault(collection, [])
            for name in tensors:
                if name not in names:
                    names.append(name)
                    changed = True
        _write_atomic(os.path.join(self.folder, "steps", f"{step:09d}.npz"),
                      pack_step(collections), self.staging)
        if int(step) not in self.index["steps"]:
            self.index["steps"].append(int(step))
        if changed:
            self.close()

    def close(self) -> None:
        """Write the index."""
        _write_atomic(os.path.join(self.folder, "index.json"),
                      _json_bytes(self.index), self.staging)


# -- the capture computation (as mlcycle.training.runner) --------------------------------------
def tree_depths(booster: Any) -> list[int]:
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
        if isinstance(value, (list, tuple)):
            out["hyperparameters/" + name] = np.array([str(v) for v in value])
        elif isinstance(value, str):
            out["hyperparameters/" + name] = np.array(value)
        else:
            out["hyperparameters/" + name] = np.float64(value)
    return out


class Capture:
    """Compute the collections of one saved step (see ``mlcycle.training.runner._Capture``)."""

    def __init__(self, plan: dict[str, Any], hyperparameters: dict[str, Any], features: Any,
                 labels: Any) -> None:
        import numpy as np
        import xgboost

        self.names = list(plan["features"])
        self.collections = tuple(plan["collections"])
        self.importance_types = tuple(plan["importance_types"])
        self.hyperparameters = hyperparameters
        self.sample_rows = [int(r) for r in plan["sample_rows"]]
        self._first = True
        self._dart = hyperparameters.get("booster") == "dart"
        self._done = 0
        self._shap: Any = None
        self._totals: dict[str, dict[str, float]] = {}
        self._depths: list[int] = []
        if _SHAP_COLLECTIONS & set(self.collections):
            rows = np.asarray(self.sample_rows, dtype=np.int64)
            self.dsample = xgboost.DMatrix(features[rows], feature_names=self.names,
                                           feature_types=plan.get("feature_types"),
                                           nthread=hyperparameters.get("nthread"))
            self.sample_labels = np.asarray(labels[rows], dtype=float)

    def _advance(self, booster: Any, wanted: set[str]) -> None:
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
            for feature in self.names:
                if kind in _TOTALS:
                    count = weight.get(feature, 0.0)
                    total = self._totals.get(_TOTALS[kind], {}).get(feature, 0.0)
                    value = total / count if count else 0.0
                else:
                    value = self._totals.get(kind, {}).get(feature, 0.0)
                tensors[f"feature_importance/{kind}/{feature}"] = np.float64(value)
        return tensors

    def compute(self, booster: Any, metrics: dict[str, float]) -> dict[str, dict[str, Any]]:
        """Return the tensors of this step by collection."""
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
                out["full_shap"] = {"full_shap/" + f: contribs[..., i].astype(np.float32)
                                    for i, f in enumerate(self.names)}
            if "average_shap" in wanted:
                means = np.abs(contribs).reshape(-1, contribs.shape[-1]).mean(axis=0)
                out["average_shap"] = {"average_shap/" + f: np.float64(means[i])
                                       for i, f in enumerate(self.names)}
        if "predictions" in wanted:
            out["predictions"] = {"predictions": booster.predict(self.dsample,
                                                                 validate_features=False)}
        if "labels" in wanted:
            out["labels"] = {"labels": self.sample_labels}
        if "hyperparameters" in wanted and self._first:
            out["hyperparameters"] = _hyperparameter_tensors(self.hyperparameters)
        if "trees" in wanted:
            out["trees"] = {"trees/depth": np.asarray(self._depths, dtype=np.int64)}
        self._first = False
        return out


# -- the rules (as mlcycle.training.rules) -----------------------------------------------------
class Outcome:
    """What one evaluation of a rule function found (as ``RuleOutcome``)."""

    def __init__(self, fired: bool, step: int | None = None, message: str = "") -> None:
        self.fired = fired
        self.step = step
        self.message = message


def _patterns(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return [str(p) for p in value]


def _matching(stream: StreamInMemory, patterns: list[str]) -> set[str]:
    compiled = [re.compile(p) for p in patterns]
    return {n for n in stream.tensor_names() if any(c.match(n) for c in compiled)}


def _is_loss(name: str) -> bool:
    metric = name.split("-", 1)[1] if "-" in name else name
    return metric.split("@", 1)[0] not in MAXIMIZED_METRICS


def _pct(value: float) -> str:
    return f"{value:.3g}%"


def _first(found: list[tuple[int, str]]) -> Outcome:
    if not found:
        return Outcome(False)
    step, message = min(found)
    return Outcome(True, step, message)


def _select_losses(stream: StreamInMemory, collection_names: Any, tensor_regex: Any,
                   use_losses_collection: bool, mode: Any) -> list[str]:
    names: set[str] = set()
    for collection in _patterns(collection_names):
        names |= set(stream.collection(collection))
    names |= _matching(stream, _patterns(tensor_regex))
    if use_losses_collection and "losses" in stream.collection_names():
        names |= set(stream.collection("losses"))
    if not names:
        names = set(stream.collection("metrics"))
    names = {n for n in names if _is_loss(n)}
    prefixes = {"EVAL": ("validation-",), "TRAIN": ("train-",), "GLOBAL": ("",)}
    if mode is not None:
        key = str(mode).upper()
        if key not in prefixes:
            raise ValueError(f"mode must be EVAL, TRAIN or GLOBAL, not {mode!r}")
        order = [prefixes[key]]
    else:
        order = [prefixes["EVAL"], prefixes["TRAIN"], prefixes["GLOBAL"]]
    for prefix in order:
        chosen = sorted(n for n in names if n.startswith(prefix))
        if chosen:
            return chosen
    return []


def loss_not_decreasing(stream: StreamInMemory, *, collection_names: Any = None,
                        tensor_regex: Any = None, use_losses_collection: bool = True,
                        num_steps: int = 10, diff_percent: float = 0.1,
                        increase_threshold_percent: float = 5.0, mode: Any = None) -> Outcome:
    """SageMaker's LossNotDecreasing (see :func:`mlcycle.training.rules.loss_not_decreasing`)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, not {num_steps}")
    names = _select_losses(stream, collection_names, tensor_regex, use_losses_collection, mode)
    if not names:
        raise ValueError("no loss tensors in the stream")
    found: list[tuple[int, str]] = []
    for name in names:
        series = stream.scalar_series(name)
        if not series:
            continue
        steps = [s for s, _ in series]
        values = dict(series)
        lowest = math.inf
        next_check = steps[0] + num_steps
        for step, value in series:
            if lowest < math.inf and value > lowest and lowest != 0:
                rise = (value - lowest) / abs(lowest) * 100
                if rise > increase_threshold_percent:
                    found.append((step, f"{name} rose {_pct(rise)} above its lowest value "
                                        f"{lowest:.6g} (more than "
                                        f"{_pct(increase_threshold_percent)})"))
                    break
            lowest = min(lowest, value)
            if step < next_check:
                continue
            base_step = max(s for s in steps if s <= step - num_steps)
            base = values[base_step]
            fall = (base - value) / abs(base) * 100 if base != 0 else 0.0
            if fall < diff_percent:
                found.append((step, f"{name} fell by {_pct(max(fall, 0.0))} from step "
                                    f"{base_step} to step {step} ({base:.6g} to {value:.6g}), "
                                    f"less than {_pct(diff_percent)}"))
                break
            next_check = step + num_steps
    return _first(found)


def _loss_pairs(stream: StreamInMemory, tensor_regex: Any) -> list[tuple[str, str]]:
    if tensor_regex is not None:
        names = _matching(stream, _patterns(tensor_regex))
    else:
        names = set(stream.collection("metrics"))
    pairs = []
    for name in sorted(names):
        if name.startswith("train-") and _is_loss(name):
            other = "validation-" + name[len("train-"):]
            if other in stream.tensor_names():
                pairs.append((name, other))
    return pairs


def overfit(stream: StreamInMemory, *, tensor_regex: Any = None, start_step: int = 0,
            patience: int = 1, ratio_threshold: float = 0.1) -> Outcome:
    """SageMaker's Overfit (see :func:`mlcycle.training.rules.overfit`)."""
    pairs = _loss_pairs(stream, tensor_regex)
    if not pairs:
        raise ValueError("no pair of train-<metric> and validation-<metric> losses")
    found: list[tuple[int, str]] = []
    for train_name, valid_name in pairs:
        valid = dict(stream.scalar_series(valid_name))
        run = 0
        for step, train in stream.scalar_series(train_name):
            if step < start_step or step not in valid:
                continue
            gap = valid[step] - train
            ratio = gap / abs(train) if train != 0 else (math.inf if gap > 0 else 0.0)
            run = run + 1 if ratio > ratio_threshold else 0
            if run >= patience:
                found.append((step, f"{valid_name} ({valid[step]:.6g}) exceeds {train_name} "
                                    f"({train:.6g}) by {ratio:.3g} of it, more than "
                                    f"{ratio_threshold:g}, for {run} saved step(s)"))
                break
    return _first(found)


def overtraining(stream: StreamInMemory, *, patience_train: int = 5,
                 patience_validation: int = 10, delta: float = 0.01) -> Outcome:
    """SageMaker's Overtraining (see :func:`mlcycle.training.rules.overtraining`)."""
    names = [n for n in stream.collection("metrics") if _is_loss(n)]
    if not names:
        raise ValueError("no losses in the metrics collection")
    found: list[tuple[int, str]] = []
    for name in sorted(names):
        patience = patience_validation if name.startswith("validation-") else patience_train
        best = math.inf
        since = 0
        for step, value in stream.scalar_series(name):
            if value < best - delta:
                best, since = value, 0
            else:
                since += 1
            if since >= patience:
                found.append((step, f"{name} has not improved on {best:.6g} by more than "
                                    f"{delta:g} for {since} saved steps"))
                break
    return _first(found)


def tree_depth(stream: StreamInMemory, *, depth: float = 4) -> Outcome:
    """SageMaker's TreeDepth (see :func:`mlcycle.training.rules.tree_depth`)."""
    if "trees/depth" not in stream.tensor_names():
        raise ValueError("the stream has no trees/depth tensor (capture the trees collection)")
    for step in stream.steps():
        if not stream.has("trees/depth", step):
            continue
        depths = stream.tensor("trees/depth", step)
        if depths.size == 0:
            continue
        deepest = int(depths.max())
        if deepest < depth:
            return Outcome(True, step, f"the deepest of {depths.size} trees has depth "
                                       f"{deepest}, below {depth:g}")
    return Outcome(False)


def class_imbalance(stream: StreamInMemory, *, threshold_imbalance: float = 10,
                    threshold_misprediction: float = 0.7, samples: int = 500,
                    argmax: bool = False, labels_regex: str = ".*labels",
                    predictions_regex: str = ".*predictions") -> Outcome:
    """SageMaker's ClassImbalance (see :func:`mlcycle.training.rules.class_imbalance`)."""
    import numpy as np

    labels_names = sorted(_matching(stream, [labels_regex]))
    prediction_names = sorted(_matching(stream, [predictions_regex]))
    if not labels_names or not prediction_names:
        raise ValueError("the stream has no labels or predictions (capture those collections)")
    labels_name, predictions_name = labels_names[0], prediction_names[0]
    counts: dict[float, int] = {}
    seen = 0
    for step in stream.steps():
        if not (stream.has(labels_name, step) and stream.has(predictions_name, step)):
            continue
        labels = np.asarray(stream.tensor(labels_name, step)).reshape(-1)
        predictions = np.asarray(stream.tensor(predictions_name, step))
        predicted = (predictions.argmax(axis=-1) if argmax else np.rint(predictions)).reshape(-1)
        if predicted.size != labels.size:
            raise ValueError(f"{predictions_name} has {predicted.size} values for "
                             f"{labels.size} labels; a vector per label needs argmax=True")
        classes, class_counts = np.unique(labels, return_counts=True)
        for cls, n in zip(classes.tolist(), class_counts.tolist()):
            counts[cls] = counts.get(cls, 0) + n
        seen += labels.size
        if seen < samples:
            continue
        ratio = max(counts.values()) / min(counts.values())
        if ratio > threshold_imbalance:
            big = max(counts, key=lambda c: counts[c])
            small = min(counts, key=lambda c: counts[c])
            return Outcome(True, step, f"class {big:g} has {ratio:.3g} times the rows of class "
                                       f"{small:g} (more than {threshold_imbalance:g})")
        for cls in classes.tolist():
            mask = labels == cls
            wrong = float(np.mean(predicted[mask] != cls))
            if wrong > threshold_misprediction:
                return Outcome(True, step, f"{wrong:.0%} of class {cls:g} is mispredicted "
                                           f"(more than {threshold_misprediction:.0%})")
    return Outcome(False)


def feature_importance_overweight(stream: StreamInMemory, *, threshold: float = 0.8,
                                  nfeatures: int = 3,
                                  tensor_regex: str = ".*feature_importance/weight") -> Outcome:
    """SageMaker's FeatureImportanceOverweight (see the function of the same name in rules)."""
    names = sorted(_matching(stream, [tensor_regex]))
    if not names:
        raise ValueError(f"no tensors match {tensor_regex!r} (capture feature_importance)")
    for step in stream.steps():
        values = {n: float(stream.tensor(n, step)) for n in names if stream.has(n, step)}
        total = sum(values.values())
        if total <= 0:
            continue
        top = sorted(values, key=lambda n: values[n], reverse=True)[:nfeatures]
        share = sum(values[n] for n in top) / total
        if share > threshold:
            short = [n.rsplit("/", 1)[-1] for n in top]
            return Outcome(True, step, f"the {len(top)} largest importances {short} hold "
                                       f"{share:.0%} of the total (more than {threshold:.0%})")
    return Outcome(False)


#: The rule functions by SageMaker's name.
BUILTIN_RULES = {
    "LossNotDecreasing": loss_not_decreasing,
    "Overfit": overfit,
    "Overtraining": overtraining,
    "TreeDepth": tree_depth,
    "ClassImbalance": class_imbalance,
    "FeatureImportanceOverweight": feature_importance_overweight,
}


class RuleEngine:
    """Evaluate the rules at each saved step (as :class:`mlcycle.training.rules.RuleEngine`)."""

    def __init__(self, rules: list[dict[str, Any]], stream: StreamInMemory) -> None:
        self.rules = rules
        self.stream = stream
        self.results = {r["name"]: {"name": r["name"], "kind": r["kind"],
                                    "status": "InProgress", "step": None, "message": "",
                                    "stopped_training": False, "evaluated_at": None}
                        for r in rules}

    def evaluate(self) -> dict[str, Any] | None:
        """Evaluate every rule in progress; return the result of one that stops training."""
        stopper = None
        for rule in self.rules:
            name = rule["name"]
            if self.results[name]["status"] != "InProgress":
                continue
            try:
                outcome = BUILTIN_RULES[rule["kind"]](self.stream, **rule["parameters"])
            except Exception as exc:  # a rule's own error is its status, never the job's
                self.results[name].update(status="Error", evaluated_at=_utc_now(),
                                          message=f"{type(exc).__name__}: {exc}")
                continue
            if outcome.fired:
                stops = "stop_training" in rule.get("actions", ()) and stopper is None
                self.results[name].update(status="IssuesFound", step=outcome.step,
                                          message=outcome.message, stopped_training=stops,
                                          evaluated_at=_utc_now())
                if stops:
                    stopper = self.results[name]
        return stopper

    def finish(self, *, failed: bool) -> None:
        """Close the evaluations still in progress."""
        for result in self.results.values():
            if result["status"] == "InProgress":
                result.update(status="Stopped" if failed else "NoIssuesFound",
                              evaluated_at=_utc_now())

    def to_list(self) -> list[dict[str, Any]]:
        """Every rule's result, in the plan's order, as ``RuleResult.to_dict`` writes them."""
        return [dict(self.results[r["name"]]) for r in self.rules]


# -- the run -----------------------------------------------------------------------------------
class _Stop:
    """Set by SIGTERM, which SageMaker sends on ``StopTrainingJob`` and past the runtime."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.requested = True


class Run:
    """One training run inside the container.

    Parameters
    ----------
    plan : dict
        The job's plan (``config.json`` of the ``mlcycle`` channel).
    paths : ContainerPaths
        Where things are.
    stop : callable, optional
        Returns True when training should stop after the current round.
    """

    def __init__(self, plan: dict[str, Any], paths: ContainerPaths, stop: Any = None) -> None:
        if plan.get("format") != CONFIG_FORMAT:
            raise ValueError(f"not an mlcycle job plan: format {plan.get('format')!r}")
        self.plan = plan
        self.paths = paths
        self.stop = stop or (lambda: False)
        self.checkpoints = paths.checkpoints
        self.staging = _staging(self.checkpoints)
        self.state: dict[str, Any] = {"format": RUN_FORMAT, "job": plan["job"],
                                      "status": "InProgress", "rounds": 0, "stopped_by": None,
                                      "stop_reason": None, "best_iteration": None,
                                      "failure_reason": None}
        self.stream = StreamInMemory()
        self.engine = RuleEngine(list(plan["rules"]), self.stream) if plan["rules"] else None

    def _save_state(self) -> None:
        self.state["rule_results"] = self.engine.to_list() if self.engine else []
        self.state["updated_at"] = _utc_now()
        _write_atomic(os.path.join(self.checkpoints, RUN_FILE), _json_bytes(self.state),
                      self.staging)

    def execute(self) -> None:
        """Train, capture, evaluate the rules and save the model."""
        import xgboost

        plan = self.plan
        if len(self.paths.hosts) > 1:
            raise ValueError(f"mlcycle's training script runs on one instance, not "
                             f"{len(self.paths.hosts)}")
        self._save_state()
        features = list(plan["features"])
        hyperparameters = read_hyperparameters(self.paths.hyperparameters,
                                               plan["hyperparameters"])
        params = {k: v for k, v in hyperparameters.items()
                  if k not in ("num_round", "early_stopping_rounds")}
        nthread = hyperparameters.get("nthread")
        num_round = int(hyperparameters["num_round"])
        x_train, y_train = read_channel(self.paths.channel("train"), len(features))
        dtrain = xgboost.DMatrix(x_train, label=y_train, feature_names=features,
                                 feature_types=plan.get("feature_types"), nthread=nthread)
        evals = [(dtrain, "train")]
        validation = self.paths.channel("validation")
        if os.path.isdir(validation):
            x_valid, y_valid = read_channel(validation, len(features))
            evals.append((xgboost.DMatrix(x_valid, label=y_valid, feature_names=features,
                                          feature_types=plan.get("feature_types"),
                                          nthread=nthread), "validation"))

        interval = int(plan["save_interval"])
        persisted = set(plan["persisted"])
        in_memory = set(plan["rule_collections"])
        capture = (Capture(plan, hyperparameters, x_train, y_train)
                   if plan["collections"] else None)
        writer = None
        if persisted:
            writer = CaptureWriter(os.path.join(self.checkpoints, CAPTURE_DIR), {
                "job": plan["job"],
                "save_interval": interval,
                "feature_names": features,
                "sample_rows": capture.sample_rows if capture else [],
            }, staging=self.staging)
        history: dict[str, list[tuple[int, float]]] = {}
        state: dict[str, Any] = {"rounds": 0, "stop": None, "captured": -1}
        stream, engine, stop = self.stream, self.engine, self.stop

        def save_step(booster: Any, step: int, metrics: dict[str, float]) -> None:
            tensors = capture.compute(booster, metrics)
            for name in in_memory & set(tensors):
                stream.add(step, name, tensors[name])
            if writer is not None:
                writer.write(step, {c: t for c, t in tensors.items() if c in persisted})
            state["captured"] = step

        run = self

        class Callback(xgboost.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                metrics = {f"{data}-{metric}": float(values[-1])
                           for data, logs in evals_log.items()
                           for metric, values in logs.items()}
                for name, value in metrics.items():
                    history.setdefault(name, []).append((epoch, value))
                print(f"[{epoch}]" + "".join(f"\t{k}:{v!r}" for k, v in metrics.items()),
                      flush=True)
                state["rounds"] = run.state["rounds"] = epoch + 1
                if capture is not None and epoch % interval == 0:
                    save_step(model, epoch, metrics)
                    stopper = engine.evaluate() if engine is not None else None
                    if stopper is not None:
                        state["stop"] = ("rule:" + stopper["name"],
                                         f"rule {stopper['name']} found an issue at step "
                                         f"{stopper['step']}: {stopper['message']}")
                        run.state["stopped_by"], run.state["stop_reason"] = state["stop"]
                    run._save_state()
                    if stopper is not None:
                        return True
                return bool(stop())

        booster = xgboost.train(params, dtrain, num_boost_round=num_round, evals=evals,
                                callbacks=[Callback()], verbose_eval=False,
                                early_stopping_rounds=hyperparameters.get(
                                    "early_stopping_rounds"))
        rounds = state["rounds"]
        last = rounds - 1
        if capture is not None and rounds and state["captured"] != last:
            save_step(booster, last, {k: v[-1][1] for k, v in history.items() if v})
            if engine is not None:
                engine.evaluate()
        if writer is not None:
            writer.close()
        if engine is not None:
            engine.finish(failed=False)
        best = None
        if "early_stopping_rounds" in hyperparameters:
            best = int(booster.best_iteration)
        self._save_model(booster, rounds=rounds, best_iteration=best,
                         num_round=num_round, objective=hyperparameters.get("objective"))
        self.state.update(status="Stopped" if state["stop"] else "Completed", rounds=rounds,
                          best_iteration=best)
        self._save_state()

    def _save_model(self, booster: Any, *, rounds: int, best_iteration: int | None,
                    num_round: int, objective: Any) -> None:
        """Save ``xgboost-model`` and ``mlcycle/model.json`` as ``build_model_tarball`` does."""
        import xgboost

        model_dir = self.paths.model_dir
        os.makedirs(os.path.join(model_dir, "mlcycle"), exist_ok=True)
        # a ".json" name makes XGBoost 1.7 write JSON; SageMaker's name has no extension
        path = os.path.join(model_dir, "xgboost-model")
        booster.save_model(path + ".json")
        os.replace(path + ".json", path)
        meta = {
            "format": "json",
            "feature_names": list(booster.feature_names or ()),
            "feature_types": list(booster.feature_types or ()),
            "xgboost_version": xgboost.__version__,
            "job": self.plan["job"],
            "label": self.plan["label"],
            "objective": objective if objective is not None else "reg:squarederror",
            "num_round": num_round,
            "rounds": rounds,
            "best_iteration": best_iteration,
        }
        with open(os.path.join(model_dir, "mlcycle", "model.json"), "w") as f:
            json.dump(meta, f, sort_keys=True, indent=1)

    def fail(self, reason: str) -> None:
        """Record a failure: rules still in progress are ``Stopped``; SageMaker's failure file."""
        if self.engine is not None:
            self.engine.finish(failed=True)
        self.state.update(status="Failed", failure_reason=reason)
        try:
            self._save_state()
        finally:
            os.makedirs(self.paths.output_dir, exist_ok=True)
            with open(os.path.join(self.paths.output_dir, "failure"), "w") as f:
                f.write(reason)


def read_plan(paths: ContainerPaths) -> dict[str, Any]:
    """Read the job's plan from the ``mlcycle`` channel."""
    with open(os.path.join(paths.channel(CONFIG_CHANNEL), CONFIG_FILE)) as f:
        return json.load(f)  # type: ignore[no-any-return]


def main(environ: Any = None) -> int:
    """Run the job in the container; return the exit status (0, or 1 if training failed)."""
    paths = ContainerPaths(os.environ if environ is None else environ)
    stop = _Stop()
    with contextlib.suppress(ValueError):  # not in the main thread
        signal.signal(signal.SIGTERM, stop)
    run = None
    try:
        run = Run(read_plan(paths), paths, stop=lambda: stop.requested)
        run.execute()
    except Exception as exc:
        reason = failure_reason(exc)
        traceback.print_exc()
        print(f"mlcycle: training failed: {reason}", file=sys.stderr, flush=True)
        if run is not None:
            run.fail(reason)
        else:
            os.makedirs(paths.output_dir, exist_ok=True)
            with open(os.path.join(paths.output_dir, "failure"), "w") as f:
                f.write(reason)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - run by SageMaker, or a test's subprocess
    sys.exit(main())
