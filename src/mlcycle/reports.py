"""Self-contained HTML reports with charts drawn as inline SVG (no JavaScript, no network).

Components build their reports (a flow run, a training job, a monitoring run) from these
pieces; a report is one file that opens in any browser.

Examples
--------
>>> from mlcycle.reports import HtmlReport, bar_chart
>>> report = HtmlReport("Demo")
>>> report.heading("Counts")
>>> report.svg(bar_chart(["a", "b"], [3, 5], title="letters"))
>>> "<svg" in report.to_html()
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from mlcycle._atomic import atomic_write_bytes

__all__ = ["HtmlReport", "bar_chart", "histogram", "line_chart"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#111827}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #e5e7eb}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
td,th{border:1px solid #e5e7eb;padding:3px 8px;text-align:right}th{background:#f9fafb}
td:first-child,th:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:12px}
.note{color:#4b5563}
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str = "",
    width: int = 420,
    bar_height: int = 18,
    color: str = "#3b82f6",
) -> str:
    """Draw a horizontal bar chart as SVG.

    Parameters
    ----------
    labels : sequence of str
        One label per bar.
    values : sequence of float
        Bar lengths (non-negative).
    title : str
        Caption above the bars.
    width, bar_height : int
        Size in pixels.
    color : str
        Bar color.

    Returns
    -------
    str
        An ``<svg>`` element.
    """
    label_w, top = 150, 24 if title else 6
    height = top + len(values) * (bar_height + 4) + 6
    peak = max((float(v) for v in values), default=0.0) or 1.0
    span = width - label_w - 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">'
    ]
    if title:
        parts.append(f'<text x="4" y="15" font-size="13" font-weight="bold">{escape(title)}</text>')
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * (bar_height + 4)
        w = max(0.0, float(value)) / peak * span
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_height - 5}" text-anchor="end">'
            f"{escape(str(label))[:24]}</text>"
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_height}" fill="{color}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + bar_height - 5}">{_fmt(value)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram(
    values: Sequence[float],
    *,
    bins: int = 20,
    title: str = "",
    width: int = 360,
    height: int = 170,
    color: str = "#10b981",
) -> str:
    """Draw a histogram of numeric values as SVG (NaN values are left out).

    Parameters
    ----------
    values : sequence of float
        The data.
    bins : int
        Number of equal-width bins.
    title : str
        Caption.
    width, height : int
        Size in pixels.
    color : str
        Bar color.

    Returns
    -------
    str
        An ``<svg>`` element.
    """
    import numpy as np

    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    counts, edges = np.histogram(data, bins=bins) if data.size else (np.zeros(bins), [0.0, 1.0])
    top, bottom, left = 22, 18, 6
    plot_h = height - top - bottom
    bar_w = (width - 2 * left) / max(len(counts), 1)
    peak = counts.max() if len(counts) and counts.max() > 0 else 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="10">',
        f'<text x="4" y="14" font-size="12" font-weight="bold">{escape(title)}</text>',
    ]
    for i, count in enumerate(counts):
        h = count / peak * plot_h
        parts.append(
            f'<rect x="{left + i * bar_w:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}" fill="{color}">'
            f"<title>{_fmt(float(edges[i]))} to {_fmt(float(edges[i + 1]))}: {int(count)}"
            "</title></rect>"
        )
    parts.append(
        f'<text x="{left}" y="{height - 4}">{_fmt(float(edges[0]))}</text>'
        f'<text x="{width - left}" y="{height - 4}" text-anchor="end">'
        f"{_fmt(float(edges[-1]))}</text></svg>"
    )
    return "".join(parts)


_LINE_COLORS = ("#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#6b7280")


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str = "",
    width: int = 420,
    height: int = 220,
    x_label: str = "",
) -> str:
    """Draw one or more lines of ``(x, y)`` points as SVG, with a legend (learning curves).

    Parameters
    ----------
    series : mapping
        Line name to its points, ``x`` ascending (non-finite ``y`` values are left out).
    title : str
        Caption.
    width, height : int
        Size in pixels.
    x_label : str
        Caption of the x axis.

    Returns
    -------
    str
        An ``<svg>`` element.
    """
    import math

    lines = {name: [(float(x), float(y)) for x, y in points if math.isfinite(float(y))]
             for name, points in series.items()}
    xs = [x for points in lines.values() for x, _ in points]
    ys = [y for points in lines.values() for _, y in points]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    left, right, top, bottom = 52, 10, 24, 34
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="10">',
        f'<text x="4" y="14" font-size="12" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#d1d5db"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{_fmt(y1)}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">{_fmt(y0)}</text>',
        f'<text x="{left}" y="{height - 20}">{_fmt(x0)}</text>',
        f'<text x="{left + plot_w}" y="{height - 20}" text-anchor="end">{_fmt(x1)}</text>',
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 20}" text-anchor="middle">'
        f"{escape(x_label)}</text>",
    ]
    for i, (name, points) in enumerate(lines.items()):
        color = _LINE_COLORS[i % len(_LINE_COLORS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                     f'stroke-width="1.5"><title>{escape(name)}</title></polyline>')
        lx = left + i * 120
        parts.append(f'<rect x="{lx}" y="{height - 12}" width="10" height="3" fill="{color}"/>'
                     f'<text x="{lx + 14}" y="{height - 8}">{escape(name)[:20]}</text>')
    parts.append("</svg>")
    return "".join(parts)


class HtmlReport:
    """An HTML report built piece by piece and saved atomically as one file.

    Parameters
    ----------
    title : str
        The page title.
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self._parts: list[str] = []

    def heading(self, text: str) -> None:
        """Add a section heading."""
        self._parts.append(f"<h2>{escape(text)}</h2>")

    def paragraph(self, text: str) -> None:
        """Add a paragraph of text."""
        self._parts.append(f'<p class="note">{escape(text)}</p>')

    def svg(self, *svgs: str) -> None:
        """Add one or more SVG pictures side by side."""
        self._parts.append('<div class="charts">' + "".join(svgs) + "</div>")

    def table(self, rows: Sequence[Sequence[Any]], *, header: Sequence[str]) -> None:
        """Add a table.

        Parameters
        ----------
        rows : sequence of sequences
            The cells, row by row.
        header : sequence of str
            Column titles.
        """
        head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
        )
        self._parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def to_html(self) -> str:
        """Return the whole page."""
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(self.title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{escape(self.title)}</h1>" + "\n".join(self._parts) + "</body></html>\n"
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the page to ``path`` atomically and return the path."""
        path = Path(path)
        atomic_write_bytes(path, self.to_html().encode())
        return path
