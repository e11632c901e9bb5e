"""The registry contract: what every backend with the ``registry`` capability does.

The suite drives the facade (:class:`mlcycle.registry.RegistryClient`) and asserts on types,
fields and typed errors, never on message text or local files: models go in and out through
the backend's artifact store, so a remote backend (SageMaker on moto) can pass it too. A
backend's test module subclasses it and supplies a ``backend`` fixture::

    from mlcycle.testing.contract.registry import RegistryContract

    class TestMyRegistry(RegistryContract): ...

Models are tiny XGBoost boosters (:func:`store_model`), so the suite runs in seconds.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import tarfile
from typing import TYPE_CHECKING

import pytest

from mlcycle.backends.base import Backend, Capability
from mlcycle.errors import (
    AlreadyExistsError,
    InvalidStateError,
    NotFoundError,
    PromotionRefusedError,
    SpecValidationError,
)
from mlcycle.lineage.digest import digest_bytes
from mlcycle.registry import (
    ApprovalStatus,
    AuditEvent,
    InferenceSpec,
    ModelPackageGroupInfo,
    ModelVersion,
    RegistryBackend,
    RegistryClient,
    metric_threshold,
)

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    import xgboost

__all__ = ["RegistryContract", "model_tarball", "store_model", "tiny_booster"]

PENDING, APPROVED, REJECTED = ApprovalStatus.PENDING, ApprovalStatus.APPROVED, \
    ApprovalStatus.REJECTED


def tiny_booster(seed: int = 0) -> xgboost.Booster:
    """A two-round XGBoost regressor on 30 random rows of three features ``a``, ``b``, ``c``.

    Different seeds give different models (and so different digests).
    """
    import numpy as np
    import xgboost

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(30, 3))
    y = x[:, 0] * 2 + rng.normal(scale=0.1, size=30)
    data = xgboost.DMatrix(x, label=y, feature_names=["a", "b", "c"])
    return xgboost.train({"max_depth": 2, "nthread": 1, "seed": seed}, data, 2)


def model_tarball(seed: int = 0) -> bytes:
    """The bytes of a ``model.tar.gz`` holding :func:`tiny_booster` ``(seed)``."""
    from mlcycle.training.artifact import build_model_tarball

    return build_model_tarball(tiny_booster(seed), metadata={"label": "y", "seed": seed})


def store_model(backend: Backend, key: str | None = None, *, seed: int = 0) -> str:
    """Store :func:`model_tarball` ``(seed)`` in ``backend.artifacts``; return its key.

    Parameters
    ----------
    backend : mlcycle.Backend
        Where to store it.
    key : str, optional
        The artifact key; default ``contract/models/<seed>/model.tar.gz``.
    seed : int
        Which model.
    """
    key = key or f"contract/models/{seed}/model.tar.gz"
    backend.artifacts.put_bytes(key, model_tarball(seed))
    return key


def _tarball(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


class _Recorder:
    """A hook that records what it saw and refuses the targets it is told to."""

    name = "recorder"

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.seen: list[tuple[int, str]] = []
        self.refuse = refuse

    def __call__(self, version: ModelVersion, target: str) -> str | None:
        self.seen.append((version.version, target))
        return f"no {target}" if target in self.refuse else None


def _utc(moment: dt.datetime) -> bool:
    return moment.tzinfo is not None and moment.utcoffset() == dt.timedelta(0)


class RegistryContract:
    """What every registry backend does, through the facade."""

    @pytest.fixture
    def registry(self, backend: Backend) -> RegistryClient:
        return RegistryClient(backend)

    @pytest.fixture
    def group(self, registry: RegistryClient) -> str:
        registry.create_group("contract-models", description="contract")
        return "contract-models"

    # -- the backend -------------------------------------------------------------------------
    def test_backend_declares_the_registry(self, backend: Backend) -> None:
        assert backend.supports(Capability.REGISTRY)
        assert isinstance(backend.registry, RegistryBackend)

    def test_an_incomplete_backend_cannot_be_instantiated(self) -> None:
        class Incomplete(RegistryBackend):
            def create_group(self, name, *, description="", tags=None):  # type: ignore[override]
                raise NotImplementedError

        with pytest.raises(TypeError):
            Incomplete()  # type: ignore[abstract]

    # -- groups ------------------------------------------------------------------------------
    def test_groups_are_created_got_and_listed(self, registry: RegistryClient) -> None:
        info = registry.create_group("churn-a", description="first", tags={"team": "ml"})
        assert isinstance(info, ModelPackageGroupInfo)
        assert (info.name, info.description, dict(info.tags)) == ("churn-a", "first",
                                                                  {"team": "ml"})
        assert isinstance(info.arn, str) and info.arn
        assert _utc(info.created_at)
        assert registry.get_group("churn-a") == info
        assert registry.find_group("churn-a") == info
        registry.create_group("churn-b")
        registry.create_group("other")
        names = [g.name for g in registry.list_groups()]
        assert names.index("other") < names.index("churn-b") < names.index("churn-a")
        assert [g.name for g in registry.list_groups(name_contains="churn")] == [
            "churn-b", "churn-a"]
        assert registry.list_groups(name_contains="nothing-like-it") == []

    def test_a_duplicate_group_already_exists(self, registry: RegistryClient) -> None:
        registry.create_group("dup")
        with pytest.raises(AlreadyExistsError) as info:
            registry.create_group("dup")
        assert (info.value.kind, info.value.name) == ("model-package-group", "dup")

    def test_a_missing_group_is_not_found(self, registry: RegistryClient) -> None:
        with pytest.raises(NotFoundError) as info:
            registry.get_group("missing")
        assert (info.value.kind, info.value.name) == ("model-package-group", "missing")
        assert registry.find_group("missing") is None
        for call in (lambda: registry.list_versions("missing"),
                     lambda: registry.latest_approved("missing"),
                     lambda: registry.history("missing")):
            with pytest.raises(NotFoundError) as info:
                call()
            assert info.value.kind == "model-package-group"

    @pytest.mark.parametrize("name", ["", "-lead", "trail-", "has space", "under_score",
                                      "x" * 64, "dot.ted", 7])
    def test_bad_group_names_are_rejected(self, registry: RegistryClient, name: object) -> None:
        with pytest.raises(SpecValidationError) as info:
            registry.create_group(name)  # type: ignore[arg-type]
        assert info.value.field == "group"

    # -- registering -------------------------------------------------------------------------
    def test_register_from_an_artifact_key(self, backend: Backend, registry: RegistryClient,
                                           group: str) -> None:
        key = store_model(backend)
        version = registry.register(group, key, metrics={"validation-rmse": 0.5},
                                    tags={"stage": "dev"}, description="first try",
                                    created_by="ana")
        assert isinstance(version, ModelVersion)
        assert (version.group, version.version) == (group, 1)
        assert isinstance(version.arn, str) and version.arn
        assert version.model_key == key
        assert version.model_digest == digest_bytes(backend.artifacts.get_bytes(key))
        assert isinstance(version.model_uri, str) and version.model_uri
        assert dict(version.metrics) == {"validation-rmse": 0.5}
        assert dict(version.tags) == {"stage": "dev"}
        assert version.description == "first try"
        assert version.approval_status is PENDING and not version.is_approved
        assert (version.created_by, version.status_changed_by) == ("ana", "ana")
        assert version.source is None and version.aliases == ()
        assert _utc(version.created_at) and _utc(version.status_changed_at)
        assert isinstance(version.inference, InferenceSpec)
        assert version.inference.framework == "XGBOOST"
        assert version.inference.framework_version
        assert registry.get_version(group, 1) == version

    def test_register_from_a_local_file_copies_it_into_the_store(
            self, backend: Backend, registry: RegistryClient, group: str,
            tmp_path: Path) -> None:
        path = tmp_path / "model.tar.gz"
        path.write_bytes(model_tarball(3))
        version = registry.register(group, path)
        assert version.model_key is not None
        assert backend.artifacts.get_bytes(version.model_key) == path.read_bytes()
        assert version.model_digest == digest_bytes(path.read_bytes())

    def test_the_inference_spec_is_kept(self, backend: Backend, registry: RegistryClient,
                                        group: str) -> None:
        spec = InferenceSpec(image="example/xgboost:1", runtime=None,
                             content_types=("text/csv",), framework_version="9.9")
        version = registry.register(group, store_model(backend), inference=spec)
        assert version.inference == spec
        assert registry.get_version(group, 1).inference == spec

    def test_register_from_a_training_job_attaches_its_metrics(
            self, backend: Backend, registry: RegistryClient, group: str) -> None:
        if not backend.supports(Capability.TRAINING):
            pytest.skip("the backend cannot train")
        from mlcycle.testing.contract.training import regression_frame
        from mlcycle.training import TrainingJob, TrainingJobSpec

        frame = regression_frame(120)
        spec = TrainingJobSpec(hyperparameters={"num_round": 4, "max_depth": 2, "nthread": 1},
                               train=frame.iloc[:90], validation=frame.iloc[90:], label="y")
        job = TrainingJob.submit(backend, spec, name="contract-registry-job")
        job.wait(timeout=120)
        version = registry.register(group, job, metrics={"business-score": 0.7})
        final = job.metrics().final
        assert set(final) >= {"train-rmse", "validation-rmse"}
        assert dict(version.metrics) == pytest.approx({**final, "business-score": 0.7})
        assert version.source == job.name
        assert version.model_key == job.describe().model_key
        again = registry.register(group, job, metrics={"validation-rmse": 0.123})
        assert again.version == 1  # the same model from the same job: a retry
        assert registry.get_version(group, 1).metrics["validation-rmse"] == pytest.approx(
            final["validation-rmse"])

    def test_versions_are_numbered_one_to_n(self, backend: Backend, registry: RegistryClient,
                                            group: str) -> None:
        numbers = [registry.register(group, store_model(backend, seed=s)).version
                   for s in range(4)]
        assert numbers == [1, 2, 3, 4]
        registry.create_group("contract-second")
        assert registry.register("contract-second", store_model(backend, seed=9)).version == 1

    def test_a_retry_returns_the_first_version(self, backend: Backend,
                                               registry: RegistryClient, group: str) -> None:
        key = store_model(backend)
        first = registry.register(group, key, metrics={"m": 1.0})
        again = registry.register(group, key, metrics={"m": 2.0})
        assert again == first
        assert [v.version for v in registry.list_versions(group)] == [1]
        assert [e.event for e in registry.history(group)] == ["registered"]

    def test_an_explicit_client_token_dedupes_on_it(self, backend: Backend,
                                                    registry: RegistryClient,
                                                    group: str) -> None:
        key = store_model(backend)
        one = registry.register(group, key, client_token="run-1")
        two = registry.register(group, key, client_token="run-2")
        other_model = registry.register(group, store_model(backend, seed=5),
                                        client_token="run-1")
        assert (one.version, two.version) == (1, 2)
        assert other_model == one
        with pytest.raises(SpecValidationError) as info:
            registry.register(group, key, client_token="not a token!")
        assert info.value.field == "client_token"

    @pytest.mark.parametrize("content", [
        b"not a tarball",
        _tarball({"model.json": b"{}"}),
        _tarball({"xgboost-model": b"\x00\x01 not a model"}),
        _tarball({"xgboost-model": b'{"learner": {}}'}),
    ], ids=["not-a-tarball", "no-xgboost-model", "garbage-model", "empty-json-model"])
    def test_a_bad_artifact_registers_nothing(self, backend: Backend, registry: RegistryClient,
                                              group: str, content: bytes) -> None:
        backend.artifacts.put_bytes("contract/bad/model.tar.gz", content)
        with pytest.raises(SpecValidationError) as info:
            registry.register(group, "contract/bad/model.tar.gz")
        assert info.value.field == "model"
        assert registry.list_versions(group) == []
        assert registry.history(group) == []

    def test_a_model_of_another_kind_is_rejected(self, registry: RegistryClient,
                                                 group: str) -> None:
        for model in (42, b"bytes", "../escape/model.tar.gz"):
            with pytest.raises(SpecValidationError) as info:
                registry.register(group, model)  # type: ignore[arg-type]
            assert info.value.field == "model"

    def test_a_missing_artifact_is_not_found(self, registry: RegistryClient,
                                             group: str) -> None:
        with pytest.raises(NotFoundError):
            registry.register(group, "contract/nothing/model.tar.gz")
        assert registry.list_versions(group) == []

    def test_registering_into_a_missing_group(self, backend: Backend,
                                              registry: RegistryClient) -> None:
        key = store_model(backend)
        with pytest.raises(NotFoundError) as info:
            registry.register("no-such-group", key)
        assert (info.value.kind, info.value.name) == ("model-package-group", "no-such-group")
        assert registry.find_group("no-such-group") is None
        version = registry.register("no-such-group", key, create_group=True)
        assert version.version == 1
        assert registry.get_group("no-such-group").name == "no-such-group"

    @pytest.mark.parametrize(("kwargs", "field"), [
        ({"metrics": {"rmse": "low"}}, "metrics"),
        ({"metrics": {"rmse": float("nan")}}, "metrics"),
        ({"tags": {"k": 1}}, "tags"),
        ({"approval_status": "Shipped"}, "approval_status"),
        ({"inference": {"image": "x"}}, "inference"),
        ({"description": 5}, "description"),
    ])
    def test_bad_registration_fields(self, backend: Backend, registry: RegistryClient,
                                     group: str, kwargs: dict[str, object], field: str) -> None:
        key = store_model(backend)
        with pytest.raises(SpecValidationError) as info:
            registry.register(group, key, **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field
        assert registry.list_versions(group) == []

    # -- approval ----------------------------------------------------------------------------
    def test_approve_and_reject(self, backend: Backend, registry: RegistryClient,
                                group: str) -> None:
        registry.register(group, store_model(backend, seed=1))
        registry.register(group, store_model(backend, seed=2))
        approved = registry.approve(group, 1, reason="good", by="ana")
        assert approved.approval_status is APPROVED and approved.is_approved
        assert (approved.status_changed_by, approved.status_reason) == ("ana", "good")
        assert approved.status_changed_at >= approved.created_at
        assert registry.get_version(group, 1) == approved
        rejected = registry.reject(group, "2", reason="worse", by="bo")
        assert rejected.approval_status is REJECTED
        assert (rejected.status_changed_by, rejected.status_reason) == ("bo", "worse")
        # approving again changes nothing and records nothing
        assert registry.approve(group, 1, by="cy") == approved
        assert registry.reject(group, 2, by="cy") == rejected
        assert [e.event for e in registry.history(group)] == [
            "registered", "registered", "status", "status"]

    def test_approving_a_missing_version(self, backend: Backend, registry: RegistryClient,
                                         group: str) -> None:
        registry.register(group, store_model(backend))
        for call in (registry.approve, registry.reject, registry.get_version,
                     registry.load_model):
            with pytest.raises(NotFoundError) as info:
                call(group, 9)  # type: ignore[operator]
            assert (info.value.kind, info.value.name) == ("model-version", f"{group}/9")
        with pytest.raises(NotFoundError) as info:
            registry.approve("no-such-group", 1)
        assert info.value.kind == "model-package-group"
        with pytest.raises(SpecValidationError) as info:
            registry.approve(group, 0)
        assert info.value.field == "version"

    def test_a_hook_can_refuse_approval(self, backend: Backend, group: str) -> None:
        hook = metric_threshold("validation-rmse", max=0.8)
        registry = RegistryClient(backend, promotion_hooks=[hook])
        registry.register(group, store_model(backend, seed=1), metrics={"validation-rmse": 0.9})
        registry.register(group, store_model(backend, seed=2), metrics={"validation-rmse": 0.5})
        registry.register(group, store_model(backend, seed=3))  # no metric at all
        before = registry.history(group)
        for number in (1, 3):
            with pytest.raises(PromotionRefusedError) as info:
                registry.approve(group, number)
            assert isinstance(info.value, InvalidStateError)
            assert info.value.hook == hook.__name__
            assert isinstance(info.value.reason, str) and info.value.reason
            assert info.value.state == PENDING.value
            assert registry.get_version(group, number).approval_status is PENDING
        assert registry.history(group) == before
        assert registry.approve(group, 2).is_approved

    def test_hooks_see_the_version_and_target(self, backend: Backend, group: str) -> None:
        recorder = _Recorder(refuse=("alias:prod",))
        registry = RegistryClient(backend, promotion_hooks=[recorder])
        registry.register(group, store_model(backend))
        registry.approve(group, 1)
        registry.set_alias(group, "champion", 1)
        with pytest.raises(PromotionRefusedError) as info:
            registry.set_alias(group, "prod", 1)
        assert info.value.hook == "recorder" and info.value.state == APPROVED.value
        assert registry.get_version(group, 1).aliases == ("champion",)
        registry.reject(group, 1)  # rejecting is never refused
        assert recorder.seen == [(1, "Approved"), (1, "alias:champion"), (1, "alias:prod")]

    def test_registering_as_approved_runs_the_hooks(self, backend: Backend, group: str) -> None:
        registry = RegistryClient(backend, promotion_hooks=[
            metric_threshold("validation-rmse", max=0.8)])
        with pytest.raises(PromotionRefusedError):
            registry.register(group, store_model(backend, seed=1),
                              metrics={"validation-rmse": 0.9}, approval_status=APPROVED)
        assert registry.list_versions(group) == []
        version = registry.register(group, store_model(backend, seed=2),
                                    metrics={"validation-rmse": 0.1}, approval_status="Approved")
        assert version.version == 1 and version.is_approved

    # -- aliases -----------------------------------------------------------------------------
    def test_aliases_are_set_moved_and_removed(self, backend: Backend,
                                               registry: RegistryClient, group: str) -> None:
        for seed in range(3):
            registry.register(group, store_model(backend, seed=seed))
        assert registry.set_alias(group, "champion", 1, by="ana").aliases == ("champion",)
        assert registry.set_alias(group, "challenger", 1).aliases == ("challenger", "champion")
        assert registry.get_version(group, "champion").version == 1
        moved = registry.set_alias(group, "champion", 2, reason="better", by="bo")
        assert moved.version == 2 and moved.aliases == ("champion",)
        assert registry.get_version(group, 1).aliases == ("challenger",)
        assert registry.get_version(group, "champion").version == 2
        assert registry.set_alias(group, "champion", "champion").version == 2  # no change
        assert registry.set_alias(group, "third", "latest").version == 3
        assert {v.version: v.aliases for v in registry.list_versions(group)} == {
            3: ("third",), 2: ("champion",), 1: ("challenger",)}
        registry.remove_alias(group, "champion", reason="retired", by="cy")
        with pytest.raises(NotFoundError) as info:
            registry.get_version(group, "champion")
        assert (info.value.kind, info.value.name) == ("model-alias", f"{group}/champion")
        with pytest.raises(NotFoundError) as info:
            registry.remove_alias(group, "champion")
        assert info.value.kind == "model-alias"
        alias_events = [(e.event, e.alias, e.old, e.new) for e in registry.history(group)
                        if e.event.startswith("alias")]
        assert alias_events == [
            ("alias-set", "champion", None, "1"),
            ("alias-set", "challenger", None, "1"),
            ("alias-set", "champion", "1", "2"),
            ("alias-set", "third", None, "3"),
            ("alias-removed", "champion", "2", None),
        ]

    def test_an_alias_cannot_point_at_a_rejected_version(
            self, backend: Backend, registry: RegistryClient, group: str) -> None:
        registry.register(group, store_model(backend))
        registry.reject(group, 1)
        with pytest.raises(InvalidStateError) as info:
            registry.set_alias(group, "champion", 1)
        assert info.value.state == REJECTED.value
        assert not isinstance(info.value, PromotionRefusedError)
        assert registry.get_version(group, 1).aliases == ()

    @pytest.mark.parametrize("alias", ["latest", "Champion", "1st", "", "has space", "a" * 64])
    def test_bad_aliases_are_rejected(self, backend: Backend, registry: RegistryClient,
                                      group: str, alias: str) -> None:
        registry.register(group, store_model(backend))
        with pytest.raises(SpecValidationError) as info:
            registry.set_alias(group, alias, 1)
        assert info.value.field == "alias"

    def test_get_version_by_number_latest_and_alias(
            self, backend: Backend, registry: RegistryClient, group: str) -> None:
        with pytest.raises(NotFoundError) as info:
            registry.get_version(group, "latest")
        assert info.value.kind == "model-version"
        for seed in range(3):
            registry.register(group, store_model(backend, seed=seed))
        assert registry.get_version(group, "latest").version == 3
        assert registry.get_version(group, "2").version == 2
        with pytest.raises(NotFoundError) as info:
            registry.get_version(group, "nobody")
        assert info.value.kind == "model-alias"
        for bad in (0, -1, True, 1.5, "Bad Alias"):
            with pytest.raises(SpecValidationError) as info:
                registry.get_version(group, bad)  # type: ignore[arg-type]
            assert info.value.field == "version"

    # -- audit -------------------------------------------------------------------------------
    def test_the_audit_log_records_every_change_in_order(
            self, backend: Backend, registry: RegistryClient, group: str) -> None:
        registry.register(group, store_model(backend, seed=1), created_by="ana")
        registry.register(group, store_model(backend, seed=2), created_by="ana")
        registry.approve(group, 1, reason="ok", by="bo")
        registry.set_alias(group, "champion", 1, reason="ship", by="bo")
        registry.reject(group, 2, reason="bad", by="cy")
        registry.approve(group, 2, reason="fixed", by="cy")
        registry.set_alias(group, "champion", 2, by="dee")
        registry.remove_alias(group, "champion", reason="pause", by="dee")
        events = registry.history(group)
        assert all(isinstance(e, AuditEvent) and e.group == group for e in events)
        assert [e.sequence for e in events] == list(range(1, 9))
        assert all(_utc(e.at) for e in events)
        assert [e.at for e in events] == sorted(e.at for e in events)
        assert [(e.event, e.version, e.old, e.new, e.alias, e.actor, e.reason)
                for e in events] == [
            ("registered", 1, None, PENDING.value, None, "ana", ""),
            ("registered", 2, None, PENDING.value, None, "ana", ""),
            ("status", 1, PENDING.value, APPROVED.value, None, "bo", "ok"),
            ("alias-set", 1, None, "1", "champion", "bo", "ship"),
            ("status", 2, PENDING.value, REJECTED.value, None, "cy", "bad"),
            ("status", 2, REJECTED.value, APPROVED.value, None, "cy", "fixed"),
            ("alias-set", 2, "1", "2", "champion", "dee", ""),
            ("alias-removed", None, "2", None, "champion", "dee", "pause"),
        ]
        assert [e.sequence for e in registry.history(group, version=2)] == [2, 5, 6, 7]
        with pytest.raises(NotFoundError):
            registry.history(group, version=7)

    def test_the_default_actor_is_a_user_name(self, backend: Backend, registry: RegistryClient,
                                              group: str) -> None:
        version = registry.register(group, store_model(backend))
        assert isinstance(version.created_by, str) and version.created_by
        assert registry.approve(group, 1).status_changed_by == version.created_by

    # -- reading -----------------------------------------------------------------------------
    def test_latest_approved(self, backend: Backend, registry: RegistryClient,
                             group: str) -> None:
        assert registry.latest_approved(group) is None
        for seed in range(4):
            registry.register(group, store_model(backend, seed=seed))
        assert registry.latest_approved(group) is None
        registry.approve(group, 1)
        registry.approve(group, 3)
        registry.reject(group, 4)
        latest = registry.latest_approved(group)
        assert latest is not None and latest.version == 3
        registry.reject(group, 3)
        assert registry.latest_approved(group).version == 1  # type: ignore[union-attr]

    def test_listing_sorts_filters_and_limits(self, backend: Backend,
                                              registry: RegistryClient, group: str) -> None:
        for seed in range(5):
            registry.register(group, store_model(backend, seed=seed))
        registry.approve(group, 2)
        registry.approve(group, 4)
        registry.reject(group, 5)
        assert [v.version for v in registry.list_versions(group)] == [5, 4, 3, 2, 1]
        assert [v.version for v in registry.list_versions(group, ascending=True)] == [
            1, 2, 3, 4, 5]
        assert [v.version for v in registry.list_versions(group, status=APPROVED)] == [4, 2]
        assert [v.version for v in registry.list_versions(group, status="PendingManualApproval",
                                                          ascending=True)] == [1, 3]
        assert [v.version for v in registry.list_versions(group, limit=2)] == [5, 4]
        assert [v.version for v in registry.list_versions(group, status=APPROVED, limit=1,
                                                          ascending=True)] == [2]
        assert registry.list_versions(group, limit=0) == []
        assert all(isinstance(v, ModelVersion) for v in registry.list_versions(group))
        with pytest.raises(SpecValidationError) as info:
            registry.list_versions(group, status="Shipped")
        assert info.value.field == "status"
        with pytest.raises(SpecValidationError) as info:
            registry.list_versions(group, limit=-1)
        assert info.value.field == "limit"

    # -- the model ---------------------------------------------------------------------------
    def test_load_model_returns_the_registered_booster(
            self, backend: Backend, registry: RegistryClient, group: str) -> None:
        import numpy as np
        import xgboost

        registry.register(group, store_model(backend, seed=4))
        registry.set_alias(group, "champion", 1)
        booster = registry.load_model(group, "champion")
        assert isinstance(booster, xgboost.Booster)
        rows = xgboost.DMatrix(np.ones((2, 3)), feature_names=["a", "b", "c"])
        assert np.allclose(booster.predict(rows), tiny_booster(4).predict(rows))

    def test_a_tampered_model_is_detected(self, backend: Backend, registry: RegistryClient,
                                          group: str) -> None:
        version = registry.register(group, store_model(backend, seed=1))
        assert version.model_key is not None
        backend.artifacts.put_bytes(version.model_key, model_tarball(2))
        with pytest.raises(InvalidStateError):
            registry.load_model(group, 1)

    # -- lineage -----------------------------------------------------------------------------
    def test_a_version_has_lineage(self, backend: Backend, registry: RegistryClient,
                                   group: str) -> None:
        if not backend.supports(Capability.LINEAGE):
            pytest.skip("the backend records no lineage")
        version = registry.register(group, store_model(backend))
        graph = registry.lineage(group, 1)
        assert graph.vertices[0].type == "ModelPackage"
        assert [v.digest for v in graph.of_type("Model")] == [version.model_digest]
        around = registry.lineage(group, 1, direction="Both")
        assert len(around.of_type("ModelPackageGroup")) == 1
