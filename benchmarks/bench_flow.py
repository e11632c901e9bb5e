"""Benchmark the music example's data-prep flow against the same transforms in plain pandas.

What is measured
----------------
For each data scale (``0.1``, ``1`` and ``10`` by default: 20k/200k/2M tracks and
100k/1M/10M ratings, made by :func:`examples.music_recommendation.data.generate` with seed 0)
and each implementation:

``mlcycle``
    ``music_flow().fit(sources)``, then ``flow.run(sources)`` and ``run.to_parquet`` for the
    three outputs ``tracks_features``, ``ratings_events`` and ``user_5star`` (DuckDB underneath,
    reading the CSVs itself).
``pandas``
    ``pd.read_csv`` of both CSVs, the same transforms in pandas (one-hot genre with
    ``get_dummies``, the danceability formula, the event times, ``merge`` on ``trackId``, the
    ``Rating == 5`` mask, ``groupby("userId")`` mean and max), in the flow's step order, and
    ``DataFrame.to_parquet`` (zstd, as the flow writes) of the same three tables.
``mlcycle_df``
    As ``mlcycle``, but ``run.to_pandas`` of the three outputs instead of writing files (so it
    has no ``speedup_vs_pandas``: the pandas baseline writes files and this does not).

Every measurement runs in a fresh interpreter (this script with ``--one IMPL SCALE``), so

* ``wall_s`` is the time of the work itself, from after the imports to the last output
  (the median over the repeats: 3 at scales below 10, 1 at 10 unless ``--repeat`` says
  otherwise; the repeats of the implementations are interleaved);
* ``peak_MB`` is ``ru_maxrss`` of that process at its end: the peak resident memory of just
  that run, imports included (the largest over the repeats; ``import_MB`` in the JSON is the
  peak after the imports alone);
* ``rows_per_s`` is the number of input rating rows over ``wall_s``.

The per-phase times of the median run (fit, planning and each output for the flow; the CSV
reads and each output for pandas, with its Parquet writes also summed as ``writes``) are printed
below the main table. After the runs at a scale the Parquet files of the two implementations are
compared: row counts and column names of all three outputs, ``user_5star`` values within 1e-9
after sorting by ``userId``, and the values of ``tracks_features`` after sorting by ``trackId``.
Nothing here asserts a timing; the figures are printed and written to
``benchmarks/results/bench_flow.json``.

Generated CSVs are cached under ``benchmarks/results/data/scale-<s>/`` (scale 10 is about 1 GB
and takes ~40 s to make) and reused; outputs go to ``benchmarks/results/out/``. The CSVs are read
through once before each scale's runs so that every run starts with them in the page cache.
DuckDB runs with its default thread count (the number of cores); pandas is single-threaded.

Run from the repository root::

    .venv/bin/python benchmarks/bench_flow.py                      # scales 0.1 1 10
    .venv/bin/python benchmarks/bench_flow.py --scales 0.1 1 --repeat 5
    .venv/bin/python benchmarks/bench_flow.py --impls mlcycle pandas
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/bench_flow.py` puts benchmarks/ first
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
DATA_DIR = RESULTS / "data"
OUT_DIR = RESULTS / "out"
JSON_PATH = RESULTS / "bench_flow.json"

OUTPUTS = ("tracks_features", "ratings_events", "user_5star")
IMPLS = ("mlcycle", "pandas", "mlcycle_df")
WRITES_FILES = {"mlcycle": True, "pandas": True, "mlcycle_df": False}
DEFAULT_SCALES = (0.1, 1.0, 10.0)
TOLERANCE = 1e-9
SEED = 0


def _tag(scale: float) -> str:
    return f"{scale:g}"


def data_paths(scale: float) -> dict[str, Path]:
    folder = DATA_DIR / f"scale-{_tag(scale)}"
    return {"tracks": folder / "tracks.csv", "ratings": folder / "ratings.csv"}


def out_dir(scale: float, impl: str) -> Path:
    return OUT_DIR / f"scale-{_tag(scale)}" / impl


def ensure_data(scale: float) -> dict[str, Any]:
    """Generate the CSVs for ``scale`` unless a complete cached copy exists; return its meta."""
    paths = data_paths(scale)
    folder = paths["tracks"].parent
    meta_path = folder / "meta.json"
    if meta_path.exists() and all(p.exists() for p in paths.values()):
        meta = json.loads(meta_path.read_text())
        if meta.get("scale") == scale and meta.get("seed") == SEED:
            meta["cached"] = True
            return meta
    from examples.music_recommendation.data import generate

    print(f"generating data at scale {_tag(scale)} into {folder} ...", flush=True)
    start = time.perf_counter()
    made = generate(folder, scale=scale, seed=SEED)
    meta = {
        "scale": scale,
        "seed": SEED,
        "n_tracks": made.n_tracks,
        "n_ratings": made.n_ratings,
        "tracks_bytes": made.tracks_path.stat().st_size,
        "ratings_bytes": made.ratings_path.stat().st_size,
        "generate_s": round(time.perf_counter() - start, 3),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")  # written last: marks it complete
    meta["cached"] = False
    return meta


def warm_page_cache(scale: float) -> None:
    for path in data_paths(scale).values():
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass


# -- the measured work (runs in a child process) ---------------------------------------------
def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _run_mlcycle(scale: float, *, to_frames: bool) -> dict[str, Any]:
    import duckdb

    from examples.music_recommendation.flow import music_flow

    import_mb = _peak_mb()
    sources = {k: str(v) for k, v in data_paths(scale).items()}
    target = out_dir(scale, "mlcycle")
    target.mkdir(parents=True, exist_ok=True)
    phases: dict[str, float] = {}
    rows: dict[str, int] = {}

    start = time.perf_counter()
    flow = music_flow().fit(sources)
    t = time.perf_counter()
    phases["fit"] = t - start
    with flow.run(sources) as run:
        phases["plan"] = time.perf_counter() - t
        con = getattr(run, "_con", None) or duckdb.connect()
        threads = int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
        for name in OUTPUTS:
            t = time.perf_counter()
            if to_frames:
                rows[name] = len(run.to_pandas(name))
            else:
                run.to_parquet(name, target / f"{name}.parquet")
            phases[name] = time.perf_counter() - t
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "phases": phases,
        "rows_out": rows,
        "duckdb_threads": threads,
        "import_mb": import_mb,
    }


def _run_pandas(scale: float) -> dict[str, Any]:
    import pandas as pd
    import pyarrow.parquet  # noqa: F401  (imported here so that its import is not timed)

    from examples.music_recommendation.flow import CATALOGUE_TIME, FIVE_STAR_FEATURES

    import_mb = _peak_mb()
    paths = data_paths(scale)
    target = out_dir(scale, "pandas")
    target.mkdir(parents=True, exist_ok=True)
    phases: dict[str, float] = {"writes": 0.0}

    def write(name: str, frame: pd.DataFrame) -> None:
        t = time.perf_counter()
        frame.to_parquet(target / f"{name}.parquet", compression="zstd", index=False)
        phases["writes"] += time.perf_counter() - t

    start = time.perf_counter()
    tracks = pd.read_csv(paths["tracks"])
    ratings = pd.read_csv(paths["ratings"])
    t = time.perf_counter()
    phases["read_csv"] = t - start

    # tracks_features: genre -> genre_<Label> (in its place), danceability, EventTime
    pos = tracks.columns.get_loc("genre")
    dummies = pd.get_dummies(tracks["genre"], prefix="genre", dtype="int64")
    tracks_features = pd.concat(
        [tracks.iloc[:, :pos], dummies, tracks.iloc[:, pos + 1 :]], axis=1, copy=False
    )
    tracks_features["danceability"] = (
        0.3 * tracks_features["valence"]
        + 0.1 * tracks_features["liveness"]
        + 0.1 * tracks_features["energy"]
    )
    tracks_features["EventTime"] = pd.Timestamp(CATALOGUE_TIME).timestamp()
    write("tracks_features", tracks_features)
    phases["tracks_features"] = time.perf_counter() - t

    # ratings_events: EventTime from the rating's own ts
    t = time.perf_counter()
    ratings_events = ratings.assign(EventTime=ratings["ts"].astype("float64"))
    write("ratings_events", ratings_events)
    phases["ratings_events"] = time.perf_counter() - t

    # user_5star: join, filter, group (in the flow's order: join, then filter)
    t = time.perf_counter()
    prefs = tracks_features[["trackId", *FIVE_STAR_FEATURES]]
    rated = ratings_events.merge(prefs, on="trackId", how="inner")
    five = rated[rated["Rating"] == 5]
    grouped = five.groupby("userId", sort=True)
    user_5star = grouped[list(FIVE_STAR_FEATURES)].mean()
    user_5star.columns = [f"{c}_5star" for c in FIVE_STAR_FEATURES]
    user_5star["EventTime"] = grouped["EventTime"].max()
    user_5star = user_5star.reset_index()
    write("user_5star", user_5star)
    phases["user_5star"] = time.perf_counter() - t

    wall = time.perf_counter() - start
    phases["writes"] = phases.pop("writes")  # last: it is part of the three outputs' times
    return {"wall_s": wall, "phases": phases, "import_mb": import_mb}


def run_one(impl: str, scale: float) -> dict[str, Any]:
    if impl == "pandas":
        result = _run_pandas(scale)
    else:
        result = _run_mlcycle(scale, to_frames=impl == "mlcycle_df")
    result["peak_mb"] = _peak_mb()
    return result


# -- the driver --------------------------------------------------------------------------------
def measure(impl: str, scale: float) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return what it reported."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", impl, _tag(scale)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    process_s = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"measurement {impl} at scale {_tag(scale)} failed ({proc.returncode})")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = process_s
    return result


def compare(scale: float) -> dict[str, Any]:
    """Compare the Parquet outputs of the flow and the pandas baseline at ``scale``."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    a, b = out_dir(scale, "mlcycle"), out_dir(scale, "pandas")
    check: dict[str, Any] = {"rows": {}, "columns_equal": {}}
    ok = True
    for name in OUTPUTS:
        ra = pq.ParquetFile(a / f"{name}.parquet").metadata.num_rows
        rb = pq.ParquetFile(b / f"{name}.parquet").metadata.num_rows
        ca = pq.read_schema(a / f"{name}.parquet").names
        cb = pq.read_schema(b / f"{name}.parquet").names
        check["rows"][name] = [ra, rb]
        check["columns_equal"][name] = ca == cb
        ok = ok and ra == rb and ca == cb

    def max_diff(key: str, name: str) -> float:
        fa = pd.read_parquet(a / f"{name}.parquet").sort_values(key, ignore_index=True)
        fb = pd.read_parquet(b / f"{name}.parquet").sort_values(key, ignore_index=True)
        if len(fa) != len(fb) or sorted(fa.columns) != sorted(fb.columns):
            return float("inf")
        if not fa[key].astype(str).equals(fb[key].astype(str)):
            return float("inf")
        cols = [c for c in fa.columns if c != key and pd.api.types.is_numeric_dtype(fa[c])]
        others = [c for c in fa.columns if c != key and c not in cols]
        if any(not fa[c].astype(str).equals(fb[c].astype(str)) for c in others):
            return float("inf")
        va = fa[cols].to_numpy(dtype="float64")
        vb = fb[cols].to_numpy(dtype="float64")
        return float(np.max(np.abs(va - vb))) if va.size else 0.0

    check["user_5star_max_abs_diff"] = max_diff("userId", "user_5star")
    check["tracks_features_max_abs_diff"] = max_diff("trackId", "tracks_features")
    ok = ok and check["user_5star_max_abs_diff"] <= TOLERANCE
    ok = ok and check["tracks_features_max_abs_diff"] <= TOLERANCE
    check["match"] = bool(ok)
    return check


def _fmt_int(n: float) -> str:
    return f"{round(n):,}"


def print_table(results: list[dict[str, Any]]) -> None:
    header = (
        f"{'scale':>5}  {'impl':<10}  {'rows':>10}  {'wall_s':>8}  {'rows_per_s':>11}  "
        f"{'peak_MB':>8}  {'speedup_vs_pandas':>17}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        speedup = "-" if r["speedup_vs_pandas"] is None else f"{r['speedup_vs_pandas']:.2f}x"
        print(
            f"{_tag(r['scale']):>5}  {r['impl']:<10}  {_fmt_int(r['rows']):>10}  "
            f"{r['wall_s']:>8.3f}  {_fmt_int(r['rows_per_s']):>11}  {r['peak_mb']:>8.1f}  "
            f"{speedup:>17}"
        )


def print_phases(results: list[dict[str, Any]]) -> None:
    print("\nper-phase seconds (median run):")
    for r in results:
        parts = "  ".join(f"{k}={v:.3f}" for k, v in r["phases"].items())
        print(f"  {_tag(r['scale']):>5}  {r['impl']:<10}  {parts}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales", type=float, nargs="+", default=list(DEFAULT_SCALES), metavar="S"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        metavar="N",
        help="runs per measurement (default: 3 below scale 10, 1 at 10 and above)",
    )
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--one", nargs=2, metavar=("IMPL", "SCALE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:
        impl, scale = args.one
        if impl not in IMPLS:
            parser.error(f"unknown impl {impl!r}")
        print(json.dumps(run_one(impl, float(scale))))
        return 0
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be >= 1")

    import duckdb
    import pandas as pd
    import pyarrow as pa

    impls = [i for i in IMPLS if i in args.impls]
    results: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    datasets: dict[str, Any] = {}
    for scale in args.scales:
        meta = ensure_data(scale)
        datasets[_tag(scale)] = meta
        warm_page_cache(scale)
        n = args.repeat if args.repeat is not None else (3 if scale < 10 else 1)
        runs: dict[str, list[dict[str, Any]]] = {i: [] for i in impls}
        for k in range(n):
            for impl in impls:
                print(f"scale {_tag(scale)}: {impl} run {k + 1}/{n} ...", flush=True)
                runs[impl].append(measure(impl, scale))
        by_impl: dict[str, dict[str, Any]] = {}
        for impl in impls:
            walls = [r["wall_s"] for r in runs[impl]]
            wall = statistics.median(walls)
            median_run = min(runs[impl], key=lambda r, w=wall: abs(r["wall_s"] - w))
            by_impl[impl] = {
                "scale": scale,
                "impl": impl,
                "rows": meta["n_ratings"],
                "repeat": n,
                "wall_s": wall,
                "wall_s_runs": walls,
                "rows_per_s": meta["n_ratings"] / wall,
                "peak_mb": max(r["peak_mb"] for r in runs[impl]),
                "peak_mb_runs": [r["peak_mb"] for r in runs[impl]],
                "import_mb": max(r["import_mb"] for r in runs[impl]),
                "process_s_runs": [r["process_s"] for r in runs[impl]],
                "phases": median_run["phases"],
                "duckdb_threads": median_run.get("duckdb_threads"),
                "speedup_vs_pandas": None,
            }
        if "pandas" in by_impl:
            for impl, r in by_impl.items():
                if impl != "pandas" and WRITES_FILES[impl]:
                    r["speedup_vs_pandas"] = by_impl["pandas"]["wall_s"] / r["wall_s"]
            by_impl["pandas"]["speedup_vs_pandas"] = 1.0
        results.extend(by_impl.values())
        if "mlcycle" in by_impl and "pandas" in by_impl:
            checks[_tag(scale)] = compare(scale)

    threads = sorted({r["duckdb_threads"] for r in results if r["duckdb_threads"] is not None})
    print()
    print_table(results)
    print_phases(results)
    print()
    for tag, c in checks.items():
        rows = ", ".join(f"{k} {v[0]:,}/{v[1]:,}" for k, v in c["rows"].items())
        print(
            f"check scale {tag}: {'MATCH' if c['match'] else 'MISMATCH'} "
            f"(user_5star max |diff| {c['user_5star_max_abs_diff']:.3g}, "
            f"tracks_features max |diff| {c['tracks_features_max_abs_diff']:.3g}; "
            f"rows mlcycle/pandas: {rows})"
        )
    print(
        f"duckdb threads: {', '.join(map(str, threads)) or '-'}; cpus: {os.cpu_count()}; "
        f"python {platform.python_version()}, pandas {pd.__version__}, "
        f"duckdb {duckdb.__version__}, pyarrow {pa.__version__}"
    )

    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "pandas": pd.__version__,
            "duckdb": duckdb.__version__,
            "pyarrow": pa.__version__,
            "duckdb_threads": threads[0] if len(threads) == 1 else threads,
        },
        "datasets": datasets,
        "results": results,
        "checks": checks,
    }
    JSON_PATH.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {JSON_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
