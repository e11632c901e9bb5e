"""Promotion hooks: checks that may refuse to approve a version or point an alias at it.

A hook is any callable ``hook(version, target) -> str | None``. ``version`` is the
:class:`~mlcycle.registry.ModelVersion` about to be promoted and ``target`` is ``"Approved"``
(for :meth:`~mlcycle.registry.RegistryClient.approve`, or a registration straight into the
``Approved`` status) or ``"alias:<name>"`` (for :meth:`~mlcycle.registry.RegistryClient.set_alias`).
A hook returns None to allow the promotion, or a non-empty reason to refuse it; the client then
raises :class:`~mlcycle.errors.PromotionRefusedError` with the hook's name and the reason, and
changes nothing. A hook is named by its ``name`` attribute, else its ``__name__``.

Examples
--------
>>> from mlcycle.registry import metric_threshold
>>> hook = metric_threshold("validation-rmse", max=0.8)
>>> hook.__name__
'validation-rmse<=0.8'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from mlcycle.errors import SpecValidationError

if TYPE_CHECKING:  # pragma: no cover
    from mlcycle.registry.entities import ModelVersion

__all__ = ["PromotionHook", "hook_name", "metric_threshold"]

#: ``hook(version, target) -> reason or None``; see :mod:`mlcycle.registry.hooks`.
PromotionHook: TypeAlias = Callable[["ModelVersion", str], "str | None"]

#: The target of an approval.
APPROVED_TARGET = "Approved"


def alias_target(alias: str) -> str:
    """The target a hook sees when ``alias`` is pointed at a version: ``"alias:<name>"``."""
    return f"alias:{alias}"


def hook_name(hook: object) -> str:
    """The name a hook is reported by: its ``name`` attribute, else ``__name__``, else its repr."""
    for attribute in ("name", "__name__"):
        value = getattr(hook, attribute, None)
        if isinstance(value, str) and value:
            return value
    return repr(hook)


def _bound(value: float | None, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecValidationError(f"{field} must be a finite number, not {value!r}",
                                  field=field)
    return float(value)


def metric_threshold(
    metric: str,
    *,
    max: float | None = None,
    min: float | None = None,
    name: str | None = None,
) -> PromotionHook:
    """A hook that refuses a promotion unless ``metric`` lies within bounds.

    A version without the metric (or with a NaN value) is refused too.

    Parameters
    ----------
    metric : str
        The metric's name, for example ``"validation-rmse"``.
    max, min : float, optional
        The largest and smallest value allowed (inclusive); at least one.
    name : str, optional
        The hook's name in a refusal; default like ``"validation-rmse<=0.8"``.

    Returns
    -------
    callable
        A promotion hook (see :mod:`mlcycle.registry.hooks`).

    Raises
    ------
    SpecValidationError
        If neither bound is given, a bound is not a finite number, or ``min > max``.

    Examples
    --------
    >>> from mlcycle.registry import metric_threshold
    >>> hook = metric_threshold("validation-rmse", max=0.8, min=0.0)
    >>> hook.__name__
    '0<=validation-rmse<=0.8'
    """
    if not isinstance(metric, str) or not metric:
        raise SpecValidationError(f"metric must be a metric name, not {metric!r}",
                                  field="metric")
    upper, lower = _bound(max, "max"), _bound(min, "min")
    if upper is None and lower is None:
        raise SpecValidationError("metric_threshold needs max, min or both", field="max")
    if upper is not None and lower is not None and lower > upper:
        raise SpecValidationError(f"min {lower:g} is above max {upper:g}", field="min")
    if name is None:
        name = (f"{'' if lower is None else f'{lower:g}<='}{metric}"
                f"{'' if upper is None else f'<={upper:g}'}")
    elif not isinstance(name, str) or not name:
        raise SpecValidationError(f"name must be a non-empty string, not {name!r}", field="name")

    def hook(version: ModelVersion, target: str) -> str | None:
        value = version.metrics.get(metric)
        if value is None or not math.isfinite(value):
            return f"metric {metric!r} is missing"
        if upper is not None and value > upper:
            return f"{metric} {value:g} > {upper:g}"
        if lower is not None and value < lower:
            return f"{metric} {value:g} < {lower:g}"
        return None

    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = f"Refuse a promotion unless {name}."
    return hook
