import json

import pandas as pd
import pyarrow as pa
import pytest

from mlcycle.errors import SpecValidationError
from mlcycle.training import CaptureConfig, Resources, Rule, TrainingInput, TrainingJobSpec
from mlcycle.training.hyperparameters import (
    HYPERPARAMETERS,
    OBJECTIVES,
    validate_hyperparameters,
)

FRAME = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0, 1, 0], "y": [1.0, 2.0, 3.0]})


# -- hyperparameters ----------------------------------------------------------------------------
def test_the_table_knows_the_usual_xgboost_parameters():
    for name in ("num_round", "max_depth", "eta", "gamma", "min_child_weight", "subsample",
                 "colsample_bytree", "lambda", "alpha", "objective", "eval_metric",
                 "tree_method", "seed", "early_stopping_rounds", "scale_pos_weight",
                 "max_bin", "num_class", "base_score"):
        assert name in HYPERPARAMETERS
    assert "reg:squarederror" in OBJECTIVES and "binary:logistic" in OBJECTIVES


def test_strings_and_aliases_are_normalized():
    out = validate_hyperparameters({"num_round": "100", "learning_rate": "0.2", "max_depth": "4",
                                    "objective": "reg:squarederror", "reg_lambda": 2,
                                    "eval_metric": "rmse,mae"})
    assert out == {"num_round": 100, "eta": 0.2, "max_depth": 4,
                   "objective": "reg:squarederror", "lambda": 2.0,
                   "eval_metric": ("rmse", "mae")}
    assert validate_hyperparameters({"num_round": 1, "eval_metric": ["error@0.6"]})[
        "eval_metric"] == "error@0.6"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"max_depth": 4}, "hyperparameters.num_round"),
        ({"num_round": 0}, "hyperparameters.num_round"),
        ({"num_round": 2.5}, "hyperparameters.num_round"),
        ({"num_round": "many"}, "hyperparameters.num_round"),
        ({"num_round": True}, "hyperparameters.num_round"),
        ({"num_round": 5, "eta": 1.5}, "hyperparameters.eta"),
        ({"num_round": 5, "eta": float("nan")}, "hyperparameters.eta"),
        ({"num_round": 5, "subsample": 0}, "hyperparameters.subsample"),
        ({"num_round": 5, "max_depth": -1}, "hyperparameters.max_depth"),
        ({"num_round": 5, "gamma": -0.1}, "hyperparameters.gamma"),
        ({"num_round": 5, "colsample_bytree": 1.01}, "hyperparameters.colsample_bytree"),
        ({"num_round": 5, "objective": "reg:linear"}, "hyperparameters.objective"),
        ({"num_round": 5, "tree_method": "gpu_hist"}, "hyperparameters.tree_method"),
        ({"num_round": 5, "eval_metric": "accuracy"}, "hyperparameters.eval_metric"),
        ({"num_round": 5, "eval_metric": "rmse,rmse"}, "hyperparameters.eval_metric"),
        ({"num_round": 5, "objective": "multi:softmax"}, "hyperparameters.num_class"),
        ({"num_round": 5, "num_class": 3}, "hyperparameters.num_class"),
        ({"num_round": 5, "eta": 0.1, "learning_rate": 0.2}, "hyperparameters.eta"),
        ({"num_round": 5, "device": "tpu"}, "hyperparameters.device"),
        ({"num_round": 5, "max_dept": 3}, "hyperparameters.max_dept"),
    ],
)
def test_bad_hyperparameters_name_their_field(values, field):
    with pytest.raises(SpecValidationError) as info:
        validate_hyperparameters(values)
    assert info.value.field == field


# -- inputs -------------------------------------------------------------------------------------
def test_inputs_from_paths_frames_tables_and_artifacts():
    assert TrainingInput.of("x/train.parquet").format == "parquet"
    assert TrainingInput.of("file:///tmp/t.csv").format == "csv"
    assert TrainingInput(artifact="data/t.csv.gz").format == "csv"
    assert TrainingInput.of(FRAME).data is FRAME
    table = pa.Table.from_pandas(FRAME)
    assert TrainingInput.of(table).to_dict() == {"data": {"rows": 3, "columns": ["a", "b", "y"]}}
    for bad in ("s3://bucket/train.parquet", "train.txt", 42):
        with pytest.raises(SpecValidationError):
            TrainingInput.of(bad)
    with pytest.raises(SpecValidationError):
        TrainingInput(uri="a.csv", artifact="b.csv")
    with pytest.raises(SpecValidationError):
        TrainingInput(artifact="../up.csv")


# -- the spec -----------------------------------------------------------------------------------
def test_spec_round_trips_through_json():
    spec = TrainingJobSpec(
        hyperparameters={"num_round": 10, "eta": "0.3", "eval_metric": ["rmse", "mae"]},
        train="data/train.parquet",
        validation=TrainingInput(artifact="data/valid.csv"),
        label="y",
        features=["a", "b"],
        output="models/music",
        resources=Resources(max_runtime_s=60),
        capture=CaptureConfig(save_interval=2, collections=["metrics", "trees"]),
        rules=[Rule(kind="LossNotDecreasing", parameters={"num_steps": 4},
                    actions=["stop_training"])],
    )
    again = TrainingJobSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert spec.stream_collections() == ("metrics", "trees")


def test_in_memory_inputs_are_recorded_by_shape():
    spec = TrainingJobSpec(hyperparameters={"num_round": 2}, train=FRAME, label="y")
    again = TrainingJobSpec.from_dict(spec.to_dict())
    assert again.train.is_detached and again.train.summary == {"rows": 3,
                                                               "columns": ["a", "b", "y"]}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"label": ""}, "label"),
        ({"features": ["a", "y"]}, "features"),
        ({"features": ["a", "a"]}, "a"),
        ({"features": []}, "features"),
        ({"features": "a"}, "features"),
        ({"algorithm": "lightgbm"}, "algorithm"),
        ({"output": "../x"}, "key"),
        ({"train": None}, "train"),
        ({"hyperparameters": {"num_round": 5, "early_stopping_rounds": 2}}, "validation"),
        ({"rules": [Rule(kind="Overfit")]}, "rules.Overfit"),
        ({"rules": [Rule(kind="Overfit"), Rule(kind="Overfit")], "validation": FRAME},
         "rules"),
    ],
)
def test_bad_specs_name_their_field(changes, field):
    values = {"hyperparameters": {"num_round": 5}, "train": FRAME, "label": "y", **changes}
    with pytest.raises(SpecValidationError) as info:
        TrainingJobSpec(**values)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: CaptureConfig(save_interval=0), "capture.save_interval"),
        (lambda: CaptureConfig(collections=["gradients"]), "capture.collections"),
        (lambda: CaptureConfig(importance_types=["split"]), "capture.importance_types"),
        (lambda: CaptureConfig(shap_samples=0), "capture.shap_samples"),
        (lambda: Resources(max_runtime_s=0), "max_runtime_s"),
        (lambda: Resources(instance_count=True), "instance_count"),
    ],
)
def test_bad_capture_and_resources_name_their_field(make, field):
    with pytest.raises(SpecValidationError) as info:
        make()
    assert info.value.field == field
