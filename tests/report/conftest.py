"""Fixtures for the report tests: one real run of the test tiles, shared by the slow tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from report_browser import browser  # noqa: F401 - the shared Chromium fixture
from report_support import DAY, PARAMS, fake_steps, make_tiles

from expkit.report import DailyResult, run_daily


@pytest.fixture(scope="session")
def report_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="session")
def daily_run(report_root: Path, tmp_path_factory: pytest.TempPathFactory) -> DailyResult:
    """One real run of the eight test tiles (Papermill, nbconvert), shared by the slow tests.

    An empty report for the day before exists first, so the index gets a "previous" link.
    """
    warehouse = tmp_path_factory.mktemp("warehouse")
    run_daily(warehouse, DAY - dt.timedelta(days=1), report_root, PARAMS, tiles=[])
    return run_daily(
        warehouse,
        DAY,
        report_root,
        PARAMS,
        workers=2,
        timeout=120,
        tiles=make_tiles(),
        steps=fake_steps(),
    )
