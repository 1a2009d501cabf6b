"""Fixtures of the validation tests.

* ``scenario``: one synthetic-day self-test (3 days, 4000 users, four incidents on the last
  day), shared by the whole session: generation, rollups with the late files held back, the
  late files landing, validation of every day, detection, backfill and a second backfill.
* ``tiny``: a hand-made warehouse of a few rows per table, for exact per-check assertions.
* ``small``: 2 healthy rolled-up synthetic days of 1,000 users (copy it before changing it).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from expkit.config import load_experiment
from expkit.rollup import build_range
from expkit.selftest import SelftestOptions, SelftestReport, run_selftest
from expkit.synth import generate

from .validation_support import END, MIN, SCENARIO_INCIDENTS, T0, TinyWarehouse

PARAMS = Path(__file__).resolve().parents[2] / "params" / "experiment.yaml"


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> SelftestReport:
    """The self-test run every scenario test reads (tiles and report left to their own tests)."""
    options = SelftestOptions(incidents=SCENARIO_INCIDENTS, days=3, users=4000, seed=1, end=END,
                              report=False, tiles=False, workdir=tmp_path_factory.mktemp("selftest"))
    return run_selftest(options)


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A healthy synthetic warehouse: 2 days ending at END, 1,000 users, rolled up."""
    wh = tmp_path_factory.mktemp("small") / "wh"
    generate(wh, days=2, end=END, users=1000, seed=3)
    build_range(wh, END - dt.timedelta(days=1), END, load_experiment(PARAMS))
    return wh


@pytest.fixture
def tiny(tmp_path: Path) -> TinyWarehouse:
    """A hand-made warehouse with one healthy request (impressions, a click, a save, a play) on DAY."""
    wh = TinyWarehouse(tmp_path / "wh")
    wh.healthy_request(1, T0 + 60 * MIN)
    wh.write("saves", [{"request_id": 1, "item_id": 2, "timestamp_ms": T0 + 61 * MIN}])
    wh.write("plays", [{"timestamp_ms": T0 + 62 * MIN}])
    return wh
