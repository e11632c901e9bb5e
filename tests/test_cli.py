import pandas as pd
import pytest

from mlcycle.cli import main
from mlcycle.flow import Flow, Formula, OneHotEncode, Source


@pytest.fixture
def flow_file(tmp_path):
    pd.DataFrame({"g": ["a", "b", "a"], "x": [1.0, 2.0, 3.0]}).to_csv(tmp_path / "in.csv",
                                                                       index=False)
    flow = Flow(
        name="cli",
        sources=[Source(name="t", format="csv", path=str(tmp_path / "in.csv"))],
        steps=[
            OneHotEncode(name="oh", input="t", column="g"),
            Formula(name="out", input="oh", output="y", expression="x * 10"),
        ],
    )
    return flow.save(tmp_path / "f.flow.json")


def test_flow_show_lists_steps_and_draws(flow_file, tmp_path, capsys):
    assert main(["flow", "show", str(flow_file)]) == 0
    out = capsys.readouterr().out
    assert "one_hot" in out and "formula" in out and "fitted: False" in out
    assert main(["flow", "show", str(flow_file), "--svg", str(tmp_path / "f.svg")]) == 0
    assert (tmp_path / "f.svg").read_text().startswith("<svg")
    assert main(["flow", "show", str(flow_file), "--dot"]) == 0
    assert '"oh" -> "out"' in capsys.readouterr().out


def test_flow_run_writes_outputs_and_saves_fitted_flow(flow_file, tmp_path):
    target = tmp_path / "out.parquet"
    fitted = tmp_path / "fitted.json"
    code = main(["flow", "run", str(flow_file), "--output", f"out={target}",
                 "--save-fitted", str(fitted)])
    assert code == 0
    df = pd.read_parquet(target)
    assert df["y"].tolist() == [10.0, 20.0, 30.0]
    assert df["g_a"].tolist() == [1, 0, 1]
    assert Flow.load(fitted).is_fitted


def test_exit_codes_for_bad_input_and_missing_files(flow_file, tmp_path, capsys):
    assert main(["flow", "run", str(flow_file), "--source", "t=" + str(tmp_path / "no.csv")]) == 3
    assert main(["flow", "run", str(flow_file), "--output", "nonsense"]) == 2
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["flow", "show", str(tmp_path / "bad.json")]) == 2
    assert "mlcycle:" in capsys.readouterr().err


def test_backends_and_version(capsys):
    assert main(["backends"]) == 0
    assert {"local", "sagemaker"} <= set(capsys.readouterr().out.split())


def test_flow_run_with_a_backend_records_lineage(flow_file, tmp_path, capsys):
    target = tmp_path / "out.parquet"
    workspace = f"local://{tmp_path / 'ws'}"
    assert main(["flow", "run", str(flow_file), "--output", f"out={target}",
                 "--backend", workspace]) == 0
    capsys.readouterr()
    assert main(["lineage", "show", target.absolute().as_uri(), "--backend", workspace]) == 0
    out = capsys.readouterr().out
    assert "FlowRun" in out and "in.csv" in out
