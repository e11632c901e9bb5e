"""Lineage that the components record for themselves, without user code.

Each function takes a backend and does nothing when the backend lacks the ``lineage``
capability. What is recorded (edges point the way data flows)::

    DataSet (CSV) --ContributedTo--> FlowRun --Produced--> DataSet (an output)
    Flow --ContributedTo--> FlowRun
    DataSet --ContributedTo--> Ingest --Produced--> FeatureGroup (context)
    FeatureGroup --ContributedTo--> DataSet (a training set)
    DataSet --DerivedFrom--> DataSet (a split, a column selection, ...)
    DataSet --ContributedTo--> TrainingJob --Produced--> Model
    Model --ContributedTo--> ModelPackage --AssociatedWith--> ModelPackageGroup (context)

Data sets are identified by content: a file by its URI and the SHA-256 of its bytes, an
in-memory table by the digest of its values (:func:`mlcycle.lineage.digest_frame`). Tables that
mlcycle hands out (a flow's outputs, a training set) carry their lineage entity's ARN with them
(``DataFrame.attrs`` or Arrow schema metadata, key :data:`LINEAGE_KEY`), so a table derived
from one by slicing or column selection is recorded as ``DerivedFrom`` it.

Recording never fails the operation it describes: an error is logged (logger ``mlcycle``,
level WARNING) and the operation goes on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from mlcycle._logging import logger
from mlcycle.backends.base import Backend, Capability
from mlcycle.errors import AlreadyExistsError, MlcycleError, NotFoundError
from mlcycle.lineage.digest import digest_bytes, digest_file, digest_frame
from mlcycle.lineage.entities import AssociationType, EntityKind, LineageEntity

if TYPE_CHECKING:  # pragma: no cover
    from mlcycle.featurestore.backend import FeatureGroupInfo
    from mlcycle.flow.graph import Flow
    from mlcycle.lineage.tracker import LineageTracker
    from mlcycle.registry.entities import ModelPackageGroupInfo, ModelVersion
    from mlcycle.training.backend import TrainingJobInfo
    from mlcycle.training.spec import TrainingJobSpec

__all__ = [
    "LINEAGE_KEY",
    "FlowRecorder",
    "attach_arn",
    "carried_arn",
    "record_feature_group",
    "record_ingest",
    "record_model_group",
    "record_model_version",
    "record_training_end",
    "record_training_set",
    "record_training_start",
    "tracker_for",
]

#: Where a table carries its lineage entity's ARN (``DataFrame.attrs`` key, Arrow metadata key).
LINEAGE_KEY = "mlcycle:lineage"

P = ParamSpec("P")
R = TypeVar("R")


def _quietly(func: Callable[P, R]) -> Callable[P, R | None]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return func(*args, **kwargs)
        except (MlcycleError, OSError) as exc:
            logger.warning("lineage not recorded (%s): %s", func.__name__, exc, exc_info=True)
            return None

    return wrapper


def tracker_for(backend: Backend | None) -> LineageTracker | None:
    """Return a tracker on ``backend``, or None if it does not record lineage."""
    if backend is None or not backend.supports(Capability.LINEAGE):
        return None
    from mlcycle.lineage.tracker import LineageTracker

    return LineageTracker(backend)


# -- tables and files ---------------------------------------------------------------------------
def carried_arn(table: Any) -> str | None:
    """Return the lineage ARN a DataFrame or Arrow table carries, if any."""
    attrs = getattr(table, "attrs", None)
    if isinstance(attrs, dict) and isinstance(attrs.get(LINEAGE_KEY), str):
        return attrs[LINEAGE_KEY]
    schema = getattr(table, "schema", None)
    metadata = getattr(schema, "metadata", None) if schema is not None else None
    if metadata and LINEAGE_KEY.encode() in metadata:
        return metadata[LINEAGE_KEY.encode()].decode()
    return None


def attach_arn(table: Any, arn: str | None) -> Any:
    """Return ``table`` carrying ``arn``: a DataFrame in place, an Arrow table as a new one."""
    if arn is None:
        return table
    if isinstance(getattr(table, "attrs", None), dict):
        table.attrs[LINEAGE_KEY] = arn
        return table
    if hasattr(table, "replace_schema_metadata"):
        metadata = dict(table.schema.metadata or {})
        metadata[LINEAGE_KEY.encode()] = arn.encode()
        return table.replace_schema_metadata(metadata)
    return table


def _link(tracker: LineageTracker, source: LineageEntity | str, destination: LineageEntity,
          kind: AssociationType) -> None:
    with contextlib.suppress(AlreadyExistsError):  # linked already, with another type
        tracker.associate(source, destination, kind)


def _table_entity(tracker: LineageTracker, table: Any, *, name: str,
                  properties: Mapping[str, object] | None = None) -> LineageEntity:
    digest = digest_frame(table)
    parent = None
    arn = carried_arn(table)
    if arn is not None:
        try:
            parent = tracker.get(arn)
        except NotFoundError:  # it came from another backend
            parent = None
        if parent is not None and parent.digest == digest:
            return parent
    entity = tracker.artifact(f"mem://dataframe/{digest.split(':', 1)[1][:32]}", type="DataSet",
                              name=name, digest=digest, properties=properties)
    if parent is not None:
        _link(tracker, parent, entity, AssociationType.DERIVED_FROM)
    return entity


def _file_uri(path: str | os.PathLike[str]) -> str:
    return Path(path).expanduser().absolute().as_uri()


def _file_entity(tracker: LineageTracker, path: str | os.PathLike[str], *,
                 type: str = "DataSet") -> LineageEntity:
    target = Path(path)
    if target.is_dir():  # a folder of Parquet files: digest of the files' digests
        parts = [f"{p.relative_to(target)}={digest_file(p)}"
                 for p in sorted(target.rglob("*")) if p.is_file()]
        digest = digest_bytes("\n".join(parts).encode())
    else:
        digest = digest_file(target)
    return tracker.artifact(_file_uri(target), type=type, digest=digest)


def _data_entity(tracker: LineageTracker, data: Any, *, name: str) -> LineageEntity | None:
    if isinstance(data, (str, os.PathLike)):
        text = os.fspath(data)
        if text.startswith("file://"):
            from urllib.parse import unquote, urlparse

            text = unquote(urlparse(text).path)
        if "://" in text:
            return tracker.artifact(text, type="DataSet")
        return _file_entity(tracker, text)
    if hasattr(data, "columns") or hasattr(data, "schema"):
        return _table_entity(tracker, data, name=name)
    return None


def _run_id() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


# -- flows ----------------------------------------------------------------------------------------
class FlowRecorder:
    """Records one flow run: the flow, its sources and each output handed out.

    The run's action and inputs are recorded with the first output, so planning a flow that
    is never read records nothing.

    Parameters
    ----------
    backend : mlcycle.Backend or None
        Where to record; nothing is recorded without the ``lineage`` capability.
    flow : mlcycle.flow.Flow
        The flow.
    sources : mapping
        Source name -> path or in-memory table, as bound for the run (unbound sources use the
        flow's own paths).
    """

    def __init__(self, backend: Backend | None, flow: Flow, sources: Mapping[str, Any]) -> None:
        self._tracker = tracker_for(backend)
        self._flow = flow
        self._sources = dict(sources)
        self._action: LineageEntity | None = None
        self._name = f"flow-run/{flow.name}-{_run_id()}"

    @property
    def enabled(self) -> bool:
        """Whether anything is recorded."""
        return self._tracker is not None

    def _start(self) -> LineageEntity:
        tracker = self._tracker
        assert tracker is not None
        if self._action is None:
            flow = self._flow
            action = tracker.action(self._name, type="FlowRun", status="Completed",
                                    properties={"flow": flow.name, "steps": len(flow.steps)})
            definition = tracker.artifact(f"flow:{flow.name}", type="Flow", name=flow.name,
                                          digest=digest_bytes(flow.to_json().encode()))
            _link(tracker, definition, action, AssociationType.CONTRIBUTED_TO)
            for source in flow.sources:
                data = self._sources.get(source.name, source.path)
                if data is None:
                    continue
                entity = _data_entity(tracker, data, name=source.name)
                if entity is not None:
                    _link(tracker, entity, action, AssociationType.CONTRIBUTED_TO)
            self._action = action
        return self._action

    @_quietly
    def output(self, name: str, *, path: str | os.PathLike[str] | None = None,
               table: Any = None) -> str | None:
        """Record an output handed out as a file (``path``) or a table; return its ARN."""
        tracker = self._tracker
        if tracker is None:
            return None
        action = self._start()
        if path is not None:
            entity = _file_entity(tracker, path)
        else:
            entity = _table_entity(tracker, table, name=f"{self._flow.name}.{name}")
        _link(tracker, action, entity, AssociationType.PRODUCED)
        return entity.arn


# -- feature store ------------------------------------------------------------------------------
def _group_context(tracker: LineageTracker, info: FeatureGroupInfo) -> LineageEntity:
    # a group deleted and created again under its name is another group: the context is named
    # by the group's name and its identity (URI and creation time)
    identity = digest_bytes(f"{info.uri}\n{info.created_at.isoformat()}".encode())
    return tracker.context(f"feature-group/{info.name}/{identity[7:19]}", type="FeatureGroup",
                           source_uri=info.uri, properties={"group": info.name})


@_quietly
def record_feature_group(backend: Backend, info: FeatureGroupInfo) -> LineageEntity | None:
    """Record a feature group as a ``FeatureGroup`` context."""
    tracker = tracker_for(backend)
    if tracker is None:
        return None
    return _group_context(tracker, info)


@_quietly
def record_ingest(backend: Backend, info: FeatureGroupInfo, data: Any, *,
                  rows: int) -> LineageEntity | None:
    """Record an ingest: its data ``ContributedTo`` it, and it ``Produced`` the group."""
    tracker = tracker_for(backend)
    if tracker is None:
        return None
    group = _group_context(tracker, info)
    action = tracker.action(f"ingest/{info.name}-{_run_id()}", type="Ingest",
                            status="Completed", properties={"rows": rows, "group": info.name})
    entity = _data_entity(tracker, data, name=f"{info.name}-input")
    if entity is not None:
        _link(tracker, entity, action, AssociationType.CONTRIBUTED_TO)
    _link(tracker, action, group, AssociationType.PRODUCED)
    return action


@_quietly
def record_training_set(backend: Backend, groups: Iterable[FeatureGroupInfo], *,
                        base: Any = None,
                        table: Any = None, path: str | os.PathLike[str] | None = None,
                        properties: Mapping[str, object] | None = None) -> str | None:
    """Record a training set built from feature groups (and a base table); return its ARN."""
    tracker = tracker_for(backend)
    if tracker is None:
        return None
    if path is not None:
        entity = _file_entity(tracker, path)
    else:
        entity = _table_entity(tracker, table, name="training-set", properties=properties)
    for info in groups:
        _link(tracker, _group_context(tracker, info), entity, AssociationType.CONTRIBUTED_TO)
    if base is not None:
        base_entity = _data_entity(tracker, base, name="training-set-base")
        if base_entity is not None and base_entity.arn != entity.arn:
            _link(tracker, base_entity, entity, AssociationType.CONTRIBUTED_TO)
    return entity.arn


# -- training -------------------------------------------------------------------------------------
def _job_action_name(name: str) -> str:
    return f"training-job/{name}"


@_quietly
def record_training_start(backend: Backend, name: str, spec: TrainingJobSpec, *,
                          train: Any, validation: Any,
                          source_uri: str | None = None) -> LineageEntity | None:
    """Record a submitted training job; its inputs ``ContributedTo`` it."""
    tracker = tracker_for(backend)
    if tracker is None:
        return None
    properties: dict[str, object] = {f"hp:{k}": v for k, v in spec.hyperparameters.items()}
    properties["label"] = spec.label
    action = tracker.action(_job_action_name(name), type="TrainingJob", status="InProgress",
                            source_uri=source_uri, properties=properties)
    for channel, frame, given in (("train", train, spec.train),
                                  ("validation", validation, spec.validation)):
        if frame is None or given is None:
            continue
        if given.uri is not None:
            entity = _data_entity(tracker, given.uri, name=channel)
        elif given.artifact is not None:
            entity = tracker.artifact(
                backend.artifacts.uri(given.artifact), type="DataSet",
                digest=digest_bytes(backend.artifacts.get_bytes(given.artifact)))
        else:
            entity = _table_entity(tracker, frame, name=f"{name}-{channel}")
        _link(tracker, entity, action, AssociationType.CONTRIBUTED_TO)
    return action


@_quietly
def record_training_end(backend: Backend, info: TrainingJobInfo, *,
                        model: bytes | None = None) -> LineageEntity | None:
    """Record a finished job's status and the model it ``Produced``; return the model."""
    tracker = tracker_for(backend)
    if tracker is None:
        return None
    action = tracker.find(EntityKind.ACTION, _job_action_name(info.name))
    if action is None:
        action = tracker.action(_job_action_name(info.name), type="TrainingJob")
    tracker.action(action.name, type=action.type, status=info.status.value)
    if info.model_key is None:
        return None
    data = model if model is not None else backend.artifacts.get_bytes(info.model_key)
    entity = tracker.artifact(backend.artifacts.uri(info.model_key), type="Model",
                              name=f"{info.name}-model", digest=digest_bytes(data),
                              properties={"job": info.name})
    _link(tracker, action, entity, AssociationType.PRODUCED)
    return entity


# -- registry -------------------------------------------------------------------------------------
@_quietly
def record_model_group(backend: Backend, group: ModelPackageGroupInfo) -> LineageEntity | None:
    """Record a model package group as a ``ModelPackageGroup`` context."""
    tracker = tracker_for(backend)
    if tracker is None:
        return None
    return tracker.context(f"model-package-group/{group.name}", type="ModelPackageGroup",
                           source_uri=group.arn)


@_quietly
def record_model_version(backend: Backend, version: ModelVersion) -> LineageEntity | None:
    """Record a registered version as a ``ModelPackage`` artifact.

    The model artifact contributes to it and it is associated with its group's context; the
    training job that made the model (``version.source``) is linked to the model.

    Returns
    -------
    mlcycle.lineage.LineageEntity or None
        The version's ``ModelPackage`` artifact.
    """
    tracker = tracker_for(backend)
    if tracker is None:
        return None
    model = tracker.artifact(version.model_uri, type="Model", digest=version.model_digest)
    package = tracker.artifact(
        version.arn, type="ModelPackage", name=f"{version.group}-{version.version}",
        properties={"group": version.group, "version": version.version})
    _link(tracker, model, package, AssociationType.CONTRIBUTED_TO)
    group = tracker.context(f"model-package-group/{version.group}", type="ModelPackageGroup")
    _link(tracker, package, group, AssociationType.ASSOCIATED_WITH)
    if version.source:
        job = tracker.find(EntityKind.ACTION, _job_action_name(version.source))
        if job is not None:
            _link(tracker, job, model, AssociationType.PRODUCED)
    logger.debug("recorded lineage of model version %s/%d", version.group, version.version)
    return package
