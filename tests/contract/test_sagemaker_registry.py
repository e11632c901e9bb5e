"""The sagemaker registry backend on moto: the shared registry contract.

moto 5.2.5 implements the model registry (groups, versioned packages, the approval filter,
``UpdateModelPackage``, tags on groups) and S3 conditional writes, so the whole contract runs
against it. Training jobs get the simulated XGBoost container
(:class:`mlcycle.testing.aws_training.SimulatedContainer`), so that registering from a job
has a model.
"""

from __future__ import annotations

import pytest

from mlcycle.testing.aws_training import SimulatedContainer
from mlcycle.testing.contract.registry import RegistryContract

pytestmark = pytest.mark.aws


@pytest.fixture
def backend():
    from mlcycle.testing.aws import mock_sagemaker_backend

    with mock_sagemaker_backend() as sagemaker:
        SimulatedContainer(sagemaker)
        yield sagemaker


class TestSageMakerRegistry(RegistryContract):
    """The shared contract on moto."""
