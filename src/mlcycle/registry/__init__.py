"""The model registry: governed model package groups, versions, approval, aliases and audit.

- :class:`RegistryClient` is the facade: groups, :meth:`~RegistryClient.register` (from a
  training job, an artifact key or a local ``model.tar.gz``), :meth:`~RegistryClient.approve`
  and :meth:`~RegistryClient.reject`, aliases, :meth:`~RegistryClient.latest_approved`,
  :meth:`~RegistryClient.history` (the audit log), :meth:`~RegistryClient.load_model` and
  :meth:`~RegistryClient.lineage`.
- :func:`metric_threshold` makes a promotion hook that refuses a model whose metric is out of
  bounds (see :mod:`mlcycle.registry.hooks`).
- :class:`ModelVersion`, :class:`ModelPackageGroupInfo` and :class:`AuditEvent` are snapshots;
  :class:`InferenceSpec` is data; :class:`RegistryBackend` is the plugin interface.

Importing this package loads neither pandas nor XGBoost.
"""

from mlcycle.registry.backend import RegistryBackend
from mlcycle.registry.client import RESERVED_ALIASES, RegistryClient
from mlcycle.registry.entities import (
    ApprovalStatus,
    AuditEvent,
    InferenceSpec,
    ModelPackageGroupInfo,
    ModelVersion,
    NewModelVersion,
)
from mlcycle.registry.hooks import PromotionHook, metric_threshold

__all__ = [
    "RESERVED_ALIASES",
    "ApprovalStatus",
    "AuditEvent",
    "InferenceSpec",
    "ModelPackageGroupInfo",
    "ModelVersion",
    "NewModelVersion",
    "PromotionHook",
    "RegistryBackend",
    "RegistryClient",
    "metric_threshold",
]
