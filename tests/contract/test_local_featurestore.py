import pytest

from mlcycle.testing.contract.featurestore import FeatureStoreContract


@pytest.fixture
def backend(local_backend):
    return local_backend


class TestLocalFeatureStore(FeatureStoreContract):
    pass
