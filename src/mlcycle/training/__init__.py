"""Training: XGBoost jobs with Debugger-style capture, rules, SageMaker-compatible models.

- :class:`TrainingJobSpec` (with :class:`TrainingInput`, :class:`Resources`,
  :class:`CaptureConfig` and :class:`Rule`) says what to train; it is data.
- :class:`TrainingJob` is a handle: :meth:`~TrainingJob.submit`, :meth:`~TrainingJob.status`,
  :meth:`~TrainingJob.wait`, :meth:`~TrainingJob.logs`, :meth:`~TrainingJob.metrics`,
  :meth:`~TrainingJob.model`, :meth:`~TrainingJob.stop`, :meth:`~TrainingJob.report`.
- :func:`list_training_jobs` and :func:`compare_training_jobs` list jobs and put them side by
  side.
- :class:`CaptureReader` reads a job's captured tensors back by step and name; the rules of
  :mod:`mlcycle.training.rules` are plain functions over such a stream.

Importing this package loads neither pandas nor XGBoost; they load when a job is submitted.
"""

from mlcycle.training.artifact import ModelArtifact, read_model_tarball
from mlcycle.training.backend import JobStatus, TrainingBackend, TrainingJobInfo
from mlcycle.training.capture import CaptureReader, MemoryTensorStream, TensorStream
from mlcycle.training.job import (
    TrainingJob,
    TrainingMetrics,
    compare_training_jobs,
    list_training_jobs,
)
from mlcycle.training.rules import Rule, RuleOutcome, RuleResult, RuleStatus
from mlcycle.training.spec import CaptureConfig, Resources, TrainingInput, TrainingJobSpec

__all__ = [
    "CaptureConfig",
    "CaptureReader",
    "JobStatus",
    "MemoryTensorStream",
    "ModelArtifact",
    "Resources",
    "Rule",
    "RuleOutcome",
    "RuleResult",
    "RuleStatus",
    "TensorStream",
    "TrainingBackend",
    "TrainingInput",
    "TrainingJob",
    "TrainingJobInfo",
    "TrainingJobSpec",
    "TrainingMetrics",
    "compare_training_jobs",
    "list_training_jobs",
    "read_model_tarball",
]
