"""Lineage: where every data set, model and endpoint came from.

Entities (artifacts, actions, contexts) and typed associations between them, as SageMaker's
ML Lineage Tracking names them, recorded automatically by every component and read back with
:meth:`LineageTracker.query`.
"""

from mlcycle.lineage.backend import LineageBackend, QueryFilter
from mlcycle.lineage.digest import digest_bytes, digest_file, digest_frame
from mlcycle.lineage.entities import (
    Association,
    AssociationType,
    Direction,
    EntityKind,
    LineageEntity,
    LineageGraph,
)
from mlcycle.lineage.record import LINEAGE_KEY, attach_arn, carried_arn
from mlcycle.lineage.tracker import LineageTracker

__all__ = [
    "LINEAGE_KEY",
    "Association",
    "AssociationType",
    "Direction",
    "EntityKind",
    "LineageBackend",
    "LineageEntity",
    "LineageGraph",
    "LineageTracker",
    "QueryFilter",
    "attach_arn",
    "carried_arn",
    "digest_bytes",
    "digest_file",
    "digest_frame",
]
