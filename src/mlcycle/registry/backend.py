"""The registry backend interface.

The facade (:class:`mlcycle.registry.RegistryClient`) validates names and artifacts, attaches a
training job's metrics, runs promotion hooks and records lineage; a backend stores groups,
versions, aliases and the audit log, and numbers versions. Every change of status or alias
appends to the audit log in the same atomic step.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping

from mlcycle.registry.entities import (
    ApprovalStatus,
    AuditEvent,
    ModelPackageGroupInfo,
    ModelVersion,
    NewModelVersion,
)

__all__ = ["RegistryBackend"]


class RegistryBackend(abc.ABC):
    """Where model package groups, versions, aliases and audit events are stored."""

    @abc.abstractmethod
    def create_group(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> ModelPackageGroupInfo:
        """Create a group.

        Raises
        ------
        AlreadyExistsError
            If it exists (``kind="model-package-group"``).
        """

    @abc.abstractmethod
    def describe_group(self, name: str) -> ModelPackageGroupInfo:
        """Return a group.

        Raises
        ------
        NotFoundError
            If there is none (``kind="model-package-group"``).
        """

    @abc.abstractmethod
    def list_groups(self, *, name_contains: str | None = None) -> Iterator[ModelPackageGroupInfo]:
        """Iterate over the groups, newest first."""

    @abc.abstractmethod
    def create_version(self, group: str, new: NewModelVersion) -> tuple[ModelVersion, bool]:
        """Register the next version of ``group``, numbered ``max + 1`` atomically.

        Returns
        -------
        tuple
            The :class:`~mlcycle.registry.ModelVersion`, and True if this call created it;
            False if a version with the same ``client_token`` existed, which is returned
            unchanged.

        Raises
        ------
        NotFoundError
            If the group does not exist.
        """

    @abc.abstractmethod
    def describe_version(self, group: str, version: int) -> ModelVersion:
        """Return one version.

        Raises
        ------
        NotFoundError
            If the group or version does not exist (``kind="model-version"``, name
            ``"<group>/<version>"``).
        """

    @abc.abstractmethod
    def list_versions(
        self,
        group: str,
        *,
        status: ApprovalStatus | None = None,
        ascending: bool = False,
    ) -> Iterator[ModelVersion]:
        """Iterate over a group's versions by number, newest first unless ``ascending``.

        Only those with ``status``, if given.

        Raises
        ------
        NotFoundError
            If the group does not exist.
        """

    @abc.abstractmethod
    def update_status(
        self, group: str, version: int, status: ApprovalStatus, *, actor: str, reason: str
    ) -> ModelVersion:
        """Set a version's approval status and append an audit event; return the version.

        Setting the status it already has changes nothing and appends nothing.

        Raises
        ------
        NotFoundError
            If the group or version does not exist.
        """

    @abc.abstractmethod
    def set_alias(
        self, group: str, alias: str, version: int | None, *, actor: str, reason: str
    ) -> None:
        """Point ``alias`` at ``version`` (or remove it, for None) and append an audit event.

        Raises
        ------
        NotFoundError
            If the group or version does not exist, or (removing) the alias does not.
        """

    @abc.abstractmethod
    def aliases(self, group: str) -> dict[str, int]:
        """Return the group's aliases and the versions they point at.

        Raises
        ------
        NotFoundError
            If the group does not exist.
        """

    @abc.abstractmethod
    def audit_log(self, group: str) -> Iterator[AuditEvent]:
        """Iterate over the group's audit events, oldest first.

        Raises
        ------
        NotFoundError
            If the group does not exist.
        """

    # -- derived -----------------------------------------------------------------------------
    def latest_version(
        self, group: str, *, status: ApprovalStatus | None = None
    ) -> ModelVersion | None:
        """Return the highest-numbered version (with ``status``, if given), or None."""
        return next(iter(self.list_versions(group, status=status)), None)
