"""The registry facade: :class:`RegistryClient`.

The client validates names and model artifacts, attaches a training job's metrics, runs the
promotion hooks, records lineage and logs; the backend's
:class:`~mlcycle.registry.RegistryBackend` stores groups, versions, aliases and the audit log.

Examples
--------
>>> import mlcycle, numpy as np, xgboost as xgb
>>> from mlcycle.registry import RegistryClient, metric_threshold
>>> from mlcycle.training.artifact import build_model_tarball
>>> backend = mlcycle.connect(str(getfixture("tmp_path")))
>>> booster = xgb.train({"max_depth": 1}, xgb.DMatrix(np.eye(3), label=[0, 1, 2]), 2)
>>> key = "models/m1/model.tar.gz"
>>> _ = backend.artifacts.put_bytes(key, build_model_tarball(booster, metadata={}))
>>> registry = RegistryClient(
...     backend, promotion_hooks=[metric_threshold("validation-rmse", max=0.8)])
>>> registry.create_group("ratings", description="music ratings").name
'ratings'
>>> v1 = registry.register("ratings", key, metrics={"validation-rmse": 0.62})
>>> v1.version, v1.approval_status.value
(1, 'PendingManualApproval')
>>> registry.approve("ratings", 1, reason="beats the baseline", by="ana").is_approved
True
>>> registry.set_alias("ratings", "champion", 1, by="ana").aliases
('champion',)
>>> registry.get_version("ratings", "champion").version
1
>>> for event in registry.history("ratings"):
...     print(event.sequence, event.event, event.actor != "", event.old, event.new)
1 registered True None PendingManualApproval
2 status True PendingManualApproval Approved
3 alias-set True None 1
>>> registry.register("ratings", key).version   # the same model again: the same version
1
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import itertools
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from mlcycle._logging import logger
from mlcycle.backends.base import Backend, Capability, validate_key
from mlcycle.errors import (
    AlreadyExistsError,
    InvalidStateError,
    MissingDependencyError,
    NotFoundError,
    PromotionRefusedError,
    SpecValidationError,
)
from mlcycle.lineage.digest import digest_bytes
from mlcycle.lineage.record import record_model_group, record_model_version
from mlcycle.registry.entities import (
    ApprovalStatus,
    AuditEvent,
    InferenceSpec,
    ModelPackageGroupInfo,
    ModelVersion,
    NewModelVersion,
)
from mlcycle.registry.hooks import APPROVED_TARGET, PromotionHook, alias_target, hook_name

if TYPE_CHECKING:  # pragma: no cover
    import xgboost

    from mlcycle.lineage.entities import LineageGraph
    from mlcycle.registry.backend import RegistryBackend
    from mlcycle.training.artifact import ModelArtifact
    from mlcycle.training.job import TrainingJob

__all__ = ["RESERVED_ALIASES", "RegistryClient"]

_GROUP_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_TOKEN_RE = re.compile(r"^[a-zA-Z0-9-]{1,36}$")
_TAG_KEY_RE = re.compile(r"^[\w.:/=+\-@ ]{1,128}$")
#: Alias names that :meth:`RegistryClient.get_version` reads otherwise.
RESERVED_ALIASES = frozenset({"latest"})
_GROUP = "model-package-group"
_VERSION = "model-version"
_MAX_TEXT = 1024


# -- validation -------------------------------------------------------------------------------
def _check_group(name: object) -> str:
    if not isinstance(name, str) or not _GROUP_RE.match(name):
        raise SpecValidationError(
            f"invalid model package group name {name!r}: 1 to 63 letters, digits and '-', "
            "starting and ending with a letter or digit", field="group")
    return name


def _check_alias(alias: object, field: str = "alias") -> str:
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias):
        raise SpecValidationError(
            f"invalid alias {alias!r}: a lowercase letter, then up to 62 lowercase letters, "
            "digits, '_' and '-'", field=field)
    if alias in RESERVED_ALIASES:
        raise SpecValidationError(f"{alias!r} is reserved and cannot be an alias", field=field)
    return alias


def _check_text(value: object, field: str, *, limit: int = _MAX_TEXT) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise SpecValidationError(f"{field} must be a string of at most {limit} characters",
                                  field=field)
    return value


def _check_actor(value: object, field: str) -> str:
    if value is None:
        return _default_actor()
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise SpecValidationError(f"{field} must be a non-empty name, not {value!r}",
                                  field=field)
    return value


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no login name here (a container without a passwd entry)
        return "unknown"
    return user or "unknown"


def _check_metrics(metrics: object) -> dict[str, float]:
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise SpecValidationError("metrics must be a mapping of names to numbers",
                                  field="metrics")
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name or len(name) > 256:
            raise SpecValidationError(f"invalid metric name {name!r}", field="metrics")
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise SpecValidationError(f"metric {name!r} must be a finite number, not {value!r}",
                                      field="metrics")
        out[name] = float(value)
    return out


def _check_tags(tags: object) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise SpecValidationError("tags must be a mapping of strings to strings", field="tags")
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not _TAG_KEY_RE.match(key) or key.startswith("aws:"):
            raise SpecValidationError(f"invalid tag key {key!r}", field="tags")
        if not isinstance(value, str) or len(value) > 256:
            raise SpecValidationError(f"tag {key!r} must have a string value of at most 256 "
                                      "characters", field="tags")
        out[key] = value
    return out


def _check_status(value: object, field: str) -> ApprovalStatus:
    try:
        return ApprovalStatus(value)
    except ValueError:
        raise SpecValidationError(
            f"unknown approval status {value!r}; one of "
            f"{', '.join(s.value for s in ApprovalStatus)}", field=field) from None


def _require_xgboost() -> None:
    import importlib.util

    if importlib.util.find_spec("xgboost") is None:
        raise MissingDependencyError(
            "registering and loading models needs XGBoost: pip install 'mlcycle[train]'",
            package="xgboost-cpu", extra="train")


def _load(data: bytes) -> tuple[ModelArtifact, xgboost.Booster]:
    """Read and load a model.tar.gz; any fault is ``SpecValidationError(field="model")``."""
    from mlcycle.training.artifact import read_model_tarball

    try:
        artifact = read_model_tarball(data)
    except SpecValidationError:
        raise
    except (ValueError, TypeError, AttributeError) as exc:
        raise SpecValidationError(f"not a model.tar.gz holding an XGBoost model: {exc}",
                                  field="model") from exc
    _require_xgboost()
    try:
        booster = artifact.booster()
    except Exception as exc:  # XGBoostError and whatever a damaged file makes XGBoost raise
        raise SpecValidationError(f"XGBoost cannot load the model: {exc}",
                                  field="model") from exc
    return artifact, booster


def _framework_version(artifact: ModelArtifact) -> str:
    import json

    try:
        numbers = json.loads(artifact.model)["version"]
        return ".".join(str(int(n)) for n in numbers)
    except (ValueError, TypeError, KeyError):
        pass
    version = artifact.metadata.get("xgboost_version")
    if isinstance(version, str) and version:
        return version
    import xgboost

    return str(xgboost.__version__)


@attrs.frozen(kw_only=True)
class _Model:
    """A model artifact resolved, checked and in the artifact store."""

    key: str
    uri: str
    digest: str
    framework_version: str
    metrics: dict[str, float] = attrs.field(factory=dict)
    source: str | None = None


class RegistryClient:
    """A governed model registry on a backend with the ``registry`` capability.

    Groups hold versions numbered 1..N; each version is pending approval, approved or rejected,
    and may carry aliases (``champion``). Every registration, status change and alias change
    is written to an append-only audit log, with who, when and why.

    Parameters
    ----------
    backend : mlcycle.Backend
        Where the registry lives. The constructor does no I/O.
    promotion_hooks : sequence of callable
        Hooks ``hook(version, target) -> reason or None`` run before a version is approved or
        an alias is pointed at it (see :mod:`mlcycle.registry.hooks`); the first that returns
        a reason refuses the promotion.

    Raises
    ------
    SpecValidationError
        If a hook is not callable (``field="promotion_hooks"``).
    """

    def __init__(self, backend: Backend, *, promotion_hooks: Sequence[PromotionHook] = ()) -> None:
        hooks = tuple(promotion_hooks)
        for hook in hooks:
            if not callable(hook):
                raise SpecValidationError(f"promotion hook {hook!r} is not callable",
                                          field="promotion_hooks")
        self.backend = backend
        self.promotion_hooks: tuple[PromotionHook, ...] = hooks

    def __repr__(self) -> str:
        return f"<RegistryClient on {self.backend.uri}>"

    @property
    def _registry(self) -> RegistryBackend:
        self.backend.require(Capability.REGISTRY)
        return self.backend.registry

    # -- groups ------------------------------------------------------------------------------
    def create_group(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> ModelPackageGroupInfo:
        """Create a model package group and record it in lineage.

        Parameters
        ----------
        name : str
            1 to 63 letters, digits and ``-``, starting and ending with a letter or digit.
        description : str
            What the group holds (at most 1024 characters).
        tags : mapping of str to str, optional
            Tags.

        Returns
        -------
        mlcycle.registry.ModelPackageGroupInfo

        Raises
        ------
        AlreadyExistsError
            If the group exists (``kind="model-package-group"``).
        SpecValidationError
            For a bad name (``field="group"``), description or tags.
        UnsupportedOperationError
            If the backend has no registry.
        """
        name = _check_group(name)
        description = _check_text(description, "description")
        info = self._registry.create_group(name, description=description,
                                           tags=_check_tags(tags))
        record_model_group(self.backend, info)
        logger.info("created model package group %s", name)
        return info

    def get_group(self, name: str) -> ModelPackageGroupInfo:
        """Return a group.

        Raises
        ------
        NotFoundError
            If there is no such group (``kind="model-package-group"``).
        """
        return self._registry.describe_group(_check_group(name))

    def find_group(self, name: str) -> ModelPackageGroupInfo | None:
        """Return a group, or None if there is no such group."""
        try:
            return self.get_group(name)
        except NotFoundError:
            return None

    def list_groups(self, *, name_contains: str | None = None) -> list[ModelPackageGroupInfo]:
        """Return the groups, newest first.

        Parameters
        ----------
        name_contains : str, optional
            Only groups whose name contains this text (case-sensitive).

        Returns
        -------
        list of mlcycle.registry.ModelPackageGroupInfo
        """
        if name_contains is not None:
            name_contains = _check_text(name_contains, "name_contains", limit=63)
        return list(self._registry.list_groups(name_contains=name_contains or None))

    # -- registering -------------------------------------------------------------------------
    def register(
        self,
        group: str,
        model: TrainingJob | str | os.PathLike[str],
        *,
        metrics: Mapping[str, float] | None = None,
        inference: InferenceSpec | None = None,
        tags: Mapping[str, str] | None = None,
        description: str = "",
        approval_status: ApprovalStatus | str = ApprovalStatus.PENDING,
        created_by: str | None = None,
        client_token: str | None = None,
        create_group: bool = False,
    ) -> ModelVersion:
        """Register a model as the next version of ``group``.

        The model artifact is read and loaded with XGBoost first; nothing is registered if it
        is not a ``model.tar.gz`` holding an ``xgboost-model`` that XGBoost loads.

        Registering is idempotent: a retry (after a crash, say) returns the version the first
        call made. The default ``client_token`` is derived from the group, the model's digest
        and its source (the training job), so registering the same model again returns the
        existing version; pass distinct tokens to register one model twice.

        Parameters
        ----------
        group : str
            The group's name.
        model : mlcycle.training.TrainingJob, str or os.PathLike
            A training job that ended ``Completed`` or ``Stopped`` with a model (its final
            metrics are attached and it is recorded as the ``source``); an artifact key in the
            backend's artifact store; or a local ``model.tar.gz``, copied into the store under
            ``registry/<group>/models/<digest>/model.tar.gz``.
        metrics : mapping of str to float, optional
            Model quality metrics; they override a training job's metrics of the same name.
        inference : mlcycle.registry.InferenceSpec, optional
            How to serve it; default the local XGBoost runtime with CSV and JSON. Its
            ``framework_version`` is filled in from the model if not given.
        tags : mapping of str to str, optional
            Tags.
        description : str
            Free text (at most 1024 characters).
        approval_status : mlcycle.registry.ApprovalStatus or str
            The initial status, ``PendingManualApproval`` by default. Registering straight
            into ``Approved`` runs the promotion hooks first, on the version to be (numbered
            0).
        created_by : str, optional
            Who registers it; default the operating-system user.
        client_token : str, optional
            An idempotency token (1 to 36 letters, digits and ``-``): a second call with the
            same token returns the first call's version unchanged.
        create_group : bool
            Create the group if it does not exist.

        Returns
        -------
        mlcycle.registry.ModelVersion

        Raises
        ------
        NotFoundError
            If the group does not exist (``kind="model-package-group"``) and
            ``create_group`` is false, or the artifact or file does not.
        SpecValidationError
            If the model is not a loadable ``model.tar.gz`` (``field="model"``), or for a bad
            name, metric, tag, status or token.
        InvalidStateError
            If the training job has not ended with a model.
        PromotionRefusedError
            If registering as ``Approved`` and a hook refuses.
        MissingDependencyError
            If XGBoost is not installed.
        """
        group = _check_group(group)
        metrics = _check_metrics(metrics)
        tags = _check_tags(tags)
        description = _check_text(description, "description")
        status = _check_status(approval_status, "approval_status")
        actor = _check_actor(created_by, "created_by")
        if client_token is not None and (not isinstance(client_token, str)
                                         or not _TOKEN_RE.match(client_token)):
            raise SpecValidationError(f"invalid client token {client_token!r}: 1 to 36 "
                                      "letters, digits and '-'", field="client_token")
        if inference is not None and not isinstance(inference, InferenceSpec):
            raise SpecValidationError("inference must be an InferenceSpec", field="inference")
        registry = self._registry
        missing = False
        try:
            registry.describe_group(group)
        except NotFoundError:
            if not create_group:
                raise NotFoundError(f"no model package group {group!r}; create it first or "
                                    "pass create_group=True", kind=_GROUP, name=group) from None
            missing = True
        resolved = self._resolve_model(group, model)
        if missing:
            with contextlib.suppress(AlreadyExistsError):  # another writer created it first
                self.create_group(group)
        inference = inference or InferenceSpec()
        if inference.framework_version is None:
            inference = attrs.evolve(inference, framework_version=resolved.framework_version)
        if client_token is None:
            seed = f"{group}\n{resolved.digest}\n{resolved.source or ''}".encode()
            client_token = hashlib.sha256(seed).hexdigest()[:32]
        new = NewModelVersion(
            model_uri=resolved.uri, model_key=resolved.key, model_digest=resolved.digest,
            inference=inference, metrics={**resolved.metrics, **metrics}, tags=tags,
            description=description, approval_status=status, created_by=actor,
            source=resolved.source, client_token=client_token)
        if status is ApprovalStatus.APPROVED:
            self._run_hooks(_provisional(group, new), APPROVED_TARGET, state=None)
        version, created = registry.create_version(group, new)
        if created:
            logger.info("registered %s version %d (%s) from %s", group, version.version,
                        version.approval_status.value, resolved.source or resolved.uri)
        else:
            logger.info("%s version %d was registered already (client token %s)", group,
                        version.version, client_token)
        # recorded on a retry too, so a crash between the two steps leaves no gap
        record_model_version(self.backend, version)
        return version

    def _resolve_model(self, group: str, model: object) -> _Model:
        store = self.backend.artifacts
        jobs = sys.modules.get("mlcycle.training.job")  # a TrainingJob means it is imported
        if jobs is not None and isinstance(model, jobs.TrainingJob):
            return self._from_job(group, model)
        if isinstance(model, str):
            try:
                key = validate_key(model)
            except SpecValidationError:
                raise SpecValidationError(f"model {model!r} is not an artifact key",
                                          field="model") from None
            data = store.get_bytes(key)
            artifact, _ = _load(data)
            return _Model(key=key, uri=store.uri(key), digest=digest_bytes(data),
                          framework_version=_framework_version(artifact))
        if isinstance(model, os.PathLike):
            path = Path(model)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise NotFoundError(f"no file {str(path)!r}", kind="file",
                                    name=str(path)) from None
            except OSError as exc:
                raise SpecValidationError(f"cannot read the model file {str(path)!r}: {exc}",
                                          field="model") from exc
            return self._store_copy(group, data)
        raise SpecValidationError(
            f"model must be a TrainingJob, an artifact key or a path, not "
            f"{type(model).__name__}", field="model")

    def _store_copy(self, group: str, data: bytes, *, metrics: dict[str, float] | None = None,
                    source: str | None = None) -> _Model:
        artifact, _ = _load(data)
        digest = digest_bytes(data)
        key = f"registry/{group}/models/{digest.split(':', 1)[1]}/model.tar.gz"
        uri = self.backend.artifacts.put_bytes(key, data)
        return _Model(key=key, uri=uri, digest=digest,
                      framework_version=_framework_version(artifact), metrics=metrics or {},
                      source=source)

    def _from_job(self, group: str, job: TrainingJob) -> _Model:
        from mlcycle.training.backend import JobStatus

        info = job.describe()
        if info.status not in (JobStatus.COMPLETED, JobStatus.STOPPED) or info.model_key is None:
            raise InvalidStateError(
                f"training job {job.name!r} is {info.status.value} without a model; only a "
                "Completed or Stopped job with a model can be registered",
                state=info.status.value)
        data = job.backend.artifacts.get_bytes(info.model_key)
        metrics = _check_metrics(job.metrics().final)
        if job.backend.uri != self.backend.uri:  # another workspace: copy the model over
            return self._store_copy(group, data, metrics=metrics, source=job.name)
        artifact, _ = _load(data)
        return _Model(key=info.model_key,
                      uri=info.model_uri or self.backend.artifacts.uri(info.model_key),
                      digest=digest_bytes(data), framework_version=_framework_version(artifact),
                      metrics=metrics, source=job.name)

    # -- reading -----------------------------------------------------------------------------
    def _resolve(self, group: str, version: object) -> ModelVersion:
        registry = self._registry
        if isinstance(version, str) and version.isascii() and version.isdigit():
            version = int(version)
        if isinstance(version, bool) or (isinstance(version, int) and version < 1):
            raise SpecValidationError(f"invalid version {version!r}: a number from 1",
                                      field="version")
        if isinstance(version, int):
            return registry.describe_version(group, version)
        if version == "latest":
            latest = registry.latest_version(group)
            if latest is None:
                raise NotFoundError(f"model package group {group!r} has no versions",
                                    kind=_VERSION, name=f"{group}/latest")
            return latest
        if not isinstance(version, str):
            raise SpecValidationError(f"version must be a number, 'latest' or an alias, not "
                                      f"{version!r}", field="version")
        alias = _check_alias(version, field="version")
        number = registry.aliases(group).get(alias)
        if number is None:
            raise NotFoundError(f"model package group {group!r} has no alias {alias!r}",
                                kind="model-alias", name=f"{group}/{alias}")
        return registry.describe_version(group, number)

    def get_version(self, group: str, version: int | str) -> ModelVersion:
        """Return one version.

        Parameters
        ----------
        group : str
            The group's name.
        version : int or str
            A version number, ``"latest"`` (the highest number) or an alias.

        Returns
        -------
        mlcycle.registry.ModelVersion

        Raises
        ------
        NotFoundError
            If the group (``kind="model-package-group"``), the version
            (``kind="model-version"``, ``name="<group>/<version>"``) or the alias
            (``kind="model-alias"``) does not exist.
        SpecValidationError
            For a bad group name or version (``field="version"``).
        """
        return self._resolve(_check_group(group), version)

    def list_versions(
        self,
        group: str,
        *,
        status: ApprovalStatus | str | None = None,
        ascending: bool = False,
        limit: int | None = None,
    ) -> list[ModelVersion]:
        """Return a group's versions, newest (highest number) first.

        Parameters
        ----------
        group : str
            The group's name.
        status : mlcycle.registry.ApprovalStatus or str, optional
            Only versions with this status.
        ascending : bool
            Oldest first instead.
        limit : int, optional
            At most this many.

        Returns
        -------
        list of mlcycle.registry.ModelVersion

        Raises
        ------
        NotFoundError
            If the group does not exist.
        SpecValidationError
            For a bad status or limit.
        """
        group = _check_group(group)
        wanted = _check_status(status, "status") if status is not None else None
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):
            raise SpecValidationError(f"limit must be a non-negative integer, not {limit!r}",
                                      field="limit")
        versions = self._registry.list_versions(group, status=wanted, ascending=bool(ascending))
        return list(itertools.islice(versions, limit))

    def latest_approved(self, group: str) -> ModelVersion | None:
        """Return the highest-numbered ``Approved`` version, or None if none is approved.

        Raises
        ------
        NotFoundError
            If the group does not exist.
        """
        return self._registry.latest_version(_check_group(group), status=ApprovalStatus.APPROVED)

    def history(self, group: str, *, version: int | str | None = None) -> list[AuditEvent]:
        """Return the group's audit log, oldest first.

        Parameters
        ----------
        group : str
            The group's name.
        version : int or str, optional
            Only the events of this version (a number, ``"latest"`` or an alias); an alias's
            removal names no version and is left out then.

        Returns
        -------
        list of mlcycle.registry.AuditEvent

        Raises
        ------
        NotFoundError
            If the group or the version does not exist.
        """
        group = _check_group(group)
        number = self._resolve(group, version).version if version is not None else None
        return [event for event in self._registry.audit_log(group)
                if number is None or event.version == number]

    # -- promoting ---------------------------------------------------------------------------
    def _run_hooks(self, version: ModelVersion, target: str, *, state: str | None) -> None:
        for hook in self.promotion_hooks:
            reason = hook(version, target)
            if reason is None:
                continue
            name = hook_name(hook)
            reason = str(reason) or "refused without a reason"
            logger.info("hook %s refused %s version %d -> %s: %s", name, version.group,
                        version.version, target, reason)
            raise PromotionRefusedError(
                f"promotion of {version.group} version {version.version} to {target} refused "
                f"by {name}: {reason}", hook=name, reason=reason, state=state)

    def approve(
        self, group: str, version: int | str, *, reason: str = "", by: str | None = None
    ) -> ModelVersion:
        """Approve a version, after every promotion hook allows it.

        Approving an approved version changes nothing (no hooks run, no audit event).

        Parameters
        ----------
        group : str
            The group's name.
        version : int or str
            A version number, ``"latest"`` or an alias.
        reason : str
            Why; kept in the audit log.
        by : str, optional
            Who; default the operating-system user.

        Returns
        -------
        mlcycle.registry.ModelVersion
            The version, approved.

        Raises
        ------
        NotFoundError
            If the group or version does not exist (``kind="model-version"``,
            ``name="<group>/<version>"``).
        PromotionRefusedError
            If a hook refuses (``hook``, ``reason``; ``state`` is the unchanged status).
        """
        group = _check_group(group)
        reason = _check_text(reason, "reason")
        actor = _check_actor(by, "by")
        current = self._resolve(group, version)
        if current.is_approved:
            return current
        self._run_hooks(current, APPROVED_TARGET, state=current.approval_status.value)
        updated = self._registry.update_status(group, current.version, ApprovalStatus.APPROVED,
                                               actor=actor, reason=reason)
        logger.info("%s approved %s version %d", actor, group, current.version)
        return updated

    def reject(
        self, group: str, version: int | str, *, reason: str = "", by: str | None = None
    ) -> ModelVersion:
        """Reject a version; rejecting a rejected version changes nothing.

        Aliases that point at the version stay; a new alias cannot be pointed at it.

        Parameters
        ----------
        group : str
            The group's name.
        version : int or str
            A version number, ``"latest"`` or an alias.
        reason : str
            Why; kept in the audit log.
        by : str, optional
            Who; default the operating-system user.

        Returns
        -------
        mlcycle.registry.ModelVersion
            The version, rejected.

        Raises
        ------
        NotFoundError
            If the group or version does not exist.
        """
        group = _check_group(group)
        reason = _check_text(reason, "reason")
        actor = _check_actor(by, "by")
        current = self._resolve(group, version)
        updated = self._registry.update_status(group, current.version, ApprovalStatus.REJECTED,
                                               actor=actor, reason=reason)
        if current.approval_status is not ApprovalStatus.REJECTED:
            logger.info("%s rejected %s version %d", actor, group, current.version)
        return updated

    def set_alias(
        self,
        group: str,
        alias: str,
        version: int | str,
        *,
        reason: str = "",
        by: str | None = None,
    ) -> ModelVersion:
        """Point ``alias`` at a version, after every promotion hook allows it.

        An alias that points elsewhere moves; pointing it where it points already changes
        nothing.

        Parameters
        ----------
        group : str
            The group's name.
        alias : str
            A lowercase letter, then up to 62 lowercase letters, digits, ``_`` and ``-``;
            not ``latest``.
        version : int or str
            A version number, ``"latest"`` or another alias.
        reason : str
            Why; kept in the audit log.
        by : str, optional
            Who; default the operating-system user.

        Returns
        -------
        mlcycle.registry.ModelVersion
            The version the alias now points at.

        Raises
        ------
        NotFoundError
            If the group or version does not exist.
        InvalidStateError
            If the version is ``Rejected``.
        PromotionRefusedError
            If a hook refuses (the target the hooks see is ``"alias:<alias>"``).
        SpecValidationError
            For a bad or reserved alias (``field="alias"``).
        """
        group = _check_group(group)
        alias = _check_alias(alias)
        reason = _check_text(reason, "reason")
        actor = _check_actor(by, "by")
        current = self._resolve(group, version)
        if current.approval_status is ApprovalStatus.REJECTED:
            raise InvalidStateError(f"{group} version {current.version} is Rejected; an alias "
                                    "cannot point at it", state=current.approval_status.value)
        if alias in current.aliases:
            return current
        self._run_hooks(current, alias_target(alias), state=current.approval_status.value)
        registry = self._registry
        registry.set_alias(group, alias, current.version, actor=actor, reason=reason)
        logger.info("%s pointed alias %s of %s at version %d", actor, alias, group,
                    current.version)
        return registry.describe_version(group, current.version)

    def remove_alias(
        self, group: str, alias: str, *, reason: str = "", by: str | None = None
    ) -> None:
        """Remove an alias.

        Raises
        ------
        NotFoundError
            If the group or the alias does not exist (``kind="model-alias"``).
        SpecValidationError
            For a bad alias.
        """
        group = _check_group(group)
        alias = _check_alias(alias)
        reason = _check_text(reason, "reason")
        actor = _check_actor(by, "by")
        self._registry.set_alias(group, alias, None, actor=actor, reason=reason)
        logger.info("%s removed alias %s of %s", actor, alias, group)

    # -- the model and its lineage -----------------------------------------------------------
    def load_model(self, group: str, version: int | str) -> xgboost.Booster:
        """Read a version's model artifact, check its digest and load it.

        Parameters
        ----------
        group : str
            The group's name.
        version : int or str
            A version number, ``"latest"`` or an alias.

        Returns
        -------
        ``xgboost.Booster``

        Raises
        ------
        InvalidStateError
            If the artifact's bytes no longer match the registered digest
            (``state="digest-mismatch"``): it was changed after registration.
        NotFoundError
            If the version or its artifact does not exist.
        """
        current = self._resolve(_check_group(group), version)
        if current.model_key is None:
            raise InvalidStateError(f"{current.group} version {current.version} has no model "
                                    "in this backend's artifact store", state="no-artifact")
        data = self.backend.artifacts.get_bytes(current.model_key)
        digest = digest_bytes(data)
        if digest != current.model_digest:
            logger.warning("model of %s version %d changed after registration: %s != %s",
                           current.group, current.version, digest, current.model_digest)
            raise InvalidStateError(
                f"the model of {current.group} version {current.version} does not match its "
                f"registered digest {current.model_digest}", state="digest-mismatch")
        return _load(data)[1]

    def lineage(
        self,
        group: str,
        version: int | str,
        *,
        direction: str = "Ascendants",
        max_depth: int = 10,
    ) -> LineageGraph:
        """Return a version's lineage: by default, where its model came from.

        Parameters
        ----------
        group : str
            The group's name.
        version : int or str
            A version number, ``"latest"`` or an alias.
        direction : str
            ``"Ascendants"``, ``"Descendants"`` or ``"Both"``.
        max_depth : int
            How many edges away to go at most.

        Returns
        -------
        mlcycle.lineage.LineageGraph
            Starting from the version's ``ModelPackage`` artifact.

        Raises
        ------
        NotFoundError
            If the version does not exist, or no lineage was recorded for it
            (``kind="lineage-entity"``).
        UnsupportedOperationError
            If the backend does not record lineage.
        """
        from mlcycle.lineage.tracker import LineageTracker

        current = self._resolve(_check_group(group), version)
        self.backend.require(Capability.LINEAGE)
        tracker = LineageTracker(self.backend)
        entity = tracker.find_artifact(current.arn)
        if entity is None:
            raise NotFoundError(f"no lineage was recorded for {current.group} version "
                                f"{current.version}", kind="lineage-entity", name=current.arn)
        return tracker.query(entity, direction=direction, max_depth=max_depth)


def _provisional(group: str, new: NewModelVersion) -> ModelVersion:
    """The version that registering ``new`` would make, numbered 0, for the hooks."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    return ModelVersion(
        group=group, version=0, arn="", model_uri=new.model_uri, model_key=new.model_key,
        model_digest=new.model_digest, inference=new.inference, metrics=new.metrics,
        tags=new.tags, description=new.description, source=new.source,
        approval_status=ApprovalStatus.PENDING, status_changed_at=now,
        status_changed_by=new.created_by, created_at=now, created_by=new.created_by)
