"""Shared constants and helpers of the Spark tests (imported by conftest and test modules)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

import pytest

from expkit.errors import ExpkitError
from expkit.warehouse import Warehouse

END = dt.date(2025, 3, 2)
DAYS = (END - dt.timedelta(days=1), END)
USERS = 2000
SEED = 11
INCIDENTS = ("error_burst", "late_data", "duplicate_events", "orphan_clicks")
"""On the last day: error rows, several files per partition, duplicate and orphan events."""
TEST_CONF = {
    # Short-lived local JVM: the C1 compiler alone starts queries much sooner.
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}


def _unavailable(reason: str) -> None:
    if os.environ.get("EXPKIT_REQUIRE_SPARK"):
        pytest.fail(f"EXPKIT_REQUIRE_SPARK is set but {reason}")
    pytest.skip(reason)


def require_spark() -> None:
    """Skip (or, with EXPKIT_REQUIRE_SPARK, fail) unless pyspark and a JVM are available."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        _unavailable("pyspark is not installed (pip install -e '.[spark]')")
    from expkit.engines.spark_engine import check_java

    try:
        check_java()
    except ExpkitError as err:
        _unavailable(f"no JVM for Spark: {err}")


@dataclass
class Built:
    """The same events rolled up by each engine, and the seconds each day took."""

    warehouses: dict[str, Warehouse]
    seconds: dict[str, dict[dt.date, float]] = field(default_factory=dict)
