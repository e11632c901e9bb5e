"""Benchmark SHAP contributions of a music-like XGBoost model: mlcycle.explain beside its peers.

What is measured
----------------
A regression model like the music example's (``reg:squarederror``, ``max_depth=4``,
``eta=0.2``, 100 rounds, 37 features: the 19 track features and the 18 ``<column>_5star`` user
preferences, on seeded synthetic values with a rating-like label) is trained once on 100k rows.
Then the SHAP contributions of 100k other rows (``--rows``) are computed by

``mlcycle``
    ``mlcycle.explain.explain(booster, frame)`` from a DataFrame: the name check and reordering,
    batches of 50k, the margins for the additivity check, the check itself.
``shap``
    ``shap.TreeExplainer(booster).shap_values(frame)``, explainer construction included (its
    default ``check_additivity=True`` also predicts the margins).
``pred_contribs``
    ``booster.predict(xgboost.DMatrix(X), pred_contribs=True)`` from a float32 array: the floor,
    since the other two call this XGBoost TreeSHAP (the C++ ``PredictContribution``) underneath.

Each is run once to warm up, then ``--repeat`` times (3 by default), interleaved; ``wall_s`` is
the median and ``rows_per_s`` is rows over it; ``best_s`` is the fastest run (the better
estimate of the cost itself on a machine that other work shares), compared with the fastest
``pred_contribs`` run in the last column. XGBoost uses every core (``nthread`` unset). The
three results are then compared: the largest absolute difference of every pair of contribution
matrices, and of mlcycle's base value against shap's ``expected_value`` and the bias column, must
be at most 1e-4, else the script exits with status 1. The figures are printed and written to
``benchmarks/results/bench_shap.json``; nothing asserts a timing.

Run from the repository root::

    .venv/bin/python benchmarks/bench_shap.py
    .venv/bin/python benchmarks/bench_shap.py --rows 1000000 --repeat 1
    .venv/bin/python benchmarks/bench_shap.py --device cuda      # on a machine with a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/bench_shap.py` puts benchmarks/ first
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
JSON_PATH = RESULTS / "bench_shap.json"
TOLERANCE = 1e-4
SEED = 0
TRAIN_ROWS = 100_000
PARAMS = {"objective": "reg:squarederror", "max_depth": 4, "eta": 0.2}
ROUNDS = 100
IMPLS = ("mlcycle", "shap", "pred_contribs")

AUDIO = ("energy", "acousticness", "valence", "speechiness", "instrumentalness", "liveness",
         "tempo", "danceability")
GENRES = ("Folk", "Country", "Latin", "Jazz", "RnB", "Reggae", "Rap", "Pop_Rock", "Electronic",
          "Blues")
TRACK_FEATURES = (*AUDIO, "length", *(f"genre_{g}" for g in GENRES))  # 19
FIVE_STAR = tuple(f"{c}_5star" for c in (*AUDIO, *(f"genre_{g}" for g in GENRES)))  # 18
FEATURES = TRACK_FEATURES + FIVE_STAR  # 37


def make_frame(n: int, seed: int) -> tuple[Any, Any]:
    """Synthetic music-like features and a rating-like label (1..5 scale, with noise)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for c in AUDIO:
        cols[c] = rng.beta(2, 2, n)
    cols["tempo"] = rng.normal(120, 28, n)
    cols["danceability"] = 0.3 * cols["valence"] + 0.1 * cols["liveness"] + 0.1 * cols["energy"]
    cols["length"] = rng.gamma(4, 55, n)
    genre = rng.integers(0, len(GENRES), n)
    for k, g in enumerate(GENRES):
        cols[f"genre_{g}"] = (genre == k).astype(float)
    for c in FIVE_STAR:
        base = c.removesuffix("_5star")
        if base.startswith("genre_"):
            cols[c] = rng.dirichlet(np.ones(len(GENRES)), n)[:, GENRES.index(base[6:])]
        elif base == "tempo":
            cols[c] = rng.normal(120, 8, n)
        else:
            cols[c] = rng.beta(5, 5, n)
    frame = pd.DataFrame({c: cols[c] for c in FEATURES}).astype("float32")
    taste = sum(
        -abs(frame[a] - frame[f"{a}_5star"]) for a in ("energy", "valence", "acousticness")
    )
    genre_match = sum(frame[f"genre_{g}"] * frame[f"genre_{g}_5star"] for g in GENRES)
    label = 3.4 + 2.0 * taste + 3.0 * genre_match + rng.normal(0, 0.7, n)
    return frame, np.clip(np.round(label), 1, 5)


def train(frame: Any, label: Any) -> Any:
    import xgboost as xgb

    return xgb.train(PARAMS, xgb.DMatrix(frame, label=label), num_boost_round=ROUNDS)


def runners(booster: Any, frame: Any, *, device: str, batch_size: int) -> dict[str, Callable]:
    import numpy as np
    import xgboost as xgb

    from mlcycle.explain import explain
    from mlcycle.explain._deps import import_shap

    shap = import_shap()
    matrix = np.ascontiguousarray(frame.to_numpy(dtype=np.float32))
    gpu_booster = booster.copy()
    if device.startswith("cuda"):
        gpu_booster.set_param({"device": device})

    def run_mlcycle() -> tuple[Any, float, str]:
        exp = explain(booster, frame, device=device, batch_size=batch_size)
        return exp.contributions, exp.base_value, exp.device

    def run_shap() -> tuple[Any, float, str]:
        explainer = shap.TreeExplainer(gpu_booster)
        return explainer.shap_values(frame), float(explainer.expected_value), device

    def run_pred_contribs() -> tuple[Any, float, str]:
        phi = gpu_booster.predict(xgb.DMatrix(matrix, feature_names=list(FEATURES)),
                                  pred_contribs=True)
        return phi[:, :-1], float(phi[0, -1]), device

    return {"mlcycle": run_mlcycle, "shap": run_shap, "pred_contribs": run_pred_contribs}


def compare(outputs: dict[str, tuple[Any, float, str]]) -> dict[str, float]:
    import numpy as np

    diffs: dict[str, float] = {}
    for i, a in enumerate(IMPLS):
        for b in IMPLS[i + 1:]:
            diffs[f"{a} vs {b}"] = float(np.max(np.abs(
                outputs[a][0].astype(np.float64) - outputs[b][0].astype(np.float64))))
    for other in IMPLS[1:]:
        diffs[f"base value: mlcycle vs {other}"] = abs(outputs["mlcycle"][1] - outputs[other][1])
    return diffs


def print_table(rows: int, results: list[dict[str, Any]]) -> None:
    floor = next(r["best_s"] for r in results if r["impl"] == "pred_contribs")
    header = (f"{'impl':<14} {'device':>6} {'rows':>8} {'wall_s':>7} {'best_s':>7} "
              f"{'rows_per_s':>10} {'best_rows_per_s':>15} {'best vs pred_contribs':>21}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['impl']:<14} {r['device']:>6} {rows:>8,} {r['wall_s']:>7.2f} "
              f"{r['best_s']:>7.2f} {r['rows_per_s']:>10,.0f} {rows / r['best_s']:>15,.0f} "
              f"{r['best_s'] / floor:>20.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows to explain")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=50_000)
    args = parser.parse_args(argv)

    import xgboost as xgb

    from mlcycle.explain import explain
    from mlcycle.explain._deps import import_shap

    shap = import_shap()  # without shap 0.51's import-time deprecation notes

    t = time.perf_counter()
    train_frame, label = make_frame(TRAIN_ROWS, SEED)
    booster = train(train_frame, label)
    frame, _ = make_frame(args.rows, SEED + 1)
    print(f"trained {ROUNDS} rounds, depth {PARAMS['max_depth']}, {len(FEATURES)} features on "
          f"{TRAIN_ROWS:,} rows in {time.perf_counter() - t:.1f} s; explaining {args.rows:,} rows")

    # the device mlcycle picks ("auto": a usable GPU, else the CPU) is given to all three
    device = explain(booster, frame.iloc[:100], device=args.device).device
    run = runners(booster, frame, device=device, batch_size=args.batch_size)
    outputs = {impl: run[impl]() for impl in IMPLS}  # warm-up, and the results to compare
    times: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    for k in range(args.repeat):
        for impl in IMPLS:
            start = time.perf_counter()
            run[impl]()
            times[impl].append(time.perf_counter() - start)
        print(f"run {k + 1}/{args.repeat} done", flush=True)

    results = []
    for impl in IMPLS:
        wall = statistics.median(times[impl])
        results.append({"impl": impl, "device": outputs[impl][2], "wall_s": wall,
                        "best_s": min(times[impl]), "rows_per_s": args.rows / wall,
                        "times_s": times[impl]})
    print()
    print_table(args.rows, results)
    diffs = compare(outputs)
    worst = max(diffs.values())
    print()
    for name, value in diffs.items():
        print(f"max |diff| {name:<32} {value:.3g}")
    agree = worst <= TOLERANCE
    print(f"agreement within {TOLERANCE:g}: {'yes' if agree else 'NO'}")
    print(f"xgboost {xgb.__version__}, shap {shap.__version__}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    JSON_PATH.write_text(json.dumps({
        "rows": args.rows, "features": len(FEATURES), "rounds": ROUNDS, "params": PARAMS,
        "repeat": args.repeat, "batch_size": args.batch_size, "results": results,
        "max_abs_diff": diffs, "agree": agree, "xgboost": xgb.__version__,
        "shap": shap.__version__, "cpus": os.cpu_count(), "platform": platform.platform(),
    }, indent=2) + "\n")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
