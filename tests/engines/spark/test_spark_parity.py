"""Parity: every rollup table built by Spark equals the one built by DuckDB from the same events.

Counts and keys must be identical (so are histogram buckets: ``idx`` is a key), floating sums
equal within 1e-9 relative, and the column names and Arrow types identical, so a warehouse can
mix partitions written by either engine.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from spark_support import DAYS, Built, compare_tables

from expkit.readers import PRE_STAT_COLUMNS
from expkit.rollup import PLAYED_ROLLUPS, PRE_ROLLUP, RAW_ROLLUPS, ROLLUP_NAMES, STATS_OUTPUTS, STATS_ROLLUP
from expkit.templates import TEMPLATES

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def grain(rollup: str) -> tuple[str, ...]:
    """The columns that identify a row of ``rollup`` (from its template header)."""
    if rollup == STATS_ROLLUP:
        return (*TEMPLATES["ratio_stats"].grain, "window_name")
    return TEMPLATES[next(r.template for r in RAW_ROLLUPS if r.name == rollup)].grain


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


def test_parity_covers_the_catalogue_metrics(built: Built) -> None:
    """The catalogue's declarative metrics (tests/catalogue/metrics.yaml) are in both engines' rollups
    (so test_rollup_parity compares them): their per-user columns and their statistics rows."""
    facts = read_partition(built, "spark", "user_day", DAYS[-1])
    for metric in ("top3_ctr", "rec_play_share", "plays_per_user", "items_per_user"):
        assert f"m_{metric}_num" in facts.column_names
    stats = read_partition(built, "spark", STATS_ROLLUP, DAYS[-1]).to_pandas()
    for metric in ("top3_ctr", "rec_play_share", "plays_per_user"):
        rows = stats[(stats["metric"] == metric) & (stats["slice"] == "all") & (stats["window_name"] == "cum")]
        assert len(rows) == 2 and (rows["sum_num"] > 0).all(), metric
    assert set(stats[stats["slice"] == "genre"]["metric"]) == {"ctr", "save_rate", "saves_per_click", "top3_ctr"}


def test_pre_period_parity(built: Built) -> None:
    """The CUPED pre-period: the pre-experiment day's per-user rollups (built by the rollup of the
    experiment's first day) and the experiment's ``user_pre`` are equal on both engines, and the
    experiment's statistics carry non-zero CUPED sums (so test_rollup_parity compares them)."""
    pre_day = DAYS[0] - dt.timedelta(days=1)
    for rollup in ("user_day", "user_items"):
        expected_day = read_partition(built, "duckdb", rollup, pre_day)
        compare_tables(expected_day, read_partition(built, "spark", rollup, pre_day), grain(rollup))
    expected = read_partition(built, "duckdb", PRE_ROLLUP, DAYS[0])
    assert expected.num_rows > 0
    compare_tables(expected, read_partition(built, "spark", PRE_ROLLUP, DAYS[0]), TEMPLATES["user_pre"].grain)
    stats = read_partition(built, "spark", STATS_ROLLUP, DAYS[-1]).to_pandas()
    rows = stats[(stats["metric"] == "ctr") & (stats["slice"] == "all") & (stats["window_name"] == "cum")]
    assert (rows[PRE_STAT_COLUMNS] > 0).all().all()


@pytest.mark.parametrize("day", DAYS, ids=str)
@pytest.mark.parametrize("rollup", STATS_OUTPUTS)
def test_exposure_parity(built: Built, rollup: str, day: dt.date) -> None:
    """The played pairs of each day and its last hour (Recall@K), the running totals, the users' first
    exposure days and the lift-by-exposure-age sums (docs/statistics.md, "Novelty and primacy") are equal
    on both engines; on the second day users of the first are there at age 1 (and the running totals add
    the first day's), and the catalogue's declarative metrics have their rows."""
    expected = read_partition(built, "duckdb", rollup, day)
    assert expected.num_rows > 0
    grain = TEMPLATES["played_items" if rollup in PLAYED_ROLLUPS else rollup].grain
    compare_tables(expected, read_partition(built, "spark", rollup, day), grain)
    if rollup == "exposure_stats" and day == DAYS[-1]:
        df = expected.to_pandas()
        assert {(0, 0), (0, 1), (1, 1)} <= set(zip(df["age"], df["age2"], strict=True))
        assert {"ctr", "top3_ctr", "plays_per_user"} <= set(df["metric"]) and "recall" not in set(df["metric"])
