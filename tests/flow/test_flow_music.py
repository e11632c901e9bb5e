"""The music example's flow at scale 0.01, checked against a pandas re-computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from examples.music_recommendation import data
from examples.music_recommendation.flow import (
    AUDIO_FEATURES,
    CATALOGUE_TIME,
    FIVE_STAR_FEATURES,
    GENRE_COLUMNS,
    music_flow,
)
from mlcycle.flow import Flow


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> data.GeneratedData:
    return data.generate(tmp_path_factory.mktemp("music"), scale=0.01)


@pytest.fixture(scope="module")
def outputs(generated) -> dict[str, pd.DataFrame]:
    flow = music_flow(
        tracks_path=str(generated.tracks_path), ratings_path=str(generated.ratings_path)
    ).fit()
    with flow.run() as run:
        return {name: run.to_pandas(name) for name in flow.output_names}


@pytest.fixture(scope="module")
def expected(generated) -> dict[str, pd.DataFrame]:
    """The same transforms, in pandas, from the CSV files."""
    tracks = pd.read_csv(generated.tracks_path, dtype={"trackId": str, "genre": str})
    ratings = pd.read_csv(generated.ratings_path, dtype={"ratingEventId": str, "trackId": str})
    dummies = pd.get_dummies(tracks["genre"], prefix="genre", dtype="int64")
    tracks = pd.concat([tracks.drop(columns="genre"), dummies], axis=1)
    tracks["danceability"] = (
        0.3 * tracks["valence"] + 0.1 * tracks["liveness"] + 0.1 * tracks["energy"]
    )
    tracks["EventTime"] = pd.Timestamp(CATALOGUE_TIME).timestamp()
    ratings["EventTime"] = ratings["ts"].astype(float)
    rated = ratings.merge(tracks[["trackId", *FIVE_STAR_FEATURES]], on="trackId")
    five = rated[rated["Rating"] == 5]
    prefs = five.groupby("userId")[list(FIVE_STAR_FEATURES)].mean().add_suffix("_5star")
    prefs["EventTime"] = five.groupby("userId")["EventTime"].max()
    return {"tracks": tracks, "ratings": ratings, "user_5star": prefs.reset_index()}


def test_the_flow_is_serializable_and_has_three_outputs(generated):
    flow = music_flow(tracks_path=str(generated.tracks_path))
    assert flow.output_names == ("tracks_features", "ratings_events", "user_5star")
    assert Flow.from_json(flow.to_json()) == flow
    fitted = flow.fit({"ratings": str(generated.ratings_path)})
    assert fitted.node("tracks_onehot").categories == tuple(sorted(data.GENRES))
    assert Flow.from_json(fitted.to_json()).to_json() == fitted.to_json()


def test_user_5star_has_one_row_per_user_with_a_five_star_rating(outputs, generated):
    ratings = pd.read_csv(generated.ratings_path)
    users = sorted(ratings.loc[ratings["Rating"] == 5, "userId"].unique())
    prefs = outputs["user_5star"]
    assert prefs["userId"].tolist() == users
    assert prefs["userId"].is_unique


def test_user_5star_columns(outputs):
    prefs = outputs["user_5star"]
    five = [c for c in prefs.columns if c.endswith("_5star")]
    assert len(five) == 18
    assert five == [f"{c}_5star" for c in FIVE_STAR_FEATURES]
    assert set(prefs.columns) == {*five, "userId", "EventTime"}


def test_genre_fractions_sum_to_one_per_user(outputs):
    prefs = outputs["user_5star"]
    genre = prefs[[f"{c}_5star" for c in GENRE_COLUMNS]]
    np.testing.assert_allclose(genre.sum(axis=1), 1.0, rtol=1e-12)
    assert ((genre >= 0) & (genre <= 1)).all().all()


def test_user_5star_values_equal_a_pandas_recomputation(outputs, expected):
    got = outputs["user_5star"].sort_values("userId").reset_index(drop=True)
    want = expected["user_5star"][got.columns].sort_values("userId").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-9, atol=1e-12)


def test_ratings_events_event_time_is_the_rating_time(outputs, generated):
    events = outputs["ratings_events"]
    assert len(events) == generated.n_ratings
    assert (events["EventTime"] == events["ts"].astype(float)).all()
    assert events["EventTime"].dtype == np.float64


def test_tracks_features(outputs, expected, generated):
    got = outputs["tracks_features"]
    assert len(got) == generated.n_tracks
    assert [c for c in got.columns if c.startswith("genre_")] == sorted(GENRE_COLUMNS)
    assert "genre" not in got.columns
    assert (got[list(GENRE_COLUMNS)].sum(axis=1) == 1).all()
    want = expected["tracks"]
    got = got.sort_values("trackId").reset_index(drop=True)
    want = want[got.columns].sort_values("trackId").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-12)
    # the catalogue is older than every rating
    assert got["EventTime"].max() < outputs["ratings_events"]["EventTime"].min()


def test_tiny_audio_values_in_scientific_notation_are_read_as_floats(outputs, generated):
    text = generated.tracks_path.read_text()
    assert "e-05" in text or "e-06" in text
    tracks = pd.read_csv(generated.tracks_path)
    tiny = tracks[list(AUDIO_FEATURES[:-1])].map(lambda v: 0 < v < 1e-4).to_numpy().sum()
    assert tiny > 0
    got = outputs["tracks_features"].sort_values("trackId").reset_index(drop=True)
    tracks = tracks.sort_values("trackId").reset_index(drop=True)
    np.testing.assert_array_equal(got["instrumentalness"], tracks["instrumentalness"])


def test_the_fitted_flow_transforms_one_track_like_the_batch(generated, outputs):
    flow = music_flow(
        tracks_path=str(generated.tracks_path), ratings_path=str(generated.ratings_path)
    ).fit()
    tracks = pd.read_csv(generated.tracks_path, dtype={"trackId": str, "genre": str})
    one = tracks.iloc[[7]].reset_index(drop=True)
    got = flow.transform({"tracks": one}, output="tracks_features")
    batch = outputs["tracks_features"]
    want = batch[batch["trackId"] == one["trackId"][0]].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
