import numpy as np
import pandas as pd
import pytest

from examples.music_recommendation.data import GENRES, generate_frames
from examples.music_recommendation.flow import FIVE_STAR_FEATURES
from examples.music_recommendation.train import (
    REFERENCE_HYPERPARAMETERS,
    REFERENCE_VALIDATION_RMSE,
    train_music_model,
)
from mlcycle.errors import SpecValidationError
from mlcycle.training import JobStatus, RuleStatus


def point_in_time_table(scale=0.01, seed=3):
    """Ratings with track features and the user's 5-star preferences from earlier ratings only."""
    tracks, ratings = generate_frames(scale=scale, seed=seed)
    for genre in GENRES:
        tracks[f"genre_{genre}"] = (tracks["genre"] == genre).astype(float)
    tracks["danceability"] = (0.3 * tracks["valence"] + 0.1 * tracks["liveness"]
                              + 0.1 * tracks["energy"])
    rated = ratings.merge(tracks.drop(columns="genre"), on="trackId").sort_values(
        ["ts", "ratingEventId"], kind="stable").reset_index(drop=True)
    five = (rated["Rating"] == 5).to_numpy()
    by_user = rated.groupby("userId", sort=False)
    earlier = by_user["Rating"].transform(lambda r: (r == 5).cumsum().shift(fill_value=0))
    for column in FIVE_STAR_FEATURES:
        sums = rated[column].where(five, 0.0).groupby(rated["userId"]).cumsum()
        before = sums - rated[column].where(five, 0.0)  # strictly earlier ratings
        rated[f"{column}_5star"] = (before / earlier).where(earlier > 0)
    rated["EventTime"] = rated["ts"].astype(float)
    return rated


@pytest.fixture(scope="module")
def table():
    return point_in_time_table()


def test_the_model_validates_on_later_ratings_and_beats_the_mean(table, local_backend):
    result = train_music_model(table, backend=local_backend, nthread=1, name="music")
    info = result.info
    assert info.status is JobStatus.COMPLETED and info.rounds == 100
    assert {k: info.spec.hyperparameters[k] for k in REFERENCE_HYPERPARAMETERS} == \
        REFERENCE_HYPERPARAMETERS
    train_times = table.loc[table["EventTime"] < result.split_time, "EventTime"]
    assert train_times.max() < result.split_time
    assert result.validation_rows == (table["EventTime"] >= result.split_time).sum()
    assert result.validation_rows == pytest.approx(0.2 * len(table), rel=0.01)
    assert result.rmse == pytest.approx(info.final_metrics["validation-rmse"], rel=1e-5)
    assert result.rmse_clipped <= result.rmse
    expected_mean = np.sqrt(np.mean(
        (table.loc[table["EventTime"] >= result.split_time, "Rating"]
         - table.loc[table["EventTime"] < result.split_time, "Rating"].mean()) ** 2))
    assert result.mean_rmse == pytest.approx(expected_mean)
    assert result.rmse < result.mean_rmse  # the features carry signal
    assert result.reference_rmse == REFERENCE_VALIDATION_RMSE == 0.7387
    assert "energy_5star" in result.features and "genre_Jazz" in result.features
    assert not {"userId", "ts", "EventTime", "Rating", "trackId"} & set(result.features)
    reader = result.job.capture()
    assert reader.steps() == [*range(0, 100, 2), 99]
    (rule,) = info.rule_results
    assert rule.name == "LossNotDecreasing" and rule.status in {
        RuleStatus.NO_ISSUES_FOUND, RuleStatus.ISSUES_FOUND}
    assert "validation RMSE" in result.summary() and "0.7387" in result.summary()


def test_an_explicit_split_time_and_bad_splits(table, local_backend):
    split = float(table["EventTime"].quantile(0.9))
    result = train_music_model(table, backend=local_backend, split_time=split, nthread=1,
                               features=["energy", "valence", "energy_5star"])
    assert result.features == ("energy", "valence", "energy_5star")
    assert result.validation_rows == (table["EventTime"] >= split).sum()
    with pytest.raises(SpecValidationError) as info:
        train_music_model(table, backend=local_backend, split_time=0.0)
    assert info.value.field == "split_time"
    with pytest.raises(SpecValidationError) as info:
        train_music_model(table.drop(columns="Rating"), backend=local_backend)
    assert info.value.field == "label"
    with pytest.raises(SpecValidationError) as info:
        train_music_model(pd.DataFrame({"Rating": [1.0]}), backend=local_backend)
    assert info.value.field == "training_table"
