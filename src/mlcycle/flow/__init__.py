"""Data preparation: a :class:`Flow` of declarative transforms, run on DuckDB.

A flow is a JSON-serializable graph of named steps over named sources. It runs set-at-a-time on
DuckDB (never row by row), learns its fitted state once (:meth:`Flow.fit`), and transforms
training data, a batch or one online record identically.

Steps: :class:`CastColumns`, :class:`DropColumns`, :class:`SelectColumns`,
:class:`RenameColumns`, :class:`FillMissing`, :class:`DropMissing`, :class:`OneHotEncode`,
:class:`Formula`, :class:`Filter`, :class:`Join`, :class:`Aggregate`, :class:`AddEventTime`
and :class:`PythonStep` (local-only). Expressions use :mod:`mlcycle.flow.expr`.
"""

from mlcycle.flow.engine import FlowRun
from mlcycle.flow.graph import Flow
from mlcycle.flow.steps import (
    AddEventTime,
    Aggregate,
    CastColumns,
    DropColumns,
    DropMissing,
    FillMissing,
    Filter,
    Formula,
    Join,
    OneHotEncode,
    PythonStep,
    RenameColumns,
    SelectColumns,
    Source,
    Step,
)

__all__ = [
    "AddEventTime",
    "Aggregate",
    "CastColumns",
    "DropColumns",
    "DropMissing",
    "FillMissing",
    "Filter",
    "Flow",
    "FlowRun",
    "Formula",
    "Join",
    "OneHotEncode",
    "PythonStep",
    "RenameColumns",
    "SelectColumns",
    "Source",
    "Step",
]
