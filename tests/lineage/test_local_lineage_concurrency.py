"""Several processes recording the same lineage at once end with one of each entity and edge."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import mlcycle
from mlcycle.lineage import LineageTracker


def _record(root: str, rounds: int) -> None:
    with mlcycle.connect(root) as backend:
        tracker = LineageTracker(backend)
        for i in range(rounds):
            data = tracker.artifact("s3://bucket/shared.csv", type="DataSet",
                                    digest="sha256:" + "ab" * 32)
            job = tracker.action("training-job/shared", type="TrainingJob",
                                 status="InProgress")
            tracker.associate(data, job, "ContributedTo")
            own = tracker.artifact(f"s3://bucket/{multiprocessing.current_process().name}/{i}",
                                   type="Model")
            tracker.associate(job, own, "Produced")


def test_concurrent_writers_deduplicate(tmp_path: Path) -> None:
    root = str(tmp_path / "ws")
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_record, args=(root, 15), name=f"w{n}") for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    tracker = LineageTracker(mlcycle.connect(root))
    shared = list(tracker.list("Artifact", source_uri="s3://bucket/shared.csv"))
    assert len(shared) == 1
    assert len(list(tracker.list("Action"))) == 1
    models = list(tracker.list("Artifact", type="Model"))
    assert len(models) == 4 * 15
    graph = tracker.query(shared[0], direction="Descendants")
    assert len(graph.vertices) == 1 + 1 + 60 and len(graph.edges) == 61
