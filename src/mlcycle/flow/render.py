"""Pictures of a flow's graph: Graphviz DOT text, and SVG drawn without Graphviz."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from mlcycle.flow.steps import (
    AddEventTime,
    Aggregate,
    Filter,
    Formula,
    Join,
    OneHotEncode,
    Source,
    Step,
)

if TYPE_CHECKING:  # pragma: no cover
    from mlcycle.flow.graph import Flow

__all__ = ["flow_to_dot", "flow_to_svg"]

_COLORS = {"source": "#dbeafe", "output": "#dcfce7", "step": "#f3f4f6"}


def _detail(node: Source | Step) -> str:
    if isinstance(node, Source):
        return f"{node.format}" + (f" · {node.path.rsplit('/', 1)[-1]}" if node.path else "")
    if isinstance(node, Formula):
        return f"{node.output} = {node.expression.text}"
    if isinstance(node, Filter):
        return node.predicate.text
    if isinstance(node, OneHotEncode):
        n = "?" if node.categories is None else str(len(node.encoded_categories()))
        return f"{node.column} → {n} columns"
    if isinstance(node, Join):
        return f"{node.how} on {', '.join(a for a, _ in node.keys)}"
    if isinstance(node, Aggregate):
        by = ", ".join(node.group_by) or "all rows"
        return f"by {by}: {len(node.aggregations)} aggregates"
    if isinstance(node, AddEventTime):
        return f"{node.output} from {node.column or node.value}"
    return ""


def _kind(node: Source | Step, outputs: tuple[str, ...]) -> str:
    if isinstance(node, Source):
        return "source"
    return "output" if node.name in outputs else "step"


def flow_to_dot(flow: Flow) -> str:
    """Return the flow's graph in Graphviz's DOT language.

    Parameters
    ----------
    flow : mlcycle.flow.Flow
        The flow to draw.

    Returns
    -------
    str
    """

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    def q(text: str) -> str:
        return f'"{esc(text)}"'

    lines = [f"digraph {q(flow.name)} {{", "  rankdir=LR;", "  node [shape=box, style=filled];"]
    outputs = flow.output_names
    for node in (*flow.sources, *flow.steps):
        # \n (kept unescaped) is DOT's line break inside a label
        label = f"{esc(node.name)}\\n{esc(node.kind)}: {esc(_detail(node))}"
        color = _COLORS[_kind(node, outputs)]
        lines.append(f'  {q(node.name)} [label="{label}", fillcolor={q(color)}];')
    for step in flow.steps:
        for name in step.inputs:
            lines.append(f"  {q(name)} -> {q(step.name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def flow_to_svg(flow: Flow, *, box_width: int = 230, box_height: int = 54) -> str:
    """Draw the flow as SVG: sources on the left, each step one column right of its inputs.

    Parameters
    ----------
    flow : mlcycle.flow.Flow
        The flow to draw.
    box_width, box_height : int
        Size of a node's box in pixels.

    Returns
    -------
    str
        A standalone SVG document.
    """
    order = flow.order()
    level: dict[str, int] = {}
    for name in order:
        node = flow.node(name)
        level[name] = 1 + max((level[i] for i in node.inputs), default=-1)
    columns: dict[int, list[str]] = {}
    for name in order:
        columns.setdefault(level[name], []).append(name)
    gap_x, gap_y, margin = 60, 24, 20
    pos: dict[str, tuple[int, int]] = {}
    for lvl, names in columns.items():
        for row, name in enumerate(names):
            x = margin + lvl * (box_width + gap_x)
            pos[name] = (x, margin + 30 + row * (box_height + gap_y))
    width = margin * 2 + len(columns) * (box_width + gap_x) - gap_x
    width = max(width, 2 * margin + box_width)  # an empty flow still gets its title
    height = (
        margin * 2 + 30 + max((len(n) for n in columns.values()), default=0) * (box_height + gap_y)
    )
    outputs = flow.output_names
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='7' "
        "markerHeight='7' orient='auto-start-reverse'><path d='M 0 0 L 10 5 L 0 10 z' "
        "fill='#6b7280'/></marker></defs>",
        f'<text x="{margin}" y="{margin + 12}" font-size="15" font-weight="bold">'
        f"flow: {escape(flow.name)}</text>",
    ]
    for step in flow.steps:
        x2, y2 = pos[step.name]
        for name in step.inputs:
            x1, y1 = pos[name]
            sx, sy = x1 + box_width, y1 + box_height // 2
            ex, ey = x2, y2 + box_height // 2
            mid = (sx + ex) // 2
            parts.append(
                f'<path d="M {sx} {sy} C {mid} {sy}, {mid} {ey}, {ex} {ey}" fill="none" '
                'stroke="#6b7280" stroke-width="1.5" marker-end="url(#arrow)"/>'
            )
    for name in order:
        node = flow.node(name)
        x, y = pos[name]
        detail = _detail(node)
        if len(detail) > 36:
            detail = detail[:35] + "…"
        parts.append(
            f'<g><title>{escape(name)}</title><rect x="{x}" y="{y}" width="{box_width}" '
            f'height="{box_height}" rx="6" fill="{_COLORS[_kind(node, outputs)]}" '
            'stroke="#374151"/>'
            f'<text x="{x + 8}" y="{y + 20}" font-weight="bold">{escape(name)}</text>'
            f'<text x="{x + 8}" y="{y + 38}" fill="#374151">{escape(node.kind)}: '
            f"{escape(detail)}</text></g>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
