import pytest

from mlcycle.testing.contract.training import TrainingContract


@pytest.fixture
def backend(local_backend):
    return local_backend


class TestLocalTraining(TrainingContract):
    pass
