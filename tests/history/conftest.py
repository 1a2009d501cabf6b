"""A synthetic warehouse of nine days whose events are generated once per session.

Tests take a private copy: with only the last day rolled up (what a warehouse whose
earlier days were never rolled up looks like) or with every day rolled up.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from history_support import DAYS, END, FIRST, PARAMS, REPO

from expkit.alerts.rules import AlertsConfig, load_alerts
from expkit.config import ExperimentConfig, load_experiment
from expkit.rollup import build_range, build_rollups
from expkit.synth import generate


@pytest.fixture(scope="session")
def config() -> ExperimentConfig:
    return load_experiment(PARAMS)


@pytest.fixture(scope="session")
def rules() -> AlertsConfig:
    return load_alerts(REPO / "params" / "alerts.yaml")


@pytest.fixture(scope="session")
def events_wh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Events of 2026-11-06 … 2026-11-14, 2000 users, no rollups: never modify it."""
    out = tmp_path_factory.mktemp("history") / "wh"
    generate(out, days=DAYS, end=END, users=2000, seed=21)
    return out


@pytest.fixture(scope="session")
def full_wh(events_wh: Path, tmp_path_factory: pytest.TempPathFactory, config: ExperimentConfig) -> Path:
    """Every day rolled up in date order (the reference): never modify it."""
    out = Path(shutil.copytree(events_wh, tmp_path_factory.mktemp("history-full") / "wh"))
    build_range(out, FIRST, END, config)
    return out


@pytest.fixture(scope="session")
def last_day_wh(events_wh: Path, tmp_path_factory: pytest.TempPathFactory, config: ExperimentConfig) -> Path:
    """Only :data:`END` rolled up: never modify it (take :func:`last_day_only` for a private copy)."""
    out = Path(shutil.copytree(events_wh, tmp_path_factory.mktemp("history-last") / "wh"))
    build_rollups(out, END, config)
    return out


@pytest.fixture
def last_day_only(last_day_wh: Path, tmp_path: Path) -> Path:
    """A private copy with only :data:`END` rolled up (modification times kept: END stays fresh)."""
    return Path(shutil.copytree(last_day_wh, tmp_path / "wh"))
