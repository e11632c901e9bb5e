import re

import pytest

from mlcycle.errors import JobFailedError
from mlcycle.reports import line_chart
from mlcycle.testing.contract.training import regression_frame
from mlcycle.training import CaptureConfig, Rule, TrainingJob, TrainingJobSpec


def test_line_chart_draws_a_polyline_per_series_and_skips_non_finite_points():
    svg = line_chart({"train": [(0, 1.0), (1, 0.5), (2, float("nan"))],
                      "validation": [(0, 1.2), (1, 0.9)]}, title="rmse", x_label="round")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<polyline") == 2
    points = re.findall(r'points="([^"]*)"', svg)
    assert len(points[0].split()) == 2 and len(points[1].split()) == 2
    assert "rmse" in svg and "validation" in svg
    assert line_chart({"flat": [(0, 1.0)]}).count("<polyline") == 1
    assert "<svg" in line_chart({})


def _spec(**changes):
    frame = regression_frame()
    values = {"hyperparameters": {"num_round": 6, "max_depth": 3, "nthread": 1},
              "train": frame.iloc[:180], "validation": frame.iloc[180:], "label": "y"}
    values.update(changes)
    return TrainingJobSpec(**values)


def test_report_of_a_captured_job_has_every_section(local_backend, tmp_path):
    job = TrainingJob.submit(local_backend, _spec(
        capture=CaptureConfig(save_interval=2),
        rules=[Rule(kind="LossNotDecreasing", parameters={"num_steps": 2})]), name="rep")
    job.wait(timeout=60)
    uri = job.report(tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    assert uri.startswith("file://") and html == local_backend.artifacts.get_bytes(
        "training/rep/report/training-report.html").decode()
    for text in ("Learning curves", "importance (gain, last saved step)", "mean |SHAP|",
                 "SHAP values of f0", "LossNotDecreasing", "validation-rmse"):
        assert text in html
    assert html.count("<polyline") >= 2  # train and validation curves


def test_report_without_capture_takes_importance_from_the_model(local_backend):
    job = TrainingJob.submit(local_backend, _spec(), name="plain")
    job.wait(timeout=60)
    html = local_backend.artifacts.get_bytes(
        job.report().split("/artifacts/", 1)[1]).decode()
    assert "importance (gain)" in html and "No SHAP values were captured" in html
    assert "The job evaluated no rules" in html


def test_report_of_a_failed_job_says_why(local_backend):
    frame = regression_frame().assign(y=0.0)
    job = TrainingJob.submit(local_backend, _spec(
        train=frame, validation=None,
        hyperparameters={"num_round": 3, "objective": "reg:gamma", "nthread": 1}), name="bad")
    with pytest.raises(JobFailedError):
        job.wait(timeout=60)
    html = local_backend.artifacts.get_bytes(job.report().split("/artifacts/", 1)[1]).decode()
    assert "failure reason" in html and "No feature importance is available" in html
