"""Fixtures for the synthetic generator tests."""

from __future__ import annotations

import pytest
from synth_support import Warehouse, make


@pytest.fixture(scope="session")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """One healthy day (the baseline of most tests)."""
    return make(tmp_path_factory, "healthy")
