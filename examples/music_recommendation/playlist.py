"""A playlist for one user: unrated tracks scored by the model, bounded, best first.

The reference crossed a user's preferences with a random sample of 1,000 tracks, kept tracks the
user had already rated, and let scores run past the 1..5 scale (5.44). Here every track the
user has not rated is a candidate, the user's preferences are the latest ones the online store
holds, and predictions are clipped to the rating scale.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlcycle.errors import NotFoundError, SpecValidationError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xgboost

__all__ = ["RATING_SCALE", "playlist"]

#: The rating scale; predictions are clipped to it.
RATING_SCALE = (1.0, 5.0)


def playlist(
    booster: xgboost.Booster,
    *,
    features: Sequence[str],
    preferences: Mapping[str, Any] | None,
    tracks: pd.DataFrame,
    rated: Iterable[str],
    user_id: int,
    size: int = 10,
) -> pd.DataFrame:
    """Score every track the user has not rated and return the best ``size``.

    Parameters
    ----------
    booster : xgboost.Booster
        The trained rating model.
    features : sequence of str
        The model's features, in its order: track columns and ``*_5star`` preference columns.
    preferences : mapping
        The user's latest preference record (from the online store).
    tracks : pandas.DataFrame
        Track features, one row per ``trackId``.
    rated : iterable of str
        Track ids the user has rated already; they are left out.
    user_id : int
        The user, for the output and errors.
    size : int
        Number of tracks.

    Returns
    -------
    pandas.DataFrame
        ``trackId``, ``predicted_rating`` (within 1..5) and the model's features, best first,
        indexed by ``trackId``.

    Raises
    ------
    NotFoundError
        If the user has no preferences yet.
    SpecValidationError
        If a feature is neither a track column nor a preference.
    """
    import numpy as np
    import xgboost

    if preferences is None:
        raise NotFoundError(f"user {user_id} has no 5-star preferences yet", kind="user",
                            name=str(user_id))
    candidates = tracks[~tracks["trackId"].isin(set(rated))].copy()
    for name in features:
        if name in candidates.columns:
            continue
        if name not in preferences:
            raise SpecValidationError(f"feature {name!r} is neither a track column nor a "
                                      "preference", field=name)
        value = preferences[name]
        candidates[name] = np.nan if value is None else float(value)
    matrix = xgboost.DMatrix(candidates[list(features)], feature_names=list(features))
    candidates["predicted_rating"] = np.clip(booster.predict(matrix), *RATING_SCALE)
    best = candidates.sort_values("predicted_rating", ascending=False, kind="stable").head(size)
    return best[["trackId", "predicted_rating", *features]].set_index("trackId", drop=False)
