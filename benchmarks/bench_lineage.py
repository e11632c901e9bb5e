"""Benchmark lineage queries on a graph of 100k entities, at depth 10, on the local backend.

What is measured
----------------
A layered lineage graph is recorded through the local backend's public interface
(``backend.lineage.create_entity`` / ``add_association``, one transaction each, as components
record): ``--entities`` entities (default 100,000) in ``--layers`` layers (default 11, so the
deepest walk is 10 edges), the first layer data sets, then alternating actions and artifacts
like flow runs, data sets, training jobs and models; every entity after the first layer has
``--parents`` parents (default 2) drawn at random from the layer before. The time to record it
is reported as entities and associations per second.

Then :meth:`mlcycle.lineage.LineageTracker.query` is timed from ``--queries`` random start
entities (default 30) for each case:

``ascendants d10``
    From a last-layer entity (a "model"), up to 10 edges up: where it came from. With two
    parents each, this reaches a few thousand entities, a wide lineage.
``ascendants d3``
    The same starts, 3 edges up.
``descendants d10``
    From a first-layer entity (a "CSV"), everything made from it.
``both d10``
    From a middle-layer entity, both ways.
``ascendants d10 typed``
    As the first, returning only ``Model`` and ``DataSet`` vertices (the walk passes through
    the actions).

For each case the table shows the median and 95th-percentile wall time, the median number of
vertices and edges returned, and vertices per second. Nothing is asserted; the figures are
printed and written to ``benchmarks/results/bench_lineage.json``.

Run from the repository root::

    .venv/bin/python benchmarks/bench_lineage.py
    .venv/bin/python benchmarks/bench_lineage.py --entities 20000 --queries 10
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlcycle
from mlcycle.lineage import AssociationType, EntityKind, LineageTracker

RESULTS = Path(__file__).resolve().parent / "results"
_ART_TYPES = ("DataSet", "DataSet", "Model")
_ACT_TYPES = ("FlowRun", "Ingest", "TrainingJob")


def build(backend: mlcycle.Backend, *, entities: int, layers: int, parents: int,
          seed: int) -> tuple[list[list[str]], dict[str, float]]:
    """Record the layered graph; return the ARNs per layer and the recording figures."""
    rng = random.Random(seed)
    store = backend.lineage
    per_layer = entities // layers
    layer_arns: list[list[str]] = []
    started = time.perf_counter()
    created = 0
    for layer in range(layers):
        arns = []
        for i in range(per_layer):
            if layer % 2 == 0:
                kind = EntityKind.ARTIFACT
                type_ = "Model" if layer == layers - 1 else _ART_TYPES[(layer // 2) % 2]
                entity = store.create_entity(kind, name=f"l{layer}-{i}", type=type_,
                                             source_uri=f"s3://bench/l{layer}/{i}",
                                             digest=f"sha256:{rng.getrandbits(256):064x}")
            else:
                kind = EntityKind.ACTION
                entity = store.create_entity(kind, name=f"run/l{layer}-{i}",
                                             type=_ACT_TYPES[(layer // 2) % 3],
                                             status="Completed")
            arns.append(entity.arn)
            created += 1
            if created % 10000 == 0:
                print(f"  recorded {created:,} entities ({time.perf_counter() - started:.0f} s)",
                      flush=True)
        layer_arns.append(arns)
    entity_s = time.perf_counter() - started
    started = time.perf_counter()
    edges = 0
    for layer in range(1, layers):
        kind = AssociationType.PRODUCED if layer % 2 == 0 else AssociationType.CONTRIBUTED_TO
        for arn in layer_arns[layer]:
            for parent in rng.sample(layer_arns[layer - 1], parents):
                store.add_association(parent, arn, kind)
                edges += 1
    edge_s = time.perf_counter() - started
    return layer_arns, {"entities": created, "associations": edges,
                        "entities_per_s": created / entity_s,
                        "associations_per_s": edges / edge_s,
                        "record_s": entity_s + edge_s}


def time_queries(tracker: LineageTracker, starts: list[str], **kwargs: object) -> dict[str, float]:
    """Run one query per start; return the timing and size figures."""
    times, vertices, edges = [], [], []
    for arn in starts:
        t = time.perf_counter()
        graph = tracker.query(arn, **kwargs)  # type: ignore[arg-type]
        times.append(time.perf_counter() - t)
        vertices.append(len(graph.vertices))
        edges.append(len(graph.edges))
    times.sort()
    median = statistics.median(times)
    return {"median_ms": median * 1000,
            "p95_ms": times[min(len(times) - 1, int(0.95 * len(times)))] * 1000,
            "vertices": statistics.median(vertices), "edges": statistics.median(edges),
            "vertices_per_s": statistics.median(vertices) / median if median else 0.0}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--layers", type=int, default=11)
    parser.add_argument("--parents", type=int, default=2)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-lineage-") as tmp:
        backend = mlcycle.connect(f"local://{tmp}/ws")
        print(f"recording {args.entities:,} entities in {args.layers} layers, "
              f"{args.parents} parents each ...", flush=True)
        layers, recording = build(backend, entities=args.entities, layers=args.layers,
                                  parents=args.parents, seed=args.seed)
        print(f"recorded {recording['entities']:,} entities and "
              f"{recording['associations']:,} associations in {recording['record_s']:.1f} s "
              f"({recording['entities_per_s']:,.0f} entities/s, "
              f"{recording['associations_per_s']:,.0f} associations/s)")
        tracker = LineageTracker(backend)
        leaves = rng.sample(layers[-1], args.queries)
        roots = rng.sample(layers[0], args.queries)
        middle = rng.sample(layers[len(layers) // 2], args.queries)
        cases = {
            "ascendants d10": (leaves, {"direction": "Ascendants", "max_depth": 10}),
            "ascendants d3": (leaves, {"direction": "Ascendants", "max_depth": 3}),
            "descendants d10": (roots, {"direction": "Descendants", "max_depth": 10}),
            "both d10": (middle, {"direction": "Both", "max_depth": 10}),
            "ascendants d10 typed": (leaves, {"direction": "Ascendants", "max_depth": 10,
                                               "types": ["Model", "DataSet"]}),
        }
        tracker.query(leaves[0], max_depth=10)  # warm the page cache and the connection
        results = {name: time_queries(tracker, starts, **kwargs)
                   for name, (starts, kwargs) in cases.items()}
        backend.close()
    print(f"\n{'query':<24}{'median_ms':>10}{'p95_ms':>9}{'vertices':>10}{'edges':>8}"
          f"{'vertices/s':>12}")
    for name, r in results.items():
        print(f"{name:<24}{r['median_ms']:>10.1f}{r['p95_ms']:>9.1f}{r['vertices']:>10,.0f}"
              f"{r['edges']:>8,.0f}{r['vertices_per_s']:>12,.0f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "bench_lineage.json"
    out.write_text(json.dumps({"args": vars(args), "recording": recording, "queries": results,
                               "python": platform.python_version(),
                               "machine": platform.machine()}, indent=1))
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
