"""The lineage contract on the local backend."""

from __future__ import annotations

from pathlib import Path

import pytest

import mlcycle
from mlcycle.backends.base import Backend
from mlcycle.testing.contract.lineage import LineageContract


class TestLocalLineage(LineageContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        with mlcycle.connect(f"local://{tmp_path / 'ws'}") as b:
            yield b
