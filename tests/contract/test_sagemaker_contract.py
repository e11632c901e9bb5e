import pytest

from mlcycle.testing.contract import ArtifactStoreContract, BackendContract

pytestmark = pytest.mark.aws


@pytest.fixture
def backend(sagemaker_backend):
    return sagemaker_backend


class TestSageMakerBackend(BackendContract):
    pass


class TestSageMakerArtifacts(ArtifactStoreContract):
    def test_concurrent_writers_leave_one_whole_value(self, backend):
        # moto's in-process S3 swaps an object's buffer while another thread reads it
        # ("I/O operation on closed file"); real S3 PUTs are atomic. Not a gap of ours.
        pytest.skip("moto's in-memory S3 is not thread-safe for one key")
