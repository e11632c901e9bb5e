"""The music example's feature groups: daily 5-star preferences and a training table with no
target leakage."""

import numpy as np
import pandas as pd
import pytest

from examples.music_recommendation.data import generate
from examples.music_recommendation.features import (
    PREFERENCE_FEATURES,
    TRACK_FEATURES,
    ingest_feature_groups,
    training_set,
    user_5star_daily,
)
from examples.music_recommendation.flow import FIVE_STAR_FEATURES, music_flow
from mlcycle.featurestore import FeatureStore

DAY = 86400


@pytest.fixture(scope="module")
def flow_outputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("music")
    data = generate(folder, scale=0.03, seed=3)
    sources = {"tracks": str(data.tracks_path), "ratings": str(data.ratings_path)}
    with music_flow().fit(sources).run(sources) as run:
        tracks = run.to_pandas("tracks_features")
        ratings = run.to_pandas("ratings_events")
    # three weeks of ratings keep the offline store small (one file per hour of ratings)
    ratings = ratings[ratings["ts"] < ratings["ts"].min() + 21 * DAY].reset_index(drop=True)
    return tracks, ratings


def brute_force_prefs(ratings, tracks, user, before):
    five = ratings[(ratings["userId"] == user) & (ratings["Rating"] == 5)
                   & (ratings["ts"] < before)]
    rows = five.merge(tracks, on="trackId")
    if rows.empty:
        return None
    return rows[list(FIVE_STAR_FEATURES)].mean().to_numpy()


def build(tmp_path, tracks, ratings):
    prefs = user_5star_daily(ratings, tracks)
    store = FeatureStore(str(tmp_path / "ws"))
    ingest_feature_groups(store, {"tracks": tracks, "ratings": ratings, "user-5star": prefs})
    return prefs.to_pandas(), training_set(store).to_dataframe()


def test_daily_preferences_average_only_earlier_days(flow_outputs):
    tracks, ratings = flow_outputs
    prefs = user_5star_daily(ratings, tracks).to_pandas()
    assert prefs.columns.tolist() == ["userId", *PREFERENCE_FEATURES, "EventTime"]
    assert (prefs["EventTime"] % DAY == 0).all()
    assert not prefs.duplicated(["userId", "EventTime"]).any()
    last_day = ratings["ts"].max() // DAY * DAY
    five = ratings[ratings["Rating"] == 5]
    first = five.groupby("userId")["ts"].min() // DAY * DAY + DAY
    first = first[first <= last_day]  # a first 5-star on the last day has no later day
    span = prefs.groupby("userId")["EventTime"].agg(["min", "max", "count"])
    assert set(span.index) == set(first.index)
    assert (span["min"] == first[span.index]).all()
    assert (span["max"] == last_day).all()
    assert (span["count"] == (last_day - span["min"]) // DAY + 1).all()  # every day
    # rows of days on which the user rated something 5 stars (those must not count yet) and
    # rows of days right after
    five_days = set(zip(five["userId"], five["ts"] // DAY * DAY, strict=True))
    key = list(zip(prefs["userId"], prefs["EventTime"], strict=True))
    on_day = prefs[[k in five_days for k in key]]
    on_day = on_day.sample(min(20, len(on_day)), random_state=0)
    after = prefs[[(u, t - DAY) in five_days for u, t in key]]
    after = after.sample(min(20, len(after)), random_state=0)
    assert len(on_day) >= 10 and len(after) >= 10
    for _, row in pd.concat([on_day, after]).iterrows():
        want = brute_force_prefs(ratings, tracks, row["userId"], row["EventTime"])
        np.testing.assert_allclose(row[list(PREFERENCE_FEATURES)].to_numpy(float), want,
                                   rtol=1e-12)


def test_training_table_is_point_in_time_and_has_no_leakage(flow_outputs, tmp_path):
    tracks, ratings = flow_outputs
    _, table = build(tmp_path / "a", tracks, ratings)
    assert len(table) == len(ratings)
    assert table.columns.tolist() == ["ratingEventId", "userId", "trackId", "ts", "EventTime",
                                      "Rating", *TRACK_FEATURES, *PREFERENCE_FEATURES]
    assert table["EventTime"].is_monotonic_increasing
    by_track = tracks.set_index("trackId")
    np.testing.assert_array_equal(table["tempo"], by_track.loc[table["trackId"], "tempo"])
    for _, row in table.sample(60, random_state=1).iterrows():
        day_start = row["ts"] // DAY * DAY
        want = brute_force_prefs(ratings, tracks, row["userId"], day_start)
        got = row[list(PREFERENCE_FEATURES)].to_numpy(float)
        if want is None:
            assert np.isnan(got).all()
        else:
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_ratings_own_label_never_reaches_its_preferences(flow_outputs, tmp_path):
    tracks, ratings = flow_outputs
    _, before = build(tmp_path / "a", tracks, ratings)
    # a rating that is not 5 stars, by a user who already has preferences that day
    last_seen = before.groupby("userId")["ts"].transform("max")
    candidates = before[before["energy_5star"].notna() & (before["Rating"] < 5)
                        & (last_seen >= (before["ts"] // DAY + 1) * DAY)]
    target = candidates.iloc[len(candidates) // 2]
    flipped = ratings.copy()
    flipped.loc[flipped["ratingEventId"] == target["ratingEventId"], "Rating"] = 5.0
    _, after = build(tmp_path / "b", tracks, flipped)
    cols = list(PREFERENCE_FEATURES)
    mine_before = before.loc[before["ratingEventId"] == target["ratingEventId"], cols]
    mine_after = after.loc[after["ratingEventId"] == target["ratingEventId"], cols]
    np.testing.assert_array_equal(mine_before.to_numpy(), mine_after.to_numpy())
    # ... while the same user's ratings on later days do see the new 5-star rating
    later = ((before["userId"] == target["userId"])
             & (before["ts"] >= (target["ts"] // DAY + 1) * DAY))
    assert later.any()
    assert not np.allclose(before.loc[later, cols].to_numpy(), after.loc[later, cols].to_numpy())
