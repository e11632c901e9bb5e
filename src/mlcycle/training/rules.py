"""Rules over the captured tensor stream, with SageMaker Debugger's names and defaults.

Each built-in rule is a plain function ``rule(stream, **parameters) -> RuleOutcome`` over a
:class:`~mlcycle.training.TensorStream` (the stream a job is writing, or one read back
with :class:`mlcycle.training.CaptureReader`). A function is stateless: it looks at every saved
step so far and reports the first step where its condition holds. A training job evaluates its
rules at every saved step, so a rule fires while training; a rule with the action
``"stop_training"`` then stops the job (status ``Stopped``, the reason naming the rule).

The parameter names and defaults are those of SageMaker Debugger's built-in rules (the
``rule_to_invoke`` names of ``smdebug_rulesconfig``): :func:`loss_not_decreasing`,
:func:`overfit`, :func:`overtraining`, :func:`tree_depth`, :func:`class_imbalance` and
:func:`feature_importance_overweight`. Where SageMaker's documentation leaves a rule's
arithmetic open, the docstring says what this implementation does.

Steps are XGBoost rounds (0-based); "N steps" means N rounds, and a rule sees only the rounds
that were saved.

Examples
--------
>>> from mlcycle.training.capture import MemoryTensorStream
>>> stream = MemoryTensorStream.from_series("metrics",
...                                         {"validation-rmse": [1.0, 0.8, 0.8, 0.8, 0.8]})
>>> loss_not_decreasing(stream, num_steps=2)
RuleOutcome(fired=True, step=4, message='validation-rmse fell by 0% from step 2 to step 4 ...')
"""

from __future__ import annotations

import datetime as dt
import enum
import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from mlcycle.errors import SpecValidationError
from mlcycle.training.hyperparameters import MAXIMIZED_METRICS

if TYPE_CHECKING:  # pragma: no cover
    from mlcycle.training.capture import TensorStream

__all__ = [
    "BUILTIN_RULES",
    "RULE_COLLECTIONS",
    "Rule",
    "RuleEngine",
    "RuleOutcome",
    "RuleResult",
    "RuleStatus",
    "class_imbalance",
    "feature_importance_overweight",
    "loss_not_decreasing",
    "overfit",
    "overtraining",
    "tree_depth",
]

#: The action that stops the training job when its rule fires.
STOP_TRAINING = "stop_training"
_ACTIONS = frozenset({STOP_TRAINING})


class RuleStatus(enum.StrEnum):
    """A rule evaluation's status, as SageMaker reports ``RuleEvaluationStatus``."""

    IN_PROGRESS = "InProgress"
    NO_ISSUES_FOUND = "NoIssuesFound"
    ISSUES_FOUND = "IssuesFound"
    ERROR = "Error"
    #: The job failed before the rule could finish.
    STOPPED = "Stopped"


@attrs.frozen(kw_only=True)
class RuleOutcome:
    """What one evaluation of a rule function found.

    Parameters
    ----------
    fired : bool
        Whether the rule's condition holds at some saved step.
    step : int, optional
        The first step where it holds (None if it does not).
    message : str
        What was found, for people.
    """

    fired: bool
    step: int | None = None
    message: str = ""

    def __repr__(self) -> str:
        text = self.message if len(self.message) <= 60 else self.message[:56] + " ..."
        return f"RuleOutcome(fired={self.fired}, step={self.step}, message={text!r})"


@attrs.frozen(kw_only=True)
class RuleResult:
    """A rule's status as reported with its job.

    Parameters
    ----------
    name : str
        The rule's name (its ``RuleConfigurationName``).
    kind : str
        The built-in rule (``"LossNotDecreasing"``, ...).
    status : RuleStatus
        ``InProgress``, ``NoIssuesFound``, ``IssuesFound``, ``Error`` or ``Stopped``.
    step : int, optional
        The step where the rule fired.
    message : str
        What it found, or the error.
    stopped_training : bool
        Whether this rule's action stopped the job.
    evaluated_at : datetime.datetime, optional
        When the status last changed (UTC).
    """

    name: str
    kind: str
    status: RuleStatus = attrs.field(converter=RuleStatus)
    step: int | None = None
    message: str = ""
    stopped_training: bool = False
    evaluated_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status.value,
            "step": self.step,
            "message": self.message,
            "stopped_training": self.stopped_training,
            "evaluated_at": self.evaluated_at.isoformat() if self.evaluated_at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleResult:
        """Build from :meth:`to_dict`'s form."""
        values = dict(data)
        if values.get("evaluated_at"):
            values["evaluated_at"] = dt.datetime.fromisoformat(values["evaluated_at"])
        return cls(**values)


# -- helpers over a stream ---------------------------------------------------------------------
def _patterns(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return [str(p) for p in value]


def _matching(stream: TensorStream, patterns: list[str]) -> set[str]:
    compiled = [re.compile(p) for p in patterns]
    return {n for n in stream.tensor_names() if any(c.match(n) for c in compiled)}


def _is_loss(name: str) -> bool:
    metric = name.split("-", 1)[1] if "-" in name else name
    return metric.split("@", 1)[0] not in MAXIMIZED_METRICS


def _series(stream: TensorStream, name: str) -> list[tuple[int, float]]:
    return [(step, float(value)) for step, value in stream.scalar_series(name)]


def _pct(value: float) -> str:
    return f"{value:.3g}%"


def _select_losses(
    stream: TensorStream,
    *,
    collection_names: str | Sequence[str] | None,
    tensor_regex: str | Sequence[str] | None,
    use_losses_collection: bool,
    mode: str | None,
) -> list[str]:
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


# -- the built-in rules ------------------------------------------------------------------------
def loss_not_decreasing(
    stream: TensorStream,
    *,
    collection_names: str | Sequence[str] | None = None,
    tensor_regex: str | Sequence[str] | None = None,
    use_losses_collection: bool = True,
    num_steps: int = 10,
    diff_percent: float = 0.1,
    increase_threshold_percent: float = 5.0,
    mode: str | None = None,
) -> RuleOutcome:
    """Fire when a loss does not decrease at an adequate rate (SageMaker's LossNotDecreasing).

    The losses are the tensors of ``collection_names`` and those matching ``tensor_regex``
    (plus the ``losses`` collection if ``use_losses_collection`` and the stream has one); with
    neither, the ``metrics`` collection, XGBoost's losses. Metrics where larger is better
    (``auc``, ``aucpr``, ...) are left out. ``mode`` ``"EVAL"`` keeps ``validation-*``,
    ``"TRAIN"`` keeps ``train-*``, ``"GLOBAL"`` keeps all; without it, validation losses if
    there are any, else training losses.

    The rule checks every ``num_steps``: the first check is at the first saved step at least
    ``num_steps`` after the first saved one, each next check at the first saved step at least
    ``num_steps`` after the last check. A check compares the loss with the loss at the latest
    saved step at least ``num_steps`` earlier and fires if it fell by less than
    ``diff_percent`` percent (an increase included). Between checks, at any saved step, it also
    fires if the loss rose more than ``increase_threshold_percent`` percent above its lowest
    value so far.

    Parameters
    ----------
    stream : mlcycle.training.TensorStream
        The captured stream.
    collection_names : str or sequence of str, optional
        Collections whose tensors are losses (comma-separated or a list).
    tensor_regex : str or sequence of str, optional
        Regular expressions (matched at the start of a name) choosing loss tensors.
    use_losses_collection : bool
        Also use the ``losses`` collection when the stream has one.
    num_steps : int
        Steps between checks, and the distance of the compared steps.
    diff_percent : float
        The least decrease, in percent, between compared steps.
    increase_threshold_percent : float
        The largest allowed rise, in percent, above the lowest loss so far.
    mode : str, optional
        ``"EVAL"``, ``"TRAIN"`` or ``"GLOBAL"``.

    Returns
    -------
    RuleOutcome
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, not {num_steps}")
    names = _select_losses(stream, collection_names=collection_names,
                           tensor_regex=tensor_regex,
                           use_losses_collection=use_losses_collection, mode=mode)
    if not names:
        raise ValueError("no loss tensors in the stream")
    found: list[tuple[int, str]] = []
    for name in names:
        series = _series(stream, name)
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
    if not found:
        return RuleOutcome(fired=False)
    step, message = min(found)
    return RuleOutcome(fired=True, step=step, message=message)


def _loss_pairs(stream: TensorStream, tensor_regex: str | Sequence[str] | None
                ) -> list[tuple[str, str]]:
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


def overfit(
    stream: TensorStream,
    *,
    tensor_regex: str | Sequence[str] | None = None,
    start_step: int = 0,
    patience: int = 1,
    ratio_threshold: float = 0.1,
) -> RuleOutcome:
    """Fire when the validation loss runs away from the training loss (SageMaker's Overfit).

    For each loss with a training and a validation tensor (``train-<m>`` and
    ``validation-<m>``, chosen by ``tensor_regex`` or else from the ``metrics`` collection), at
    every saved step from ``start_step`` on, the ratio ``(validation - train) / train`` is
    compared with ``ratio_threshold``; the rule fires at the step where it has exceeded the
    threshold for ``patience`` saved steps in a row.

    Parameters
    ----------
    stream : mlcycle.training.TensorStream
        The captured stream.
    tensor_regex : str or sequence of str, optional
        Regular expressions choosing the tensors.
    start_step : int
        The first step compared.
    patience : int
        Saved steps in a row above the threshold before the rule fires.
    ratio_threshold : float
        The largest allowed ``(validation - train) / train``.

    Returns
    -------
    RuleOutcome
    """
    pairs = _loss_pairs(stream, tensor_regex)
    if not pairs:
        raise ValueError("no pair of train-<metric> and validation-<metric> losses")
    found: list[tuple[int, str]] = []
    for train_name, valid_name in pairs:
        valid = dict(_series(stream, valid_name))
        run = 0
        for step, train in _series(stream, train_name):
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
    if not found:
        return RuleOutcome(fired=False)
    step, message = min(found)
    return RuleOutcome(fired=True, step=step, message=message)


def overtraining(
    stream: TensorStream,
    *,
    patience_train: int = 5,
    patience_validation: int = 10,
    delta: float = 0.01,
) -> RuleOutcome:
    """Fire when the losses stop improving (SageMaker's Overtraining).

    For every training loss (``train-*`` of the ``metrics`` collection) and every validation
    loss (``validation-*``), a saved step is a new optimum if the loss is lower than the best so
    far by more than ``delta`` (absolute). The rule fires at the step where a training loss has
    gone ``patience_train`` saved steps, or a validation loss ``patience_validation`` saved
    steps, without a new optimum.

    Parameters
    ----------
    stream : mlcycle.training.TensorStream
        The captured stream.
    patience_train : int
        Saved steps a training loss may go without improving.
    patience_validation : int
        Saved steps a validation loss may go without improving.
    delta : float
        The least improvement that makes a new optimum.

    Returns
    -------
    RuleOutcome
    """
    names = [n for n in stream.collection("metrics") if _is_loss(n)]
    if not names:
        raise ValueError("no losses in the metrics collection")
    found: list[tuple[int, str]] = []
    for name in sorted(names):
        patience = patience_validation if name.startswith("validation-") else patience_train
        best = math.inf
        since = 0
        for step, value in _series(stream, name):
            if value < best - delta:
                best, since = value, 0
            else:
                since += 1
            if since >= patience:
                found.append((step, f"{name} has not improved on {best:.6g} by more than "
                                    f"{delta:g} for {since} saved steps"))
                break
    if not found:
        return RuleOutcome(fired=False)
    step, message = min(found)
    return RuleOutcome(fired=True, step=step, message=message)


def tree_depth(stream: TensorStream, *, depth: float = 4) -> RuleOutcome:
    """Fire when the trees grow less deep than ``depth`` (SageMaker's TreeDepth).

    XGBoost rejects splits that do not improve the loss, so trees may stay shallower than
    ``max_depth`` allows. At each saved step this rule takes the depth of the deepest tree so
    far (from the ``trees/depth`` tensor; the root alone has depth 0) and fires if it is below
    ``depth``. SageMaker computes a depth as the base-2 logarithm of the largest node id; this
    rule counts levels exactly.

    Parameters
    ----------
    stream : mlcycle.training.TensorStream
        The captured stream (needs the ``trees`` collection).
    depth : float
        The depth the trees are expected to reach.

    Returns
    -------
    RuleOutcome
    """
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
            return RuleOutcome(fired=True, step=step,
                               message=f"the deepest of {depths.size} trees has depth "
                                       f"{deepest}, below {depth:g}")
    return RuleOutcome(fired=False)


def class_imbalance(
    stream: TensorStream,
    *,
    threshold_imbalance: float = 10,
    threshold_misprediction: float = 0.7,
    samples: int = 500,
    argmax: bool = False,
    labels_regex: str = ".*labels",
    predictions_regex: str = ".*predictions",
) -> RuleOutcome:
    """Fire on imbalanced classes or a class mostly mispredicted (SageMaker's ClassImbalance).

    Labels and predictions are the first tensors matching ``labels_regex`` and
    ``predictions_regex``. Class counts accumulate over the saved steps; once ``samples``
    labels have been seen, the rule fires if the largest class outnumbers the smallest by more
    than ``threshold_imbalance`` times, or if, at that step, the fraction of a class's rows
    predicted as another class exceeds ``threshold_misprediction``. A prediction's class is its
    ``argmax`` over the last axis if ``argmax``, else the prediction rounded to the nearest
    integer (a probability above 0.5 is class 1).

    Parameters
    ----------
    stream : mlcycle.training.TensorStream
        The captured stream (needs the ``labels`` and ``predictions`` collections).
    threshold_imbalance : float
        The largest allowed ratio of the largest to the smallest class.
    threshold_misprediction : float
        The largest allowed fraction of a class's rows predicted wrong.
    samples : int
        Labels to see before the rule judges.
    argmax : bool
        Take the class of a vector of class probabilities with ``argmax``.
    labels_regex, predictions_regex : str
        Regular expressions naming the labels and predictions tensors.

    Returns
    -------
    RuleOutcome
    """
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
        for cls, n in zip(classes.tolist(), class_counts.tolist(), strict=True):
            counts[cls] = counts.get(cls, 0) + n
        seen += labels.size
        if seen < samples:
            continue
        ratio = max(counts.values()) / min(counts.values())
        if ratio > threshold_imbalance:
            big = max(counts, key=lambda c: counts[c])
            small = min(counts, key=lambda c: counts[c])
            return RuleOutcome(fired=True, step=step,
                               message=f"class {big:g} has {ratio:.3g} times the rows of class "
                                       f"{small:g} (more than {threshold_imbalance:g})")
        for cls in classes.tolist():
            mask = labels == cls
            wrong = float(np.mean(predicted[mask] != cls))
            if wrong > threshold_misprediction:
                return RuleOutcome(fired=True, step=step,
                                   message=f"{wrong:.0%} of class {cls:g} is mispredicted "
                                           f"(more than {threshold_misprediction:.0%})")
    return RuleOutcome(fired=False)


def feature_importance_overweight(
    stream: TensorStream,
    *,
    threshold: float = 0.8,
    nfeatures: int = 3,
    tensor_regex: str = ".*feature_importance/weight",
) -> RuleOutcome:
    """Fire when a few features hold most of the importance (FeatureImportanceOverweight).

    At each saved step, the importances are the scalars whose names match ``tensor_regex``
    (one per feature); the rule fires if the ``nfeatures`` largest hold more than
    ``threshold`` of their sum. A model with at most ``nfeatures`` features always fires.

    Parameters
    ----------
    stream : mlcycle.training.TensorStream
        The captured stream (needs the ``feature_importance`` collection).
    threshold : float
        The largest allowed share of the ``nfeatures`` largest importances.
    nfeatures : int
        How many of the largest importances are summed.
    tensor_regex : str
        Regular expression of the importance tensors.

    Returns
    -------
    RuleOutcome
    """
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
            return RuleOutcome(fired=True, step=step,
                               message=f"the {len(top)} largest importances {short} hold "
                                       f"{share:.0%} of the total (more than {threshold:.0%})")
    return RuleOutcome(fired=False)


#: Built-in rules by SageMaker's ``rule_to_invoke`` name.
BUILTIN_RULES: Mapping[str, Callable[..., RuleOutcome]] = {
    "LossNotDecreasing": loss_not_decreasing,
    "Overfit": overfit,
    "Overtraining": overtraining,
    "TreeDepth": tree_depth,
    "ClassImbalance": class_imbalance,
    "FeatureImportanceOverweight": feature_importance_overweight,
}
#: The collections each built-in rule reads.
RULE_COLLECTIONS: Mapping[str, tuple[str, ...]] = {
    "LossNotDecreasing": ("metrics",),
    "Overfit": ("metrics",),
    "Overtraining": ("metrics",),
    "TreeDepth": ("trees",),
    "ClassImbalance": ("labels", "predictions"),
    "FeatureImportanceOverweight": ("feature_importance",),
}
_SNAKE = {fn.__name__: kind for kind, fn in BUILTIN_RULES.items()}


def _kind(value: object) -> str:
    if isinstance(value, str):
        if value in BUILTIN_RULES:
            return value
        if value in _SNAKE:
            return _SNAKE[value]
    raise SpecValidationError(
        f"unknown rule {value!r}; built in: {', '.join(BUILTIN_RULES)}", field="rules"
    )


def _convert_parameter(value: object, default: object, field: str) -> object:
    if isinstance(value, str) and not isinstance(default, str):
        text = value.strip()
        if isinstance(default, bool):
            if text.lower() not in {"true", "false"}:
                raise SpecValidationError(f"expected true or false, not {value!r}", field=field)
            return text.lower() == "true"
        if isinstance(default, int | float):
            try:
                number = float(text)
            except ValueError:
                raise SpecValidationError(f"expected a number, not {value!r}",
                                          field=field) from None
            return int(number) if isinstance(default, int) and number == int(number) else number
        return value
    if isinstance(default, bool) and not isinstance(value, bool):
        raise SpecValidationError(f"expected a bool, not {value!r}", field=field)
    numeric_default = isinstance(default, int | float) and not isinstance(default, bool)
    if numeric_default and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise SpecValidationError(f"expected a number, not {value!r}", field=field)
    return value


@attrs.frozen(kw_only=True)
class Rule:
    """A built-in rule to evaluate while training, with its parameters and actions.

    Parameters
    ----------
    kind : str
        The built-in rule, by SageMaker's name (``"LossNotDecreasing"``) or the function's
        (``"loss_not_decreasing"``).
    parameters : mapping
        The rule's parameters (SageMaker's names); strings are converted, as SageMaker passes
        rule parameters as strings.
    name : str, optional
        The rule configuration's name; default the kind.
    actions : sequence of str
        ``("stop_training",)`` stops the job when the rule fires.

    Examples
    --------
    >>> Rule(kind="loss_not_decreasing", parameters={"num_steps": "4"},
    ...      actions=["stop_training"]).parameters
    {'num_steps': 4}
    >>> Rule(kind="Overfit", parameters={"patience_step": 2})
    Traceback (most recent call last):
    ...
    mlcycle.errors.SpecValidationError: rule Overfit has no parameter 'patience_step'; ...
    """

    kind: str = attrs.field(converter=_kind)
    parameters: dict[str, Any] = attrs.field(factory=dict, converter=dict)
    name: str = attrs.field(default=None)
    actions: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    def __attrs_post_init__(self) -> None:
        if self.name is None:
            object.__setattr__(self, "name", self.kind)
        if not isinstance(self.name, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9\-]{0,62}$",
                                                          self.name):
            raise SpecValidationError(f"invalid rule name {self.name!r}", field="rules")
        signature = inspect.signature(BUILTIN_RULES[self.kind])
        defaults = {n: p.default for n, p in signature.parameters.items()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY}
        converted = {}
        for key, value in self.parameters.items():
            field = f"rules.{self.name}.parameters.{key}"
            if key not in defaults:
                raise SpecValidationError(
                    f"rule {self.kind} has no parameter {key!r}; it takes "
                    f"{', '.join(defaults)}",
                    field=field,
                )
            converted[key] = _convert_parameter(value, defaults[key], field)
        object.__setattr__(self, "parameters", converted)
        for action in self.actions:
            if action not in _ACTIONS:
                raise SpecValidationError(f"unknown action {action!r}; known: stop_training",
                                          field=f"rules.{self.name}.actions")

    @property
    def stops_training(self) -> bool:
        """Whether the rule stops the job when it fires."""
        return STOP_TRAINING in self.actions

    def evaluate(self, stream: TensorStream) -> RuleOutcome:
        """Run the rule function on ``stream`` with this rule's parameters."""
        return BUILTIN_RULES[self.kind](stream, **self.parameters)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {"kind": self.kind, "name": self.name, "parameters": dict(self.parameters),
                "actions": list(self.actions)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """Build from :meth:`to_dict`'s form."""
        return cls(**dict(data))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RuleEngine:
    """Evaluate a job's rules at each saved step and keep their statuses.

    Parameters
    ----------
    rules : sequence of Rule
        The rules.
    stream : mlcycle.training.TensorStream
        The stream being written.
    clock : callable
        Returns the current UTC time.
    """

    def __init__(self, rules: Sequence[Rule], stream: TensorStream,
                 *, clock: Callable[[], dt.datetime] = _now) -> None:
        self._rules = tuple(rules)
        self._stream = stream
        self._clock = clock
        self._results = {r.name: RuleResult(name=r.name, kind=r.kind,
                                            status=RuleStatus.IN_PROGRESS)
                         for r in self._rules}

    def evaluate(self) -> RuleResult | None:
        """Evaluate every rule still in progress; return the result of one that stops training.

        Returns
        -------
        RuleResult or None
            The first rule with the ``stop_training`` action that fired, if any.
        """
        stopper = None
        for rule in self._rules:
            if self._results[rule.name].status is not RuleStatus.IN_PROGRESS:
                continue
            try:
                outcome = rule.evaluate(self._stream)
            except Exception as exc:  # a rule's own error is its status, never the job's
                self._results[rule.name] = RuleResult(
                    name=rule.name, kind=rule.kind, status=RuleStatus.ERROR,
                    message=f"{type(exc).__name__}: {exc}", evaluated_at=self._clock())
                continue
            if outcome.fired:
                result = RuleResult(name=rule.name, kind=rule.kind,
                                    status=RuleStatus.ISSUES_FOUND, step=outcome.step,
                                    message=outcome.message,
                                    stopped_training=rule.stops_training and stopper is None,
                                    evaluated_at=self._clock())
                self._results[rule.name] = result
                if result.stopped_training:
                    stopper = result
        return stopper

    def finish(self, *, failed: bool) -> tuple[RuleResult, ...]:
        """Close the evaluations that are still in progress and return every result.

        Parameters
        ----------
        failed : bool
            Whether the job failed (open rules become ``Stopped``; else ``NoIssuesFound``).
        """
        final = RuleStatus.STOPPED if failed else RuleStatus.NO_ISSUES_FOUND
        for name, result in self._results.items():
            if result.status is RuleStatus.IN_PROGRESS:
                self._results[name] = attrs.evolve(result, status=final,
                                                   evaluated_at=self._clock())
        return self.results()

    def results(self) -> tuple[RuleResult, ...]:
        """The current result of every rule, in the spec's order."""
        return tuple(self._results[r.name] for r in self._rules)
