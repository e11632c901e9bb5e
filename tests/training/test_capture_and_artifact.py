import io
import json
import os
import tarfile

import numpy as np
import pytest
import xgboost

from mlcycle.errors import NotFoundError, SpecValidationError
from mlcycle.training import CaptureReader, MemoryTensorStream
from mlcycle.training.artifact import MODEL_FILE, build_model_tarball, read_model_tarball
from mlcycle.training.capture import TensorWriter, unpack_step
from mlcycle.training.runner import failure_reason, tree_depths


def test_writer_and_reader_round_trip(local_backend):
    store = local_backend.artifacts
    writer = TensorWriter(store, "jobs/j1/debug-output", metadata={"feature_names": ["a", "b"]})
    writer.write(0, {"metrics": {"train-rmse": 1.5},
                     "hyperparameters": {"hyperparameters/objective": np.array("reg:gamma")}})
    writer.write(2, {"metrics": {"train-rmse": 1.25},
                     "full_shap": {"full_shap/a": np.arange(4.0), "full_shap/b": np.ones(4)}})
    reader = CaptureReader(store, "jobs/j1/debug-output")
    assert reader.steps() == [0, 2]
    assert reader.feature_names == ("a", "b")
    assert reader.collection("full_shap") == ("full_shap/a", "full_shap/b")
    assert reader.scalar_series("train-rmse") == [(0, 1.5), (2, 1.25)]
    assert str(reader.tensor("hyperparameters/objective", 0)) == "reg:gamma"
    np.testing.assert_array_equal(reader.tensor("full_shap/a", 2), np.arange(4.0))
    assert set(reader.values("full_shap", 2)) == {"full_shap/a", "full_shap/b"}
    assert not reader.has("full_shap/a", 0)
    with pytest.raises(NotFoundError) as info:
        reader.tensor("full_shap/a", 0)
    assert info.value.kind == "tensor"
    with pytest.raises(NotFoundError):
        reader.tensor("train-rmse", 1)
    writer.write(4, {"metrics": {"train-rmse": 1.0}})
    assert reader.steps() == [0, 2]  # cached until refreshed
    reader.refresh()
    assert reader.steps() == [0, 2, 4]
    index = store.get_json("jobs/j1/debug-output/index.json")
    assert index["format"] == "mlcycle-capture/1" and index["steps"] == [0, 2]  # names changed
    writer.close()
    assert store.get_json("jobs/j1/debug-output/index.json")["steps"] == [0, 2, 4]


def test_steps_are_plain_npz_without_pickles(local_backend):
    store = local_backend.artifacts
    TensorWriter(store, "c").write(7, {"metrics": {"validation-rmse": 0.5}})
    data = store.get_bytes("c/steps/000000007.npz")
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        assert sorted(arrays.files) == ["g0", "g0.names"]
    assert float(unpack_step(data)["validation-rmse"]) == 0.5


def test_a_background_writer_writes_in_order_and_reports_errors(local_backend):
    store = local_backend.artifacts
    writer = TensorWriter(store, "bg", background=True)
    for step in range(5):
        writer.write(step, {"metrics": {"train-rmse": 1.0 / (step + 1)},
                            "full_shap": {"full_shap/a": np.full(3, step, dtype=float)}})
    writer.close()
    reader = CaptureReader(store, "bg")
    assert reader.steps() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(reader.tensor("full_shap/a", 3), [3.0, 3.0, 3.0])

    class Broken:
        def put_bytes(self, key, data):
            raise OSError("disk gone")

    broken = TensorWriter(Broken(), "x", background=True)
    broken.write(0, {"metrics": {"m": 1.0}})
    with pytest.raises(OSError):
        broken.close()


def test_a_reader_of_nothing_is_empty(local_backend):
    reader = CaptureReader(local_backend.artifacts, "nothing/here")
    assert reader.steps() == [] and reader.collection_names() == ()


def test_memory_stream_rejects_mismatched_series():
    with pytest.raises(ValueError):
        MemoryTensorStream.from_series("metrics", {"x": [1.0, 2.0]}, steps=[0])


def _booster():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    d = xgboost.DMatrix(x, label=x[:, 0] * 2, feature_names=["p", "q", "r"])
    return xgboost.train({"max_depth": 3, "nthread": 1}, d, 5), d


def test_model_tarball_holds_a_plain_xgboost_json_model(tmp_path):
    booster, dmatrix = _booster()
    data = build_model_tarball(booster, metadata={"label": "y", "job": "j"}, mtime=1.7e9)
    assert data == build_model_tarball(booster, metadata={"label": "y", "job": "j"},
                                       mtime=1.7e9)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert tar.getnames() == [MODEL_FILE, "mlcycle", "mlcycle/model.json"]
        tar.extractall(tmp_path, filter="data")
    # SageMaker's container loads the first plain file of the model folder
    files = sorted(f for f in os.listdir(tmp_path) if (tmp_path / f).is_file())
    assert files == [MODEL_FILE]
    model = json.loads((tmp_path / MODEL_FILE).read_bytes())
    assert model["learner"]["feature_names"] == ["p", "q", "r"]
    artifact = read_model_tarball(data)
    assert artifact.feature_names == ("p", "q", "r")
    assert artifact.metadata["label"] == "y" and artifact.metadata["format"] == "json"
    np.testing.assert_array_equal(artifact.booster().predict(dmatrix), booster.predict(dmatrix))


def test_junk_is_not_a_model():
    with pytest.raises(SpecValidationError) as info:
        read_model_tarball(b"not a tarball")
    assert info.value.field == "model"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        member = tarfile.TarInfo("other")
        member.size = 1
        tar.addfile(member, io.BytesIO(b"x"))
    with pytest.raises(SpecValidationError):
        read_model_tarball(raw.getvalue())


def test_tree_depths_and_failure_reasons():
    booster, _ = _booster()
    depths = tree_depths(booster)
    assert len(depths) == 5 and max(depths) == 3
    assert failure_reason(RuntimeError()) == "RuntimeError"
    assert failure_reason(ValueError("plain text\nmore")) == "ValueError: plain text"
