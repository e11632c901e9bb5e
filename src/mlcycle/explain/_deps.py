"""Lazy imports of the optional libraries that explanations use.

Nothing here runs at import time: ``import mlcycle.explain`` loads none of xgboost, shap,
matplotlib, pandas or numpy. Each helper imports its library on first use and turns a missing
installation into a :class:`~mlcycle.errors.MissingDependencyError` naming the distribution and
the extra that brings it.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

from mlcycle.errors import MissingDependencyError

__all__ = ["import_pyplot", "import_shap", "import_xgboost"]

#: The extra that brings xgboost and shap. matplotlib comes with the ``plot`` extra.
EXTRA = "explain"

# shap 0.51 calls Colormap.set_bad/set_over/set_under at import, which matplotlib 3.11 marks
# with a PendingDeprecationWarning; under ``-W error`` that would make ``import shap`` fail.
_SHAP_IMPORT_WARNINGS = r"The set_\w+ function will be deprecated"


def _import(module: str, *, package: str, extra: str, purpose: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs {package}: pip install 'mlcycle[{extra}]'",
            package=package,
            extra=extra,
        ) from exc


def import_xgboost() -> ModuleType:
    """Import and return :mod:`xgboost` (``MissingDependencyError`` if it is not installed)."""
    return _import("xgboost", package="xgboost", extra=EXTRA, purpose="Tree explanations")


def import_shap() -> ModuleType:
    """Import and return :mod:`shap`, silencing only the known import-time deprecation notes."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _SHAP_IMPORT_WARNINGS, PendingDeprecationWarning)
        return _import("shap", package="shap", extra=EXTRA, purpose="SHAP plots")


def import_pyplot() -> ModuleType:
    """Import and return :mod:`matplotlib.pyplot` (``MissingDependencyError`` if missing)."""
    return _import("matplotlib.pyplot", package="matplotlib", extra="plot", purpose="SHAP plots")
