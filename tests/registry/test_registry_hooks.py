import math

import attrs
import pytest

from mlcycle.errors import SpecValidationError
from mlcycle.registry import metric_threshold
from mlcycle.registry.hooks import alias_target, hook_name


@attrs.define
class _Version:
    metrics: dict


def test_bounds_are_inclusive_and_reasons_name_the_metric():
    hook = metric_threshold("validation-rmse", max=0.8, min=0.1)
    assert hook(_Version({"validation-rmse": 0.8}), "Approved") is None
    assert hook(_Version({"validation-rmse": 0.1}), "alias:champion") is None
    assert hook(_Version({"validation-rmse": 0.5}), "Approved") is None
    for value in (0.81, 0.09):
        reason = hook(_Version({"validation-rmse": value}), "Approved")
        assert isinstance(reason, str) and "validation-rmse" in reason


@pytest.mark.parametrize("metrics", [{}, {"other": 0.1}, {"validation-rmse": math.nan}])
def test_a_missing_or_nan_metric_is_refused(metrics):
    reason = metric_threshold("validation-rmse", max=1.0)(_Version(metrics), "Approved")
    assert isinstance(reason, str) and reason


def test_one_bound_is_enough():
    assert metric_threshold("auc", min=0.7)(_Version({"auc": 0.9}), "Approved") is None
    assert metric_threshold("auc", min=0.7)(_Version({"auc": 0.6}), "Approved")
    assert metric_threshold("rmse", max=1)(_Version({"rmse": -5.0}), "Approved") is None


def test_names():
    assert metric_threshold("rmse", max=0.8).__name__ == "rmse<=0.8"
    assert metric_threshold("auc", min=0.7).__name__ == "0.7<=auc"
    assert metric_threshold("auc", min=0.5, max=1).__name__ == "0.5<=auc<=1"
    named = metric_threshold("rmse", max=0.8, name="quality-gate")
    assert hook_name(named) == "quality-gate"


def test_hook_name_falls_back():
    class Named:
        name = "by-attribute"

        def __call__(self, version, target):
            return None

    class Anonymous:
        def __call__(self, version, target):
            return None

    assert hook_name(Named()) == "by-attribute"
    assert hook_name(len) == "len"
    assert hook_name(Anonymous()).startswith("<")
    assert alias_target("champion") == "alias:champion"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({}, "max"),
    ({"max": 0.1, "min": 0.2}, "min"),
    ({"max": math.inf}, "max"),
    ({"min": math.nan}, "min"),
    ({"max": True}, "max"),
    ({"max": "1"}, "max"),
    ({"max": 1.0, "name": ""}, "name"),
])
def test_bad_thresholds(kwargs, field):
    with pytest.raises(SpecValidationError) as info:
        metric_threshold("rmse", **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize("metric", ["", None, 3])
def test_a_metric_name_is_required(metric):
    with pytest.raises(SpecValidationError) as info:
        metric_threshold(metric, max=1.0)
    assert info.value.field == "metric"
