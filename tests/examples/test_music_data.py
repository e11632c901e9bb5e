"""The synthetic music data: shape, statistics, determinism, file format and rating signal."""

from __future__ import annotations

import math
import re
import uuid

import numpy as np
import pandas as pd
import pytest

from examples.music_recommendation import data
from mlcycle.errors import SpecValidationError

SCALE = 0.02  # 4,000 tracks, 20,000 ratings
FLOAT_TRACK_COLUMNS = [
    "length",
    "energy",
    "acousticness",
    "valence",
    "speechiness",
    "instrumentalness",
    "liveness",
    "tempo",
]
INT_RATING_COLUMNS = ["ts", "userId", "sessionId", "itemInSession"]
TASTE = [
    "energy",
    "acousticness",
    "valence",
    "speechiness",
    "instrumentalness",
    "liveness",
    "tempo",
    "danceability",
]
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return data.generate_frames(scale=SCALE, seed=0)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> data.GeneratedData:
    return data.generate(tmp_path_factory.mktemp("music") / "out", scale=SCALE, seed=0)


# ---- shape and types -----------------------------------------------------------------------


def test_public_constants():
    assert data.GENRES == (
        "Folk",
        "Country",
        "Latin",
        "Jazz",
        "RnB",
        "Reggae",
        "Rap",
        "Pop_Rock",
        "Electronic",
        "Blues",
    )
    assert data.TRACK_COLUMNS[0] == "trackId" and data.TRACK_COLUMNS[-1] == "genre"
    assert data.RATING_COLUMNS == (
        "ratingEventId",
        "ts",
        "userId",
        "trackId",
        "sessionId",
        "itemInSession",
        "Rating",
    )


def test_columns_and_dtypes(frames):
    tracks, ratings = frames
    assert tuple(tracks.columns) == data.TRACK_COLUMNS
    assert tuple(ratings.columns) == data.RATING_COLUMNS
    assert len(tracks) == round(200_000 * SCALE)
    assert len(ratings) == round(1_000_000 * SCALE)
    for col in FLOAT_TRACK_COLUMNS:
        assert tracks[col].dtype == np.float64, col
    for col in ("trackId", "genre"):
        assert pd.api.types.is_string_dtype(tracks[col]), col
    for col in INT_RATING_COLUMNS:
        assert ratings[col].dtype == np.int64, col
    for col in ("ratingEventId", "trackId"):
        assert pd.api.types.is_string_dtype(ratings[col]), col
    assert ratings["Rating"].dtype == np.float64
    assert not tracks.isna().any().any()
    assert not ratings.isna().any().any()


# ---- statistics ----------------------------------------------------------------------------


def test_track_statistics(frames):
    tracks, _ = frames
    length = tracks["length"]
    assert (length == np.round(length)).all()
    assert length.min() >= 4 and length.max() <= 3000
    assert 235 < length.mean() < 265 and 80 < length.std() < 125
    assert tracks["energy"].between(0, 0.999).all()
    assert tracks["acousticness"].between(0, 1).all()
    valence = tracks["valence"]
    assert valence.between(0, 0.989).all()
    assert abs(valence.mean() - 0.50) < 0.03 and abs(valence.std() - 0.26) < 0.03
    speech = tracks["speechiness"]
    assert speech.min() >= 0.0228 and speech.max() <= 0.21
    assert abs(speech.mean() - 0.066) < 0.005 and abs(speech.std() - 0.048) < 0.006
    instrumental = tracks["instrumentalness"]
    assert instrumental.between(0, 1).all()
    assert 0.2 < (instrumental == 0).mean() < 0.5
    liveness = tracks["liveness"]
    assert liveness.min() >= 0.0174 and liveness.max() <= 0.60
    assert abs(liveness.mean() - 0.17) < 0.015 and abs(liveness.std() - 0.12) < 0.015
    tempo = tracks["tempo"]
    assert tempo.min() >= 49 and tempo.max() <= 219
    assert abs(tempo.mean() - 124) < 3 and abs(tempo.std() - 29) < 3
    shares = tracks["genre"].value_counts(normalize=True)
    assert set(shares.index) == set(data.GENRES)
    assert shares.min() > 0.07 and shares.max() < 0.13
    # Values below 1e-4 (but not zero) exist: they are what gets written as 5e-05.
    tiny = tracks[["energy", "acousticness", "instrumentalness"]]
    assert ((tiny > 0) & (tiny < 1e-4)).sum().sum() >= 20


def test_rating_statistics(frames):
    tracks, ratings = frames
    rating = ratings["Rating"]
    assert set(rating.unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert abs(rating.mean() - 3.46) < 0.05 and abs(rating.std() - 1.16) < 0.05
    assert ratings["ts"].min() >= 1_576_000_000 and ratings["ts"].max() <= 1_594_000_000
    assert ratings["ts"].is_monotonic_increasing
    users = ratings["userId"].unique()
    assert len(users) == 258 and set(users) == set(range(11_000, 11_258))
    per_user = ratings.groupby("userId").size()
    assert per_user.min() >= 3 and per_user.max() < 5_000 * SCALE * 1.3
    assert per_user.max() > 3 * per_user.min()  # users differ in activity
    assert set(ratings["trackId"]).issubset(set(tracks["trackId"]))


def test_sessions(frames):
    _, ratings = frames
    by_user = ratings.sort_values(["userId", "ts"], kind="stable")
    assert (by_user.groupby("userId")["ts"].diff().dropna() > 0).all()
    assert (ratings.groupby("sessionId")["userId"].nunique() == 1).all()
    by_session = ratings.sort_values(["sessionId", "ts"], kind="stable")
    expected = by_session.groupby("sessionId").cumcount()
    assert (by_session["itemInSession"].to_numpy() == expected.to_numpy()).all()
    sizes = ratings.groupby("sessionId").size()
    assert sizes.max() <= 48 and 5 < sizes.mean() < 20
    # A session is one sitting: at most a few hours.
    span = ratings.groupby("sessionId")["ts"].agg(lambda t: t.max() - t.min())
    assert span.max() < 48 * 3000


def test_ids_are_unique_uuid4(frames):
    tracks, ratings = frames
    for ids in (tracks["trackId"], ratings["ratingEventId"]):
        assert ids.is_unique
        assert ids.str.fullmatch(UUID4.pattern).all()
        for text in ids.iloc[:50]:
            parsed = uuid.UUID(text)
            assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
            assert str(parsed) == text


def test_tiny_scale_keeps_every_user():
    tracks, ratings = data.generate_frames(scale=1e-5, seed=3)
    assert ratings["userId"].nunique() == 258
    assert ratings.groupby("userId").size().min() >= 3
    assert set(tracks["genre"]) == set(data.GENRES)
    assert set(ratings["trackId"]).issubset(set(tracks["trackId"]))


# ---- determinism ---------------------------------------------------------------------------


def test_same_seed_same_frames_and_other_seed_differs(frames):
    tracks, ratings = frames
    again_tracks, again_ratings = data.generate_frames(scale=SCALE, seed=0)
    pd.testing.assert_frame_equal(tracks, again_tracks)
    pd.testing.assert_frame_equal(ratings, again_ratings)
    other_tracks, other_ratings = data.generate_frames(scale=SCALE, seed=1)
    assert not set(other_tracks["trackId"]) & set(tracks["trackId"])
    assert not np.array_equal(other_tracks["energy"].to_numpy(), tracks["energy"].to_numpy())
    assert not np.array_equal(other_ratings["Rating"].to_numpy(), ratings["Rating"].to_numpy())


def test_files_are_byte_identical_for_the_same_seed(tmp_path, written):
    again = data.generate(tmp_path / "again", scale=SCALE, seed=0)
    assert again.tracks_path.read_bytes() == written.tracks_path.read_bytes()
    assert again.ratings_path.read_bytes() == written.ratings_path.read_bytes()
    other = data.generate(tmp_path / "other", scale=SCALE, seed=1)
    assert other.tracks_path.read_bytes() != written.tracks_path.read_bytes()
    assert other.ratings_path.read_bytes() != written.ratings_path.read_bytes()


# ---- files ---------------------------------------------------------------------------------


def test_generate_result_and_files(written):
    assert written.tracks_path.name == "tracks.csv"
    assert written.ratings_path.name == "ratings.csv"
    assert written.tracks_path.parent == written.ratings_path.parent
    assert (written.n_tracks, written.n_ratings) == (4_000, 20_000)
    assert (written.seed, written.scale) == (0, SCALE)
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in written.tracks_path.parent.iterdir()) == [
        "ratings.csv",
        "tracks.csv",
    ]
    with pytest.raises(AttributeError):
        written.seed = 1  # frozen


def test_files_match_the_frames_written_naively(frames, written):
    tracks, ratings = frames
    naive_tracks = tracks.to_csv(index=False, lineterminator="\n").encode()
    naive_ratings = ratings.to_csv(index=False, lineterminator="\n").encode()
    assert written.tracks_path.read_bytes() == naive_tracks
    assert written.ratings_path.read_bytes() == naive_ratings


def test_file_text_formats(written):
    tracks_text = written.tracks_path.read_text()
    header, first = tracks_text.splitlines()[:2]
    assert header == ",".join(data.TRACK_COLUMNS)
    assert len(first.split(",")) == len(data.TRACK_COLUMNS)
    assert re.fullmatch(r"\d+\.0", first.split(",")[1])  # length: whole seconds, float
    # Some feature values are in scientific notation, the way a naive writer prints them.
    assert len(re.findall(r",\d(?:\.\d+)?e-0\d,", tracks_text)) >= 20

    lines = written.ratings_path.read_text().splitlines()
    assert lines[0] == ",".join(data.RATING_COLUMNS)
    assert len(lines) == written.n_ratings + 1
    for line in lines[1:200]:
        event_id, ts, user, track, session, item, rating = line.split(",")
        assert UUID4.fullmatch(event_id) and UUID4.fullmatch(track)
        assert all(re.fullmatch(r"\d+", v) for v in (ts, user, session, item))
        assert re.fullmatch(r"[1-5]\.0", rating)

    back = pd.read_csv(written.tracks_path)
    for col in FLOAT_TRACK_COLUMNS:
        assert back[col].dtype == np.float64, col


def test_generate_replaces_existing_files_and_reports_progress(tmp_path):
    out = tmp_path / "nested" / "dir"
    out.mkdir(parents=True)
    (out / "tracks.csv").write_text("stale\n")
    calls: list[tuple[str, int, int]] = []
    result = data.generate(out, scale=0.001, seed=2, progress=lambda *a: calls.append(a))
    assert result.tracks_path.read_text().startswith("trackId,")
    assert {stage for stage, _, _ in calls} == {"tracks", "ratings", "write"}
    assert all(0 <= done <= total for _, done, total in calls)
    assert calls[-1] == ("write", 2, 2)
    assert 4 <= len(calls) <= 20


# ---- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0, -1.0, math.nan, math.inf, -math.inf, "1", None, True])
def test_bad_scale_is_rejected(tmp_path, scale):
    with pytest.raises(SpecValidationError) as info:
        data.generate_frames(scale=scale)
    assert info.value.field == "scale"
    with pytest.raises(SpecValidationError) as info:
        data.generate(tmp_path / "never", scale=scale)
    assert info.value.field == "scale"
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_bad_seed_is_rejected(seed):
    with pytest.raises(SpecValidationError) as info:
        data.generate_frames(scale=SCALE, seed=seed)
    assert info.value.field == "seed"


# ---- signal --------------------------------------------------------------------------------


def _signal_rmse(tracks: pd.DataFrame, ratings: pd.DataFrame) -> tuple[float, float]:
    """RMSE on the latest 20% of ratings of a linear model with point-in-time 5-star prefs.

    Each rating sees the user's 5-star preferences (means of the taste features and genre
    one-hots over the user's earlier ratings with Rating == 5) computed from strictly earlier
    ratings only. The model (least squares on track features, preferences, their products and
    the squared track features) is fitted on the earlier 80% by time.
    """
    t = tracks.copy()
    t["danceability"] = 0.3 * t["valence"] + 0.1 * t["liveness"] + 0.1 * t["energy"]
    genres = [f"genre_{g}" for g in data.GENRES]
    for g in data.GENRES:
        t[f"genre_{g}"] = (t["genre"] == g).astype(float)
    cols = TASTE + genres
    df = ratings.merge(t[["trackId", *cols]], on="trackId", how="left", validate="m:1")
    df = df.sort_values(["userId", "ts"], kind="stable").reset_index(drop=True)
    user = df["userId"].to_numpy()
    five = (df["Rating"] == 5).to_numpy(float)
    n_before = pd.Series(five).groupby(user).cumsum().to_numpy() - five
    x_track = df[cols].to_numpy()
    own = x_track * five[:, None]
    sums = pd.DataFrame(own).groupby(user).cumsum().to_numpy() - own
    fallback = x_track[five == 1].mean(axis=0)
    x_pref = np.where(n_before[:, None] > 0, sums / np.maximum(n_before, 1)[:, None], fallback)

    mu, sd = x_track.mean(axis=0), x_track.std(axis=0)
    zt, zp = (x_track - mu) / sd, (x_pref - mu) / sd
    k = len(TASTE)
    design = np.column_stack([np.ones(len(df)), zt, zp, zt * zp, zt[:, :k] ** 2])
    y = df["Rating"].to_numpy()
    early = (df["ts"] < np.quantile(df["ts"], 0.8)).to_numpy()
    coef, *_ = np.linalg.lstsq(design[early], y[early], rcond=None)
    pred = np.clip(design[~early] @ coef, 1, 5)
    rmse = float(np.sqrt(np.mean((pred - y[~early]) ** 2)))
    return rmse, float(y[~early].std())


def test_ratings_carry_signal_from_earlier_five_star_preferences(frames):
    tracks, ratings = frames
    rmse, label_sd = _signal_rmse(tracks, ratings)
    assert rmse < 0.9 * label_sd, (rmse, label_sd)


def test_signal_check_fails_on_ratings_without_signal(frames):
    # The same check on shuffled ratings finds nothing: the check above is not a tautology.
    tracks, ratings = frames
    shuffled = ratings.copy()
    rng = np.random.default_rng(0)
    shuffled["Rating"] = rng.permutation(shuffled["Rating"].to_numpy())
    rmse, label_sd = _signal_rmse(tracks, shuffled)
    assert rmse > 0.97 * label_sd, (rmse, label_sd)
