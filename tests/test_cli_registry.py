"""``mlcycle registry ...`` and ``mlcycle lineage ...`` on a local workspace."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import mlcycle
from mlcycle.cli import main
from mlcycle.lineage import LineageTracker
from mlcycle.registry import RegistryClient
from mlcycle.training import TrainingJob, TrainingJobSpec


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("cli-registry") / "ws"
    with mlcycle.connect(str(root)) as backend:
        df = pd.DataFrame({"x": range(50), "y": [i % 4 for i in range(50)]})
        spec = TrainingJobSpec(hyperparameters={"num_round": 3, "max_depth": 2, "nthread": 1},
                               train=df, validation=df, label="y")
        client = RegistryClient(backend)
        for n in range(2):
            job = TrainingJob.submit(backend, spec, name=f"cli-job-{n}")
            job.wait(timeout=60)
            client.register("cli-models", job, create_group=True)
    return f"local://{root}"


def test_groups_and_versions(workspace: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["registry", "groups", "--backend", workspace]) == 0
    assert "cli-models" in capsys.readouterr().out
    assert main(["registry", "versions", "cli-models", "--backend", workspace]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["2", "1"]
    assert all("PendingManualApproval" in line for line in lines[1:])


def test_approve_alias_history_and_show_with_lineage(
    workspace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["registry", "approve", "cli-models", "1", "--reason", "looks good",
                 "--by", "alice", "--backend", workspace]) == 0
    assert "Approved" in capsys.readouterr().out
    assert main(["registry", "alias", "cli-models", "champion", "1", "--by", "alice",
                 "--backend", workspace]) == 0
    assert main(["registry", "alias", "cli-models", "champion", "--backend", workspace]) == 0
    assert "champion -> version 1" in capsys.readouterr().out
    svg = tmp_path / "lineage.svg"
    assert main(["registry", "show", "cli-models", "champion", "--lineage", "--svg", str(svg),
                 "--backend", workspace]) == 0
    out = capsys.readouterr().out
    assert "cli-models version 1" in out and "Approved by alice" in out
    assert "validation-rmse" in out and "TrainingJob: training-job/cli-job-0" in out
    assert svg.read_text().startswith("<svg")
    assert main(["registry", "history", "cli-models", "--backend", workspace]) == 0
    history = capsys.readouterr().out
    assert "looks good" in history and "alice" in history and "champion" in history


def test_errors_map_to_exit_codes(workspace: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["registry", "approve", "cli-models", "99", "--backend", workspace]) == 3
    assert main(["registry", "versions", "no-such-group", "--backend", workspace]) == 3
    assert main(["registry", "reject", "cli-models", "2", "--backend", workspace]) == 0
    # a rejected version cannot become the champion: refused, exit 5
    assert main(["registry", "alias", "cli-models", "champion", "2",
                 "--backend", workspace]) == 5
    assert "refused" in capsys.readouterr().err


def test_lineage_show_by_arn_and_uri(workspace: str, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    backend = mlcycle.connect(workspace)
    model = next(LineageTracker(backend).list("Artifact", type="Model"))
    assert main(["lineage", "show", model.arn, "--backend", workspace]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ascendants of Model") and "TrainingJob" in out
    assert main(["lineage", "show", model.source_uri, "--direction", "Descendants",
                 "--backend", workspace]) == 0
    assert "ModelPackage" in capsys.readouterr().out
    assert main(["lineage", "show", model.arn, "--dot", "--backend", workspace]) == 0
    assert capsys.readouterr().out.startswith("digraph lineage")
    assert main(["lineage", "show", "s3://nowhere/x", "--backend", workspace]) == 3
