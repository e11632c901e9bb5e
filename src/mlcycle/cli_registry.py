"""The ``mlcycle registry`` and ``mlcycle lineage`` subcommands.

Each command takes ``--backend URI`` (default: the ``MLCYCLE_BACKEND`` environment variable,
then ``local://./.mlcycle``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from mlcycle.lineage import LineageGraph
    from mlcycle.registry import ModelVersion

__all__ = ["add_lineage_commands", "add_registry_commands"]


def _backend(args: argparse.Namespace) -> Any:
    import mlcycle

    return mlcycle.connect(args.backend)


def _client(args: argparse.Namespace) -> Any:
    from mlcycle.registry import RegistryClient

    return RegistryClient(_backend(args))


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _version_arg(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _print_graph(graph: LineageGraph) -> None:
    names = {v.arn: v.label for v in graph.vertices}
    for v in graph.vertices:
        extra = f"  {v.source_uri}" if v.source_uri else ""
        print(f"  {v.kind.value:<8} {v.label}{extra}")
    if graph.edges:
        print("edges:")
        for e in graph.edges:
            print(f"  {names[e.source_arn]} --{e.type.value}--> {names[e.destination_arn]}")


def _write_picture(graph: LineageGraph, path: str) -> None:
    from mlcycle._atomic import atomic_write_bytes

    atomic_write_bytes(path, graph.to_svg().encode())
    print(f"wrote {path}")


# -- registry -------------------------------------------------------------------------------------
def _cmd_groups(args: argparse.Namespace) -> int:
    groups = _client(args).list_groups(name_contains=args.contains)
    for g in groups:
        print(f"{g.name:<40} {_when(g.created_at)}  {g.description}")
    if not groups:
        print("no model package groups")
    return 0


def _row(v: ModelVersion) -> str:
    metrics = ", ".join(f"{k}={val:.4g}" for k, val in sorted(v.metrics.items())[:3])
    aliases = f" [{', '.join(v.aliases)}]" if v.aliases else ""
    return (f"{v.version:>5}  {v.approval_status.value:<21} {_when(v.created_at)}  "
            f"{metrics}{aliases}")


def _cmd_versions(args: argparse.Namespace) -> int:
    versions = _client(args).list_versions(args.group, status=args.status,
                                           ascending=args.ascending, limit=args.limit)
    print(f"{'version':>7}  {'status':<21} {'registered (UTC)':<19}  metrics")
    for v in versions:
        print("  " + _row(v))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    client = _client(args)
    v = client.get_version(args.group, _version_arg(args.version))
    print(f"{v.group} version {v.version}  ({v.arn})")
    print(f"  status      {v.approval_status.value} by {v.status_changed_by} at "
          f"{_when(v.status_changed_at)}" + (f": {v.status_reason}" if v.status_reason else ""))
    print(f"  registered  {_when(v.created_at)} by {v.created_by}")
    print(f"  model       {v.model_uri}")
    print(f"  digest      {v.model_digest}")
    if v.source:
        print(f"  source      training job {v.source}")
    if v.aliases:
        print(f"  aliases     {', '.join(v.aliases)}")
    for name, value in sorted(v.metrics.items()):
        print(f"  metric      {name} = {value:.6g}")
    if args.lineage or args.svg:
        graph = client.lineage(v.group, v.version, max_depth=args.depth)
        print(f"lineage ({len(graph.vertices)} entities, {len(graph.edges)} edges):")
        _print_graph(graph)
        if args.svg:
            _write_picture(graph, args.svg)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    client = _client(args)
    change = client.approve if args.registry_command == "approve" else client.reject
    v = change(args.group, _version_arg(args.version), reason=args.reason, by=args.by)
    print(f"{v.group} version {v.version}: {v.approval_status.value}")
    return 0


def _cmd_alias(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.remove:
        client.remove_alias(args.group, args.alias, reason=args.reason, by=args.by)
        print(f"{args.group}: alias {args.alias} removed")
        return 0
    if args.version is None:
        v = client.get_version(args.group, args.alias)
        print(f"{args.group}: {args.alias} -> version {v.version}")
        return 0
    v = client.set_alias(args.group, args.alias, _version_arg(args.version), reason=args.reason,
                         by=args.by)
    print(f"{args.group}: {args.alias} -> version {v.version}")
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    version = int(args.version) if args.version is not None else None
    for e in _client(args).history(args.group, version=version):
        what = f"alias {e.alias}: " if e.alias else ""
        target = f"v{e.version} " if e.version is not None else ""
        change = f"{e.old} -> {e.new}" if e.old is not None else (e.new or "")
        reason = f"  ({e.reason})" if e.reason else ""
        print(f"{e.sequence:>5}  {_when(e.at)}  {e.actor:<12} {e.event:<13} {target}{what}"
              f"{change}{reason}")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", metavar="URI", default=None,
                        help="backend URI (default: $MLCYCLE_BACKEND, then local://./.mlcycle)")


def add_registry_commands(sub: Any) -> None:
    """Add ``registry groups|versions|show|approve|reject|alias|history``."""
    registry = sub.add_parser("registry", help="the model registry").add_subparsers(
        dest="registry_command", required=True)
    groups = registry.add_parser("groups", help="list model package groups")
    groups.add_argument("--contains", metavar="TEXT", help="only names containing TEXT")
    groups.set_defaults(func=_cmd_groups)
    versions = registry.add_parser("versions", help="list a group's versions, newest first")
    versions.add_argument("group")
    versions.add_argument("--status", choices=["PendingManualApproval", "Approved", "Rejected"])
    versions.add_argument("--ascending", action="store_true", help="oldest first")
    versions.add_argument("--limit", type=int, metavar="N")
    versions.set_defaults(func=_cmd_versions)
    show = registry.add_parser("show", help="show a version (a number, an alias or 'latest')")
    show.add_argument("group")
    show.add_argument("version")
    show.add_argument("--lineage", action="store_true", help="also show where it came from")
    show.add_argument("--depth", type=int, default=10, help="lineage depth (default 10)")
    show.add_argument("--svg", metavar="FILE", help="write a picture of its lineage")
    show.set_defaults(func=_cmd_show)
    for name, text in (("approve", "approve a version"), ("reject", "reject a version")):
        cmd = registry.add_parser(name, help=text)
        cmd.add_argument("group")
        cmd.add_argument("version")
        cmd.add_argument("--reason", default="", help="why (kept in the audit log)")
        cmd.add_argument("--by", default=None, help="who (default: the OS user)")
        cmd.set_defaults(func=_cmd_status)
    alias = registry.add_parser("alias", help="show, set or remove an alias")
    alias.add_argument("group")
    alias.add_argument("alias")
    alias.add_argument("version", nargs="?", help="point the alias here (omit to show it)")
    alias.add_argument("--remove", action="store_true", help="remove the alias")
    alias.add_argument("--reason", default="")
    alias.add_argument("--by", default=None)
    alias.set_defaults(func=_cmd_alias)
    history = registry.add_parser("history", help="the group's audit log, oldest first")
    history.add_argument("group")
    history.add_argument("--version", help="only events of this version")
    history.set_defaults(func=_cmd_history)
    for parser in (groups, versions, show, alias, history,
                   *(registry.choices[n] for n in ("approve", "reject"))):
        _common(parser)


# -- lineage --------------------------------------------------------------------------------------
def _cmd_lineage_show(args: argparse.Namespace) -> int:
    from mlcycle.errors import NotFoundError
    from mlcycle.lineage import LineageTracker

    tracker = LineageTracker(_backend(args))
    start = args.entity
    if "://" in start or start.startswith("flow:"):  # a source URI: its newest artifact
        found = next(iter(tracker.list("Artifact", source_uri=start)), None)
        if found is None:
            raise NotFoundError(f"no lineage artifact with source URI {start!r}",
                                kind="lineage-entity", name=start)
        start = found.arn
    graph = tracker.query(start, direction=args.direction, max_depth=args.depth)
    if args.dot:
        sys.stdout.write(graph.to_dot())
        return 0
    print(f"{args.direction.lower()} of {graph.vertices[0].label} "
          f"({len(graph.vertices)} entities, {len(graph.edges)} edges):")
    _print_graph(graph)
    if args.svg:
        _write_picture(graph, args.svg)
    return 0


def add_lineage_commands(sub: Any) -> None:
    """Add ``lineage show``."""
    lineage = sub.add_parser("lineage", help="lineage of data sets and models").add_subparsers(
        dest="lineage_command", required=True)
    show = lineage.add_parser("show", help="walk the lineage graph from an entity")
    show.add_argument("entity", help="an entity ARN, or an artifact's source URI")
    show.add_argument("--direction", default="Ascendants",
                      choices=["Ascendants", "Descendants", "Both"])
    show.add_argument("--depth", type=int, default=10)
    show.add_argument("--dot", action="store_true", help="print Graphviz DOT")
    show.add_argument("--svg", metavar="FILE", help="write an SVG picture")
    _common(show)
    show.set_defaults(func=_cmd_lineage_show)
