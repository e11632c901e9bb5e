from __future__ import annotations

import pytest

from mlcycle.backends.local import LocalBackend


@pytest.fixture
def local_backend(tmp_path):
    backend = LocalBackend(tmp_path / "ws")
    yield backend
    backend.close()


@pytest.fixture
def sagemaker_backend():
    from mlcycle.testing.aws import mock_sagemaker_backend

    with mock_sagemaker_backend() as backend:
        yield backend


@pytest.fixture(autouse=True)
def _no_configured_backend(monkeypatch):
    """Tests never pick up a developer's MLCYCLE_BACKEND or AWS settings."""
    monkeypatch.delenv("MLCYCLE_BACKEND", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
