"""Fixtures for cluster tests: a real Valkey/Redis server per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.valkey_process import ValkeyProcess, valkey_process


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[ValkeyProcess]:
    with valkey_process(tmp_path / "valkey") as server:
        yield server
