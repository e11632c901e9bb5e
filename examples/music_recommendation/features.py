"""The music example's feature groups and its point-in-time training table.

Three feature groups come from the data-prep flow's outputs:

``tracks`` (record identifier ``trackId``)
    ``tracks_features`` as the flow makes it: audio features, one-hot genres, danceability,
    and the catalogue's publication time as the event time.
``ratings`` (``ratingEventId``)
    ``ratings_events``: each rating, with its own ``ts`` as the event time. Offline store only:
    a rating is an event that training reads in bulk and nothing looks up by its id.
``user-5star`` (``userId``)
    The users' 5-star preferences as a *daily time series*, not the flow's all-time means:
    for each user and each day D from the day after their first 5-star rating to the last day
    of the data, the mean of the 18 features over the tracks they rated 5 stars before D
    began (``ts < D 00:00 UTC``), with event time D 00:00 UTC (:func:`user_5star_daily`,
    computed in DuckDB).

The training table (:func:`training_set`) takes every rating and joins, as of the rating's
own ``ts``, the track's features and the user's latest preferences. A rating on day D sees
the preferences of D 00:00 at the latest, which only average ratings from before D: no rating,
least of all its own label, leaks into the preferences it is trained with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from examples.music_recommendation.flow import AUDIO_FEATURES, FIVE_STAR_FEATURES, GENRE_COLUMNS
from mlcycle._sql import quote_ident
from mlcycle.featurestore import FeatureGroupSpec

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from mlcycle.featurestore import FeatureGroup, FeatureStore, IngestResult, TrainingSet
    from mlcycle.progress import ProgressCallback

__all__ = [
    "GROUPS",
    "LABEL",
    "PREFERENCE_FEATURES",
    "TRACK_FEATURES",
    "feature_group_specs",
    "ingest_feature_groups",
    "training_set",
    "user_5star_daily",
]

#: Group name -> (record identifier, event time, online store).
GROUPS = {
    "tracks": ("trackId", "EventTime", True),
    "ratings": ("ratingEventId", "EventTime", False),
    "user-5star": ("userId", "EventTime", True),
}
#: The user-preference features, in the flow's order.
PREFERENCE_FEATURES = tuple(f"{c}_5star" for c in FIVE_STAR_FEATURES)
#: The track features a training row takes.
TRACK_FEATURES = ("length", *AUDIO_FEATURES, *GENRE_COLUMNS)
#: The label.
LABEL = "Rating"
_DAY = 86400


def user_5star_daily(ratings: Any, tracks: Any) -> pa.Table:
    """Compute the users' 5-star preferences as a daily time series, in DuckDB.

    Parameters
    ----------
    ratings : pyarrow.Table or pandas.DataFrame
        ``ratings_events``: at least ``userId``, ``trackId``, ``ts`` and ``Rating``.
    tracks : pyarrow.Table or pandas.DataFrame
        ``tracks_features``: ``trackId`` and the 18 columns of
        :data:`~examples.music_recommendation.flow.FIVE_STAR_FEATURES`.

    Returns
    -------
    pyarrow.Table
        ``userId``, the 18 ``<column>_5star`` means and ``EventTime`` (epoch seconds of a day's
        start): one row per user and day D, from the day after the user's first 5-star rating
        to the last day with a rating, averaging the user's 5-star ratings with
        ``ts < D 00:00 UTC``.
    """
    import duckdb

    q = quote_ident
    con = duckdb.connect()
    try:
        con.register("ratings_in", ratings)
        con.register("tracks_in", tracks)
        cols = [q(c) for c in FIVE_STAR_FEATURES]
        sums = ", ".join(f"sum(t.{c}) AS {c}" for c in cols)
        running = ", ".join(f"sum({c}) OVER w AS {c}" for c in cols)
        means = ", ".join(f"c.{c} / c.n AS {q(p)}"
                          for c, p in zip(cols, PREFERENCE_FEATURES, strict=True))
        sql = f"""
            WITH daily AS (
                SELECT r."userId", CAST(floor(r."ts" / {_DAY}) AS BIGINT) AS day,
                       count(*) AS n, {sums}
                FROM ratings_in r JOIN tracks_in t ON r."trackId" = t."trackId"
                WHERE r."Rating" = 5
                GROUP BY ALL
            ),
            running AS (
                SELECT "userId", day, sum(n) OVER w AS n, {running}
                FROM daily
                WINDOW w AS (PARTITION BY "userId" ORDER BY day
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            ),
            last AS (SELECT CAST(floor(max("ts") / {_DAY}) AS BIGINT) AS day FROM ratings_in),
            days AS (
                SELECT "userId", unnest(range(first + 1, (SELECT day FROM last) + 1)) AS day
                FROM (SELECT "userId", min(day) AS first FROM daily GROUP BY "userId")
            )
            SELECT d."userId", {means}, CAST(d.day * {_DAY} AS DOUBLE) AS "EventTime"
            FROM days d ASOF JOIN running c ON d."userId" = c."userId" AND d.day > c.day
            ORDER BY d."userId", d.day
        """
        relation = con.sql(sql)
        method = getattr(relation, "to_arrow_table", None) or relation.arrow
        return method()
    finally:
        con.close()


def feature_group_specs(tables: Mapping[str, Any]) -> dict[str, FeatureGroupSpec]:
    """Infer the three groups' specs from their tables.

    Parameters
    ----------
    tables : mapping
        ``"tracks"``, ``"ratings"`` and ``"user-5star"`` -> pyarrow Table or DataFrame.

    Returns
    -------
    dict
        Group name -> :class:`~mlcycle.featurestore.FeatureGroupSpec`.
    """
    import pyarrow as pa

    specs = {}
    for name, (record_id, event_time, online) in GROUPS.items():
        table = tables[name]
        sample = table.slice(0, 0) if isinstance(table, pa.Table) else table.head(0)
        frame = sample.to_pandas() if isinstance(sample, pa.Table) else sample
        specs[name] = FeatureGroupSpec.from_dataframe(
            frame, name=name, record_identifier=record_id, event_time=event_time,
            online=online, description=f"music example: {name}",
        )
    return specs


def ingest_feature_groups(
    store: FeatureStore,
    tables: Mapping[str, Any],
    *,
    replace: bool = True,
    progress: ProgressCallback | None = None,
) -> dict[str, tuple[FeatureGroup, IngestResult]]:
    """Create the three groups (replacing existing ones) and ingest their tables.

    Parameters
    ----------
    store : mlcycle.featurestore.FeatureStore
        Where.
    tables : mapping
        ``"tracks"``, ``"ratings"`` and ``"user-5star"`` -> pyarrow Table, DataFrame or Parquet
        path (see :func:`user_5star_daily` for the last).
    replace : bool
        Delete a group of the same name first.
    progress : callable, optional
        Ingest progress.

    Returns
    -------
    dict
        Group name -> (group, what its ingest wrote).
    """
    specs = feature_group_specs(tables)
    out = {}
    for name, spec in specs.items():
        if replace and store.find(name) is not None:
            store.delete(name)
        group = store.create(spec)
        out[name] = (group, group.ingest(tables[name], progress=progress))
    return out


def training_set(store: FeatureStore) -> TrainingSet:
    """The point-in-time training table: each rating with its track and its user's preferences.

    Returns
    -------
    mlcycle.featurestore.TrainingSet
        Rows: every rating (``ratingEventId``, ``userId``, ``trackId``, ``ts``, ``EventTime``
        and the label ``Rating``), then :data:`TRACK_FEATURES` and
        :data:`PREFERENCE_FEATURES` as of the rating's ``ts`` (null preferences before a
        user's first 5-star day).
    """
    return (
        store.training_set(
            "ratings",
            features=["ratingEventId", "userId", "trackId", "ts", "EventTime", LABEL],
        )
        .join("tracks", features=list(TRACK_FEATURES))
        .join("user-5star", features=list(PREFERENCE_FEATURES))
    )
