"""The :class:`Flow`: a declarative, JSON-serializable graph of named steps over named sources."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from mlcycle._atomic import atomic_write_bytes
from mlcycle.errors import SpecValidationError
from mlcycle.flow.steps import (
    OneHotEncode,
    Source,
    Step,
    source_to_dict,
    step_from_dict,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from mlcycle.backends.base import Backend
    from mlcycle.flow.engine import FlowRun, SourceData
    from mlcycle.progress import ProgressCallback

__all__ = ["FORMAT", "Flow"]

#: The ``format`` tag of a flow's JSON document.
FORMAT = "mlcycle.flow/1"


def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class Flow:
    """A data-prep flow: named sources, named steps reading them, and the outputs wanted.

    A flow is data: it is validated when built (unique names, known inputs, no cycles, valid
    expressions), compares by value, and round-trips exactly through :meth:`to_json`.
    Fitted state (one-hot categories) is learned by :meth:`fit` and saved with the flow.

    Parameters
    ----------
    name : str
        The flow's name.
    sources : sequence of Source
        The input tables.
    steps : sequence of Step
        The transforms, in any order (they are run in dependency order).
    outputs : sequence of str, optional
        The tables a run produces (default: every step no other step reads).
    description : str
        Free text.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlcycle.flow import Flow, Source, Formula, Filter
    >>> flow = Flow(
    ...     name="demo",
    ...     sources=[Source(name="t", format="dataframe")],
    ...     steps=[
    ...         Formula(name="scored", input="t", output="score", expression="2 * x + 1"),
    ...         Filter(name="big", input="scored", predicate="score > 4"),
    ...     ],
    ... )
    >>> flow.transform({"t": pd.DataFrame({"x": [1, 2, 3]})})
       x  score
    0  2      5
    1  3      7
    >>> Flow.from_json(flow.to_json()) == flow
    True
    """

    name: str
    sources: tuple[Source, ...] = attrs.field(factory=tuple, converter=_tuple)
    steps: tuple[Step, ...] = attrs.field(factory=tuple, converter=_tuple)
    outputs: tuple[str, ...] = attrs.field(factory=tuple, converter=_tuple)
    description: str = ""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SpecValidationError("a flow needs a name", field="name")
        seen: set[str] = set()
        for node in (*self.sources, *self.steps):
            if not isinstance(node, Source | Step):
                raise SpecValidationError(f"{node!r} is not a Source or Step", field="steps")
            if node.name in seen:
                raise SpecValidationError(
                    f"two sources or steps are named {node.name!r}", field="name", step=node.name
                )
            seen.add(node.name)
        for step in self.steps:
            for field, name in zip(step.input_fields(), step.inputs, strict=True):
                if name not in seen:
                    raise SpecValidationError(
                        f"step {step.name!r} reads {name!r}, which is no source or step",
                        field=field,
                        step=step.name,
                    )
        for name in self.outputs:
            if name not in seen:
                raise SpecValidationError(
                    f"output {name!r} is no source or step", field="outputs", step=name
                )
        self.order()  # raises on a cycle

    # -- the graph -------------------------------------------------------------------------
    def node(self, name: str) -> Source | Step:
        """Return the source or step called ``name``.

        Raises
        ------
        SpecValidationError
            If there is none.
        """
        for node in (*self.sources, *self.steps):
            if node.name == name:
                return node
        raise SpecValidationError(f"flow {self.name!r} has no step {name!r}", field="name")

    def order(self) -> tuple[str, ...]:
        """Return every source and step name in dependency order (inputs first).

        Raises
        ------
        SpecValidationError
            If the steps form a cycle; the error names a step on it.
        """
        steps = {s.name: s for s in self.steps}
        order: list[str] = [s.name for s in self.sources]
        done = set(order)
        for start in self.steps:
            if start.name in done:
                continue
            # depth-first, with an explicit stack (a long chain of steps must not overflow
            # Python's recursion limit); each entry is a step and how many inputs it has left
            path: list[str] = [start.name]
            on_path = {start.name}
            pending: list[int] = [0]
            while path:
                name = path[-1]
                step = steps[name]
                i = pending[-1]
                if i == len(step.inputs):
                    on_path.discard(path.pop())
                    pending.pop()
                    done.add(name)
                    order.append(name)
                    continue
                pending[-1] = i + 1
                dep = step.inputs[i]
                if dep in done:
                    continue
                if dep in on_path:
                    cycle = [*path[path.index(dep) :], dep]
                    raise SpecValidationError(
                        f"the steps form a cycle: {' -> '.join(cycle)}",
                        field=step.input_fields()[i],
                        step=name,
                    )
                path.append(dep)
                on_path.add(dep)
                pending.append(0)
        return tuple(order)

    @property
    def output_names(self) -> tuple[str, ...]:
        """Names of the tables a run produces (``outputs``, else every step no step reads)."""
        if self.outputs:
            return self.outputs
        read = {name for step in self.steps for name in step.inputs}
        return tuple(s.name for s in self.steps if s.name not in read) or tuple(
            s.name for s in self.sources
        )

    @property
    def local_only(self) -> bool:
        """Whether a step runs user Python code (and so the flow runs only locally)."""
        return any(step.local_only for step in self.steps)

    @property
    def is_fitted(self) -> bool:
        """Whether every step that learns state (one-hot categories) has learned it."""
        return all(
            step.categories is not None for step in self.steps if isinstance(step, OneHotEncode)
        )

    def add(self, *steps: Step | Source) -> Flow:
        """Return a copy of the flow with more steps or sources."""
        sources = [s for s in steps if isinstance(s, Source)]
        others = [s for s in steps if not isinstance(s, Source)]
        return attrs.evolve(self, sources=(*self.sources, *sources), steps=(*self.steps, *others))

    def replace_step(self, step: Step) -> Flow:
        """Return a copy with the step of the same name replaced by ``step``.

        Raises
        ------
        SpecValidationError
            If the flow has no step of that name (a source is not replaced by a step).
        """
        if not any(s.name == step.name for s in self.steps):
            raise SpecValidationError(
                f"flow {self.name!r} has no step {step.name!r}", field="name", step=step.name
            )
        return attrs.evolve(
            self, steps=tuple(step if s.name == step.name else s for s in self.steps)
        )

    # -- serialization ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form of the flow."""
        return {
            "format": FORMAT,
            "name": self.name,
            "description": self.description,
            "sources": [source_to_dict(s) for s in self.sources],
            "steps": [s.to_dict() for s in self.steps],
            "outputs": list(self.outputs),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Flow:
        """Build a flow from :meth:`to_dict`'s form.

        Raises
        ------
        SpecValidationError
            If the document is not a flow, or a step is invalid.
        """
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise SpecValidationError(f"not an {FORMAT} document", field="format")
        unknown = set(data) - {"format", "name", "description", "sources", "steps", "outputs"}
        if unknown:
            raise SpecValidationError(f"unknown flow field(s) {sorted(unknown)}", field="format")
        sources = [step_from_dict(s) for s in data.get("sources", [])]
        steps = [step_from_dict(s) for s in data.get("steps", [])]
        for node in sources:
            if not isinstance(node, Source):
                raise SpecValidationError("a step is listed among sources", step=node.name)
        for node in steps:
            if isinstance(node, Source):
                raise SpecValidationError("a source is listed among steps", step=node.name)
        return cls(
            name=data.get("name", ""),
            description=data.get("description", ""),
            sources=sources,
            steps=steps,
            outputs=data.get("outputs", ()),
        )

    def to_json(self, *, indent: int | None = 2) -> str:
        """Return the flow as JSON text; ``Flow.from_json(f.to_json()) == f``."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Flow:
        """Build a flow from JSON text.

        Raises
        ------
        SpecValidationError
            If the text is not JSON or not a valid flow.
        """
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise SpecValidationError(f"not JSON: {exc}", field="format") from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the flow's JSON to ``path`` atomically and return the path."""
        path = Path(path)
        atomic_write_bytes(path, self.to_json().encode())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Flow:
        """Read a flow saved by :meth:`save`."""
        return cls.from_json(Path(path).read_bytes())

    # -- running ---------------------------------------------------------------------------
    def run(
        self,
        sources: Mapping[str, SourceData] | None = None,
        *,
        outputs: Sequence[str] | None = None,
        backend: Backend | None = None,
        progress: ProgressCallback | None = None,
    ) -> FlowRun:
        """Plan the flow on DuckDB and return a :class:`~mlcycle.flow.engine.FlowRun`.

        Every column reference is checked against the real input schemas before any data is
        read in bulk or written. Use the run as a context manager and take outputs from it
        with ``to_pandas``, ``to_arrow``, ``to_parquet`` or ``to_csv``.

        Parameters
        ----------
        sources : mapping, optional
            Data bound to sources by name: a path, a pandas DataFrame or a pyarrow Table.
            Sources not bound are read from their ``path``.
        outputs : sequence of str, optional
            The tables wanted (default: :attr:`output_names`).
        backend : mlcycle.Backend, optional
            When given, the flow's steps must be supported by it (Python steps are local-only).
        progress : callable, optional
            ``progress(stage, done, total)``, called as steps are planned and outputs written.

        Raises
        ------
        SpecValidationError
            A missing column, an unknown type, a formula naming an unknown column.
        InvalidStateError
            If the flow has one-hot steps that were not fitted.
        """
        from mlcycle.flow.engine import FlowRun

        return FlowRun.start(
            self, sources or {}, outputs=outputs, backend=backend, progress=progress
        )

    def fit(
        self,
        sources: Mapping[str, SourceData] | None = None,
        *,
        refit: bool = False,
    ) -> Flow:
        """Learn the state of stateful steps (one-hot categories) and return the fitted flow.

        Parameters
        ----------
        sources : mapping, optional
            The training data, as for :meth:`run`.
        refit : bool
            Learn again even where categories are already set.
        """
        from mlcycle.flow.engine import fit_flow

        return fit_flow(self, sources or {}, refit=refit)

    def transform(
        self,
        sources: Mapping[str, SourceData] | None = None,
        *,
        output: str | None = None,
    ) -> pd.DataFrame:
        """Run the flow and return one output as a pandas DataFrame.

        An unfitted flow is fitted on ``sources`` first (use :meth:`fit` to fit once on
        training data and keep that state for later batches and online records).

        Parameters
        ----------
        sources : mapping, optional
            As for :meth:`run`.
        output : str, optional
            The table to return (default: the only output).
        """
        flow = self if self.is_fitted else self.fit(sources)
        name = flow._single_output(output)
        with flow.run(sources, outputs=[name]) as run:
            return run.to_pandas(name)

    def _single_output(self, output: str | None) -> str:
        if output is not None:
            self.node(output)
            return output
        if len(self.output_names) != 1:
            raise SpecValidationError(
                f"flow {self.name!r} has outputs {list(self.output_names)}; name one",
                field="output",
            )
        return self.output_names[0]

    # -- pictures --------------------------------------------------------------------------
    def to_dot(self) -> str:
        """Return the graph in Graphviz's DOT language."""
        from mlcycle.flow.render import flow_to_dot

        return flow_to_dot(self)

    def to_svg(self) -> str:
        """Return a picture of the graph as SVG (no Graphviz needed)."""
        from mlcycle.flow.render import flow_to_svg

        return flow_to_svg(self)

    def _repr_svg_(self) -> str:
        return self.to_svg()
