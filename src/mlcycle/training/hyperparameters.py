"""The XGBoost hyperparameters a training job accepts: names, types, ranges and known values.

Hyperparameters are checked before a job starts, so a typo or a value out of range is a
:class:`~mlcycle.errors.SpecValidationError` whose ``field`` is ``"hyperparameters.<name>"``,
never a failed job. Values may be given as Python numbers or as strings (SageMaker passes
hyperparameters as strings); they are converted to their declared type. The XGBoost aliases
(``learning_rate``, ``reg_lambda``, ...) are accepted and stored under the canonical name.

``num_round`` (the number of boosting rounds) is required, as in SageMaker's XGBoost
algorithm. ``early_stopping_rounds`` needs a validation input.

Examples
--------
>>> validate_hyperparameters({"num_round": "100", "max_depth": 4, "learning_rate": 0.2})
{'num_round': 100, 'max_depth': 4, 'eta': 0.2}
>>> validate_hyperparameters({"num_round": 10, "max_dept": 4})
Traceback (most recent call last):
...
mlcycle.errors.SpecValidationError: unknown hyperparameter 'max_dept' (did you mean 'max_depth'?)
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from mlcycle.errors import SpecValidationError

__all__ = [
    "EVAL_METRICS",
    "HYPERPARAMETERS",
    "MAXIMIZED_METRICS",
    "OBJECTIVES",
    "Hyperparameter",
    "default_eval_metric",
    "validate_hyperparameters",
]

#: The objectives a job can train with, each with the metric XGBoost evaluates by default.
OBJECTIVES: Mapping[str, str] = {
    "reg:squarederror": "rmse",
    "reg:squaredlogerror": "rmsle",
    "reg:logistic": "rmse",
    "reg:pseudohubererror": "mphe",
    "reg:absoluteerror": "mae",
    "reg:quantileerror": "quantile",
    "reg:gamma": "gamma-nloglik",
    "reg:tweedie": "tweedie-nloglik@1.5",
    "binary:logistic": "logloss",
    "binary:logitraw": "logloss",
    "binary:hinge": "error",
    "count:poisson": "poisson-nloglik",
    "multi:softmax": "mlogloss",
    "multi:softprob": "mlogloss",
}

#: Evaluation metrics; ``error@t``, ``tweedie-nloglik@rho`` and friends take a parameter.
EVAL_METRICS = frozenset(
    {
        "rmse",
        "rmsle",
        "mae",
        "mape",
        "mphe",
        "logloss",
        "error",
        "merror",
        "mlogloss",
        "auc",
        "aucpr",
        "poisson-nloglik",
        "gamma-nloglik",
        "gamma-deviance",
        "tweedie-nloglik",
        "quantile",
    }
)
#: Metrics where larger is better; loss rules leave them out.
MAXIMIZED_METRICS = frozenset({"auc", "aucpr", "map", "ndcg", "pre"})
_PARAMETRIC_METRIC = re.compile(r"^(error|tweedie-nloglik)@(\d+(\.\d*)?|\.\d+)$")


@attrs.frozen(kw_only=True)
class Hyperparameter:
    """One known hyperparameter: its type and the values it may take.

    Parameters
    ----------
    name : str
        The canonical name.
    kind : str
        ``"int"``, ``"float"``, ``"str"`` or ``"metrics"`` (one or more metric names).
    low, high : float, optional
        The bounds of a number.
    low_open, high_open : bool
        Whether a bound itself is excluded.
    choices : tuple of str
        The allowed values of a string (empty: any string).
    aliases : tuple of str
        Other names XGBoost accepts.
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    def describe_range(self) -> str:
        """Return the allowed values as text, for error messages."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{self.kind} in {left}{low}, {high}{right}"

    def convert(self, value: object) -> Any:
        """Return ``value`` converted to this parameter's type, checked against its range.

        Raises
        ------
        SpecValidationError
            With ``field="hyperparameters.<name>"``.
        """
        field = f"hyperparameters.{self.name}"
        if self.kind == "metrics":
            return _metrics(value, field)
        if self.kind == "str":
            if not isinstance(value, str):
                raise SpecValidationError(f"{self.name} must be a string, not {value!r}",
                                          field=field)
            if self.choices and value not in self.choices:
                raise SpecValidationError(
                    f"{self.name}={value!r} is not {self.describe_range()}", field=field
                )
            return value
        number = _number(value, integer=self.kind == "int", field=field, name=self.name)
        too_low = self.low is not None and (
            number <= self.low if self.low_open else number < self.low
        )
        too_high = self.high is not None and (
            number >= self.high if self.high_open else number > self.high
        )
        if too_low or too_high:
            raise SpecValidationError(
                f"{self.name}={number!r} is out of range: {self.describe_range()}", field=field
            )
        return number


def _number(value: object, *, integer: bool, field: str, name: str) -> int | float:
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool):
        raise SpecValidationError(f"{name} must be {kind}, not {value!r}", field=field)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise SpecValidationError(f"{name} must be {kind}, not {value!r}",
                                      field=field) from None
    if not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise SpecValidationError(f"{name} must be {kind}, not {value!r}", field=field)
    if integer:
        if float(value) != int(value):
            raise SpecValidationError(f"{name} must be {kind}, not {value!r}", field=field)
        return int(value)
    return float(value)


def _metrics(value: object, field: str) -> str | tuple[str, ...]:
    items: list[object]
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise SpecValidationError(f"eval_metric must be a metric name or a list, not {value!r}",
                                  field=field)
    if not items:
        raise SpecValidationError("eval_metric is empty", field=field)
    for item in items:
        if not isinstance(item, str) or not (item in EVAL_METRICS
                                             or _PARAMETRIC_METRIC.match(item)):
            raise SpecValidationError(
                f"unknown eval_metric {item!r}; known: {', '.join(sorted(EVAL_METRICS))}",
                field=field,
            )
    if len(set(items)) != len(items):
        raise SpecValidationError(f"eval_metric repeats a metric: {items}", field=field)
    return str(items[0]) if len(items) == 1 else tuple(str(i) for i in items)


def _p(name: str, kind: str, **kwargs: Any) -> Hyperparameter:
    return Hyperparameter(name=name, kind=kind, **kwargs)


_TABLE = (
    _p("num_round", "int", low=1, high=1_000_000),
    _p("early_stopping_rounds", "int", low=1),
    _p("booster", "str", choices=("gbtree", "dart")),
    _p("device", "str"),
    _p("verbosity", "int", low=0, high=3),
    _p("nthread", "int", low=1),
    _p("eta", "float", low=0, high=1, aliases=("learning_rate",)),
    _p("gamma", "float", low=0, aliases=("min_split_loss",)),
    _p("max_depth", "int", low=0),
    _p("min_child_weight", "float", low=0),
    _p("max_delta_step", "float", low=0),
    _p("subsample", "float", low=0, high=1, low_open=True),
    _p("sampling_method", "str", choices=("uniform", "gradient_based")),
    _p("colsample_bytree", "float", low=0, high=1, low_open=True),
    _p("colsample_bylevel", "float", low=0, high=1, low_open=True),
    _p("colsample_bynode", "float", low=0, high=1, low_open=True),
    _p("lambda", "float", low=0, aliases=("reg_lambda",)),
    _p("alpha", "float", low=0, aliases=("reg_alpha",)),
    _p("tree_method", "str", choices=("auto", "exact", "approx", "hist")),
    _p("scale_pos_weight", "float", low=0, low_open=True),
    _p("grow_policy", "str", choices=("depthwise", "lossguide")),
    _p("max_leaves", "int", low=0),
    _p("max_bin", "int", low=2),
    _p("num_parallel_tree", "int", low=1),
    _p("monotone_constraints", "str"),
    _p("max_cat_to_onehot", "int", low=1),
    _p("objective", "str", choices=tuple(OBJECTIVES)),
    _p("num_class", "int", low=2),
    _p("base_score", "float"),
    _p("eval_metric", "metrics"),
    _p("seed", "int", low=0, high=2**31 - 1, aliases=("random_state",)),
    _p("tweedie_variance_power", "float", low=1, high=2, low_open=True, high_open=True),
    _p("huber_slope", "float", low=0, low_open=True),
    _p("quantile_alpha", "float", low=0, high=1, low_open=True, high_open=True),
    _p("rate_drop", "float", low=0, high=1),
    _p("skip_drop", "float", low=0, high=1),
    _p("one_drop", "int", low=0, high=1),
    _p("sample_type", "str", choices=("uniform", "weighted")),
    _p("normalize_type", "str", choices=("tree", "forest")),
)
#: Every known hyperparameter by canonical name.
HYPERPARAMETERS: Mapping[str, Hyperparameter] = {p.name: p for p in _TABLE}
_ALIASES = {alias: p.name for p in _TABLE for alias in p.aliases}
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|gpu(:\d+)?)$")


def default_eval_metric(objective: str) -> str:
    """Return the metric XGBoost evaluates for ``objective`` when ``eval_metric`` is not set.

    Examples
    --------
    >>> default_eval_metric("reg:squarederror")
    'rmse'
    """
    return OBJECTIVES[objective]


def validate_hyperparameters(values: Mapping[str, object]) -> dict[str, Any]:
    """Check and normalize a job's hyperparameters.

    Parameters
    ----------
    values : mapping
        Hyperparameter names (canonical or aliases) to values (numbers or strings).

    Returns
    -------
    dict
        Canonical names to typed values, in the order given.

    Raises
    ------
    SpecValidationError
        For an unknown name, a name given twice (directly and by alias), a value of the wrong
        type or out of range, a missing ``num_round``, ``num_class`` without a ``multi:``
        objective or a ``multi:`` objective without it. ``field`` is
        ``"hyperparameters.<name>"``.
    """
    if not isinstance(values, Mapping):
        raise SpecValidationError("hyperparameters must be a mapping", field="hyperparameters")
    out: dict[str, Any] = {}
    for raw_name, value in values.items():
        if not isinstance(raw_name, str):
            raise SpecValidationError(f"hyperparameter names are strings, not {raw_name!r}",
                                      field="hyperparameters")
        name = _ALIASES.get(raw_name, raw_name)
        param = HYPERPARAMETERS.get(name)
        if param is None:
            close = difflib.get_close_matches(raw_name, [*HYPERPARAMETERS, *_ALIASES], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecValidationError(f"unknown hyperparameter {raw_name!r}{hint}",
                                      field=f"hyperparameters.{raw_name}")
        if name in out:
            raise SpecValidationError(f"hyperparameter {name!r} is given twice (by an alias)",
                                      field=f"hyperparameters.{name}")
        out[name] = param.convert(value)
    if "device" in out and not _DEVICE.match(out["device"]):
        raise SpecValidationError(f"device={out['device']!r} is not cpu, cuda or cuda:N",
                                  field="hyperparameters.device")
    if "num_round" not in out:
        raise SpecValidationError("num_round (the number of boosting rounds) is required",
                                  field="hyperparameters.num_round")
    objective = out.get("objective", "reg:squarederror")
    if objective.startswith("multi:") and "num_class" not in out:
        raise SpecValidationError(f"{objective} needs num_class",
                                  field="hyperparameters.num_class")
    if "num_class" in out and not objective.startswith("multi:"):
        raise SpecValidationError("num_class is only for multi: objectives",
                                  field="hyperparameters.num_class")
    return out
