"""Shared constants and helpers of the Spark tests (imported by conftest and test modules)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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
    # Short-lived local JVM: the C1 compiler alone starts queries much sooner. Its code cache is then
    # 48 MB by default, which the session's hundreds of generated query classes fill: the JIT stops,
    # every query runs interpreted and, on a busy machine, Python's result sockets time out.
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ReservedCodeCacheSize=256m",
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


RTOL = 1e-9


def max_relative_diff(a: pa.Array, b: pa.Array) -> float:
    """Largest ``|a - b| / max(|a|, |b|)`` over the rows (0 where both are 0; nulls must match)."""
    x = a.to_numpy(zero_copy_only=False).astype(float)
    y = b.to_numpy(zero_copy_only=False).astype(float)
    assert np.array_equal(np.isnan(x), np.isnan(y)), "nulls or NaNs differ"
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    scale = np.maximum(np.abs(x), np.abs(y))
    diff = np.abs(x - y)
    rel = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
    return float(rel.max(initial=0.0))


def columns(table: pa.Table) -> list[tuple[str, pa.DataType]]:
    """Column names and types (what must match between engines)."""
    return [(f.name, f.type) for f in table.schema]


def compare_tables(expected: pa.Table, actual: pa.Table, keys: tuple[str, ...]) -> float:
    """Assert ``actual`` equals ``expected`` row by row after sorting by ``keys``; return the max
    relative difference of the floating columns."""
    # Names and types must match; nullability is each engine's own inference (DuckDB proves more).
    assert columns(actual) == columns(expected), f"schemas differ:\n{expected.schema}\nvs\n{actual.schema}"
    assert actual.num_rows == expected.num_rows
    unique = expected.group_by(list(keys)).aggregate([]).num_rows == expected.num_rows
    order = [(k, "ascending") for k in (keys if unique else expected.column_names)]
    expected, actual = expected.sort_by(order), actual.sort_by(order)
    worst = 0.0
    for name in expected.column_names:
        e, a = expected.column(name).combine_chunks(), actual.column(name).combine_chunks()
        if pa.types.is_floating(e.type):
            worst = max(worst, max_relative_diff(e, a))
        else:
            assert pc.is_null(e).equals(pc.is_null(a)), f"column {name}: nulls differ"
            mismatch = pc.sum(pc.invert(pc.fill_null(pc.equal(e, a), True))).as_py() or 0
            assert mismatch == 0, f"column {name}: {mismatch} rows differ"
    assert worst <= RTOL, f"relative difference {worst:.3g} above {RTOL}"
    return worst
