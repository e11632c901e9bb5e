"""The HTML training report: summary, learning curves, importance, SHAP and rule outcomes.

One self-contained file with inline SVG charts (:mod:`mlcycle.reports`), built from what the
backend recorded: the job's snapshot, its metric history, its capture (when it captured) and
its model. :meth:`mlcycle.training.TrainingJob.report` stores it in the job's outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlcycle.errors import MlcycleError
from mlcycle.reports import HtmlReport, bar_chart, histogram, line_chart

if TYPE_CHECKING:  # pragma: no cover
    from mlcycle.training.capture import CaptureReader
    from mlcycle.training.job import TrainingJob

__all__ = ["training_report"]

_TOP = 20


def _curves(report: HtmlReport, history: dict[str, list[tuple[int, float]]]) -> None:
    by_metric: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for name, values in history.items():
        channel, _, metric = name.partition("-")
        by_metric.setdefault(metric or name, {})[channel] = values
    report.heading("Learning curves")
    if not by_metric:
        report.paragraph("No metrics were recorded.")
        return
    report.svg(*(line_chart(lines, title=metric, x_label="round")
                 for metric, lines in sorted(by_metric.items())))


def _last_values(reader: CaptureReader, collection: str, prefix: str) -> dict[str, float]:
    for step in reversed(reader.steps()):
        values = reader.values(collection, step)
        chosen = {n[len(prefix):]: float(v) for n, v in values.items() if n.startswith(prefix)}
        if chosen:
            return chosen
    return {}


def _bars(values: dict[str, float], title: str) -> str:
    top = sorted(values, key=lambda n: values[n], reverse=True)[:_TOP]
    return bar_chart(top, [values[n] for n in top], title=title)


def training_report(job: TrainingJob) -> HtmlReport:
    """Build the training report of ``job``.

    Parameters
    ----------
    job : mlcycle.training.TrainingJob
        The job (running or ended).

    Returns
    -------
    mlcycle.reports.HtmlReport
    """
    info = job.describe()
    metrics = job.metrics()
    report = HtmlReport(f"Training job {info.name}")
    summary = [
        ("status", info.status.value),
        ("created", info.created_at.isoformat(timespec="seconds")),
        ("duration (s)", round(info.duration_s, 2) if info.duration_s is not None else ""),
        ("rounds", f"{info.rounds} of {info.spec.num_round}"),
        ("objective", info.spec.objective),
        ("label", info.spec.label),
        ("features", len(info.feature_names)),
        ("model", info.model_uri or "none"),
    ]
    if info.failure_reason:
        summary.append(("failure reason", info.failure_reason))
    if info.stop_reason:
        summary.append(("stop reason", info.stop_reason))
    if info.best_iteration is not None:
        summary.append(("best iteration", info.best_iteration))
    report.heading("Summary")
    report.table(summary, header=["", ""])
    report.heading("Hyperparameters")
    report.table([(k, ",".join(v) if isinstance(v, tuple) else v)
                  for k, v in info.spec.hyperparameters.items()], header=["name", "value"])
    report.heading("Final metrics")
    report.table(sorted(metrics.final.items()), header=["metric", "value"])
    _curves(report, metrics.history)

    reader = job.capture() if info.capture_prefix else None
    importance: dict[str, float] = {}
    importance_title = ""
    if reader is not None and reader.collection("feature_importance"):
        for kind in ("gain", "weight", "total_gain", "cover", "total_cover"):
            importance = _last_values(reader, "feature_importance",
                                      f"feature_importance/{kind}/")
            if importance:
                importance_title = f"importance ({kind}, last saved step)"
                break
    if not importance and info.model_key:
        try:
            importance = job.model().get_score(importance_type="gain")
            importance_title = "importance (gain)"
        except MlcycleError:
            importance = {}
    report.heading("Feature importance")
    if importance:
        report.svg(_bars(importance, importance_title))
    else:
        report.paragraph("No feature importance is available (the job has no model yet and "
                         "captured none).")

    report.heading("SHAP summary")
    shap = _last_values(reader, "average_shap", "average_shap/") if reader else {}
    if shap:
        charts = [_bars(shap, "mean |SHAP| (last saved step)")]
        last = reader.steps()[-1] if reader and reader.steps() else None
        if last is not None and reader is not None and reader.collection("full_shap"):
            for feature in sorted(shap, key=lambda f: shap[f], reverse=True)[:3]:
                name = f"full_shap/{feature}"
                if reader.has(name, last):
                    charts.append(histogram(reader.tensor(name, last).reshape(-1).tolist(),
                                            title=f"SHAP values of {feature}"))
        report.svg(*charts)
        report.paragraph(f"SHAP values by XGBoost's TreeSHAP on {len(reader.sample_rows)} "
                         "sampled training rows." if reader else "")
    else:
        report.paragraph("No SHAP values were captured (capture average_shap or full_shap).")

    report.heading("Rules")
    if info.rule_results:
        report.table([(r.name, r.kind, r.status.value, "" if r.step is None else r.step,
                       "stopped training" if r.stopped_training else "", r.message)
                      for r in info.rule_results],
                     header=["rule", "kind", "status", "step", "action", "finding"])
    else:
        report.paragraph("The job evaluated no rules.")
    return report
