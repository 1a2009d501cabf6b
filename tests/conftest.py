"""Fixtures shared by every test folder: a small synthetic warehouse, generated and rolled up
once per test session (only when a test asks for it)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from expkit.config import load_experiment
from expkit.rollup import build_range
from expkit.synth import generate

collect_ignore = ["conftest.py"]  # fixtures only: not a module to collect doctests from

REPO = Path(__file__).resolve().parents[1]
END = dt.date(2026, 11, 14)
DAYS = 8


@pytest.fixture(scope="session")
def config():
    return load_experiment(REPO / "params" / "experiment.yaml")


@pytest.fixture(scope="session")
def small_wh(tmp_path_factory: pytest.TempPathFactory, config) -> Path:
    """8 days, 4000 users, seed 11, rolled up with DuckDB."""
    out = tmp_path_factory.mktemp("foundation") / "wh"
    generate(out, days=DAYS, end=END, users=4000, seed=11)
    build_range(out, END - dt.timedelta(days=DAYS - 1), END, config)
    return out
