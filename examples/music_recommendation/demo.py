"""The music example end to end on the local backend: data to a model, a playlist and why.

Run it with ``make demo`` or ``python -m examples.music_recommendation [--scale S]``. It

1. generates tracks.csv and ratings.csv (seeded, full scale by default),
2. fits the data-prep flow (learns the genre categories) and saves the fitted flow in the
   workspace's artifact store, with a picture of its graph,
3. runs the flow on DuckDB and writes its three outputs as Parquet,
4. writes an HTML report with charts of what it produced,
5. puts the three feature groups into the feature store (tracks, ratings, and the users' 5-star
   preferences as a daily time series) and builds the point-in-time training table,
6. trains XGBoost with the reference's hyperparameters, validating on the latest ratings, and
   writes the training report (learning curves, importance, SHAP, rules),
7. registers the model with its metrics, approves it through a gate (better than predicting
   the mean), makes it the ``champion``, and draws its lineage back to the two CSVs,
8. makes a playlist for one user with the champion model from the registry (unrated tracks,
   scores within 1..5, preferences from the online store) and explains its top track with SHAP.

Lineage is recorded by the components themselves; the only lineage code here links the
per-user preferences, which the example computes itself, to the tables they come from.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import mlcycle
from examples.music_recommendation.data import generate
from examples.music_recommendation.features import (
    ingest_feature_groups,
    training_set,
    user_5star_daily,
)
from examples.music_recommendation.flow import FIVE_STAR_FEATURES, GENRE_COLUMNS, music_flow
from examples.music_recommendation.playlist import playlist
from examples.music_recommendation.registry import (
    GROUP,
    link_derived_table,
    register_music_model,
    trace_to_csvs,
)
from examples.music_recommendation.train import train_music_model
from mlcycle.featurestore import FeatureStore
from mlcycle.progress import TerminalProgress
from mlcycle.reports import HtmlReport, bar_chart, histogram

__all__ = ["main"]

HERE = Path(__file__).resolve().parent


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 1M ratings, 200k tracks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "output", help="output folder")
    parser.add_argument("--backend", default=None, help="backend URI (default ./.mlcycle)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the example; return the exit code."""
    args = _parse(argv)
    progress = TerminalProgress()
    backend = mlcycle.connect(args.backend)
    out: Path = args.out
    print(f"mlcycle {mlcycle.__version__} | backend {backend.uri} | output {out}")

    started = time.perf_counter()
    data = generate(out / "data", scale=args.scale, seed=args.seed, progress=progress)
    print(f"[1/8] data: {data.n_tracks:,} tracks, {data.n_ratings:,} ratings "
          f"({time.perf_counter() - started:.1f} s)")

    sources = {"tracks": str(data.tracks_path), "ratings": str(data.ratings_path)}
    t = time.perf_counter()
    flow = music_flow().fit(sources)
    uri = backend.artifacts.put_bytes("flows/music.flow.json", flow.to_json().encode())
    flow.save(out / "music.flow.json")
    (out / "music.flow.svg").write_text(flow.to_svg())
    genres = flow.node("tracks_onehot").categories
    print(f"[2/8] flow fitted ({time.perf_counter() - t:.2f} s): genres {list(genres)}; "
          f"saved to {uri}")

    t = time.perf_counter()
    summary = []
    with flow.run(sources, backend=backend, progress=progress) as run:
        frames = {}
        for name in flow.output_names:
            path = run.to_parquet(name, out / f"{name}.parquet")
            frames[name] = run.to_pandas(name) if name != "ratings_events" else None
            summary.append((name, run.count(name), len(run.columns(name)), str(path)))
        ratings = run.to_pandas("ratings_events")[["Rating", "ts", "EventTime"]]
        tables = {"tracks": run.to_arrow("tracks_features"),
                  "ratings": run.to_arrow("ratings_events")}
    print(f"[3/8] flow ran ({time.perf_counter() - t:.2f} s):")
    for name, rows, cols, path in summary:
        print(f"      {name:<16} {rows:>9,} rows x {cols:>2} columns -> {path}")

    prefs = frames["user_5star"]
    tracks = frames["tracks_features"]
    assert (ratings["EventTime"] == ratings["ts"]).all(), "event time must be the rating's ts"
    report = HtmlReport("mlcycle music example: data preparation")
    report.paragraph(f"{data.n_tracks:,} tracks and {data.n_ratings:,} ratings (scale "
                     f"{args.scale}, seed {args.seed}); flow {flow.name!r} with "
                     f"{len(flow.steps)} steps.")
    report.heading("The flow")
    report.svg(flow.to_svg())
    report.heading("Outputs")
    report.table([row[:3] for row in summary], header=["table", "rows", "columns"])
    report.heading("Ratings and tracks")
    counts = ratings["Rating"].value_counts().sort_index()
    report.svg(
        bar_chart([f"{int(k)} stars" for k in counts.index], counts.tolist(), title="Ratings"),
        bar_chart(list(GENRE_COLUMNS), [int(tracks[c].sum()) for c in GENRE_COLUMNS],
                  title="Tracks per genre"),
        histogram(tracks["danceability"], title="danceability of tracks"),
        histogram(tracks["tempo"], title="tempo of tracks (BPM)"),
    )
    report.heading("User 5-star preferences")
    report.paragraph("Mean over each user's 5-star tracks; genre columns are the fraction of "
                     "the user's 5-star tracks in that genre.")
    genre5 = [f"{c}_5star" for c in GENRE_COLUMNS]
    report.svg(
        bar_chart(genre5, [round(float(prefs[c].mean()), 4) for c in genre5],
                  title="Average genre share of 5-star tracks"),
        histogram(prefs["danceability_5star"], title="danceability_5star over users"),
        histogram(prefs["tempo_5star"], title="tempo_5star over users"),
    )
    report.table(
        prefs[["userId", *[f"{c}_5star" for c in FIVE_STAR_FEATURES[:8]]]].head(10).values,
        header=["userId", *[f"{c}_5star" for c in FIVE_STAR_FEATURES[:8]]],
    )
    path = report.save(out / "dataprep_report.html")
    print(f"[4/8] report: {path}")

    t = time.perf_counter()
    tables["user-5star"] = link_derived_table(
        backend, user_5star_daily(tables["ratings"], tables["tracks"]), name="user-5star-daily",
        parents=[tables["ratings"], tables["tracks"]])
    store = FeatureStore(backend)
    written = ingest_feature_groups(store, tables, progress=progress)
    table = training_set(store).to_dataframe()
    train = out / "training.parquet"
    table.to_parquet(train)
    print(f"[5/8] feature store ({time.perf_counter() - t:.1f} s):")
    for name, (group, result) in written.items():
        print(f"      {name:<16} {result.rows:>9,} rows -> {group.describe().offline_uri}")
    print(f"      training table (point in time) -> {train}")

    t = time.perf_counter()
    result = train_music_model(table, backend=backend, progress=progress)
    training_report = result.job.report(out / "training_report.html")
    print(f"[6/8] trained {result.job.name} ({time.perf_counter() - t:.1f} s): "
          f"{result.summary()}")
    print(f"      training report -> {out / 'training_report.html'} ({training_report})")

    t = time.perf_counter()
    version = register_music_model(backend, result)
    graph = trace_to_csvs(backend, version)
    csvs = sorted(v.source_uri.rsplit("/", 1)[-1] for v in graph.of_type("DataSet")
                  if v.source_uri and v.source_uri.endswith(".csv"))
    lineage = HtmlReport(f"mlcycle music example: lineage of {GROUP} v{version.version}")
    lineage.paragraph(f"Version {version.version} ({version.approval_status.value}, aliases "
                      f"{', '.join(version.aliases)}), model {version.model_uri}.")
    lineage.table(sorted(version.metrics.items()), header=["metric", "value"])
    lineage.heading("Where it came from")
    lineage.svg(graph.to_svg(title=f"{GROUP} v{version.version}, back to the CSVs"))
    lineage.table([(v.kind.value, v.type, v.name, v.source_uri or "") for v in graph.vertices],
                  header=["kind", "type", "name", "source"])
    lineage.save(out / "lineage_report.html")
    print(f"[7/8] registered {GROUP} v{version.version} ({time.perf_counter() - t:.1f} s): "
          f"{version.approval_status.value}, aliases {list(version.aliases)}, "
          f"validation-rmse {version.metrics['validation-rmse']:.4f}")
    print(f"      lineage: {len(graph.vertices)} entities, {len(graph.edges)} edges, back to "
          f"{' and '.join(csvs)} -> {out / 'lineage_report.html'}")

    from mlcycle.explain import add_report_section, explain
    from mlcycle.registry import RegistryClient

    t = time.perf_counter()
    user_id = int(table["userId"].value_counts().idxmax())
    booster = RegistryClient(backend).load_model(GROUP, "champion")
    prefs = store.get("user-5star").get_record(user_id)
    rated = table.loc[table["userId"] == user_id, "trackId"]
    top = playlist(booster, features=result.features, preferences=prefs, tracks=tracks,
                   rated=rated, user_id=user_id)
    explanation = explain(booster, top[list(result.features)])
    best = explanation.row(label=top.index[0])
    explanation.save_analysis(out / "analysis.json")
    recs = HtmlReport(f"mlcycle music example: a playlist for user {user_id}")
    recs.paragraph(f"Model {GROUP} v{version.version} (champion; job {result.job.name}): "
                   f"{result.summary()}.")
    recs.heading("Top 10 unrated tracks (predicted rating, clipped to 1..5)")
    recs.table([(i + 1, tid, float(r)) for i, (tid, r)
                in enumerate(zip(top["trackId"], top["predicted_rating"], strict=True))],
               header=["#", "trackId", "predicted rating"])
    add_report_section(recs, explanation, label=top.index[0],
                       title=f"Why track {top.index[0]} comes first")
    recs.save(out / "playlist_report.html")
    print(f"[8/8] playlist for user {user_id} ({time.perf_counter() - t:.1f} s):")
    for i, (tid, r) in enumerate(zip(top["trackId"], top["predicted_rating"], strict=True)):
        print(f"      {i + 1:>2}. {tid}  {r:.2f}")
    reasons = ", ".join(f"{name} {value:+.3f}" for name, value
                        in list(best.contributions.items())[:3])
    print(f"      top track explained (SHAP, sums to {best.prediction:.3f}): {reasons}")
    print(f"      report -> {out / 'playlist_report.html'}; Clarify-style analysis.json")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
