"""Benchmark a local training job against raw ``xgboost.train`` on the same data and parameters.

What is measured
----------------
A synthetic regression table shaped like the music example's training table (``--rows`` rows,
default 100k, ``--features`` numeric features, default 36, a label with signal and noise), split
80/20 into training and validation rows, trained with the music example's hyperparameters
(``max_depth=4, eta=0.2, objective=reg:squarederror``, ``--rounds`` rounds, default 100) and
``nthread`` fixed (``--nthread``, default 1, the same for every implementation):

``raw``
    ``xgboost.DMatrix`` of both frames, then ``xgboost.train`` with ``evals`` on both,
    ``verbose_eval=False``: the least any wrapper must do.
``job``
    ``TrainingJob.submit(backend, spec).wait()`` on the local backend with the same frames: data
    checks, the job record, training in a thread with per-round logs and metrics, the model
    written as ``model.tar.gz`` and the record completed.
``job+capture``
    As ``job``, with :class:`~mlcycle.training.CaptureConfig` ``save_interval=2`` and the
    default collections (metrics, feature importance of five kinds, average and full SHAP on 500
    sampled rows, hyperparameters), written as ``.npz`` steps.
``job+capture+rule``
    As ``job+capture``, plus a LossNotDecreasing rule (``num_steps=4``) evaluated at every saved
    step, as the reference example configured Debugger.

All run in this one process after the imports (``xgboost`` is imported before timing), each in a
fresh workspace, interleaved, ``--repeat`` times (default 5). For each the table shows the
fastest and the median wall time (``wall_min``, ``wall_med``), the median CPU time of the whole
process (``cpu_med``: every thread, so the job's training thread and capture writer count), and
the overheads against ``raw`` of the fastest wall time and of the median CPU time. On a busy
machine wall times swing with other load; the fastest run and the CPU time are the steadier
figures. The targets are ``job`` within 5% of ``raw`` and ``job+capture`` within 25%. For the
job variants, ``train_s`` is the job's own training time (``ended_at - started_at``, median).
The models are compared: the job's model (read back from ``model.tar.gz``) must predict exactly
what the raw booster predicts. Nothing is asserted about time; the figures are printed and
written to ``benchmarks/results/bench_training.json``.

Run from the repository root::

    .venv/bin/python benchmarks/bench_training.py
    .venv/bin/python benchmarks/bench_training.py --rows 300000 --repeat 5 --nthread 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlcycle
from mlcycle.training import CaptureConfig, Rule, TrainingJob, TrainingJobSpec

RESULTS = Path(__file__).resolve().parent / "results"
IMPLS = ("raw", "job", "job+capture", "job+capture+rule")


def make_data(rows: int, features: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    weights = rng.normal(size=features) / np.sqrt(features)
    y = 3.5 + x @ weights + 0.5 * np.sin(x[:, 0] * x[:, 1]) + rng.normal(scale=0.8, size=rows)
    frame = pd.DataFrame(x, columns=[f"feature_{i:02d}" for i in range(features)])
    frame["Rating"] = np.clip(np.rint(y), 1, 5)
    cut = int(rows * 0.8)
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)


def run_raw(train: pd.DataFrame, validation: pd.DataFrame, params: dict, rounds: int
            ) -> tuple[float, float | None, xgboost.Booster]:
    features = [c for c in train.columns if c != "Rating"]
    started = time.perf_counter()
    dtrain = xgboost.DMatrix(train[features], label=train["Rating"], nthread=params["nthread"])
    dvalid = xgboost.DMatrix(validation[features], label=validation["Rating"],
                             nthread=params["nthread"])
    booster = xgboost.train(params, dtrain, num_boost_round=rounds,
                            evals=[(dtrain, "train"), (dvalid, "validation")],
                            verbose_eval=False)
    return time.perf_counter() - started, None, booster


def run_job(train: pd.DataFrame, validation: pd.DataFrame, params: dict, rounds: int, *,
            capture: bool, rule: bool) -> tuple[float, float | None, xgboost.Booster]:
    backend = mlcycle.connect(tempfile.mkdtemp(prefix="bench-training-"))
    spec = TrainingJobSpec(
        hyperparameters={**params, "num_round": rounds},
        train=train,
        validation=validation,
        label="Rating",
        capture=CaptureConfig(save_interval=2) if capture else None,
        rules=[Rule(kind="LossNotDecreasing", parameters={"num_steps": 4})] if rule else (),
    )
    started = time.perf_counter()
    job = TrainingJob.submit(backend, spec, name="bench")
    info = job.wait()
    wall = time.perf_counter() - started
    return wall, (info.ended_at - info.started_at).total_seconds(), job.model()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=36)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--nthread", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    args = parser.parse_args(argv)

    train, validation = make_data(args.rows, args.features)
    params = {"max_depth": 4, "eta": 0.2, "objective": "reg:squarederror",
              "nthread": args.nthread}
    print(f"xgboost {xgboost.__version__} | {platform.processor() or platform.machine()} | "
          f"{len(train):,} train + {len(validation):,} validation rows x {args.features} "
          f"features | {args.rounds} rounds | nthread {args.nthread} | repeat {args.repeat} | "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    run_raw(train.iloc[:2000], validation.iloc[:500], params, 2)  # warm up XGBoost's code paths
    walls: dict[str, list[float]] = {i: [] for i in args.impls}
    cpus: dict[str, list[float]] = {i: [] for i in args.impls}
    trains: dict[str, list[float]] = {i: [] for i in args.impls}
    models: dict[str, xgboost.Booster] = {}
    for _ in range(args.repeat):
        for impl in args.impls:
            cpu = time.process_time()
            if impl == "raw":
                wall, train_s, booster = run_raw(train, validation, params, args.rounds)
            else:
                wall, train_s, booster = run_job(train, validation, params, args.rounds,
                                                 capture="capture" in impl,
                                                 rule="rule" in impl)
            cpus[impl].append(time.process_time() - cpu)
            walls[impl].append(wall)
            if train_s is not None:
                trains[impl].append(train_s)
            models[impl] = booster
            print(f"  {impl:<18} wall {wall:7.3f} s  cpu {cpus[impl][-1]:7.3f} s", flush=True)

    def pct(value: float | None) -> str:
        return "" if value is None else f"{(value - 1) * 100:+.1f}%"

    raw_wall = min(walls["raw"]) if "raw" in walls else None
    raw_cpu = statistics.median(cpus["raw"]) if "raw" in cpus else None
    print(f"\n{'impl':<18} {'wall_min':>9} {'wall_med':>9} {'cpu_med':>9} {'train_s':>8} "
          f"{'wall vs raw':>12} {'cpu vs raw':>11}")
    results = {}
    for impl in args.impls:
        wall_min, wall_med = min(walls[impl]), statistics.median(walls[impl])
        cpu_med = statistics.median(cpus[impl])
        train_s = statistics.median(trains[impl]) if trains[impl] else None
        wall_ratio = wall_min / raw_wall if raw_wall else None
        cpu_ratio = cpu_med / raw_cpu if raw_cpu else None
        results[impl] = {"wall_min_s": wall_min, "wall_median_s": wall_med,
                         "cpu_median_s": cpu_med, "train_s": train_s,
                         "wall_min_vs_raw": wall_ratio, "cpu_median_vs_raw": cpu_ratio,
                         "wall_runs": walls[impl], "cpu_runs": cpus[impl]}
        print(f"{impl:<18} {wall_min:9.3f} {wall_med:9.3f} {cpu_med:9.3f} "
              f"{'' if train_s is None else f'{train_s:8.3f}':>8} {pct(wall_ratio):>12} "
              f"{pct(cpu_ratio):>11}")
    if "raw" in models:
        check = xgboost.DMatrix(validation[[c for c in validation.columns if c != "Rating"]])
        expected = models["raw"].predict(check)
        for impl, booster in models.items():
            same = np.array_equal(booster.predict(check), expected)
            print(f"model of {impl:<18} predicts exactly as raw: {same}")
            results[impl]["same_predictions_as_raw"] = bool(same)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "bench_training.json"
    out.write_text(json.dumps({"args": vars(args), "xgboost": xgboost.__version__,
                               "load_average": list(os.getloadavg()), "cpus": os.cpu_count(),
                               "results": results}, indent=1))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
