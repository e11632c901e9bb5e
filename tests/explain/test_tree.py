from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import attrs
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from mlcycle.errors import (
    ConfigurationError,
    InvalidStateError,
    NotFoundError,
    SpecValidationError,
)
from mlcycle.explain import AGGREGATIONS, AdditivityError, Explanation, explain
from tests.explain.conftest import FEATURES

CUDA_BUILD = bool(xgb.build_info().get("USE_CUDA", False))


# --- an independent oracle: Shapley values of the path-dependent value function, by brute force


def _trees(booster):
    model = json.loads(booster.save_raw("json"))
    return model["learner"]["gradient_booster"]["model"]["trees"]


def _expect(tree, x, subset, node=0):
    """E[tree(x) | x_subset] with the unknown features averaged over the training cover."""
    left, right = tree["left_children"][node], tree["right_children"][node]
    if left == -1:
        return tree["split_conditions"][node]  # a leaf keeps its value here
    feature = tree["split_indices"][node]
    if feature in subset:
        value = x[feature]
        if math.isnan(value):
            child = left if tree["default_left"][node] else right
        else:
            child = left if value < np.float32(tree["split_conditions"][node]) else right
        return _expect(tree, x, subset, child)
    cover = tree["sum_hessian"]
    return (
        cover[left] * _expect(tree, x, subset, left)
        + cover[right] * _expect(tree, x, subset, right)
    ) / (cover[left] + cover[right])


def brute_force_shap(booster, X):
    """Exact Shapley values over all feature subsets (no TreeSHAP algorithm involved)."""
    trees, m = _trees(booster), X.shape[1]

    def value(x, subset):
        return sum(_expect(t, x, subset) for t in trees)

    phi = np.zeros(X.shape, dtype=np.float64)
    for r, x in enumerate(X.astype(np.float64)):
        for i in range(m):
            others = [j for j in range(m) if j != i]
            for size in range(m):
                weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
                for subset in itertools.combinations(others, size):
                    phi[r, i] += weight * (value(x, {*subset, i}) - value(x, set(subset)))
    expected = value(X[0].astype(np.float64), set())
    return phi, expected


# --- correctness


def test_contributions_equal_brute_force_shapley_values(regressor, tracks):
    exp = explain(regressor, tracks.iloc[:25], device="cpu")
    phi, expected_tree_part = brute_force_shap(regressor, tracks.iloc[:25].to_numpy())
    np.testing.assert_allclose(exp.contributions, phi, rtol=1e-4, atol=1e-5)
    # the base value is the trees' expected value plus the model's base score
    margin0 = float(exp.predictions[0])
    leaf_sum0 = sum(
        _expect(t, tracks.iloc[0].to_numpy(np.float64), set(range(4))) for t in _trees(regressor)
    )
    assert exp.base_value == pytest.approx(expected_tree_part + margin0 - leaf_sum0, abs=1e-4)


def test_contributions_equal_shap_tree_explainer(regressor, tracks, shap_module):
    exp = explain(regressor, tracks, device="cpu")
    explainer = shap_module.TreeExplainer(regressor)
    reference = explainer.shap_values(tracks)
    assert exp.contributions.shape == reference.shape == (len(tracks), len(FEATURES))
    np.testing.assert_allclose(exp.contributions, reference, rtol=0, atol=1e-5)
    assert exp.base_value == pytest.approx(float(explainer.expected_value), abs=1e-5)


def test_multiclass_contributions_per_class_match_shap(classifier, shap_module):
    model, X = classifier
    exp = explain(model, X[:50], feature_names=["a", "b", "c", "d"], device="cpu")
    assert exp.n_outputs == 3
    assert exp.output_names == ("label0", "label1", "label2")
    assert exp.contributions.shape == (50, 3, 4)
    assert exp.predictions.shape == (50, 3)
    explainer = shap_module.TreeExplainer(model)
    reference = explainer.shap_values(X[:50])  # shap: (rows, features, classes)
    np.testing.assert_allclose(exp.contributions, reference.transpose(0, 2, 1), atol=1e-5)
    np.testing.assert_allclose(exp.base_value, explainer.expected_value, atol=1e-5)
    margin = model.predict(X[:50], output_margin=True)
    np.testing.assert_allclose(exp.predictions, margin, atol=1e-5)
    np.testing.assert_allclose(exp.contributions.sum(-1) + exp.base_value, margin, atol=1e-4)


def test_additivity_holds_for_every_row(regressor, tracks):
    exp = explain(regressor, tracks, device="cpu")
    margin = regressor.predict(xgb.DMatrix(tracks), output_margin=True)
    np.testing.assert_allclose(exp.predictions, margin, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        exp.contributions.sum(axis=1, dtype=np.float64) + exp.base_value, margin, atol=1e-4
    )


def test_batches_give_the_same_result_and_report_progress(regressor, tracks):
    calls = []
    whole = explain(regressor, tracks, device="cpu")
    batched = explain(
        regressor, tracks, batch_size=64, device="cpu", progress=lambda *a: calls.append(a)
    )
    np.testing.assert_array_equal(batched.contributions, whole.contributions)
    np.testing.assert_array_equal(batched.predictions, whole.predictions)
    assert batched.base_value == whole.base_value
    assert calls == [("explain", done, 300) for done in (0, 64, 128, 192, 256, 300)]


def test_column_order_of_a_dataframe_does_not_matter(regressor, tracks):
    shuffled = tracks[["tempo", "genre_Pop", "energy", "valence"]]
    exp = explain(regressor, shuffled, device="cpu")
    assert exp.feature_names == tuple(FEATURES)
    assert list(exp.data.columns) == FEATURES
    np.testing.assert_array_equal(
        exp.contributions, explain(regressor, tracks, device="cpu").contributions
    )


def test_numpy_input_uses_the_models_feature_order(regressor, tracks):
    exp = explain(regressor, tracks.to_numpy(), device="cpu")
    assert exp.feature_names == tuple(FEATURES)
    np.testing.assert_allclose(
        exp.contributions, explain(regressor, tracks, device="cpu").contributions
    )
    assert isinstance(exp.data.index, pd.RangeIndex)


def test_sklearn_regressor_stopped_early_is_explained_at_its_best_iteration(tracks):
    rng = np.random.default_rng(5)
    y = tracks["energy"].to_numpy() + rng.normal(0, 0.3, len(tracks))
    model = xgb.XGBRegressor(
        n_estimators=200, max_depth=3, learning_rate=0.5, early_stopping_rounds=3, n_jobs=2
    )
    model.fit(tracks.iloc[:200], y[:200], eval_set=[(tracks.iloc[200:], y[200:])], verbose=False)
    assert model.best_iteration + 1 < model.get_booster().num_boosted_rounds()
    exp = explain(model, tracks, device="cpu")
    np.testing.assert_allclose(
        exp.predictions, model.predict(tracks, output_margin=True), atol=1e-5
    )


# --- global importance and rows


@pytest.mark.parametrize("method", AGGREGATIONS)
def test_global_importance_equals_numpy(regressor, tracks, method):
    exp = explain(regressor, tracks, device="cpu")
    phi = exp.contributions.astype(np.float64)
    expected = {
        "mean_abs": np.abs(phi).mean(axis=0),
        "median": np.median(phi, axis=0),
        "mean_sq": (phi**2).mean(axis=0),
    }[method]
    series = exp.global_importance(method)
    assert series.name == method
    assert sorted(series.index) == sorted(FEATURES)
    for i, feature in enumerate(FEATURES):
        assert series[feature] == pytest.approx(expected[i], rel=1e-12)
    magnitudes = series.abs().to_numpy()
    assert (magnitudes[:-1] >= magnitudes[1:]).all()


def test_global_importance_ranks_the_strongest_feature_first(regressor, tracks):
    exp = explain(regressor, tracks, device="cpu")
    assert exp.global_importance().index[0] == "energy"


def test_unknown_aggregation_is_rejected(regressor, tracks):
    exp = explain(regressor, tracks.iloc[:10], device="cpu")
    with pytest.raises(SpecValidationError) as info:
        exp.global_importance("max")
    assert info.value.field == "method"


def test_row_explains_the_playlists_top_track(regressor, tracks):
    exp = explain(regressor, tracks, device="cpu")
    top = int(np.argmax(exp.predictions))
    assert top != 0
    row = exp.row(top)
    assert row.position == top
    assert row.label == tracks.index[top]
    assert row.prediction == pytest.approx(float(exp.predictions[top]))
    assert row.base_value == exp.base_value
    assert row.base_value + row.contributions.sum() == pytest.approx(row.prediction, abs=1e-4)
    magnitudes = row.contributions.abs().to_numpy()
    assert (magnitudes[:-1] >= magnitudes[1:]).all()
    for feature in FEATURES:
        assert row.contributions[feature] == pytest.approx(
            float(exp.contributions[top, FEATURES.index(feature)])
        )
        assert row.values[feature] == pytest.approx(float(tracks.iloc[top][feature]))
    assert list(row.values.index) == list(row.contributions.index)
    frame = row.to_frame()
    assert list(frame.columns) == ["value", "contribution"]
    assert frame.index[0] == row.contributions.index[0]


def test_row_by_label_mask_and_negative_position_agree(regressor, tracks):
    exp = explain(regressor, tracks, device="cpu")
    by_label = exp.row("track0042")
    by_keyword = exp.row(label="track0042")
    by_mask = exp.row(tracks.index == "track0042")
    by_series_mask = exp.row(pd.Series(tracks.index == "track0042", index=tracks.index))
    for row in (by_keyword, by_mask, by_series_mask):
        assert row.position == by_label.position == 42
        pd.testing.assert_series_equal(row.contributions, by_label.contributions)
    assert exp.row(-1).position == len(tracks) - 1
    nullable = pd.Series(tracks.index == "track0042", index=tracks.index, dtype="boolean")
    nullable.iloc[0] = pd.NA
    assert exp.row(nullable).position == 42
    assert exp.row([i == 42 for i in range(len(tracks))]).position == 42


def test_row_lookup_failures_are_typed(regressor, tracks):
    exp = explain(regressor, tracks, device="cpu")
    with pytest.raises(NotFoundError):
        exp.row(len(tracks))
    with pytest.raises(NotFoundError):
        exp.row("no-such-track")
    with pytest.raises(NotFoundError):
        exp.row(np.zeros(len(tracks), dtype=bool))
    two = np.zeros(len(tracks), dtype=bool)
    two[[3, 4]] = True
    with pytest.raises(SpecValidationError) as info:
        exp.row(two)
    assert info.value.field == "key"
    with pytest.raises(SpecValidationError):
        exp.row(np.ones(3, dtype=bool))  # wrong length
    with pytest.raises(SpecValidationError):
        exp.row()
    with pytest.raises(SpecValidationError):
        exp.row(1, label="track0001")


def test_integer_index_labels_need_the_label_keyword(regressor, tracks):
    frame = tracks.set_axis(pd.Index(range(1000, 1000 + len(tracks))), axis=0)
    exp = explain(regressor, frame, device="cpu")
    assert exp.row(label=1007).position == 7
    assert exp.row(7).label == 1007


def test_multi_output_needs_an_output(classifier):
    model, X = classifier
    exp = explain(
        model, X[:40], feature_names=list("abcd"), output_names=["low", "mid", "high"], device="cpu"
    )
    with pytest.raises(SpecValidationError) as info:
        exp.global_importance()
    assert info.value.field == "output"
    mid = exp.for_output("mid")
    assert mid.contributions.shape == (40, 4)
    np.testing.assert_array_equal(mid.contributions, exp.contributions[:, 1, :])
    assert mid.base_value == pytest.approx(float(exp.base_value[1]))
    pd.testing.assert_series_equal(exp.global_importance(output=1), mid.global_importance())
    row = exp.row(3, output="high")
    assert row.output == "high"
    assert row.base_value + row.contributions.sum() == pytest.approx(
        float(exp.predictions[3, 2]), abs=1e-4
    )
    with pytest.raises(SpecValidationError):
        exp.for_output("nope")
    with pytest.raises(SpecValidationError):
        exp.for_output(3)


def test_explanation_is_frozen_and_read_only(regressor, tracks):
    exp = explain(regressor, tracks.iloc[:20], device="cpu")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        exp.device = "cuda"  # type: ignore[misc]
    with pytest.raises(ValueError):
        exp.contributions[0, 0] = 1.0
    with pytest.raises(ValueError):
        exp.predictions[0] = 1.0
    assert isinstance(exp, Explanation) and "rows=20" in repr(exp)
    frame = exp.to_frame()
    assert list(frame.columns) == FEATURES and frame.index.equals(tracks.index[:20])


# --- analysis.json


def test_analysis_json_has_clarifys_layout(regressor, tracks, tmp_path):
    exp = explain(regressor, tracks, device="cpu")
    doc = exp.to_analysis_json()
    assert doc["version"] == "1.0"
    assert list(doc["explanations"]) == ["tree_shap"]
    assert list(doc["explanations"]["tree_shap"]) == ["label0"]
    label = doc["explanations"]["tree_shap"]["label0"]
    assert set(label) == {"global_shap_values", "expected_value"}
    assert label["expected_value"] == pytest.approx(exp.base_value)
    assert list(label["global_shap_values"]) == FEATURES
    mean_abs = exp.global_importance("mean_abs")
    for feature, value in label["global_shap_values"].items():
        assert value == pytest.approx(mean_abs[feature], rel=1e-12)
    path = exp.save_analysis(
        tmp_path / "out" / "analysis.json", method="median", method_key="kernel_shap"
    )
    written = json.loads(path.read_text())
    assert written == json.loads(
        json.dumps(exp.to_analysis_json(method="median", method_key="kernel_shap"))
    )
    median = exp.global_importance("median")
    for feature, value in written["explanations"]["kernel_shap"]["label0"][
        "global_shap_values"
    ].items():
        assert value == pytest.approx(median[feature], rel=1e-12)
    with pytest.raises(SpecValidationError) as info:
        exp.to_analysis_json(method_key="clarify")
    assert info.value.field == "method_key"


def test_analysis_json_has_one_label_per_class(classifier):
    model, X = classifier
    exp = explain(model, X[:60], feature_names=list("abcd"), device="cpu")
    labels = exp.to_analysis_json(method="mean_sq")["explanations"]["tree_shap"]
    assert list(labels) == ["label0", "label1", "label2"]
    for k, name in enumerate(labels):
        assert labels[name]["expected_value"] == pytest.approx(float(exp.base_value[k]))
        expected = (exp.contributions[:, k, :].astype(np.float64) ** 2).mean(axis=0)
        assert list(labels[name]["global_shap_values"].values()) == pytest.approx(expected)


# --- input validation


def test_a_missing_column_is_named(regressor, tracks):
    with pytest.raises(SpecValidationError) as info:
        explain(regressor, tracks.drop(columns=["tempo"]), device="cpu")
    assert info.value.field == "tempo"
    assert "tempo" in str(info.value)


def test_an_extra_column_is_named(regressor, tracks):
    with pytest.raises(SpecValidationError) as info:
        explain(regressor, tracks.assign(userId=1.0), device="cpu")
    assert info.value.field == "userId"


def test_a_text_column_is_named(regressor, tracks):
    with pytest.raises(SpecValidationError) as info:
        explain(regressor, tracks.assign(tempo="fast"), device="cpu")
    assert info.value.field == "tempo"


def test_numpy_input_needs_feature_names_when_the_model_has_none(classifier):
    model, X = classifier
    with pytest.raises(SpecValidationError) as info:
        explain(model, X, device="cpu")
    assert info.value.field == "feature_names"


def test_a_dataframe_names_the_features_of_a_model_without_names(classifier):
    model, X = classifier
    frame = pd.DataFrame(X[:20], columns=["w", "x", "y", "z"])
    exp = explain(model, frame, device="cpu")
    assert exp.feature_names == ("w", "x", "y", "z")
    np.testing.assert_array_equal(
        exp.contributions, explain(model, X[:20], feature_names=list("wxyz"),
                                   device="cpu").contributions)
    with pytest.raises(SpecValidationError) as info:
        explain(model, frame[["w", "x", "y"]], device="cpu")
    assert info.value.field == "data"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"data": np.zeros((3, 5))}, "data"),
        ({"data": np.zeros(4)}, "data"),
        ({"data": np.zeros((0, 4))}, "data"),
        ({"data": np.array([["a"] * 4])}, "data"),
        ({"feature_names": ["a", "b", "c", "d"]}, "feature_names"),
        ({"batch_size": 0}, "batch_size"),
        ({"device": "gpu"}, "device"),
        ({"output_names": ["x", "y"]}, "output_names"),
        ({"model": object()}, "model"),
    ],
)
def test_bad_arguments_name_their_field(regressor, tracks, kwargs, field):
    arguments = {"model": regressor, "data": tracks.to_numpy(), "device": "cpu", **kwargs}
    with pytest.raises(SpecValidationError) as info:
        explain(arguments.pop("model"), arguments.pop("data"), **arguments)
    assert info.value.field == field


def test_an_unfitted_model_is_an_invalid_state(tracks):
    with pytest.raises(InvalidStateError):
        explain(xgb.XGBRegressor(), tracks, device="cpu")


def test_a_linear_booster_is_not_a_tree_model(tracks):
    booster = xgb.train({"booster": "gblinear"}, xgb.DMatrix(tracks, label=tracks["energy"]), 2)
    with pytest.raises(SpecValidationError) as info:
        explain(booster, tracks, device="cpu")
    assert info.value.field == "model"


# --- additivity


def test_a_contribution_that_does_not_add_up_raises(regressor, tracks, monkeypatch):
    real_predict = xgb.Booster.predict

    def skewed(self, data, **kwargs):
        out = real_predict(self, data, **kwargs)
        if kwargs.get("output_margin"):
            out = out.copy()
            out[7] += 0.5  # row 7 of each batch no longer matches its contributions
        return out

    monkeypatch.setattr(xgb.Booster, "predict", skewed)
    with pytest.raises(AdditivityError) as info:
        explain(regressor, tracks, batch_size=100, device="cpu")
    assert isinstance(info.value, InvalidStateError)
    assert info.value.row == 7
    assert info.value.error == pytest.approx(0.5, abs=1e-4)
    assert info.value.tolerance == 1e-3
    # unchecked, the skewed margins are returned as they came
    exp = explain(regressor, tracks, batch_size=100, device="cpu", check_additivity=False)
    assert exp.n_rows == len(tracks)


def test_tolerance_is_relative_to_the_margin(regressor, tracks):
    from mlcycle.explain.tree import _check_additivity

    contributions = np.array([[[1000.0, 0.4]]])
    _check_additivity(
        contributions, np.array([0.0]), np.array([[1000.9]]), offset=0, tolerance=1e-3
    )
    with pytest.raises(AdditivityError) as info:
        _check_additivity(
            contributions, np.array([0.0]), np.array([[1002.0]]), offset=10, tolerance=1e-3
        )
    assert info.value.row == 10


# --- devices and the caller's model


def test_auto_uses_the_cpu_without_a_gpu_and_leaves_the_model_alone(regressor, tracks):
    before = regressor.save_config()
    exp = explain(regressor, tracks.iloc[:10])  # device="auto"
    assert exp.device in {"cpu", "cuda"}
    if not CUDA_BUILD:
        assert exp.device == "cpu"
    assert regressor.save_config() == before


@pytest.mark.skipif(CUDA_BUILD, reason="this xgboost build has CUDA")
def test_asking_for_cuda_without_one_is_a_configuration_error(regressor, tracks):
    with pytest.raises(ConfigurationError):
        explain(regressor, tracks.iloc[:10], device="cuda")


@pytest.mark.skipif(not CUDA_BUILD, reason="needs an xgboost build with CUDA and a GPU")
def test_cuda_and_cpu_agree(regressor, tracks):
    cpu = explain(regressor, tracks, device="cpu")
    gpu = explain(regressor, tracks, device="cuda")
    assert gpu.device == "cuda"
    assert gpu.contributions.shape == cpu.contributions.shape
    np.testing.assert_allclose(gpu.contributions, cpu.contributions, atol=1e-4)
    assert gpu.base_value == pytest.approx(cpu.base_value, abs=1e-5)


def test_importing_explain_loads_no_heavy_library():
    code = (
        "import json, sys; import mlcycle.explain; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not loaded & {"numpy", "pandas", "xgboost", "shap", "matplotlib", "scipy"}


def test_categorical_features_match_shap(shap_module):
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({
        "x": rng.normal(size=300),
        "genre": pd.Categorical(rng.choice(["Pop", "Jazz", "Rap"], 300)),
    })
    y = frame["x"] + 2.0 * (frame["genre"] == "Jazz")
    model = xgb.XGBRegressor(enable_categorical=True, tree_method="hist", n_estimators=8,
                             max_depth=3, n_jobs=2).fit(frame, y)
    exp = explain(model, frame[["genre", "x"]], device="cpu")
    assert exp.feature_names == ("x", "genre")
    reference = shap_module.TreeExplainer(model).shap_values(frame)
    np.testing.assert_allclose(exp.contributions, reference, atol=1e-5)
    assert exp.global_importance().index[0] == "genre"
    with pytest.raises(SpecValidationError) as info:
        explain(model, frame.assign(x=frame["x"].round().astype("category")), device="cpu")
    assert info.value.field == "x"  # a numeric feature given as categories
