"""Parity: every rollup table built by Spark equals the one built by DuckDB from the same events.

Counts and keys must be identical (so are histogram buckets: ``idx`` is a key), floating sums
equal within 1e-9 relative, and the column names and Arrow types identical, so a warehouse can
mix partitions written by either engine.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from spark_support import DAYS, Built

from expkit.rollup import RAW_ROLLUPS, ROLLUP_NAMES, STATS_ROLLUP
from expkit.templates import TEMPLATES

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.xdist_group("spark")]

RTOL = 1e-9


def grain(rollup: str) -> tuple[str, ...]:
    """The columns that identify a row of ``rollup`` (from its template header)."""
    if rollup == STATS_ROLLUP:
        return (*TEMPLATES["ratio_stats"].grain, "window_name")
    return TEMPLATES[next(r.template for r in RAW_ROLLUPS if r.name == rollup)].grain


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
            mismatch = pc.sum(pc.invert(pc.fill_null(pc.equal(e, a), True))).as_py() or 0
            assert mismatch == 0 and e.null_count == a.null_count, f"column {name}: {mismatch} rows differ"
    assert worst <= RTOL, f"relative difference {worst:.3g} above {RTOL}"
    return worst


def read_partition(built: Built, engine: str, rollup: str, day: dt.date) -> pa.Table:
    files = built.warehouses[engine].rollup_files(rollup, [day])
    assert files, f"{engine} wrote no {rollup} partition for {day}"
    return pa.concat_tables(pq.read_table(f) for f in files)


@pytest.mark.parametrize("day", DAYS, ids=str)
@pytest.mark.parametrize("rollup", ROLLUP_NAMES)
def test_rollup_parity(built: Built, rollup: str, day: dt.date, record_property: Any) -> None:
    expected = read_partition(built, "duckdb", rollup, day)
    actual = read_partition(built, "spark", rollup, day)
    worst = compare_tables(expected, actual, grain(rollup))
    record_property("rows", expected.num_rows)
    record_property("max_relative_diff", worst)
    print(f"{rollup} {day}: {expected.num_rows} rows, max relative diff {worst:.3g}")


def test_parity_covers_non_trivial_data(built: Built) -> None:
    """Guard against a vacuous comparison: rows in every table, several files in a partition."""
    for rollup in ROLLUP_NAMES:
        assert read_partition(built, "duckdb", rollup, DAYS[-1]).num_rows > 0, rollup
    assert len(built.warehouses["duckdb"].event_files("impressions", DAYS[-1])) > 1  # late_data's files
    print("rollup seconds:", {e: {str(d): round(s, 2) for d, s in v.items()} for e, v in built.seconds.items()})
