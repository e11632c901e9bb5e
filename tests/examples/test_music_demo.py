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
    from examples.music_recommendation.registry import GROUP
    from mlcycle import connect
    from mlcycle.registry import RegistryClient

    backend = connect(str(tmp_path / "ws"))
    client = RegistryClient(backend)
    champion = client.get_version(GROUP, "champion")
    assert champion.is_approved and champion.version == 1
    assert champion.metrics["validation-rmse"] < champion.metrics["baseline-mean-rmse"]
    graph = client.lineage(GROUP, champion.version, max_depth=20)
    sources = {v.source_uri.rsplit("/", 1)[-1] for v in graph.vertices
               if v.source_uri and v.source_uri.startswith("file://")}
    assert {"tracks.csv", "ratings.csv"} <= sources
    types = {v.type for v in graph.vertices}
    assert {"FlowRun", "Ingest", "FeatureGroup", "TrainingJob", "Model"} <= types
    # the per-user preferences the example computes are linked to the ratings they come from
    prefs_entity = next(v for v in graph.vertices if v.name == "user-5star-daily")
    parents = {e.source_arn for e in graph.edges if e.destination_arn == prefs_entity.arn}
    assert any(graph.vertex(arn).name == "music.ratings_events" for arn in parents)
    assert (out / "lineage_report.html").read_text().count("<svg") == 1
