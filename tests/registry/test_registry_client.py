import json
import logging
import subprocess
import sys

import attrs
import pytest

import mlcycle
from mlcycle.backends.base import Capability
from mlcycle.backends.local import LocalBackend
from mlcycle.errors import (
    InvalidStateError,
    NotFoundError,
    PromotionRefusedError,
    SpecValidationError,
    UnsupportedOperationError,
)
from mlcycle.registry import InferenceSpec, RegistryClient, metric_threshold
from mlcycle.testing.contract.registry import model_tarball, store_model, tiny_booster
from mlcycle.testing.contract.training import regression_frame
from mlcycle.training import JobStatus, TrainingJob, TrainingJobSpec


class NoLineageBackend(LocalBackend):
    capabilities = LocalBackend.capabilities - {Capability.LINEAGE}


class NoRegistryBackend(LocalBackend):
    capabilities = LocalBackend.capabilities - {Capability.REGISTRY}


@pytest.fixture
def registry(local_backend):
    return RegistryClient(local_backend)


def _job(backend, name="reg-job"):
    frame = regression_frame(80)
    spec = TrainingJobSpec(hyperparameters={"num_round": 3, "max_depth": 2, "nthread": 1},
                           train=frame.iloc[:60], validation=frame.iloc[60:], label="y")
    job = TrainingJob.submit(backend, spec, name=name)
    job.wait(timeout=120)
    return job


# -- construction ------------------------------------------------------------------------------
def test_the_constructor_does_no_io(tmp_path):
    backend = LocalBackend(tmp_path / "never")
    client = RegistryClient(backend, promotion_hooks=[metric_threshold("rmse", max=1)])
    assert not (tmp_path / "never").exists()
    assert len(client.promotion_hooks) == 1
    assert "RegistryClient" in repr(client)
    assert mlcycle.RegistryClient is RegistryClient


def test_hooks_must_be_callable(local_backend):
    with pytest.raises(SpecValidationError) as info:
        RegistryClient(local_backend, promotion_hooks=["not a hook"])
    assert info.value.field == "promotion_hooks"


def test_a_backend_without_a_registry_says_so(tmp_path):
    client = RegistryClient(NoRegistryBackend(tmp_path / "ws"))
    with pytest.raises(UnsupportedOperationError) as info:
        client.list_groups()
    assert info.value.capability == "registry"


def test_import_loads_nothing_heavy():
    code = ("import sys, json, mlcycle.registry; "
            "print(json.dumps(sorted(m for m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)}
    assert not loaded & {"xgboost", "pandas", "numpy", "duckdb", "pyarrow", "boto3"}


# -- who ---------------------------------------------------------------------------------------
def test_the_default_actor_is_the_os_user(local_backend, monkeypatch):
    import getpass

    monkeypatch.setattr(getpass, "getuser", lambda: "olga")
    registry = RegistryClient(local_backend)
    version = registry.register("who", store_model(local_backend), create_group=True)
    assert version.created_by == "olga"

    def no_user():
        raise OSError("no user name")

    monkeypatch.setattr(getpass, "getuser", no_user)
    assert registry.approve("who", 1).status_changed_by == "unknown"


@pytest.mark.parametrize(("kwargs", "field"), [({"by": ""}, "by"), ({"by": 3}, "by"),
                                               ({"reason": "x" * 1025}, "reason"),
                                               ({"reason": None}, "reason")])
def test_bad_actor_or_reason(registry, local_backend, kwargs, field):
    registry.register("who", store_model(local_backend), create_group=True)
    with pytest.raises(SpecValidationError) as info:
        registry.approve("who", 1, **kwargs)
    assert info.value.field == field
    with pytest.raises(SpecValidationError) as info:
        registry.register("who", store_model(local_backend), created_by="")
    assert info.value.field == "created_by"


# -- models ------------------------------------------------------------------------------------
def test_a_missing_or_unreadable_file(registry, tmp_path):
    registry.create_group("files")
    with pytest.raises(NotFoundError) as info:
        registry.register("files", tmp_path / "absent.tar.gz")
    assert info.value.kind == "file"
    with pytest.raises(SpecValidationError) as info:
        registry.register("files", tmp_path)  # a folder
    assert info.value.field == "model"
    assert registry.list_versions("files") == []


def test_the_same_bytes_from_two_paths_are_one_version(registry, tmp_path):
    registry.create_group("paths")
    for name in ("a.tar.gz", "b.tar.gz"):
        (tmp_path / name).write_bytes(model_tarball(1))
    first = registry.register("paths", tmp_path / "a.tar.gz")
    second = registry.register("paths", tmp_path / "b.tar.gz")
    assert first == second
    assert first.model_key.startswith("registry/paths/models/")
    # the same model in another group is that group's own version 1
    assert registry.register("other", tmp_path / "a.tar.gz", create_group=True).version == 1


def test_framework_version_comes_from_the_model(registry, local_backend):
    saved = json.loads(bytes(tiny_booster().save_raw(raw_format="json")))
    version = registry.register("fw", store_model(local_backend), create_group=True)
    assert version.inference.framework_version == ".".join(map(str, saved["version"]))
    given = registry.register("fw", store_model(local_backend, seed=2),
                              inference=InferenceSpec(runtime=None, image="img:1"))
    assert given.inference.image == "img:1"
    assert given.inference.framework_version == version.inference.framework_version


def test_a_job_without_a_model_cannot_be_registered(registry, local_backend):
    job = _job(local_backend)

    class Running(TrainingJob):
        def describe(self):
            info = super().describe()
            return attrs.evolve(info, status=JobStatus.IN_PROGRESS, model_key=None)

    registry.create_group("jobs")
    with pytest.raises(InvalidStateError) as info:
        registry.register("jobs", Running(local_backend, job.name))
    assert info.value.state == "InProgress"
    assert registry.list_versions("jobs") == []


def test_a_job_of_another_workspace_is_copied(registry, local_backend, tmp_path):
    other = LocalBackend(tmp_path / "elsewhere")
    try:
        job = _job(other, name="far-job")
        version = registry.register("copied", job, create_group=True)
    finally:
        other.close()
    assert version.source == "far-job"
    assert version.model_key.startswith("registry/copied/models/")
    assert set(version.metrics) >= {"train-rmse", "validation-rmse"}
    assert registry.load_model("copied", 1).num_features() == 4


def test_a_tampered_model_is_logged(registry, local_backend, caplog):
    registry.register("tamper", store_model(local_backend), create_group=True)
    local_backend.artifacts.put_bytes(registry.get_version("tamper", 1).model_key, b"other")
    with caplog.at_level(logging.WARNING, logger="mlcycle"), \
            pytest.raises(InvalidStateError) as info:
        registry.load_model("tamper", 1)
    assert info.value.state == "digest-mismatch"
    assert any("tamper" in r.getMessage() for r in caplog.records)


def test_registering_is_logged(registry, local_backend, caplog):
    with caplog.at_level(logging.INFO, logger="mlcycle"):
        registry.register("logged", store_model(local_backend), create_group=True)
        registry.register("logged", store_model(local_backend))
    messages = [r.getMessage() for r in caplog.records if r.name == "mlcycle"]
    assert any("registered logged version 1" in m for m in messages)
    assert any("registered already" in m for m in messages)


# -- hooks -------------------------------------------------------------------------------------
def test_the_first_refusing_hook_wins_and_later_ones_do_not_run(local_backend):
    calls = []

    def allow(version, target):
        calls.append("allow")

    def refuse(version, target):
        calls.append("refuse")
        return ""  # anything but None refuses, even an empty reason

    def never(version, target):
        calls.append("never")

    registry = RegistryClient(local_backend, promotion_hooks=[allow, refuse, never])
    registry.register("gated", store_model(local_backend), create_group=True)
    with pytest.raises(PromotionRefusedError) as info:
        registry.approve("gated", 1)
    assert info.value.hook == "refuse" and info.value.reason
    assert calls == ["allow", "refuse"]


def test_an_error_inside_a_hook_propagates_and_changes_nothing(local_backend):
    def broken(version, target):
        raise RuntimeError("hook bug")

    registry = RegistryClient(local_backend, promotion_hooks=[broken])
    registry.register("broken", store_model(local_backend), create_group=True)
    with pytest.raises(RuntimeError):
        registry.approve("broken", 1)
    assert not registry.get_version("broken", 1).is_approved
    assert len(registry.history("broken")) == 1


def test_approving_an_approved_version_runs_no_hook(local_backend):
    seen = []
    registry = RegistryClient(local_backend, promotion_hooks=[
        lambda version, target: seen.append(target)])
    registry.register("once", store_model(local_backend), create_group=True)
    registry.approve("once", 1)
    registry.approve("once", "latest")
    registry.set_alias("once", "champion", 1)
    registry.set_alias("once", "champion", 1)
    assert seen == ["Approved", "alias:champion"]


def test_bad_tags_metrics_and_names(registry, local_backend):
    registry.create_group("fields")
    key = store_model(local_backend)
    for kwargs, field in (({"tags": {"aws:reserved": "x"}}, "tags"),
                          ({"tags": {"k": "v" * 257}}, "tags"),
                          ({"tags": ["k"]}, "tags"),
                          ({"metrics": [1.0]}, "metrics"),
                          ({"metrics": {"": 1.0}}, "metrics"),
                          ({"metrics": {"ok": True}}, "metrics"),
                          ({"client_token": "x" * 37}, "client_token")):
        with pytest.raises(SpecValidationError) as info:
            registry.register("fields", key, **kwargs)
        assert info.value.field == field, kwargs
    with pytest.raises(SpecValidationError) as info:
        registry.create_group("fine", description="x" * 2000)
    assert info.value.field == "description"
    with pytest.raises(SpecValidationError) as info:
        registry.remove_alias("fields", "Bad")
    assert info.value.field == "alias"
    assert registry.list_versions("fields") == []


# -- lineage -----------------------------------------------------------------------------------
def test_lineage_reaches_the_training_job_and_group(registry, local_backend):
    job = _job(local_backend, name="lineage-job")
    version = registry.register("lineage", job, create_group=True)
    graph = registry.lineage("lineage", 1)
    package = graph.vertices[0]
    assert package.type == "ModelPackage" and package.source_uri == version.arn
    models = graph.of_type("Model")
    assert [m.digest for m in models] == [version.model_digest]
    assert [v.name for v in graph.of_type("TrainingJob")] == ["training-job/lineage-job"]
    down = registry.lineage("lineage", "latest", direction="Descendants", max_depth=1)
    assert [v.type for v in down.vertices] == ["ModelPackage", "ModelPackageGroup"]
    group = local_backend.lineage.find_entity("Context", name="model-package-group/lineage")
    assert group is not None and group.source_uri == registry.get_group("lineage").arn


def test_lineage_needs_the_capability_and_a_record(tmp_path):
    plain = NoLineageBackend(tmp_path / "ws")
    try:
        blind = RegistryClient(plain)
        blind.register("dark", store_model(plain), create_group=True)
        with pytest.raises(UnsupportedOperationError) as info:
            blind.lineage("dark", 1)
        assert info.value.capability == "lineage"
    finally:
        plain.close()
    full = LocalBackend(tmp_path / "ws")
    try:
        with pytest.raises(NotFoundError) as info:
            RegistryClient(full).lineage("dark", 1)
        assert info.value.kind == "lineage-entity"
    finally:
        full.close()
