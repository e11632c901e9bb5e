"""Pictures of an :class:`~mlcycle.explain.Explanation`, drawn by shap on matplotlib.

:func:`plot_beeswarm` (the summary plot), :func:`plot_bar` (global importance) and
:func:`plot_waterfall` (one row) save PNG or SVG files, chosen by the path's suffix, atomically.
:func:`add_report_section` puts the same pictures, inline, into a
:class:`~mlcycle.reports.HtmlReport` (no network, no JavaScript).

shap draws through ``matplotlib.pyplot``. Each picture is drawn on a new figure that is closed
as soon as it is saved, so nothing is ever shown; when no pyplot figure is open, pyplot is
switched to the non-interactive Agg backend for the drawing and switched back afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcycle._atomic import atomic_write_bytes
from mlcycle.errors import SpecValidationError
from mlcycle.explain._deps import import_pyplot, import_shap
from mlcycle.explain.tree import AGGREGATIONS, Explanation

if TYPE_CHECKING:  # pragma: no cover
    from mlcycle.reports import HtmlReport

__all__ = ["add_report_section", "plot_bar", "plot_beeswarm", "plot_waterfall", "render"]

_FORMATS = {".png": "png", ".svg": "svg"}
# No date (reproducible files) and no RDF block with its namespace links.
_SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
_AXIS_LABELS = {
    "mean_abs": "mean(|SHAP value|)",
    "median": "median(SHAP value)",
    "mean_sq": "mean(SHAP value^2)",
}


@contextlib.contextmanager
def _agg_pyplot() -> Iterator[Any]:
    """Yield pyplot, on the Agg backend unless the caller has figures open on another one."""
    plt = import_pyplot()
    import matplotlib

    previous = matplotlib.get_backend()
    switch = previous.lower() != "agg" and not plt.get_fignums()
    if switch:
        plt.switch_backend("agg")
    try:
        yield plt
    finally:
        if switch:
            plt.switch_backend(previous)


def render(draw: Callable[[], Any], fmt: str) -> bytes:
    """Run ``draw()`` (a shap plot call) on a new figure and return the image bytes.

    Parameters
    ----------
    draw : callable
        Draws on pyplot's current figure, e.g. ``lambda: shap.plots.bar(e, show=False)``.
    fmt : {"png", "svg"}
        The image format.

    Returns
    -------
    bytes
        The PNG or SVG document.
    """
    if fmt not in _FORMATS.values():
        raise SpecValidationError(f"format must be 'png' or 'svg', not {fmt!r}", field="fmt")
    buffer = io.BytesIO()
    with _agg_pyplot() as plt:
        before = set(plt.get_fignums())
        try:
            plt.figure()
            draw()
            figure = plt.gcf()  # shap sizes (and may replace) the current figure
            metadata = _SVG_METADATA if fmt == "svg" else {"Software": None}
            figure.savefig(buffer, format=fmt, bbox_inches="tight", dpi=110, metadata=metadata)
        finally:
            for number in set(plt.get_fignums()) - before:
                plt.close(number)
    return buffer.getvalue()


def _format_of(path: Path) -> str:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SpecValidationError(
            f"{str(path)!r}: the suffix must be .png or .svg", field="path"
        )
    return fmt


def _shap_explanation(explanation: Explanation, rows: Any = None) -> Any:
    """A ``shap.Explanation`` of a single-output explanation (optionally of some rows)."""
    import numpy as np

    shap = import_shap()
    values = explanation.contributions if rows is None else explanation.contributions[rows]
    frame = explanation.data if rows is None else explanation.data.iloc[rows]
    return shap.Explanation(
        values=np.asarray(values, dtype=np.float64),
        base_values=np.full(len(values), float(explanation.base_value)),
        data=_numeric(frame),
        feature_names=list(explanation.feature_names),
    )


def _numeric(frame: Any) -> Any:
    """Feature values as floats for colouring (categories become their codes)."""
    import numpy as np
    import pandas as pd

    columns = []
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = column.cat.codes.to_numpy(dtype=np.float64)
            codes[codes < 0] = np.nan
            columns.append(codes)
        else:
            columns.append(column.to_numpy(dtype=np.float64, na_value=np.nan))
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


def _sample_rows(n_rows: int, max_rows: int | None, seed: int) -> Any:
    import numpy as np

    if max_rows is None or n_rows <= max_rows:
        return None
    if max_rows < 1:
        raise SpecValidationError(f"max_rows must be positive, not {max_rows}", field="max_rows")
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=max_rows, replace=False))


def _draw_beeswarm(
    explanation: Explanation, *, output: int | str | None, max_display: int, max_rows: int | None,
    seed: int,
) -> Callable[[], Any]:
    single = explanation._single(output)
    rows = _sample_rows(single.n_rows, max_rows, seed)
    shap_exp = _shap_explanation(single, rows)
    shap = import_shap()
    return lambda: shap.plots.beeswarm(shap_exp, max_display=max_display, show=False)


def _draw_bar(
    explanation: Explanation, *, method: str, output: int | str | None, max_display: int
) -> Callable[[], Any]:
    import numpy as np

    shap = import_shap()
    importance = explanation.global_importance(method, output=output)
    shap_exp = shap.Explanation(
        values=importance.to_numpy(dtype=np.float64), feature_names=list(importance.index)
    )

    def draw() -> None:
        shap.plots.bar(shap_exp, max_display=max_display, show=False)
        import matplotlib.pyplot as plt

        plt.gca().set_xlabel(_AXIS_LABELS[method])

    return draw


def _draw_waterfall(
    explanation: Explanation, key: Any, *, label: Hashable | None, output: int | str | None,
    max_display: int,
) -> Callable[[], Any]:
    shap = import_shap()
    single = explanation._single(output)
    position = single._position(key, label)
    shap_exp = _shap_explanation(single, [position])[0]
    return lambda: shap.plots.waterfall(shap_exp, max_display=max_display, show=False)


def _save(draw: Callable[[], Any], path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    fmt = _format_of(path)
    atomic_write_bytes(path, render(draw, fmt))
    return path


def plot_beeswarm(
    explanation: Explanation,
    path: str | os.PathLike[str],
    *,
    output: int | str | None = None,
    max_display: int = 20,
    max_rows: int | None = 10_000,
    seed: int = 0,
) -> Path:
    """Save shap's summary (beeswarm) plot: one dot per row and feature, coloured by value.

    Parameters
    ----------
    explanation : mlcycle.explain.Explanation
        What to draw.
    path : path-like
        A ``.png`` or ``.svg`` file, written atomically.
    output : int or str, optional
        Which output; required when the model has several.
    max_display : int
        Features shown; the rest are summed into one row.
    max_rows : int or None
        Draw at most this many rows, a seeded random sample (the picture of 10,000 dots looks
        like that of a million, at a fraction of the time and size). ``None`` draws all.
    seed : int
        Seed of the sample.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    return _save(
        _draw_beeswarm(explanation, output=output, max_display=max_display, max_rows=max_rows,
                       seed=seed),
        path,
    )


def plot_bar(
    explanation: Explanation,
    path: str | os.PathLike[str],
    *,
    method: str = "mean_abs",
    output: int | str | None = None,
    max_display: int = 20,
) -> Path:
    """Save a bar plot of the global importance, one bar per feature.

    The values are :meth:`~mlcycle.explain.Explanation.global_importance` in ``method``.

    Parameters
    ----------
    explanation : mlcycle.explain.Explanation
        What to draw.
    path : path-like
        A ``.png`` or ``.svg`` file, written atomically.
    method : {"mean_abs", "median", "mean_sq"}
        The aggregation.
    output : int or str, optional
        Which output; required when the model has several.
    max_display : int
        Features shown; the rest are summed into one bar.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    return _save(
        _draw_bar(explanation, method=method, output=output, max_display=max_display), path
    )


def plot_waterfall(
    explanation: Explanation,
    path: str | os.PathLike[str],
    key: Any = None,
    *,
    label: Hashable | None = None,
    output: int | str | None = None,
    max_display: int = 12,
) -> Path:
    """Save shap's waterfall plot of one row: from the base value to the row's prediction.

    Parameters
    ----------
    explanation : mlcycle.explain.Explanation
        What to draw.
    path : path-like
        A ``.png`` or ``.svg`` file, written atomically.
    key : int, sequence of bool or object, optional
        The row, as :meth:`~mlcycle.explain.Explanation.row` takes it.
    label : object, optional
        The row's index label instead.
    output : int or str, optional
        Which output; required when the model has several.
    max_display : int
        Features shown; the rest are summed into one bar.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    return _save(
        _draw_waterfall(explanation, key, label=label, output=output, max_display=max_display),
        path,
    )


def _inline(image: bytes, fmt: str) -> str:
    """An ``<svg>`` element for an HTML page: the SVG itself, or the PNG inside an SVG."""
    if fmt == "svg":
        text = image.decode()
        return text[text.index("<svg"):]
    import struct

    width, height = struct.unpack(">II", image[16:24])  # the PNG's IHDR chunk
    data = base64.b64encode(image).decode("ascii")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'<image width="{width}" height="{height}" href="data:image/png;base64,{data}"/></svg>'
    )


def add_report_section(
    report: HtmlReport,
    explanation: Explanation,
    *,
    key: Any = None,
    label: Hashable | None = None,
    output: int | str | None = None,
    title: str = "Explanations",
    max_display: int = 15,
    max_rows: int | None = 5_000,
    image_format: str = "png",
) -> None:
    """Add a section about ``explanation`` to an HTML report, pictures inline.

    The section has a heading, a note (rows, base value, device), a table of the global
    importance in all three aggregations, the beeswarm and bar plots and, when a row is named,
    that row's waterfall plot.

    Parameters
    ----------
    report : mlcycle.reports.HtmlReport
        The report to add to.
    explanation : mlcycle.explain.Explanation
        What to show.
    key : int, sequence of bool or object, optional
        A row to show as a waterfall, as :meth:`~mlcycle.explain.Explanation.row` takes it.
    label : object, optional
        That row's index label instead.
    output : int or str, optional
        Which output; required when the model has several.
    title : str
        The section heading.
    max_display : int
        Features per picture and rows of the table.
    max_rows : int or None
        Rows drawn in the beeswarm (a seeded sample).
    image_format : {"png", "svg"}
        ``"png"`` embeds each picture as a base64 PNG inside a small SVG element (compact);
        ``"svg"`` embeds matplotlib's SVG itself (sharp, but large for a beeswarm).
    """
    if image_format not in _FORMATS.values():
        raise SpecValidationError(
            f"image_format must be 'png' or 'svg', not {image_format!r}", field="image_format"
        )
    single = explanation._single(output)
    name = single.output_names[0]
    report.heading(title if explanation.n_outputs == 1 else f"{title}: {name}")
    report.paragraph(
        f"Exact TreeSHAP contributions of {single.n_rows:,} rows x {single.n_features} features "
        f"({explanation.objective}, computed on {explanation.device}); base value "
        f"{float(single.base_value):.6g} in raw-margin units."
    )
    tables = {m: single.global_importance(m) for m in AGGREGATIONS}
    order = tables["mean_abs"].index[:max_display]
    report.table(
        [[feature, *(float(tables[m][feature]) for m in AGGREGATIONS)] for feature in order],
        header=["feature", *AGGREGATIONS],
    )
    pictures = [
        render(_draw_beeswarm(single, output=None, max_display=max_display, max_rows=max_rows,
                              seed=0), image_format),
        render(_draw_bar(single, method="mean_abs", output=None, max_display=max_display),
               image_format),
    ]
    report.svg(*(_inline(p, image_format) for p in pictures))
    if key is not None or label is not None:
        row = single.row(key, label=label)
        report.paragraph(
            f"Row {row.label} (position {row.position}): prediction "
            f"{row.prediction:.6g} = base {row.base_value:.6g} + contributions "
            f"{float(row.contributions.sum()):.6g}."
        )
        waterfall = render(
            _draw_waterfall(single, key, label=label, output=None, max_display=max_display),
            image_format,
        )
        report.svg(_inline(waterfall, image_format))
