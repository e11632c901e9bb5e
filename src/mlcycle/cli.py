"""The ``mlcycle`` command line (also ``python -m mlcycle``).

Exit codes: 0 success, 1 unexpected error, 2 invalid input or configuration, 3 not found,
4 a backend failure, 5 refused in the current state (for example by a promotion hook).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlcycle.errors import (
    BackendError,
    ConfigurationError,
    InvalidStateError,
    MlcycleError,
    NotFoundError,
    SpecValidationError,
)

__all__ = ["main"]


def _pairs(values: Sequence[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or ():
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise SpecValidationError(f"{what} must be NAME=PATH, not {item!r}", field=what)
        out[name] = path
    return out


def _cmd_version(args: argparse.Namespace) -> int:
    from mlcycle import __version__

    print(__version__)
    return 0


def _cmd_backends(args: argparse.Namespace) -> int:
    from mlcycle.backends import known_schemes

    for scheme in known_schemes():
        print(scheme)
    return 0


def _cmd_flow_show(args: argparse.Namespace) -> int:
    from mlcycle.flow import Flow

    flow = Flow.load(args.flow)
    if args.svg:
        from mlcycle._atomic import atomic_write_bytes

        atomic_write_bytes(args.svg, flow.to_svg().encode())
        print(f"wrote {args.svg}")
    elif args.dot:
        sys.stdout.write(flow.to_dot())
    else:
        print(f"flow {flow.name}: {len(flow.sources)} sources, {len(flow.steps)} steps")
        for name in flow.order():
            node = flow.node(name)
            reads = f" <- {', '.join(node.inputs)}" if node.inputs else ""
            print(f"  {node.kind:<15} {name}{reads}")
        print(f"outputs: {', '.join(flow.output_names)}; fitted: {flow.is_fitted}")
    return 0


def _cmd_flow_run(args: argparse.Namespace) -> int:
    from mlcycle.flow import Flow
    from mlcycle.progress import TerminalProgress

    flow = Flow.load(args.flow)
    sources = _pairs(args.source, "source")
    targets = _pairs(args.output, "output")
    if not flow.is_fitted:
        flow = flow.fit(sources)
        if args.save_fitted:
            flow.save(args.save_fitted)
    progress = TerminalProgress()
    backend = None
    if args.backend:
        import mlcycle

        backend = mlcycle.connect(args.backend)
    with flow.run(sources, outputs=list(targets) or None, progress=progress,
                  backend=backend) as run:
        for name, path in targets.items():
            run.write(name, path)
            print(f"{name}: {run.count(name)} rows x {len(run.columns(name))} columns -> {path}")
        if not targets:
            for name in flow.output_names:
                print(f"{name}: {run.count(name)} rows x {len(run.columns(name))} columns")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlcycle", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the version").set_defaults(func=_cmd_version)
    sub.add_parser("backends", help="list backend URI schemes").set_defaults(func=_cmd_backends)
    flow = sub.add_parser("flow", help="data-prep flows").add_subparsers(
        dest="flow_command", required=True
    )
    show = flow.add_parser("show", help="describe a flow, or draw it")
    show.add_argument("flow", help="a flow JSON file")
    show.add_argument("--dot", action="store_true", help="print Graphviz DOT")
    show.add_argument("--svg", metavar="FILE", help="write an SVG picture")
    show.set_defaults(func=_cmd_flow_show)
    run = flow.add_parser("run", help="run a flow and write its outputs")
    run.add_argument("flow", help="a flow JSON file")
    run.add_argument("--source", action="append", metavar="NAME=PATH", help="bind a source")
    run.add_argument(
        "--output", action="append", metavar="NAME=PATH", help="write a table (.parquet/.csv)"
    )
    run.add_argument("--save-fitted", metavar="FILE", help="save the fitted flow here")
    run.add_argument("--backend", metavar="URI", default=None,
                     help="record the run's lineage in this backend (default: none)")
    run.set_defaults(func=_cmd_flow_run)
    from mlcycle.cli_registry import add_lineage_commands, add_registry_commands

    add_registry_commands(sub)
    add_lineage_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code.
    """
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except NotFoundError as exc:
        print(f"mlcycle: not found: {exc}", file=sys.stderr)
        return 3
    except (SpecValidationError, ConfigurationError) as exc:
        print(f"mlcycle: invalid input: {exc}", file=sys.stderr)
        return 2
    except BackendError as exc:
        print(f"mlcycle: backend failure: {exc}", file=sys.stderr)
        return 4
    except InvalidStateError as exc:
        print(f"mlcycle: refused: {exc}", file=sys.stderr)
        return 5
    except MlcycleError as exc:
        print(f"mlcycle: {exc}", file=sys.stderr)
        return 1
