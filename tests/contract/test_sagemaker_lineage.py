"""The lineage contract on the sagemaker backend.

moto 5.2.5 implements none of SageMaker's lineage calls: they are answered by
:mod:`mlcycle.testing.aws_lineage`, behind botocore's event system, so botocore still validates
every request against the real API model and the fake checks what the service would (lengths,
patterns, enums) and its own answers against the model's output shapes. The request shapes are
pinned with ``botocore.stub.Stubber`` in ``tests/lineage/test_sagemaker_lineage_stubber.py``.
"""

from __future__ import annotations

import pytest

from mlcycle.backends.base import Backend
from mlcycle.testing.contract.lineage import LineageContract

pytestmark = pytest.mark.aws


class TestSageMakerLineage(LineageContract):
    @pytest.fixture
    def backend(self) -> Backend:
        from mlcycle.testing.aws import mock_sagemaker_backend

        with mock_sagemaker_backend() as b:
            yield b
