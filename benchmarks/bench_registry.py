"""Benchmark the model registry with 10k versions in one group, on the local backend.

What is measured
----------------
One real ``model.tar.gz`` (a small XGBoost model) is stored in a fresh workspace's artifact
store. ``--versions`` versions (default 10,000) of one group are registered through the
backend interface (``backend.registry.create_version``, one transaction each, as the client
does after it has checked the artifact); every tenth is then approved and a ``champion`` alias
points at the newest approved one. Then these are timed, ``--repeat`` times each (default 20),
through :class:`mlcycle.registry.RegistryClient`:

``register``
    ``RegistryClient.register`` of a new model artifact (a distinct archive each time): the
    full path users take, with the archive read and loaded by XGBoost, its digest, the version
    numbered atomically, the audit event, and lineage recorded.
``list all``
    ``list_versions(group)``: all 10k versions, newest first.
``list approved``
    ``list_versions(group, status="Approved")``: the 1k approved ones.
``list newest 20``
    ``list_versions(group, limit=20)``: what a console page shows.
``latest approved``
    ``latest_approved(group)``.
``get by alias``
    ``get_version(group, "champion")``.
``history``
    ``history(group)``: the whole audit log (10k registrations and the approvals).

The table shows the median and 95th-percentile wall time and the rows returned. Nothing is
asserted; the figures are printed and written to ``benchmarks/results/bench_registry.json``.

Run from the repository root::

    .venv/bin/python benchmarks/bench_registry.py
    .venv/bin/python benchmarks/bench_registry.py --versions 2000 --repeat 10
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlcycle
from mlcycle.lineage import digest_bytes
from mlcycle.registry import ApprovalStatus, NewModelVersion, RegistryClient

RESULTS = Path(__file__).resolve().parent / "results"
GROUP = "bench-models"


def model_archive(seed: int) -> bytes:
    """Return a small, real model.tar.gz (XGBoost JSON inside), different for each seed."""
    import numpy as np
    import xgboost

    from mlcycle.training.artifact import build_model_tarball

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 4))
    booster = xgboost.train({"max_depth": 2, "nthread": 1, "seed": seed},
                            xgboost.DMatrix(x, label=x[:, 0] + rng.normal(size=200),
                                            feature_names=["a", "b", "c", "d"]),
                            num_boost_round=3)
    return build_model_tarball(booster, metadata={"seed": seed})


def timed(func: Callable[[], Any], repeat: int) -> dict[str, float]:
    """Call ``func`` ``repeat`` times; return median/p95 milliseconds and the rows returned."""
    times, rows = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - t)
        rows = len(out) if isinstance(out, list) else 1
    times.sort()
    return {"median_ms": statistics.median(times) * 1000,
            "p95_ms": times[min(len(times) - 1, int(0.95 * len(times)))] * 1000, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        backend = mlcycle.connect(f"local://{tmp}/ws")
        client = RegistryClient(backend)
        client.create_group(GROUP, description="benchmark")
        data = model_archive(0)
        key = "models/base/model.tar.gz"
        uri = backend.artifacts.put_bytes(key, data)
        store = backend.registry
        print(f"registering {args.versions:,} versions ...", flush=True)
        started = time.perf_counter()
        for i in range(args.versions):
            store.create_version(GROUP, NewModelVersion(
                model_uri=uri, model_key=key, model_digest=digest_bytes(data),
                metrics={"validation-rmse": 1.0 - i / (10 * args.versions)},
                created_by="bench", client_token=f"bench-{i}"))
            if (i + 1) % 2000 == 0:
                print(f"  {i + 1:,} ({time.perf_counter() - started:.0f} s)", flush=True)
        setup_s = time.perf_counter() - started
        for number in range(10, args.versions + 1, 10):
            store.update_status(GROUP, number, ApprovalStatus.APPROVED, actor="bench",
                                reason="every tenth")
        newest = client.latest_approved(GROUP)
        client.set_alias(GROUP, "champion", newest.version, by="bench")
        print(f"registered {args.versions:,} versions through the backend in {setup_s:.1f} s "
              f"({args.versions / setup_s:,.0f} versions/s)")
        archives = [model_archive(seed) for seed in range(1, args.repeat + 1)]
        keys = []
        for n, archive in enumerate(archives):
            keys.append(f"models/new-{n}/model.tar.gz")
            backend.artifacts.put_bytes(keys[-1], archive)
        pending = iter(keys)
        cases = {
            "register": lambda: client.register(GROUP, next(pending)),
            "list all": lambda: client.list_versions(GROUP),
            "list approved": lambda: client.list_versions(GROUP, status="Approved"),
            "list newest 20": lambda: client.list_versions(GROUP, limit=20),
            "latest approved": lambda: client.latest_approved(GROUP),
            "get by alias": lambda: client.get_version(GROUP, "champion"),
            "history": lambda: client.history(GROUP),
        }
        results = {name: timed(func, args.repeat) for name, func in cases.items()}
        backend.close()
    print(f"\n{'operation':<18}{'median_ms':>10}{'p95_ms':>9}{'rows':>8}")
    for name, r in results.items():
        print(f"{name:<18}{r['median_ms']:>10.2f}{r['p95_ms']:>9.2f}{r['rows']:>8,}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "bench_registry.json"
    out.write_text(json.dumps({"args": vars(args), "setup_s": setup_s, "results": results,
                               "python": platform.python_version(),
                               "machine": platform.machine()}, indent=1))
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
