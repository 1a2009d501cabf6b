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
TESTS = Path(__file__).resolve().parent

XDIST_GROUPS = {
    "alerts": "alerts",
    "tiles/health": "health",
    "tiles/outcomes": "outcomes",
    "engines/spark/test_spark_cluster.py": "spark-cluster",
    "engines/spark": "spark",
    "validation/test_validation_spark.py": "spark",
    "report/test_report_portfolio_e2e.py": "portfolio",
    "report": "report",
    "live": "live",
    "validation": "validation",
    "history": "history",
    "readout": "readout",
    "deepdive": "deepdive",
    "rollup": "rollup",
    "catalogue/test_catalogue_capping.py": "catalogue-capping",
}
"""Test paths (folders or files, relative to tests/) whose tests run on one pytest-xdist worker
(``--dist loadgroup``, see the Makefile), so the expensive session and module fixtures they share
(synthetic warehouses, a Spark session, a standalone Spark cluster, the daily runs of the report
and portfolio tests, the self-test scenario) are built once per run. Without a group, a folder's
tests are handed out one at a time and both workers build its fixtures. The first matching path
wins: the standalone cluster's tests start their own JVMs and share no fixture with the local
Spark session, so they are a group of their own and run beside it on another worker. The groups
are handed out first, largest first; the ungrouped tests then even out the workers' ends."""


def xdist_group_of(path: Path) -> str | None:
    """The group of the test file ``path`` in :data:`XDIST_GROUPS`, or None (doctests in src/ too)."""
    path = path.resolve()
    if not path.is_relative_to(TESTS):
        return None
    rel = path.relative_to(TESTS).as_posix()
    for prefix, group in XDIST_GROUPS.items():
        if rel == prefix or rel.startswith(prefix + "/"):
            return group
    return None


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of :data:`XDIST_GROUPS` with their ``xdist_group``."""
    for item in items:
        group = xdist_group_of(Path(str(item.fspath)))
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
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
