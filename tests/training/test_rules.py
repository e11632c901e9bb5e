import datetime as dt
import inspect

import numpy as np
import pytest

from mlcycle.errors import SpecValidationError
from mlcycle.training import MemoryTensorStream, Rule, RuleStatus
from mlcycle.training.rules import (
    BUILTIN_RULES,
    RuleEngine,
    class_imbalance,
    feature_importance_overweight,
    loss_not_decreasing,
    overfit,
    overtraining,
    tree_depth,
)


def metrics(**series):
    return MemoryTensorStream.from_series("metrics", series)


def falling(n, start=1.0, rate=0.9):
    return [start * rate**i for i in range(n)]


# -- SageMaker's parameter names and defaults ---------------------------------------------------
@pytest.mark.parametrize(
    ("function", "defaults"),
    [
        (loss_not_decreasing, {"collection_names": None, "tensor_regex": None,
                               "use_losses_collection": True, "num_steps": 10,
                               "diff_percent": 0.1, "increase_threshold_percent": 5.0,
                               "mode": None}),
        (overfit, {"tensor_regex": None, "start_step": 0, "patience": 1,
                   "ratio_threshold": 0.1}),
        (overtraining, {"patience_train": 5, "patience_validation": 10, "delta": 0.01}),
        (tree_depth, {"depth": 4}),
        (class_imbalance, {"threshold_imbalance": 10, "threshold_misprediction": 0.7,
                           "samples": 500, "argmax": False, "labels_regex": ".*labels",
                           "predictions_regex": ".*predictions"}),
        (feature_importance_overweight, {"threshold": 0.8, "nfeatures": 3,
                                         "tensor_regex": ".*feature_importance/weight"}),
    ],
)
def test_parameters_have_sagemakers_names_and_defaults(function, defaults):
    params = inspect.signature(function).parameters
    got = {n: p.default for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert got == defaults


# -- LossNotDecreasing --------------------------------------------------------------------------
def test_loss_not_decreasing_quiet_while_the_loss_falls():
    stream = metrics(**{"train-rmse": falling(40), "validation-rmse": falling(40, 1.1)})
    assert not loss_not_decreasing(stream).fired
    assert not loss_not_decreasing(stream, num_steps=3).fired


def test_loss_not_decreasing_fires_on_a_plateau_at_the_first_check_after_it():
    values = falling(12) + [falling(12)[-1]] * 20
    out = loss_not_decreasing(metrics(**{"validation-rmse": values}), num_steps=5)
    # checks at 5, 10, 15 pass (15 vs 10 still fell 10%); 20 vs 15 is flat
    assert out.fired and out.step == 20
    assert "validation-rmse" in out.message


def test_loss_not_decreasing_compares_steps_num_steps_apart_on_saved_steps():
    # saved every 3 steps, num_steps 10: checks at 12 (vs 0), 24 (vs 12), 36 (vs 24)
    steps = list(range(0, 40, 3))
    values = [1.0 - 0.01 * s if s <= 24 else 0.76 for s in steps]
    stream = MemoryTensorStream.from_series("metrics", {"train-rmse": values}, steps=steps)
    out = loss_not_decreasing(stream, num_steps=10)
    assert out.fired and out.step == 36


def test_loss_not_decreasing_fires_when_the_loss_rises_past_the_threshold():
    values = [1.0, 0.8, 0.7, 0.72, 0.73, 0.9]  # 0.73 is 4.3% above 0.7, 0.9 is 28.6%
    out = loss_not_decreasing(metrics(**{"validation-rmse": values}), num_steps=50)
    assert out.fired and out.step == 5
    small_rise = [1.0, 0.8, 0.7, 0.72, 0.72]  # 2.9% above the lowest, under 5%
    assert not loss_not_decreasing(metrics(**{"validation-rmse": small_rise}),
                                   num_steps=50).fired


def test_loss_not_decreasing_diff_percent_sets_the_least_decrease():
    values = falling(30, rate=0.995)  # falls 0.5% a step: ~2.5% over 5 steps
    stream = metrics(**{"validation-rmse": values})
    assert not loss_not_decreasing(stream, num_steps=5, diff_percent=2).fired
    assert loss_not_decreasing(stream, num_steps=5, diff_percent=3).fired


def test_loss_not_decreasing_mode_chooses_the_channel():
    stream = metrics(**{"train-rmse": falling(20), "validation-rmse": [1.0] * 20})
    assert loss_not_decreasing(stream, num_steps=4).fired  # validation first by default
    assert not loss_not_decreasing(stream, num_steps=4, mode="TRAIN").fired
    assert loss_not_decreasing(stream, num_steps=4, mode="GLOBAL").fired


def test_loss_not_decreasing_leaves_out_metrics_where_larger_is_better():
    stream = metrics(**{"validation-auc": [0.9] * 20, "validation-logloss": falling(20)})
    assert not loss_not_decreasing(stream, num_steps=4).fired


def test_loss_not_decreasing_regex_and_collections_choose_tensors():
    stream = metrics(**{"train-rmse": [1.0] * 20, "validation-rmse": falling(20)})
    stream.extend("losses", {"my-loss": falling(20)})
    assert not loss_not_decreasing(stream, num_steps=4).fired  # the losses collection
    assert loss_not_decreasing(stream, tensor_regex="train-.*", num_steps=4,
                               use_losses_collection=False).fired
    assert loss_not_decreasing(stream, collection_names="metrics", num_steps=4,
                               use_losses_collection=False, mode="TRAIN").fired


def test_loss_not_decreasing_without_losses_is_an_error():
    with pytest.raises(ValueError):
        loss_not_decreasing(MemoryTensorStream(), num_steps=2)


# -- Overfit ------------------------------------------------------------------------------------
def test_overfit_fires_when_validation_runs_away_for_patience_steps():
    train = falling(10)
    valid = [t * 1.05 for t in train[:5]] + [t * 1.5 for t in train[5:]]
    stream = metrics(**{"train-rmse": train, "validation-rmse": valid})
    out = overfit(stream, patience=2)
    assert out.fired and out.step == 6
    assert overfit(stream).step == 5


def test_overfit_quiet_when_losses_stay_close_and_respects_start_step():
    train = falling(10)
    stream = metrics(**{"train-rmse": train, "validation-rmse": [t * 1.08 for t in train]})
    assert not overfit(stream).fired
    early = metrics(**{"train-rmse": train, "validation-rmse": [2.0] * 3 + train[3:]})
    assert overfit(early).fired and not overfit(early, start_step=3).fired


def test_overfit_needs_paired_losses():
    with pytest.raises(ValueError):
        overfit(metrics(**{"train-rmse": [1.0, 0.9]}))


# -- Overtraining -------------------------------------------------------------------------------
def test_overtraining_fires_when_validation_stops_improving():
    valid = falling(5) + [falling(5)[-1]] * 12
    stream = metrics(**{"train-rmse": falling(17, rate=0.8), "validation-rmse": valid})
    out = overtraining(stream)
    assert out.fired and out.step == 14  # best at 4, then 10 steps without a new optimum
    assert "validation-rmse" in out.message


def test_overtraining_fires_when_training_stops_improving_first():
    stream = metrics(**{"train-rmse": [1.0, 0.5] + [0.5] * 10,
                        "validation-rmse": falling(12, rate=0.5)})
    assert overtraining(stream).step == 6  # 5 steps (2..6) without improving by 0.01


def test_overtraining_quiet_while_both_improve():
    stream = metrics(**{"train-rmse": falling(30, rate=0.9),
                        "validation-rmse": falling(30, 2, rate=0.95)})
    assert not overtraining(stream, delta=0.0).fired


# -- TreeDepth ----------------------------------------------------------------------------------
def test_tree_depth_fires_when_trees_stay_shallow():
    stream = MemoryTensorStream()
    stream.add(0, "trees", {"trees/depth": [2]})
    stream.add(5, "trees", {"trees/depth": [2, 3, 2]})
    assert tree_depth(stream).step == 0
    assert tree_depth(stream, depth=3).step == 0
    assert not tree_depth(stream, depth=2).fired


def test_tree_depth_quiet_when_a_tree_reaches_the_depth():
    stream = MemoryTensorStream()
    stream.add(0, "trees", {"trees/depth": [4]})
    stream.add(1, "trees", {"trees/depth": [4, 3]})
    assert not tree_depth(stream).fired
    with pytest.raises(ValueError):
        tree_depth(MemoryTensorStream())


# -- ClassImbalance -----------------------------------------------------------------------------
def _classes(labels, predictions, steps=(0,)):
    stream = MemoryTensorStream()
    for step in steps:
        stream.add(step, "labels", {"labels": labels})
        stream.add(step, "predictions", {"predictions": predictions})
    return stream


def test_class_imbalance_fires_on_imbalanced_classes():
    labels = np.array([0] * 600 + [1] * 40)
    out = class_imbalance(_classes(labels, labels.astype(float)))
    assert out.fired and out.step == 0 and "15" in out.message


def test_class_imbalance_fires_when_a_class_is_mostly_mispredicted():
    labels = np.array([0] * 300 + [1] * 300)
    predictions = np.where(np.arange(600) < 300, 0.1, 0.2)  # class 1 never predicted
    assert class_imbalance(_classes(labels, predictions)).fired
    good = np.where(labels == 1, 0.9, 0.1)
    assert not class_imbalance(_classes(labels, good)).fired


def test_class_imbalance_waits_for_samples_and_supports_argmax():
    labels = np.array([0] * 100 + [1] * 5)
    stream = _classes(labels, labels.astype(float), steps=(0, 2, 4, 6, 8))
    assert class_imbalance(stream).step == 8  # 525 labels seen at step 8
    probabilities = np.eye(3)[[0, 1, 2] * 200]
    stream = _classes(np.array([0, 1, 2] * 200), probabilities)
    assert not class_imbalance(stream, argmax=True).fired
    with pytest.raises(ValueError):  # a vector per label needs argmax
        class_imbalance(stream, argmax=False)


# -- FeatureImportanceOverweight ----------------------------------------------------------------
def _importance(step_values):
    stream = MemoryTensorStream()
    for step, values in step_values.items():
        stream.add(step, "feature_importance",
                   {f"feature_importance/weight/{k}": v for k, v in values.items()}
                   | {f"feature_importance/gain/{k}": 1.0 for k in values})
    return stream


def test_feature_importance_overweight_fires_when_few_features_dominate():
    balanced = {f"f{i}": 10.0 for i in range(6)}
    skewed = {"f0": 80.0, "f1": 10.0, "f2": 5.0, "f3": 2.0, "f4": 2.0, "f5": 1.0}
    stream = _importance({0: balanced, 4: skewed})
    out = feature_importance_overweight(stream)
    assert out.fired and out.step == 4 and "f0" in out.message
    assert not feature_importance_overweight(_importance({0: balanced})).fired
    assert not feature_importance_overweight(stream, nfeatures=1, threshold=0.85).fired


def test_feature_importance_overweight_regex_chooses_the_importance_type():
    skewed = {"f0": 80.0, "f1": 10.0, "f2": 5.0, "f3": 2.0, "f4": 2.0, "f5": 1.0}
    stream = _importance({0: skewed})
    assert not feature_importance_overweight(
        stream, tensor_regex="feature_importance/gain/").fired


# -- Rule specs and the engine ------------------------------------------------------------------
def test_rule_spec_converts_string_parameters_and_checks_names():
    rule = Rule(kind="ClassImbalance", parameters={"samples": "100", "argmax": "True",
                                                   "threshold_imbalance": "2.5"})
    assert rule.parameters == {"samples": 100, "argmax": True, "threshold_imbalance": 2.5}
    assert rule.name == "ClassImbalance" and rule.kind == "ClassImbalance"
    assert Rule(kind="tree_depth").kind == "TreeDepth"
    with pytest.raises(SpecValidationError) as info:
        Rule(kind="Overfit", parameters={"patience": "soon"})
    assert info.value.field == "rules.Overfit.parameters.patience"
    with pytest.raises(SpecValidationError):
        Rule(kind="NoSuchRule")
    with pytest.raises(SpecValidationError) as info:
        Rule(kind="Overfit", actions=("email",))
    assert info.value.field == "rules.Overfit.actions"
    assert Rule.from_dict(rule.to_dict()) == rule
    assert set(BUILTIN_RULES) == {"LossNotDecreasing", "Overfit", "Overtraining", "TreeDepth",
                                  "ClassImbalance", "FeatureImportanceOverweight"}


def test_engine_tracks_statuses_and_names_the_rule_that_stops():
    stream = MemoryTensorStream()
    clock = lambda: dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # noqa: E731
    rules = [
        Rule(kind="LossNotDecreasing", parameters={"num_steps": 2}, actions=["stop_training"]),
        Rule(kind="TreeDepth", name="depth"),
        Rule(kind="Overtraining", parameters={"patience_train": 100, "patience_validation": 100}),
    ]
    engine = RuleEngine(rules, stream, clock=clock)
    for step, value in enumerate([1.0, 0.5, 0.25]):
        stream.add(step, "metrics", {"validation-rmse": value, "train-rmse": value})
        assert engine.evaluate() is None
    statuses = {r.name: r.status for r in engine.results()}
    assert statuses == {"LossNotDecreasing": RuleStatus.IN_PROGRESS, "depth": RuleStatus.ERROR,
                        "Overtraining": RuleStatus.IN_PROGRESS}
    for step in (3, 4):
        stream.add(step, "metrics", {"validation-rmse": 0.25, "train-rmse": 0.25})
    stopper = engine.evaluate()
    assert stopper is not None and stopper.name == "LossNotDecreasing" and stopper.step == 4
    assert stopper.stopped_training and stopper.evaluated_at == clock()
    final = {r.name: r.status for r in engine.finish(failed=False)}
    assert final["Overtraining"] is RuleStatus.NO_ISSUES_FOUND
    assert final["LossNotDecreasing"] is RuleStatus.ISSUES_FOUND
    failed = RuleEngine(rules[2:], MemoryTensorStream()).finish(failed=True)
    assert failed[0].status is RuleStatus.STOPPED
