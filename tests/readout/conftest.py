"""Synthetic warehouses for the readout tests, each generated and rolled up once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from readout_support import build


@pytest.fixture(scope="session")
def short(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """3 healthy days, 3000 users, the default true lift (+5%): far from conclusive."""
    return build(tmp_path_factory.mktemp("short"), days=3, users=3000, seed=41)


@pytest.fixture(scope="session")
def imbalance(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """2 days, traffic_imbalance on the last (30% of treatment users lost)."""
    return build(tmp_path_factory.mktemp("imbalance"), days=2, users=3000, seed=12, incidents=["traffic_imbalance"])
