"""Pictures of a lineage graph: Graphviz DOT text, and SVG drawn without Graphviz.

Data flows left to right: each entity sits one column right of the entities it came from.
Artifacts are blue, actions amber, contexts green; edges are labelled with their type.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from mlcycle.lineage.entities import EntityKind

if TYPE_CHECKING:  # pragma: no cover
    from mlcycle.lineage.entities import LineageGraph

__all__ = ["graph_to_dot", "graph_to_svg"]

_FILL = {EntityKind.ARTIFACT: "#dbeafe", EntityKind.ACTION: "#fef3c7",
         EntityKind.CONTEXT: "#dcfce7"}
_SHAPE = {EntityKind.ARTIFACT: "note", EntityKind.ACTION: "box",
          EntityKind.CONTEXT: "ellipse"}


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _levels(graph: LineageGraph) -> dict[str, int]:
    """Longest-path columns; edges closing a cycle are ignored."""
    arns = [v.arn for v in graph.vertices]
    preds: dict[str, set[str]] = {a: set() for a in arns}
    succs: dict[str, set[str]] = {a: set() for a in arns}
    for e in graph.edges:
        if e.source_arn in preds and e.destination_arn in preds:
            preds[e.destination_arn].add(e.source_arn)
            succs[e.source_arn].add(e.destination_arn)
    level: dict[str, int] = {}
    indegree = {a: len(p) for a, p in preds.items()}
    ready = [a for a in arns if indegree[a] == 0]
    while True:
        while ready:
            arn = ready.pop(0)
            level[arn] = 1 + max((level[p] for p in preds[arn] if p in level), default=-1)
            for nxt in sorted(succs[arn]):
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    ready.append(nxt)
        left = [a for a in arns if a not in level]
        if not left:
            return level
        ready.append(left[0])  # break a cycle at the first entity left
        indegree[left[0]] = 0


def graph_to_dot(graph: LineageGraph) -> str:
    """Return the graph in Graphviz's DOT language.

    Parameters
    ----------
    graph : mlcycle.lineage.LineageGraph
        What a lineage query returned.

    Returns
    -------
    str
    """
    ids = {v.arn: f"n{i}" for i, v in enumerate(graph.vertices)}
    lines = ["digraph lineage {", "  rankdir=LR;",
             '  node [fontname="sans-serif", fontsize=11, style=filled];']
    for v in graph.vertices:
        label = f"{v.type}\\n{_short(v.name, 40)}".replace('"', "'")
        extra = ", penwidth=2.5" if v.arn in graph.start else ""
        lines.append(f'  {ids[v.arn]} [label="{label}", shape={_SHAPE[v.kind]}, '
                     f'fillcolor="{_FILL[v.kind]}"{extra}];')
    for e in graph.edges:
        lines.append(f'  {ids[e.source_arn]} -> {ids[e.destination_arn]} '
                     f'[label="{e.type.value}", fontsize=9];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def graph_to_svg(graph: LineageGraph, *, box_width: int = 210, box_height: int = 50,
                 title: str | None = None) -> str:
    """Draw the graph as SVG, data flowing left to right.

    Parameters
    ----------
    graph : mlcycle.lineage.LineageGraph
        What a lineage query returned.
    box_width, box_height : int
        Size of an entity's box in pixels.
    title : str, optional
        A title above the picture; default names the start entity.

    Returns
    -------
    str
        A standalone SVG document.
    """
    level = _levels(graph)
    columns: dict[int, list[str]] = {}
    for v in graph.vertices:
        columns.setdefault(level[v.arn], []).append(v.arn)
    gap_x, gap_y, margin, top = 70, 22, 20, 50
    pos: dict[str, tuple[int, int]] = {}
    for col, arns in columns.items():
        for row, arn in enumerate(arns):
            pos[arn] = (margin + col * (box_width + gap_x), top + row * (box_height + gap_y))
    ncols = max(columns, default=0) + 1
    nrows = max((len(a) for a in columns.values()), default=1)
    width = max(2 * margin + ncols * (box_width + gap_x) - gap_x, 420)
    height = top + nrows * (box_height + gap_y) + margin
    if title is None:
        first = graph.vertex(graph.start[0]) if graph.start and graph.start[0] in graph else None
        title = f"lineage of {first.label}" if first else "lineage"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        "<defs><marker id='lineage-arrow' viewBox='0 0 10 10' refX='10' refY='5' "
        "markerWidth='7' markerHeight='7' orient='auto-start-reverse'>"
        "<path d='M 0 0 L 10 5 L 0 10 z' fill='#6b7280'/></marker></defs>",
        f'<text x="{margin}" y="{margin + 12}" font-size="14" font-weight="bold">'
        f"{escape(_short(title, 90))}</text>",
    ]
    for e in graph.edges:
        if e.source_arn not in pos or e.destination_arn not in pos:
            continue
        (x1, y1), (x2, y2) = pos[e.source_arn], pos[e.destination_arn]
        if x2 > x1:
            sx, ex = x1 + box_width, x2
        else:  # a cycle or a same-column edge: loop round the right-hand side
            sx, ex = x1 + box_width, x2 + box_width
        sy, ey = y1 + box_height // 2, y2 + box_height // 2
        mid = (sx + ex) // 2 if x2 > x1 else max(sx, ex) + 40
        parts.append(
            f'<path d="M {sx} {sy} C {mid} {sy}, {mid} {ey}, {ex} {ey}" fill="none" '
            'stroke="#6b7280" stroke-width="1.3" marker-end="url(#lineage-arrow)">'
            f"<title>{escape(e.type.value)}</title></path>")
        parts.append(f'<text x="{(sx + ex) // 2 - 30}" y="{(sy + ey) // 2 - 4}" font-size="9" '
                     f'fill="#6b7280">{escape(e.type.value)}</text>')
    for v in graph.vertices:
        x, y = pos[v.arn]
        stroke = ' stroke-width="2.5"' if v.arn in graph.start else ""
        tip = "\n".join(filter(None, [v.arn, v.source_uri, v.digest, v.status]))
        parts.append(
            f'<g><title>{escape(tip)}</title><rect x="{x}" y="{y}" width="{box_width}" '
            f'height="{box_height}" rx="6" fill="{_FILL[v.kind]}" stroke="#374151"{stroke}/>'
            f'<text x="{x + 8}" y="{y + 19}" font-weight="bold">'
            f"{escape(v.kind.value)} · {escape(_short(v.type, 22))}</text>"
            f'<text x="{x + 8}" y="{y + 37}" fill="#374151">{escape(_short(v.name, 32))}'
            "</text></g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
