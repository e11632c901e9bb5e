import numpy as np
import pandas as pd
import pytest
import xgboost

from examples.music_recommendation.playlist import playlist
from mlcycle.errors import NotFoundError


@pytest.fixture
def model_and_tracks():
    rng = np.random.default_rng(0)
    tracks = pd.DataFrame({"trackId": [f"t{i}" for i in range(200)],
                           "energy": rng.random(200)})
    x = pd.DataFrame({"energy": rng.random(500), "energy_5star": rng.random(500)})
    y = 1 + 8 * x["energy"] * x["energy_5star"]  # runs past 5 on purpose
    booster = xgboost.train({"max_depth": 3, "eta": 0.5}, xgboost.DMatrix(x, y),
                            num_boost_round=20)
    return booster, tracks


def test_playlist_is_bounded_sorted_and_skips_rated_tracks(model_and_tracks):
    booster, tracks = model_and_tracks
    rated = {f"t{i}" for i in range(0, 200, 2)}
    top = playlist(booster, features=["energy", "energy_5star"],
                   preferences={"energy_5star": 0.95}, tracks=tracks, rated=rated, user_id=1)
    assert len(top) == 10
    assert not set(top["trackId"]) & rated
    assert top["predicted_rating"].between(1, 5).all()
    assert top["predicted_rating"].is_monotonic_decreasing
    unclipped = booster.predict(xgboost.DMatrix(top[["energy", "energy_5star"]]))
    assert unclipped.max() > 5  # the clip is what bounds it
    best_unrated = tracks[~tracks["trackId"].isin(rated)]["energy"].max()
    assert top["energy"].iloc[0] >= best_unrated - 0.2


def test_a_user_without_preferences_has_no_playlist(model_and_tracks):
    booster, tracks = model_and_tracks
    with pytest.raises(NotFoundError):
        playlist(booster, features=["energy", "energy_5star"], preferences=None,
                 tracks=tracks, rated=[], user_id=7)
