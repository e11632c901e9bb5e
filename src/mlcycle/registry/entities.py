"""Registry snapshots and value objects: groups, versions, approval, aliases, audit events.

Names follow SageMaker's model registry: a *model package group* holds *versions* numbered
1..N; each version has a model artifact, an inference specification, metrics and an approval
status (``PendingManualApproval``, ``Approved``, ``Rejected``).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping

import attrs

__all__ = [
    "ApprovalStatus",
    "AuditEvent",
    "InferenceSpec",
    "ModelPackageGroupInfo",
    "ModelVersion",
    "NewModelVersion",
]


class ApprovalStatus(enum.StrEnum):
    """A version's approval status, as SageMaker names ``ModelApprovalStatus``."""

    PENDING = "PendingManualApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"


def _tuple_of_str(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)  # type: ignore[arg-type]


@attrs.frozen(kw_only=True)
class InferenceSpec:
    """How a version is served.

    Parameters
    ----------
    image : str, optional
        A container image URI (the SageMaker XGBoost image on the sagemaker backend).
    runtime : str, optional
        A local runtime instead of an image: ``"mlcycle-xgboost"`` serves the model in process.
    content_types : tuple of str
        Request content types the model accepts.
    response_types : tuple of str
        Response content types it answers with.
    framework, framework_version : str
        The model's framework (``"XGBOOST"``) and version (the XGBoost that trained it).
    """

    image: str | None = None
    runtime: str | None = "mlcycle-xgboost"
    content_types: tuple[str, ...] = attrs.field(default=("text/csv", "application/json"),
                                                 converter=_tuple_of_str)
    response_types: tuple[str, ...] = attrs.field(default=("text/csv", "application/json"),
                                                  converter=_tuple_of_str)
    framework: str = "XGBOOST"
    framework_version: str | None = None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (lists for tuples)."""
        return {"image": self.image, "runtime": self.runtime,
                "content_types": list(self.content_types),
                "response_types": list(self.response_types),
                "framework": self.framework, "framework_version": self.framework_version}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> InferenceSpec:
        """Build from :meth:`to_dict`'s output."""
        return cls(**{k: data[k] for k in
                      ("image", "runtime", "content_types", "response_types", "framework",
                       "framework_version") if k in data})  # type: ignore[arg-type]


@attrs.frozen(kw_only=True)
class ModelPackageGroupInfo:
    """A model package group.

    Parameters
    ----------
    name : str
        The group's name.
    arn : str
        Its identity (an ARN on SageMaker, ``local:model-package-group/<name>`` locally).
    description : str
        What the group holds.
    created_at : datetime.datetime
        Creation time (UTC).
    tags : mapping of str to str
        Tags.
    """

    name: str
    arn: str
    description: str = ""
    created_at: dt.datetime
    tags: Mapping[str, str] = attrs.field(factory=dict, converter=dict)


@attrs.frozen(kw_only=True)
class NewModelVersion:
    """What the registry client hands a backend to register (already validated).

    Parameters
    ----------
    model_uri : str
        The model artifact (``model.tar.gz`` holding ``xgboost-model``): ``file://`` or
        ``s3://``.
    model_key : str, optional
        The artifact's key in the backend's artifact store, if it is there.
    model_digest : str
        ``"sha256:<hex>"`` of the artifact's bytes.
    inference : mlcycle.registry.InferenceSpec
        How it is served.
    metrics : mapping of str to float
        Model quality metrics (``validation-rmse``, ...).
    tags : mapping of str to str
        Tags.
    description : str
        Free text.
    approval_status : mlcycle.registry.ApprovalStatus
        The initial status (``PendingManualApproval`` by default).
    created_by : str
        Who registers it.
    source : str, optional
        The training job that made the model, if known.
    client_token : str
        Idempotency token: registering again with the same token returns the version the
        first call made, instead of a second version.
    lineage_arn : str, optional
        The model artifact's lineage entity, if lineage was recorded.
    """

    model_uri: str
    model_key: str | None = None
    model_digest: str
    inference: InferenceSpec = attrs.field(factory=InferenceSpec)
    metrics: Mapping[str, float] = attrs.field(factory=dict, converter=dict)
    tags: Mapping[str, str] = attrs.field(factory=dict, converter=dict)
    description: str = ""
    approval_status: ApprovalStatus = attrs.field(default=ApprovalStatus.PENDING,
                                                  converter=ApprovalStatus)
    created_by: str
    source: str | None = None
    client_token: str
    lineage_arn: str | None = None


@attrs.frozen(kw_only=True)
class ModelVersion:
    """One registered version of a model package group.

    Parameters
    ----------
    group : str
        The group's name.
    version : int
        1..N within the group, in registration order, none skipped.
    arn : str
        The version's identity (the model package's ARN on SageMaker).
    model_uri, model_key, model_digest, inference, metrics, tags, description, source
        As registered (see :class:`NewModelVersion`).
    approval_status : mlcycle.registry.ApprovalStatus
        The current status.
    status_changed_at : datetime.datetime
        When the status was last set (at registration, the registration time).
    status_changed_by : str
        Who set it.
    status_reason : str
        Why (empty if no reason was given).
    created_at : datetime.datetime
        Registration time (UTC).
    created_by : str
        Who registered it.
    aliases : tuple of str
        The group's aliases that point at this version, sorted.
    lineage_arn : str, optional
        The version's lineage entity, if lineage was recorded.
    """

    group: str
    version: int
    arn: str
    model_uri: str
    model_key: str | None = None
    model_digest: str
    inference: InferenceSpec
    metrics: Mapping[str, float] = attrs.field(factory=dict, converter=dict)
    tags: Mapping[str, str] = attrs.field(factory=dict, converter=dict)
    description: str = ""
    source: str | None = None
    approval_status: ApprovalStatus = attrs.field(converter=ApprovalStatus)
    status_changed_at: dt.datetime
    status_changed_by: str
    status_reason: str = ""
    created_at: dt.datetime
    created_by: str
    aliases: tuple[str, ...] = attrs.field(default=(), converter=lambda v: tuple(sorted(v)))
    lineage_arn: str | None = None

    @property
    def is_approved(self) -> bool:
        """True if the status is ``Approved``."""
        return self.approval_status is ApprovalStatus.APPROVED


@attrs.frozen(kw_only=True)
class AuditEvent:
    """One entry of a group's append-only audit log.

    Parameters
    ----------
    group : str
        The group.
    sequence : int
        1..N within the group, in the order the events happened.
    at : datetime.datetime
        When (UTC).
    actor : str
        Who.
    event : str
        ``"registered"``, ``"status"``, ``"alias-set"`` or ``"alias-removed"``.
    version : int, optional
        The version concerned (None for an alias removed).
    old, new : str, optional
        The status or alias target before and after (``"3"`` for version 3 of an alias).
    alias : str, optional
        The alias concerned.
    reason : str
        Why (empty if no reason was given).
    """

    group: str
    sequence: int
    at: dt.datetime
    actor: str
    event: str
    version: int | None = None
    old: str | None = None
    new: str | None = None
    alias: str | None = None
    reason: str = ""
