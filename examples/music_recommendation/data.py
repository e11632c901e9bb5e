"""Deterministic synthetic data for the music-recommendation example.

The reference example ships two CSV files, ``tracks.csv`` and ``ratings.csv``, that cannot be
downloaded from here, and no generator for them was ever published. This module generates data
with the same columns and the same published statistics (see ``music-data.md`` in the shared
notes) from a seed, so that every run of the example starts from identical bytes.

The ratings carry real signal. Every synthetic user has stable tastes:

* an ideal point in the standardized space of the audio features (energy, acousticness, valence,
  speechiness, instrumentalness, liveness, tempo and the derived
  ``danceability = 0.3*valence + 0.1*liveness + 0.1*energy``), with a per-user weight for each
  feature;
* a weight for each genre, which also steers which genres the user listens to;
* a small personal bias (how generous the user is).

A rating is the sum of those terms, a global appeal of the track and noise, cut into the stars
1..5 at fixed quantiles, so that the star distribution has mean ~3.46 and sd ~1.16. Because the
tastes do not drift, the features of a user's earlier 5-star tracks predict the later ratings.

Some audio-feature values are below ``1e-4``; written with Python's shortest ``repr`` they come out
in scientific notation (``5.02e-05``), which a reader must still type as a float.
"""

from __future__ import annotations

import math
import os
import pathlib
import tempfile
from collections.abc import Callable
from numbers import Real

import attrs
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from mlcycle.errors import SpecValidationError

__all__ = [
    "GENRES",
    "RATING_COLUMNS",
    "TRACK_COLUMNS",
    "GeneratedData",
    "generate",
    "generate_frames",
]

GENRES: tuple[str, ...] = (
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
"""The genre labels, in the order of the reference data description."""

TRACK_COLUMNS: tuple[str, ...] = (
    "trackId",
    "length",
    "energy",
    "acousticness",
    "valence",
    "speechiness",
    "instrumentalness",
    "liveness",
    "tempo",
    "genre",
)
"""The columns of ``tracks.csv``, in file order."""

RATING_COLUMNS: tuple[str, ...] = (
    "ratingEventId",
    "ts",
    "userId",
    "trackId",
    "sessionId",
    "itemInSession",
    "Rating",
)
"""The columns of ``ratings.csv``, in file order."""

TRACKS_FILE = "tracks.csv"
RATINGS_FILE = "ratings.csv"

FULL_SCALE_TRACKS = 200_000
FULL_SCALE_RATINGS = 1_000_000
N_USERS = 258
FIRST_USER_ID = 11_000
MIN_RATINGS_PER_USER = 3
MIN_TRACKS = 20
TS_START = 1_576_000_000
TS_END = 1_594_000_000

Progress = Callable[[str, int, int], None]

# The audio features that carry taste, in this order; danceability is derived from the others.
_BASE_FEATURES = (
    "energy",
    "acousticness",
    "valence",
    "speechiness",
    "instrumentalness",
    "liveness",
    "tempo",
)
_TASTE_FEATURES = (*_BASE_FEATURES, "danceability")

# Nearly uniform genre frequencies (sum to 1).
_GENRE_P = np.array([0.102, 0.099, 0.101, 0.098, 0.100, 0.097, 0.103, 0.104, 0.099, 0.097])

# How each genre shifts the latent of each base feature (columns as in _BASE_FEATURES), in
# units of the latent's noise sd. The marginal distributions are imposed afterwards by rank.
_GENRE_EFFECTS = np.array(
    [
        [-0.6, 0.9, 0.1, -0.3, 0.0, 0.1, -0.2],  # Folk
        [0.0, 0.4, 0.4, -0.3, -0.4, 0.1, 0.1],  # Country
        [0.4, -0.2, 0.8, 0.1, -0.3, 0.0, 0.2],  # Latin
        [-0.5, 0.6, 0.0, -0.1, 0.9, 0.3, -0.1],  # Jazz
        [0.0, -0.1, 0.1, 0.4, -0.3, -0.2, -0.2],  # RnB
        [0.1, -0.1, 0.7, 0.3, -0.1, 0.1, -0.3],  # Reggae
        [0.3, -0.4, 0.0, 1.2, -0.6, 0.0, 0.1],  # Rap
        [0.7, -0.6, 0.0, -0.3, -0.2, 0.2, 0.2],  # Pop_Rock
        [0.6, -0.8, -0.2, -0.2, 0.9, -0.3, 0.4],  # Electronic
        [-0.2, 0.5, -0.4, -0.3, 0.0, 0.3, -0.3],  # Blues
    ]
)
# Loadings of one shared latent factor (energetic, electric, upbeat tracks).
_SHARED_LOADINGS = np.array([0.5, -0.5, 0.2, 0.0, 0.0, 0.0, 0.2])

# Star distribution: P(Rating == k) for k = 1..5; mean ~3.46, sd ~1.16.
_RATING_P = np.array([0.072, 0.124, 0.284, 0.31, 0.21])

# Global appeal of a track from its standardized taste features (as in _TASTE_FEATURES).
_GLOBAL_APPEAL = np.array([0.1, 0.0, 0.05, -0.15, 0.0, -0.1, 0.0, 0.2])
_TRACK_QUALITY_SD = 0.25
_USER_BIAS_SD = 0.25
_GENRE_WEIGHT_SD = 0.9
_IDEAL_POINT_SD = 0.9
_FEATURE_WEIGHT_MEAN = 0.25
_NOISE_SD = 0.9
_GENRE_CHOICE_TEMPERATURE = 0.8
_GENRE_CHOICE_TASTE_SHARE = 0.5
_POPULARITY_EXPONENT = 1.5
_MEAN_SESSION_EXTRA = 9.0  # session sizes are 3 + geometric (mean about 3 + 9), at most 48
_MAX_SESSION = 48

try:  # pandas >= 2.3: the default ``str`` dtype of pandas 3
    _STR_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)
except TypeError:  # pragma: no cover - older pandas
    _STR_DTYPE = pd.StringDtype("pyarrow")
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_HEX_POSITIONS = np.r_[0:8, 9:13, 14:18, 19:23, 24:36]


@attrs.frozen(kw_only=True)
class GeneratedData:
    """Where :func:`generate` wrote the data, and what it wrote.

    Attributes
    ----------
    tracks_path : pathlib.Path
        The written ``tracks.csv``.
    ratings_path : pathlib.Path
        The written ``ratings.csv``.
    n_tracks : int
        Number of rows in ``tracks.csv``.
    n_ratings : int
        Number of rows in ``ratings.csv``.
    seed : int
        The seed the data was generated from.
    scale : float
        The scale the data was generated at (1.0 is the reference's size).
    """

    tracks_path: pathlib.Path
    ratings_path: pathlib.Path
    n_tracks: int
    n_ratings: int
    seed: int
    scale: float


def generate_frames(*, scale: float = 1.0, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate the tracks and ratings tables in memory.

    Parameters
    ----------
    scale : float, default 1.0
        Size relative to the reference data: ``round(200_000 * scale)`` tracks and
        ``round(1_000_000 * scale)`` ratings. The 258 users are kept at every scale; at tiny
        scales the counts are raised so that there are at least 20 tracks and every user has at
        least 3 ratings.
    seed : int, default 0
        Non-negative seed. The same seed and scale always give identical frames.

    Returns
    -------
    tracks : pandas.DataFrame
        Columns :data:`TRACK_COLUMNS`: ``trackId`` and ``genre`` strings, the rest float64.
    ratings : pandas.DataFrame
        Columns :data:`RATING_COLUMNS`, ordered by ``ts``: ``ratingEventId`` and ``trackId``
        strings, ``ts``, ``userId``, ``sessionId`` and ``itemInSession`` int64, ``Rating``
        float64 with integer values 1..5.

    Raises
    ------
    mlcycle.errors.SpecValidationError
        If ``scale`` is not a finite positive number (``field="scale"``) or ``seed`` is not a
        non-negative integer (``field="seed"``).
    """
    return _generate_frames(scale=scale, seed=seed, progress=None)


def generate(
    out_dir: str | os.PathLike[str],
    *,
    scale: float = 1.0,
    seed: int = 0,
    progress: Progress | None = None,
) -> GeneratedData:
    """Generate the data and write ``tracks.csv`` and ``ratings.csv`` into a folder.

    Each file is written to a temporary file in ``out_dir`` and moved into place with
    :func:`os.replace`, so a reader never sees a half-written file. Floats are written with
    Python's shortest round-trip representation, so values below ``1e-4`` appear in scientific
    notation (``5.02e-05``); integer columns are written as integers, ``Rating`` as ``4.0``.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The folder to write into; created if missing. Existing files of the same names are
        replaced.
    scale : float, default 1.0
        Size relative to the reference data (see :func:`generate_frames`).
    seed : int, default 0
        Non-negative seed; the same seed and scale give byte-identical files.
    progress : callable, optional
        Called as ``progress(stage, done, total)`` a few times, with stage ``"tracks"``,
        ``"ratings"`` and ``"write"``.

    Returns
    -------
    GeneratedData
        The paths written and the sizes, seed and scale.

    Raises
    ------
    mlcycle.errors.SpecValidationError
        If ``scale`` or ``seed`` is invalid (see :func:`generate_frames`).
    """
    scale, seed = _validate(scale, seed)
    folder = pathlib.Path(out_dir)
    tracks, ratings = _generate_frames(scale=scale, seed=seed, progress=progress)
    folder.mkdir(parents=True, exist_ok=True)
    tracks_path = folder / TRACKS_FILE
    ratings_path = folder / RATINGS_FILE
    _report(progress, "write", 0, 2)
    _write_csv_atomic(tracks, tracks_path)
    _report(progress, "write", 1, 2)
    _write_csv_atomic(ratings, ratings_path)
    _report(progress, "write", 2, 2)
    return GeneratedData(
        tracks_path=tracks_path,
        ratings_path=ratings_path,
        n_tracks=len(tracks),
        n_ratings=len(ratings),
        seed=seed,
        scale=scale,
    )


# --------------------------------------------------------------------------------------------
# Internals


def _validate(scale: object, seed: object) -> tuple[float, int]:
    if isinstance(scale, bool) or not isinstance(scale, Real):
        raise SpecValidationError(f"scale must be a number, got {scale!r}", field="scale")
    value = float(scale)
    if not math.isfinite(value) or value <= 0:
        raise SpecValidationError(
            f"scale must be a finite number > 0, got {scale!r}", field="scale"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpecValidationError(f"seed must be an integer >= 0, got {seed!r}", field="seed")
    return value, int(seed)


def _report(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


def _sizes(scale: float) -> tuple[int, int]:
    n_tracks = max(round(FULL_SCALE_TRACKS * scale), MIN_TRACKS)
    n_ratings = max(round(FULL_SCALE_RATINGS * scale), MIN_RATINGS_PER_USER * N_USERS)
    return n_tracks, n_ratings


def _generate_frames(
    *, scale: float, seed: int, progress: Progress | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    scale, seed = _validate(scale, seed)
    n_tracks, n_ratings = _sizes(scale)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    rng_genre, rng_feat, rng_track_id, rng_users, rng_choice, rng_time, rng_noise, rng_id = streams

    _report(progress, "tracks", 0, n_tracks)
    genre = _track_genres(rng_genre, n_tracks)
    features = _track_features(rng_feat, genre)
    track_ids = _uuid4_strings(rng_track_id, n_tracks)
    genre_labels = pa.DictionaryArray.from_arrays(pa.array(genre, pa.int32()), pa.array(GENRES))
    tracks = pd.DataFrame(
        {
            "trackId": _str_series(track_ids),
            **features,
            "genre": _str_series(genre_labels.dictionary_decode()),
        },
        columns=list(TRACK_COLUMNS),
    )
    _report(progress, "tracks", n_tracks, n_tracks)

    _report(progress, "ratings", 0, n_ratings)
    users = _users(rng_users, n_ratings)
    user_idx = np.repeat(np.arange(N_USERS), users.counts)
    track_idx = _choose_tracks(rng_choice, user_idx, users.genre_cdf, genre)
    _report(progress, "ratings", n_ratings // 3, n_ratings)
    ts, session_id, item_in_session = _timeline(rng_time, user_idx, features["length"][track_idx])
    _report(progress, "ratings", 2 * n_ratings // 3, n_ratings)
    rating = _ratings(rng_noise, users, user_idx, track_idx, genre, features)

    order = np.lexsort((user_idx, ts))
    ratings = pd.DataFrame(
        {
            "ratingEventId": _str_series(_uuid4_strings(rng_id, n_ratings)),
            "ts": ts[order],
            "userId": (FIRST_USER_ID + user_idx[order]).astype(np.int64),
            "trackId": _str_series(track_ids.take(pa.array(track_idx[order]))),
            "sessionId": session_id[order],
            "itemInSession": item_in_session[order],
            "Rating": rating[order],
        },
        columns=list(RATING_COLUMNS),
    )
    _report(progress, "ratings", n_ratings, n_ratings)
    return tracks, ratings


# ---- identifiers ---------------------------------------------------------------------------


def _uuid4_strings(rng: np.random.Generator, n: int) -> pa.StringArray:
    """Return ``n`` random version-4 UUID strings drawn from ``rng``.

    Vectorized: the 36 characters of each id are laid out in one byte buffer that becomes an
    Arrow string array without creating a Python object per row.
    """
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX[raw >> 4]
    digits[:, 1::2] = _HEX[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_HEX_POSITIONS] = digits
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text.tobytes())]
    )


def _str_series(values: pa.Array) -> pd.Series:
    """Wrap an Arrow array as a pandas string column (the default ``str`` dtype)."""
    return pd.Series(values, dtype=_STR_DTYPE)


# ---- tracks --------------------------------------------------------------------------------


def _track_genres(rng: np.random.Generator, n: int) -> np.ndarray:
    """Genre index per track; every genre occurs at least once."""
    drawn = rng.choice(len(GENRES), size=n - len(GENRES), p=_GENRE_P)
    return rng.permutation(np.concatenate([np.arange(len(GENRES)), drawn]))


def _round_sig(x: np.ndarray, digits: int = 3) -> np.ndarray:
    """Round positive values to ``digits`` significant digits (zeros stay zero).

    Dividing the rounded integer by an exact power of ten gives the double nearest to the
    decimal, so ``repr`` prints it with at most ``digits`` digits (``5.02e-05``).
    """
    out = np.zeros_like(x)
    pos = x > 0
    exponent = np.floor(np.log10(x[pos]))
    factor = 10.0 ** (digits - 1 - exponent)
    out[pos] = np.round(x[pos] * factor) / factor
    return out


def _log_uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return np.exp(rng.uniform(math.log(low), math.log(high), n))


def _marginal_samples(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Independent samples of each base feature's marginal distribution."""

    def mixture(parts: list[tuple[float, np.ndarray]]) -> np.ndarray:
        which = rng.choice(len(parts), size=n, p=[p for p, _ in parts])
        out = np.empty(n)
        for k, (_, values) in enumerate(parts):
            out[which == k] = values[which == k]
        return out

    energy = mixture([(0.998, rng.beta(2.3, 1.6, n)), (0.002, _log_uniform(rng, 1e-5, 1e-2, n))])
    acousticness = np.clip(rng.beta(0.45, 0.9, n), 1e-6, 0.996)
    valence = np.minimum(rng.beta(1.35, 1.35, n), 0.989)
    speechiness = 0.0228 + 0.1872 * rng.beta(0.392, 1.308, n)
    instrumentalness = mixture(
        [
            (0.35, np.zeros(n)),
            (0.40, _log_uniform(rng, 1e-6, 0.1, n)),
            (0.25, rng.beta(6.0, 1.8, n)),
        ]
    )
    liveness = 0.0174 + 0.5826 * rng.beta(0.93, 2.63, n)
    tempo = rng.normal(124.0, 29.5, n)
    bad = (tempo < 49.0) | (tempo > 219.0)
    while bad.any():  # truncated normal by redrawing the few values outside the range
        tempo[bad] = rng.normal(124.0, 29.5, int(bad.sum()))
        bad = (tempo < 49.0) | (tempo > 219.0)
    return {
        "energy": np.minimum(_round_sig(energy), 0.999),
        "acousticness": _round_sig(acousticness),
        "valence": np.minimum(np.round(valence, 3), 0.989),
        "speechiness": _round_sig(speechiness),
        "instrumentalness": _round_sig(instrumentalness),
        "liveness": _round_sig(liveness),
        "tempo": np.round(tempo, 3),
    }


def _track_lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    """Track lengths in whole seconds: mostly log-normal, a few very short or very long."""
    which = rng.choice(3, size=n, p=[0.996, 0.003, 0.001])
    length = rng.lognormal(5.455, 0.35, n)
    short = rng.uniform(4.0, 90.0, n)
    long = _log_uniform(rng, 600.0, 3000.0, n)
    length = np.where(which == 1, short, np.where(which == 2, long, length))
    return np.clip(np.round(length), 4.0, 3000.0)


def _track_features(rng: np.random.Generator, genre: np.ndarray) -> dict[str, np.ndarray]:
    """Draw the numeric track columns, correlated with the genre and with each other.

    Each feature gets a latent (genre shift + shared factor + noise); the feature's values are
    independent samples of its marginal distribution, assigned to the tracks in the order of
    the latent. So the marginals are exact while genres differ in sound.
    """
    n = len(genre)
    length = _track_lengths(rng, n)
    shared = rng.standard_normal(n)
    noise = rng.standard_normal((n, len(_BASE_FEATURES)))
    latent = _GENRE_EFFECTS[genre] + shared[:, None] * _SHARED_LOADINGS + noise
    samples = _marginal_samples(rng, n)
    features = {"length": length}
    for k, name in enumerate(_BASE_FEATURES):
        values = np.sort(samples[name])
        out = np.empty(n)
        out[np.argsort(latent[:, k], kind="stable")] = values
        features[name] = out
    return features


def _standardized_taste(features: dict[str, np.ndarray]) -> np.ndarray:
    """Standardized taste features per track (columns as in ``_TASTE_FEATURES``)."""
    dance = 0.3 * features["valence"] + 0.1 * features["liveness"] + 0.1 * features["energy"]
    cols = [features[name] for name in _BASE_FEATURES] + [dance]
    x = np.column_stack(cols)
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


# ---- users and ratings ---------------------------------------------------------------------


@attrs.frozen
class _Users:
    counts: np.ndarray  # ratings per user
    bias: np.ndarray  # (users,)
    genre_weight: np.ndarray  # (users, genres)
    genre_cdf: np.ndarray  # (users, genres) cumulative listening probabilities
    ideal: np.ndarray  # (users, taste features), standardized units
    weight: np.ndarray  # (users, taste features)


def _allocate(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Split ``total`` into integer counts proportional to ``weights``, each >= ``minimum``."""
    rest = total - minimum * len(weights)
    share = rest * weights / weights.sum()
    counts = np.floor(share).astype(np.int64)
    short = rest - int(counts.sum())
    counts[np.argsort(-(share - counts), kind="stable")[:short]] += 1  # largest remainders
    return counts + minimum


def _users(rng: np.random.Generator, n_ratings: int) -> _Users:
    activity = 800.0 + 4200.0 * rng.beta(2.2, 0.8, N_USERS)  # 800..5000 at full scale
    counts = _allocate(n_ratings, activity, MIN_RATINGS_PER_USER)
    bias = rng.normal(0.0, _USER_BIAS_SD, N_USERS)
    genre_weight = rng.normal(0.0, _GENRE_WEIGHT_SD, (N_USERS, len(GENRES)))
    taste = np.exp(_GENRE_CHOICE_TEMPERATURE * genre_weight)
    listen = _GENRE_CHOICE_TASTE_SHARE * taste / taste.sum(axis=1, keepdims=True)
    listen += (1.0 - _GENRE_CHOICE_TASTE_SHARE) * _GENRE_P
    genre_cdf = np.cumsum(listen, axis=1)
    genre_cdf[:, -1] = 1.0
    n_feat = len(_TASTE_FEATURES)
    ideal = rng.normal(0.0, _IDEAL_POINT_SD, (N_USERS, n_feat))
    weight = rng.gamma(1.5, _FEATURE_WEIGHT_MEAN / 1.5, (N_USERS, n_feat))
    return _Users(counts, bias, genre_weight, genre_cdf, ideal, weight)


def _choose_tracks(
    rng: np.random.Generator, user_idx: np.ndarray, genre_cdf: np.ndarray, genre: np.ndarray
) -> np.ndarray:
    """Pick a track per rating: a genre by the user's listening taste, then a track in it.

    Within a genre, tracks earlier in a fixed random order are more popular.
    """
    n = len(user_idx)
    n_genres = len(GENRES)
    # Inverse-CDF draw per user, vectorized: row u of the CDFs is shifted by u.
    shifted = (genre_cdf + np.arange(len(genre_cdf))[:, None]).ravel()
    flat = np.searchsorted(shifted, user_idx + rng.random(n), side="right")
    pick_genre = np.minimum(flat - n_genres * user_idx, n_genres - 1)
    by_genre = np.argsort(genre, kind="stable")
    counts = np.bincount(genre, minlength=len(GENRES))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    offset = np.floor(counts[pick_genre] * rng.random(n) ** _POPULARITY_EXPONENT)
    offset = np.minimum(offset.astype(np.int64), counts[pick_genre] - 1)
    return by_genre[starts[pick_genre] + offset]


def _exclusive_cumsum(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``values`` before each element, restarting in each run of ``group``."""
    total = np.cumsum(values) - values
    first = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    run_lengths = np.diff(np.r_[first, len(values)])
    return total - np.repeat(total[first], run_lengths)


def _timeline(
    rng: np.random.Generator, user_idx: np.ndarray, track_length: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps, session ids and positions for ratings given in user-major order.

    Each user's ratings are cut into listening sessions of a few to a few dozen tracks;
    sessions do not overlap, lie inside [TS_START, TS_END], and time increases strictly.
    """
    n = len(user_idx)
    # Session sizes from one global stream; sessions are also cut where the user changes.
    extra = rng.geometric(1.0 / (_MEAN_SESSION_EXTRA + 1.0), n // MIN_RATINGS_PER_USER + 1) - 1
    ends = np.cumsum(np.minimum(MIN_RATINGS_PER_USER + extra, _MAX_SESSION))
    cuts = np.zeros(n, dtype=bool)
    cuts[ends[ends < n]] = True
    cuts[0] = True
    cuts[1:] |= user_idx[1:] != user_idx[:-1]
    session = np.cumsum(cuts) - 1  # 0-based, in user-major order
    item = _exclusive_cumsum(np.ones(n, dtype=np.int64), session)

    # Time after each item until the next: most of the track is listened to.
    gap = np.maximum(1, np.round(track_length * rng.uniform(0.25, 1.0, n))).astype(np.int64)
    in_session = _exclusive_cumsum(gap, session)
    n_sessions = int(session[-1]) + 1
    duration = np.bincount(session, weights=gap, minlength=n_sessions).astype(np.int64)
    sess_user = user_idx[cuts]

    # Idle time before each session and after the last one, spread over the whole period.
    idle_raw = rng.exponential(1.0, n_sessions)
    tail_raw = rng.exponential(1.0, N_USERS)
    idle_sum = np.bincount(sess_user, weights=idle_raw, minlength=N_USERS) + tail_raw
    busy = np.bincount(sess_user, weights=duration, minlength=N_USERS)
    free = np.maximum(TS_END - TS_START - busy, 0.0)
    idle = np.floor(free[sess_user] * idle_raw / idle_sum[sess_user]).astype(np.int64)
    start = (
        TS_START
        + _exclusive_cumsum(idle, sess_user)
        + idle
        + _exclusive_cumsum(duration, sess_user)
    )
    ts = start[session] + in_session

    # Session ids: 1, 2, ... in order of start time.
    sess_order = np.lexsort((sess_user, start))
    sess_id = np.empty(n_sessions, dtype=np.int64)
    sess_id[sess_order] = np.arange(1, n_sessions + 1)
    return ts.astype(np.int64), sess_id[session], item.astype(np.int64)


def _ratings(
    rng: np.random.Generator,
    users: _Users,
    user_idx: np.ndarray,
    track_idx: np.ndarray,
    genre: np.ndarray,
    features: dict[str, np.ndarray],
) -> np.ndarray:
    """Star ratings 1..5 (as floats) from each user's tastes, the track, and noise."""
    z_tracks = _standardized_taste(features)
    appeal = z_tracks @ _GLOBAL_APPEAL + rng.normal(0.0, _TRACK_QUALITY_SD, len(genre))
    # Closeness to the ideal point c: sum_f w_f * -(z_f - c_f)^2 without the per-user constant
    # -c^2 (which would only make a user with extreme tastes rate everything low), that is
    # z @ (2 w c) - z^2 @ w. Computed user by user: the ratings are in user-major order.
    linear = 2.0 * users.weight * users.ideal
    closeness = np.empty(len(user_idx))
    bounds = np.r_[0, np.cumsum(users.counts)]
    for u in range(N_USERS):
        z = z_tracks[track_idx[bounds[u] : bounds[u + 1]]]
        closeness[bounds[u] : bounds[u + 1]] = z @ linear[u] - (z * z) @ users.weight[u]
    score = (
        users.bias[user_idx]
        + users.genre_weight[user_idx, genre[track_idx]]
        + closeness
        + appeal[track_idx]
        + rng.normal(0.0, _NOISE_SD, len(user_idx))
    )
    thresholds = np.quantile(score, np.cumsum(_RATING_P)[:-1])
    return (1 + np.searchsorted(thresholds, score, side="right")).astype(np.float64)


# ---- writing -------------------------------------------------------------------------------


def _csv_text_column(column: pd.Series) -> pa.Array:
    """One column as Arrow strings or integers, formatted as ``DataFrame.to_csv`` would.

    Floats get Python's shortest round-trip ``repr`` (``240.0``, ``0.123``, ``5.02e-05``);
    integral floats are formatted through integers, which is much faster.
    """
    values = column.to_numpy()
    if values.dtype.kind != "f":
        return pa.Array.from_pandas(column)
    integral = (
        np.all(np.isfinite(values))
        and np.all(values == np.round(values))
        and np.all(np.abs(values) < 1e15)
        and not np.any(np.signbit(values) & (values == 0))  # -0.0 prints as "-0.0"
    )
    if integral:
        digits = pc.cast(pa.array(values.astype(np.int64)), pa.string())
        return pc.binary_join_element_wise(digits, ".0", "")
    return pa.array(values.astype(str))


def _write_csv_atomic(frame: pd.DataFrame, path: pathlib.Path) -> None:
    """Write ``frame`` as CSV (header, no index, LF line ends, no quoting) atomically.

    The bytes are those of ``frame.to_csv(index=False, lineterminator=LF)`` for the
    generated frames (no value needs quoting), produced several times faster with pyarrow.
    """
    table = pa.table({name: _csv_text_column(frame[name]) for name in frame.columns})
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write((",".join(frame.columns) + "\n").encode("utf-8"))
            options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
            pa_csv.write_csv(table, fh, options)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
