from __future__ import annotations

import io
import pickle
import tarfile

import numpy as np
import pytest

from mlcycle.errors import NotFoundError, SpecValidationError
from mlcycle.explain import explain, load_model


def _tar(path, members: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("fmt", ["json", "ubj"])
def test_a_sagemaker_model_tar_gz_is_explained_like_the_booster(regressor, tracks, tmp_path, fmt):
    archive = _tar(tmp_path / "model.tar.gz", {"xgboost-model": bytes(regressor.save_raw(fmt))})
    from_file = explain(archive, tracks, device="cpu")
    from_booster = explain(regressor, tracks, device="cpu")
    np.testing.assert_array_equal(from_file.contributions, from_booster.contributions)
    assert from_file.feature_names == from_booster.feature_names


def test_a_bare_model_file_and_a_dot_slash_member_load(regressor, tmp_path):
    bare = tmp_path / "xgboost-model.json"
    regressor.save_model(bare)
    assert load_model(bare).num_boosted_rounds() == regressor.num_boosted_rounds()
    archive = _tar(tmp_path / "m.tar.gz", {"./xgboost-model": bare.read_bytes()})
    assert load_model(archive).feature_names == regressor.feature_names


def test_a_pickled_model_is_refused_without_being_unpickled(regressor, tmp_path, monkeypatch):
    archive = _tar(tmp_path / "model.tar.gz", {"xgboost-model": pickle.dumps(regressor)})

    def no_unpickling(*args, **kwargs):
        raise AssertionError("a model file was unpickled")

    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    with pytest.raises(SpecValidationError) as info:
        explain(archive, np.zeros((2, 4)), device="cpu")
    assert info.value.field == "model"
    assert "pickle" in str(info.value)


def test_an_archive_without_xgboost_model_is_rejected(regressor, tmp_path):
    archive = _tar(tmp_path / "model.tar.gz", {"model.json": bytes(regressor.save_raw("json"))})
    with pytest.raises(SpecValidationError) as info:
        load_model(archive)
    assert info.value.field == "model"
    assert "model.json" in str(info.value)


def test_garbage_and_missing_files(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"binf\x00\x01not a model")
    with pytest.raises(SpecValidationError):
        load_model(junk)
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"learner": 1}')
    with pytest.raises(SpecValidationError):
        load_model(broken)
    with pytest.raises(NotFoundError) as info:
        load_model(tmp_path / "absent.tar.gz")
    assert info.value.kind == "model"
