"""Contract suites: the behaviour every backend must show, written once.

A backend's test module subclasses each suite and supplies a ``backend`` fixture::

    import pytest
    from mlcycle.testing.contract import ArtifactStoreContract, BackendContract

    @pytest.fixture
    def backend(tmp_path):
        return MyBackend(tmp_path)

    class TestMyBackend(BackendContract): ...
    class TestMyArtifacts(ArtifactStoreContract): ...

Tests assert types and structured fields, never message text.
"""

from __future__ import annotations

import concurrent.futures

import pytest

import mlcycle
from mlcycle.backends.base import Backend, Capability
from mlcycle.errors import NotFoundError, SpecValidationError, UnsupportedOperationError

__all__ = ["ArtifactStoreContract", "BackendContract"]


class BackendContract:
    """What every backend bundle does: identity by URI, capabilities as data, ``require``."""

    def test_is_a_backend(self, backend: Backend) -> None:
        assert isinstance(backend, Backend)
        assert isinstance(backend.scheme, str) and backend.scheme
        assert all(isinstance(c, Capability) for c in backend.capabilities)
        assert Capability.ARTIFACTS in backend.capabilities

    def test_uri_round_trips_through_connect(self, backend: Backend) -> None:
        again = mlcycle.connect(backend.uri)
        assert type(again) is type(backend)
        assert again.uri == backend.uri

    def test_require_missing_capability_names_it(self, backend: Backend) -> None:
        missing = [c for c in Capability if c not in backend.capabilities]
        for capability in missing:
            with pytest.raises(UnsupportedOperationError) as info:
                backend.require(capability)
            assert info.value.backend == backend.scheme
            assert info.value.capability == capability.value
            assert not backend.supports(capability)
        for capability in backend.capabilities:
            backend.require(capability)
            assert backend.supports(capability)

    def test_close_is_idempotent_and_backend_stays_usable(self, backend: Backend) -> None:
        backend.artifacts.put_bytes("contract/close.txt", b"1")
        backend.close()
        backend.close()
        assert backend.artifacts.get_bytes("contract/close.txt") == b"1"

    def test_repr_holds_no_secret(self, backend: Backend) -> None:
        text = repr(backend)
        assert backend.scheme in text
        for secret in ("testing", "SECRET", "aws_secret_access_key"):
            assert secret not in text


class ArtifactStoreContract:
    """What every artifact store does: atomic put, get, list, delete, typed errors."""

    def test_put_get_round_trip(self, backend: Backend) -> None:
        store = backend.artifacts
        uri = store.put_bytes("a/b/c.bin", b"\x00\x01payload")
        assert uri == store.uri("a/b/c.bin")
        assert store.get_bytes("a/b/c.bin") == b"\x00\x01payload"
        assert store.exists("a/b/c.bin")

    def test_put_replaces(self, backend: Backend) -> None:
        store = backend.artifacts
        store.put_bytes("x.txt", b"old")
        store.put_bytes("x.txt", b"new")
        assert store.get_bytes("x.txt") == b"new"

    def test_json_round_trip(self, backend: Backend) -> None:
        store = backend.artifacts
        value = {"b": [1, 2.5, None], "a": "text"}
        store.put_json("doc.json", value)
        assert store.get_json("doc.json") == value

    def test_missing_key_is_not_found(self, backend: Backend) -> None:
        store = backend.artifacts
        with pytest.raises(NotFoundError) as info:
            store.get_bytes("missing/key")
        assert info.value.kind == "artifact" and info.value.name == "missing/key"
        with pytest.raises(NotFoundError):
            store.delete("missing/key")
        assert not store.exists("missing/key")

    def test_list_is_sorted_and_filtered_by_prefix(self, backend: Backend) -> None:
        store = backend.artifacts
        for key in ("p/2", "p/1", "q/1", "p/sub/3"):
            store.put_bytes(key, key.encode())
        assert list(store.list_keys("p/")) == ["p/1", "p/2", "p/sub/3"]
        assert set(store.list_keys()) >= {"p/1", "p/2", "q/1", "p/sub/3"}

    def test_delete(self, backend: Backend) -> None:
        store = backend.artifacts
        store.put_bytes("gone", b"1")
        store.delete("gone")
        assert not store.exists("gone")
        with pytest.raises(NotFoundError):
            store.get_bytes("gone")

    @pytest.mark.parametrize(
        "key", ["", "/abs", "../up", "a/../b", "a//b", "a/./b", "sp ace", "a\\b", "x\x00"]
    )
    def test_bad_keys_are_rejected(self, backend: Backend, key: str) -> None:
        with pytest.raises(SpecValidationError) as info:
            backend.artifacts.put_bytes(key, b"1")
        assert info.value.field == "key"

    def test_concurrent_writers_leave_one_whole_value(self, backend: Backend) -> None:
        store = backend.artifacts
        values = [bytes([i]) * 50_000 for i in range(8)]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda v: store.put_bytes("race.bin", v), values))
        assert store.get_bytes("race.bin") in values
