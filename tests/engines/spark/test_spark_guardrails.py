"""The guardrail facts on Spark: the shipped catalogue's coverage and error rate (declarative, a
``where`` range on ``k_returned``) give the same per-user facts as on DuckDB (the parity of the
per-user latency histograms is in test_spark_parity, with every rollup)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
from spark_support import END, compare_tables

from expkit.catalogue import load_catalogue
from expkit.engines.duckdb_engine import DuckDBEngine
from expkit.metrics_sql import user_facts_query
from expkit.rollup import _event_sources
from expkit.templates import TEMPLATES
from expkit.warehouse import Warehouse, day_bounds_ms

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SHIPPED = Path(__file__).resolve().parents[3] / "params" / "metrics.yaml"


def test_coverage_and_error_rate_facts_match_duckdb(spark_engine: Any, synth_warehouse: Path) -> None:
    q = user_facts_query(load_catalogue(SHIPPED))
    assert "r.k_returned >= $mp_" in q.template.sql
    start, end = day_bounds_ms(END)
    values = q.bind(start_ms=start, end_ms=end)
    sources = _event_sources(Warehouse.open(synth_warehouse), END)
    duck = DuckDBEngine()
    try:
        expected = duck.query(q.template, values, sources).read_all()
    finally:
        duck.close()
    actual = spark_engine.query(q.template, values, sources).read_all()
    compare_tables(expected, actual, TEMPLATES["user_facts"].grain)
    # not vacuous: the synthetic day has an error burst, so some users have errors and uncovered requests
    errors = pc.sum(expected["m_error_rate_num"]).as_py()
    covered, requests = pc.sum(expected["m_coverage_num"]).as_py(), pc.sum(expected["m_coverage_den"]).as_py()
    assert errors > 0 and 0 < covered < requests
