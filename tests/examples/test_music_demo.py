import pandas as pd

from examples.music_recommendation.demo import main
from mlcycle.flow import Flow


def test_demo_runs_end_to_end_on_a_small_scale(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--scale", "0.01", "--out", str(out), "--backend", str(tmp_path / "ws")]) == 0
    stored = Flow.from_json((tmp_path / "ws" / "artifacts" / "flows" / "music.flow.json")
                            .read_bytes())
    assert stored.is_fitted and stored == Flow.load(out / "music.flow.json")
    prefs = pd.read_parquet(out / "user_5star.parquet")
    assert prefs["userId"].is_unique and len(prefs) <= 258
    assert (out / "dataprep_report.html").read_text().count("<svg") >= 5
    assert "done in" in capsys.readouterr().out
