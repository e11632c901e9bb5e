"""Explanations: exact TreeSHAP for XGBoost models, Clarify's aggregations and shap's plots.

:func:`explain` takes a model (an ``xgboost.Booster``, a scikit-learn ``XGBModel`` or a
SageMaker ``model.tar.gz``) and data, and returns an :class:`Explanation`:

- the contributions of every row and feature, from XGBoost's own TreeSHAP (on a GPU when one is
  usable), computed in batches and checked to add up to the raw prediction;
- :meth:`Explanation.global_importance` with SageMaker Clarify's aggregations
  (``mean_abs``, ``median``, ``mean_sq``);
- :meth:`Explanation.row` for any row, by position, boolean mask or index label;
- :meth:`Explanation.to_analysis_json` / :meth:`Explanation.save_analysis`: Clarify's
  ``analysis.json`` layout.

:mod:`mlcycle.explain.plots` draws shap's beeswarm, bar and waterfall plots as PNG or SVG and
adds them to an :class:`~mlcycle.reports.HtmlReport`.

``import mlcycle.explain`` loads none of xgboost, shap, matplotlib, pandas or NumPy; they load
when a function needs them.
"""

from mlcycle.explain._model import load_model
from mlcycle.explain.plots import add_report_section, plot_bar, plot_beeswarm, plot_waterfall
from mlcycle.explain.tree import (
    AGGREGATIONS,
    DEFAULT_BATCH_SIZE,
    AdditivityError,
    Explanation,
    RowExplanation,
    explain,
)

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_BATCH_SIZE",
    "AdditivityError",
    "Explanation",
    "RowExplanation",
    "add_report_section",
    "explain",
    "load_model",
    "plot_bar",
    "plot_beeswarm",
    "plot_waterfall",
]
