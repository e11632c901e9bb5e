import pytest

from mlcycle.testing.contract import ArtifactStoreContract, BackendContract


@pytest.fixture
def backend(local_backend):
    return local_backend


class TestLocalBackend(BackendContract):
    pass


class TestLocalArtifacts(ArtifactStoreContract):
    pass
