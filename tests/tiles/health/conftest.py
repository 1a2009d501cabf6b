"""Synthetic warehouses for the health tile tests, each built once per session.

* ``clean``: 11 healthy days, 4000 users (a full week with four earlier days of history, so
  the anomaly tile scores every point of a 7-day window).
* ``incidents``: the same history, and a last day with five incidents at their default,
  non-overlapping times (stale_partition 12:00/60, latency_spike 14:00/30, coverage_drop
  15:00/30, cache_failure 18:00/30, error_burst 19:30/20), so each tile's breaching bins can
  be attributed to one incident.
* ``imbalance``: the same history, and a last day with traffic_imbalance.

The generator's days depend only on the seed, the date and the users, so an incident
warehouse generates just its last day and shares the clean history's rollup files (hard
links; a rollup rebuild swaps folders and never writes into them).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from expkit.config import ExperimentConfig, load_experiment
from expkit.rollup import build_range, build_rollups
from expkit.synth import generate

ROOT = Path(__file__).resolve().parents[3]
PARAMS = ROOT / "params" / "experiment.yaml"
END = dt.date(2026, 11, 14)
DAYS = 11
USERS = 4000
SEED = 11
INCIDENTS = ("stale_partition", "latency_spike", "coverage_drop", "cache_failure", "error_burst")


@dataclass(frozen=True)
class SynthWarehouse:
    """A built warehouse and its truth."""

    root: Path
    truth: dict[str, Any]

    def window(self, name: str) -> tuple[int, int]:
        """[start, end) ms of incident ``name``."""
        inc = next(i for i in self.truth["incidents"] if i["name"] == name)
        return int(inc["start_ms"]), int(inc["end_ms"])



@pytest.fixture(scope="session")
def config() -> ExperimentConfig:
    return load_experiment(PARAMS)


@pytest.fixture(scope="session")
def health_root() -> Iterator[Path]:
    """A private temporary folder: pytest prunes its numbered base folders when other sessions
    start, which must not remove warehouses that this session still reads."""
    root = Path(tempfile.mkdtemp(prefix="expkit-health-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _generate(root: Path, config: ExperimentConfig, days: int, incidents: tuple[str, ...] = ()) -> dict[str, Any]:
    return generate(root, days=days, end=END, users=USERS, seed=SEED, incidents=list(incidents),
                    experiment_id=config.experiment_id, buckets=config.buckets, control=config.control)


@pytest.fixture(scope="session")
def clean(health_root: Path, config: ExperimentConfig) -> SynthWarehouse:
    root = health_root / "clean"
    truth = _generate(root, config, DAYS)
    build_range(root, END - dt.timedelta(days=DAYS - 1), END, config)
    return SynthWarehouse(root, truth)


def _last_day_variant(clean: SynthWarehouse, root: Path, config: ExperimentConfig,
                      incidents: tuple[str, ...]) -> SynthWarehouse:
    truth = _generate(root, config, 1, incidents)
    for src in (clean.root / "rollups").rglob("*.parquet"):
        part = src.parent.name
        if part == f"event_date={END.isoformat()}":
            continue
        dest = root / src.relative_to(clean.root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, dest)
    build_rollups(root, END, config)
    (root / "truth.json").write_text(json.dumps(truth))
    return SynthWarehouse(root, truth)


@pytest.fixture(scope="session")
def incidents(health_root: Path, clean: SynthWarehouse, config: ExperimentConfig) -> SynthWarehouse:
    return _last_day_variant(clean, health_root / "incidents", config, INCIDENTS)


@pytest.fixture(scope="session")
def imbalance(health_root: Path, clean: SynthWarehouse, config: ExperimentConfig) -> SynthWarehouse:
    return _last_day_variant(clean, health_root / "imbalance", config, ("traffic_imbalance",))
