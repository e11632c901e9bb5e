"""Fixtures of the local feature store tests (names prefixed ``fs_`` so they stay apart)."""

import pytest

from mlcycle.featurestore import FeatureStore
from mlcycle.testing.contract.featurestore import FakeClock


@pytest.fixture
def fs_clock():
    return FakeClock()


@pytest.fixture
def fs_store(local_backend, fs_clock):
    return FeatureStore(local_backend, clock=fs_clock)
