"""Benchmark the local feature store: ingest, point-in-time training sets, online reads.

What is measured
----------------
For each size (1M and 10M rating rows by default) synthetic data shaped like the music
example is made with NumPy (seed 0): ``ratings`` (N rows, event times spread over Dec 2019 to
Jul 2020, so about 5,000 hour partitions), ``tracks`` (N/5 rows, 19 features, one catalogue
event time) and ``prefs`` (258 users per million ratings, one row per user and day with 18
features: the daily time series of the music example's 5-star preferences). Each group is
ingested into a fresh local workspace, then:

``ingest``
    ``FeatureGroup.ingest`` of each table (validation, the Parquet offline store in hour
    partitions, the SQLite online store, one commit); rows/s per group and overall.
``pit``
    ``store.training_set("ratings").join("tracks").join("prefs").to_arrow()``: the
    generated point-in-time SQL (visible versions of every group: duplicates and delete
    markers resolved by one window per group; ASOF joins; TTL) on DuckDB, rows ordered by
    event time and record identifier (the default).
``pit_unordered``
    The same with ``.ordered(False)``: rows in DuckDB's order.
``hand``
    The same as-of join written by hand in DuckDB over the same committed Parquet files
    (``read_parquet`` of each group's file list, two ``ASOF LEFT JOIN``\\ s, no duplicate or
    delete handling - the data has neither, so the rows are the same), without ``ORDER BY``.
``hand_ordered``
    The hand-written join with ``ORDER BY "EventTime", "ratingEventId"``: the same rows in
    the same order as ``pit``.
``online``
    ``FeatureGroup.get_record`` of 100,000 random track ids in this process (the tracks
    database read through once, so that it is in the page cache, then 1,000 warm-up reads):
    p50, p99 and max latency; and ``batch_get_record`` of 100 ids.

The four builds run in fresh interpreters, interleaved, 5 times (1 at 10M unless
``--repeat``); the time shown is the fastest run (the one least disturbed by other work on the
machine; the median and every run are printed too), and ``peak_MB`` (``ru_maxrss``) is the
largest of that build's peaks, imports included; the CPU time (user + system, least of the
runs) is printed as well, being far less disturbed by other work than wall time on a small
shared machine. The four results are checked to hold the same rows (count and column sums).
Nothing is asserted; the figures are printed and written to
``benchmarks/results/bench_featurestore.json``.
Workspaces go to ``benchmarks/results/featurestore/`` (gitignored).

Run from the repository root::

    .venv/bin/python benchmarks/bench_featurestore.py                 # 1M and 10M rows
    .venv/bin/python benchmarks/bench_featurestore.py --rows 1000000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
WORK = RESULTS / "featurestore"
JSON_PATH = RESULTS / "bench_featurestore.json"
AUDIO = ("energy", "acousticness", "valence", "speechiness", "instrumentalness", "liveness",
         "tempo", "danceability")
GENRES = ("Folk", "Country", "Latin", "Jazz", "RnB", "Reggae", "Rap", "Pop_Rock", "Electronic",
          "Blues")
PREFS = tuple(f"{c}_5star" for c in (*AUDIO, *(f"genre_{g}" for g in GENRES)))
T0, T1 = 1_576_000_000, 1_594_000_000
CATALOGUE = 1_575_158_400.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_tables(rows: int, seed: int = 0) -> dict[str, Any]:
    """The three synthetic tables as pyarrow Tables."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    n_tracks = max(1000, rows // 5)
    n_users = max(10, round(258 * rows / 1_000_000))
    track_ids = np.array([f"t{i:08d}" for i in range(n_tracks)], dtype=object)
    tracks = {"trackId": pa.array(track_ids, pa.string()),
              "length": rng.normal(250, 100, n_tracks).clip(4).round()}
    for name in AUDIO:
        tracks[name] = rng.random(n_tracks)
    genre = rng.integers(0, len(GENRES), n_tracks)
    for i, g in enumerate(GENRES):
        tracks[f"genre_{g}"] = (genre == i).astype(np.int64)
    tracks["EventTime"] = np.full(n_tracks, CATALOGUE)
    ts = np.sort(rng.integers(T0, T1, rows))
    ratings = {
        "ratingEventId": pa.array([f"r{i:09d}" for i in range(rows)], pa.string()),
        "ts": ts,
        "userId": rng.integers(11000, 11000 + n_users, rows),
        "trackId": pa.array(track_ids[rng.integers(0, n_tracks, rows)], pa.string()),
        "Rating": rng.integers(1, 6, rows).astype(float),
        "EventTime": ts.astype(float),
    }
    days = np.arange(T0 // 86400 + 1, T1 // 86400 + 1)
    users, day = np.meshgrid(np.arange(11000, 11000 + n_users), days)
    prefs: dict[str, Any] = {"userId": users.ravel()}
    for name in PREFS:
        prefs[name] = rng.random(users.size)
    prefs["EventTime"] = (day.ravel() * 86400).astype(float)
    return {"tracks": pa.table(tracks), "ratings": pa.table(ratings), "prefs": pa.table(prefs)}


def _specs(tables: dict[str, Any]) -> dict[str, Any]:
    from mlcycle.featurestore import FeatureGroupSpec

    ids = {"tracks": "trackId", "ratings": "ratingEventId", "prefs": "userId"}
    return {
        name: FeatureGroupSpec.from_dataframe(
            table.slice(0, 1).to_pandas(), name=name, record_identifier=ids[name],
            event_time="EventTime",
        )
        for name, table in tables.items()
    }


def workspace(rows: int) -> Path:
    return WORK / f"rows-{rows}" / "ws"


# -- the measured work (in child processes) --------------------------------------------------
def run_ingest(rows: int) -> dict[str, Any]:
    from mlcycle.featurestore import FeatureStore

    ws = workspace(rows)
    shutil.rmtree(ws, ignore_errors=True)
    t = time.perf_counter()
    tables = make_tables(rows)
    make_s = time.perf_counter() - t
    specs = _specs(tables)
    out: dict[str, Any] = {"make_s": make_s, "groups": {}}
    with FeatureStore(str(ws)) as store:
        total_rows = 0
        total_s = 0.0
        for name in ("tracks", "prefs", "ratings"):
            group = store.create(specs[name])
            t = time.perf_counter()
            result = group.ingest(tables[name])
            seconds = time.perf_counter() - t
            total_rows += result.rows
            total_s += seconds
            out["groups"][name] = {"rows": result.rows, "seconds": seconds,
                                   "rows_per_s": result.rows / seconds}
        out["rows"] = total_rows
        out["seconds"] = total_s
        out["rows_per_s"] = total_rows / total_s
        fs = store.backend.feature_store
        out["files"] = {n: len(fs.committed_files(n)) for n in specs}
    out["peak_mb"] = _peak_mb()
    return out


def _digest(table: Any) -> dict[str, Any]:
    import pyarrow.compute as pc

    sums = {}
    for name in ("Rating", "energy", "genre_Jazz", "tempo_5star", "valence_5star"):
        value = pc.sum(table.column(name)).as_py()
        sums[name] = None if value is None else round(float(value), 6)
    return {"rows": table.num_rows, "columns": table.num_columns, "sums": sums}


def run_pit(rows: int, ordered: bool = True) -> dict[str, Any]:
    from mlcycle.featurestore import FeatureStore

    import_mb = _peak_mb()
    with FeatureStore(str(workspace(rows))) as store:
        t = time.perf_counter()
        cpu = _cpu_s()
        built = store.training_set("ratings").join("tracks").join("prefs").ordered(ordered)
        table = built.to_arrow()
        seconds = time.perf_counter() - t
        cpu = _cpu_s() - cpu
    return {"seconds": seconds, "cpu_s": cpu, "peak_mb": _peak_mb(), "import_mb": import_mb,
            **_digest(table)}


def run_hand(rows: int, ordered: bool = False) -> dict[str, Any]:
    import duckdb

    from mlcycle._sql import sql_literal
    from mlcycle.backends.local import LocalBackend

    import_mb = _peak_mb()
    backend = LocalBackend(workspace(rows))
    fs = backend.feature_store
    t = time.perf_counter()
    cpu = _cpu_s()
    files = {name: "[" + ", ".join(sql_literal(str(p)) for p in fs.committed_files(name)) + "]"
             for name in ("ratings", "tracks", "prefs")}
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    track_cols = ", ".join(f't."{c}"' for c in ("length", *AUDIO,
                                                 *(f"genre_{g}" for g in GENRES)))
    pref_cols = ", ".join(f'p."{c}"' for c in PREFS)
    query = f"""
        SELECT r."ratingEventId", r."ts", r."userId", r."trackId", r."Rating", r."EventTime",
               {track_cols}, {pref_cols}
        FROM read_parquet({files["ratings"]}) r
        ASOF LEFT JOIN read_parquet({files["tracks"]}) t
          ON r."trackId" = t."trackId" AND r."EventTime" >= t."EventTime"
        ASOF LEFT JOIN read_parquet({files["prefs"]}) p
          ON r."userId" = p."userId" AND r."EventTime" >= p."EventTime"
    """
    if ordered:
        query += ' ORDER BY r."EventTime", r."ratingEventId"'
    table = con.sql(query).to_arrow_table()
    seconds = time.perf_counter() - t
    cpu = _cpu_s() - cpu
    con.close()
    backend.close()
    return {"seconds": seconds, "cpu_s": cpu, "peak_mb": _peak_mb(), "import_mb": import_mb,
            **_digest(table)}


def run_online(rows: int) -> dict[str, Any]:
    import random

    from mlcycle.featurestore import FeatureStore

    # start from the page cache, as a serving process would be after its warm-up
    for path in workspace(rows).glob("featurestore/tracks-*/group.sqlite*"):
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    with FeatureStore(str(workspace(rows))) as store:
        tracks = store.get("tracks")
        n_tracks = max(1000, rows // 5)
        rng = random.Random(0)
        ids = [f"t{rng.randrange(n_tracks):08d}" for _ in range(101_000)]
        for rid in ids[:1000]:
            tracks.get_record(rid)
        clock = time.perf_counter_ns
        lat = []
        for rid in ids[1000:]:
            t = clock()
            record = tracks.get_record(rid)
            lat.append(clock() - t)
            assert record is not None
        lat.sort()
        batch = []
        for i in range(200):
            part = ids[i * 100:(i + 1) * 100]
            t = clock()
            tracks.batch_get_record(part)
            batch.append(clock() - t)
        batch.sort()
    return {
        "reads": len(lat),
        "p50_us": lat[len(lat) // 2] / 1000,
        "p99_us": lat[int(len(lat) * 0.99)] / 1000,
        "max_us": lat[-1] / 1000,
        "batch100_p50_us": batch[len(batch) // 2] / 1000,
    }


RUNNERS = {
    "ingest": run_ingest,
    "pit": run_pit,
    "pit_unordered": lambda rows: run_pit(rows, ordered=False),
    "hand": run_hand,
    "hand_ordered": lambda rows: run_hand(rows, ordered=True),
    "online": run_online,
}
BUILDS = ("pit", "hand_ordered", "pit_unordered", "hand")
LABELS = {"pit": "training_set (ordered)", "hand_ordered": "by hand + ORDER BY",
          "pit_unordered": "training_set .ordered(False)", "hand": "by hand, no ORDER BY"}


def _child(what: str, rows: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--one", what, str(rows)],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )
    if out.returncode != 0:
        raise SystemExit(f"{what} at {rows} rows failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(rows: int, repeat: int) -> dict[str, Any]:
    print(f"\n== {rows:,} rating rows ==", flush=True)
    ingest = _child("ingest", rows)
    print(f"ingest: {ingest['rows']:,} rows in {ingest['seconds']:.1f} s = "
          f"{ingest['rows_per_s']:,.0f} rows/s (peak {ingest['peak_mb']:.0f} MB; files "
          f"{ingest['files']})", flush=True)
    for name, g in ingest["groups"].items():
        print(f"   {name:<8} {g['rows']:>11,} rows {g['seconds']:7.2f} s "
              f"{g['rows_per_s']:>11,.0f} rows/s", flush=True)
    online = _child("online", rows)
    runs: dict[str, list[dict[str, Any]]] = {what: [] for what in BUILDS}
    for _ in range(repeat):
        for what in BUILDS:
            runs[what].append(_child(what, rows))
    summary = {}
    for what, results in runs.items():
        secs = [r["seconds"] for r in results]
        summary[what] = {"seconds": min(secs), "median_s": statistics.median(secs),
                         "all_s": secs, "cpu_s": min(r["cpu_s"] for r in results),
                         "peak_mb": max(r["peak_mb"] for r in results),
                         "import_mb": results[0]["import_mb"],
                         "rows": results[0]["rows"], "sums": results[0]["sums"]}
    digests = {(s["rows"], json.dumps(s["sums"], sort_keys=True)) for s in summary.values()}
    same = len(digests) == 1
    for what in BUILDS:
        s = summary[what]
        print(f"{LABELS[what]:<30} {s['seconds']:6.2f} s (median {s['median_s']:5.2f}, "
              f"CPU {s['cpu_s']:5.2f} s)  peak {s['peak_mb']:6.0f} MB (imports "
              f"{s['import_mb']:.0f} MB)  runs {[round(x, 2) for x in s['all_s']]}", flush=True)
    ratio = summary["pit"]["seconds"] / summary["hand_ordered"]["seconds"]
    ratio_unordered = summary["pit_unordered"]["seconds"] / summary["hand"]["seconds"]
    ratio_plain = summary["pit"]["seconds"] / summary["hand"]["seconds"]
    print(f"ratio, same output (ordered): {ratio:.2f}x; unordered: {ratio_unordered:.2f}x; "
          f"ordered vs hand unordered: {ratio_plain:.2f}x; same rows: {same}", flush=True)
    cpu = {what: summary[what]["cpu_s"] for what in BUILDS}
    print(f"CPU-time ratios: ordered {cpu['pit'] / cpu['hand_ordered']:.2f}x, unordered "
          f"{cpu['pit_unordered'] / cpu['hand']:.2f}x, ordered vs hand unordered "
          f"{cpu['pit'] / cpu['hand']:.2f}x", flush=True)
    print(f"get_record: p50 {online['p50_us']:.1f} us, p99 {online['p99_us']:.1f} us, "
          f"max {online['max_us']:.0f} us over {online['reads']:,} reads; "
          f"batch_get_record(100): p50 {online['batch100_p50_us']:.0f} us", flush=True)
    return {"rows": rows, "ingest": ingest, "builds": summary, "ratio_ordered": ratio,
            "ratio_unordered": ratio_unordered, "ratio_ordered_vs_plain": ratio_plain,
            "same_rows": same, "online": online}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--one", nargs=2, metavar=("WHAT", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        what, rows = args.one
        print(json.dumps(RUNNERS[what](int(rows))))
        return 0
    import os

    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} cores", flush=True)
    results = []
    for rows in args.rows:
        repeat = args.repeat or (5 if rows < 10_000_000 else 1)
        results.append(bench(rows, repeat))
    RESULTS.mkdir(parents=True, exist_ok=True)
    JSON_PATH.write_text(json.dumps({"python": platform.python_version(),
                                     "cores": os.cpu_count(), "results": results},
                                    indent=2) + "\n")
    print(f"\nwritten {JSON_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
