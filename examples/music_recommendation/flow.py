"""The music example's data-prep flow: what the reference did in its GUI ``.flow`` file.

- ``tracks_features``: tracks with one-hot ``genre_<Label>`` columns for all ten genres (none
  dropped), ``danceability = 0.3*valence + 0.1*liveness + 0.1*energy``, and an event time: the
  catalogue's snapshot time, earlier than every rating.
- ``ratings_events``: ratings with ``EventTime`` taken from the rating's own ``ts`` (the time the
  rating happened, not the time this job ran).
- ``user_5star``: per user, the mean of 18 track features over the tracks they rated 5 stars,
  named ``<column>_5star``; its event time is the time of the newest rating it uses.
"""

from __future__ import annotations

from examples.music_recommendation.data import GENRES
from mlcycle.flow import (
    AddEventTime,
    Aggregate,
    Filter,
    Flow,
    Formula,
    Join,
    OneHotEncode,
    SelectColumns,
    Source,
)

__all__ = ["AUDIO_FEATURES", "CATALOGUE_TIME", "FIVE_STAR_FEATURES", "GENRE_COLUMNS", "music_flow"]


#: The audio features that the user preferences average (``length`` is not among them).
AUDIO_FEATURES = (
    "energy",
    "acousticness",
    "valence",
    "speechiness",
    "instrumentalness",
    "liveness",
    "tempo",
    "danceability",
)
#: The one-hot genre columns, in the order of :data:`~examples.music_recommendation.data.GENRES`.
GENRE_COLUMNS = tuple(f"genre_{g}" for g in GENRES)
#: The 18 columns averaged into ``<column>_5star``.
FIVE_STAR_FEATURES = AUDIO_FEATURES + GENRE_COLUMNS
#: When the track catalogue was published, 1 December 2019 at midnight UTC, before any rating.
CATALOGUE_TIME = "2019-12-01T00:00:00Z"


def music_flow(*, tracks_path: str | None = None, ratings_path: str | None = None) -> Flow:
    """Return the (unfitted) music data-prep flow.

    Parameters
    ----------
    tracks_path, ratings_path : str, optional
        Default paths of the two CSV sources (they can also be bound at run time).

    Returns
    -------
    mlcycle.flow.Flow
        Outputs ``tracks_features``, ``ratings_events`` and ``user_5star``.
    """
    return Flow(
        name="music",
        description="Tracks and ratings to track features and per-user 5-star preferences.",
        sources=[
            Source(
                name="tracks",
                format="csv",
                path=tracks_path,
                schema={"trackId": "string", "genre": "string"},
            ),
            Source(
                name="ratings",
                format="csv",
                path=ratings_path,
                schema={
                    "ratingEventId": "string",
                    "trackId": "string",
                    "ts": "int",
                    "userId": "int",
                    "Rating": "float",
                },
            ),
        ],
        steps=[
            OneHotEncode(name="tracks_onehot", input="tracks", column="genre"),
            Formula(
                name="tracks_dance",
                input="tracks_onehot",
                output="danceability",
                expression="0.3*valence + 0.1*liveness + 0.1*energy",
            ),
            AddEventTime(
                name="tracks_features",
                input="tracks_dance",
                output="EventTime",
                value=CATALOGUE_TIME,
            ),
            AddEventTime(name="ratings_events", input="ratings", output="EventTime", column="ts"),
            SelectColumns(
                name="track_prefs",
                input="tracks_features",
                columns=("trackId", *FIVE_STAR_FEATURES),
            ),
            Join(name="rated_tracks", left="ratings_events", right="track_prefs", on="trackId"),
            Filter(name="five_star", input="rated_tracks", predicate="Rating == 5"),
            Aggregate(
                name="user_5star",
                input="five_star",
                group_by="userId",
                aggregations={
                    **{f"{c}_5star": ("mean", c) for c in FIVE_STAR_FEATURES},
                    "EventTime": ("max", "EventTime"),
                },
            ),
        ],
        outputs=["tracks_features", "ratings_events", "user_5star"],
    )
