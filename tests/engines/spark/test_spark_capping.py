"""Capping per-user values on Spark: the statistics of capped metrics equal DuckDB's.

The threshold is DuckDB's ``quantile_cont`` and Spark's ``percentile`` (written from it by
``expkit.engines.dialects``), both exact and linear between order statistics, so thresholds, the
capped sums and the CUPED cross sums must agree to the parity tolerance (1e-9 relative); a numpy
reference (``np.quantile(method="linear")``) over the non-zero per-user window sums checks the threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from spark_support import END, Built, compare_tables

from expkit.catalogue import parse_catalogue
from expkit.config import ExperimentConfig
from expkit.engines import get_engine
from expkit.metrics_sql import ratio_stats_query
from expkit.rollup import stats_sources, window_start_ms
from expkit.templates import TEMPLATES

pytestmark = [pytest.mark.spark, pytest.mark.slow]

TEST_CATALOGUE = Path(__file__).resolve().parents[2] / "catalogue" / "metrics.yaml"
"""The catalogue the parity fixture's rollups were built with (tests/catalogue/metrics.yaml)."""
CAPS = {"plays_per_user": {"quantile": 0.99}, "items_per_user": {"value": 3}, "session_depth": {"quantile": 0.95}}
"""Caps on metrics of the test catalogue (the per-user facts the parity fixture built stay valid)."""


def _capped(config: ExperimentConfig) -> ExperimentConfig:
    data = yaml.safe_load(TEST_CATALOGUE.read_text())
    for metric, cap in CAPS.items():
        data["metrics"][metric]["cap"] = cap
    return config.with_catalogue(parse_catalogue(data, "capped.yaml"))


def _stats(built: Built, engine_name: str, engine: Any, config: ExperimentConfig, window: str) -> pa.Table:
    wh = built.warehouses[engine_name]
    q = ratio_stats_query(config.catalogue)
    sources = stats_sources(wh, END, window, config.start_date, config.catalogue)
    return engine.query(q.template, q.bind(window_start_ms=window_start_ms(END, window, config.start_date)),
                        sources).read_all()


@pytest.mark.parametrize("window", ["1h", "24h", "cum"])
def test_capped_statistics_equal_on_both_engines(
    built: Built, spark_engine: Any, config: ExperimentConfig, window: str
) -> None:
    capped = _capped(config)
    duck = get_engine("duckdb")
    try:
        expected = _stats(built, "duckdb", duck, capped, window)
    finally:
        duck.close()
    actual = _stats(built, "spark", spark_engine, capped, window)
    compare_tables(expected, actual, TEMPLATES["ratio_stats"].grain)
    rows = expected.to_pandas()
    overall = rows[rows["slice"] == "all"]
    for metric in CAPS:
        capped_rows = overall[overall["metric"] == metric]
        assert capped_rows["cap_value"].notna().all() and len(capped_rows) == 2, metric
    assert rows[~rows["metric"].isin(list(CAPS))]["cap_value"].isna().all()
    if window != "1h":
        assert overall[overall["metric"].isin(list(CAPS))]["capped_users"].sum() > 0  # the caps bite


def test_spark_threshold_is_numpys_linear_quantile(built: Built, spark_engine: Any, config: ExperimentConfig) -> None:
    """The 24h threshold of plays per user is np.quantile(method="linear") of the users' non-zero values that day."""
    capped = _capped(config)
    got = _stats(built, "spark", spark_engine, capped, "24h").to_pandas()
    facts = pq.read_table(built.warehouses["spark"].rollup_files("user_day", [END])).to_pandas()
    users = facts[facts["slice"] == "all"].groupby("user_id")["m_plays_per_user_num"].sum().to_numpy(float)
    want = np.quantile(users[users != 0], 0.99, method="linear")
    value = got[(got["metric"] == "plays_per_user") & (got["slice"] == "all")]["cap_value"].unique()
    assert len(value) == 1 and value[0] == pytest.approx(want, rel=1e-12)


def test_duckdb_quantile_cont_is_written_as_spark_percentile(config: ExperimentConfig) -> None:
    """SQLGlot alone writes a two-argument PERCENTILE_CONT, which Spark refuses; the dialect module
    writes PERCENTILE (exact, linear), the level stays a bound marker."""
    from expkit.engines.dialects import compile_template

    q = ratio_stats_query(_capped(config).catalogue)
    spark = compile_template(q.template, "spark").sql
    assert "PERCENTILE(CASE WHEN m_plays_per_user_num <> 0" in spark and ":cap_" in spark
    assert "PERCENTILE_CONT" not in spark and "PERCENTILE_APPROX" not in spark
