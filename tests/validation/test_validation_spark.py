"""The check templates are portable: Spark (local mode) gives the same results as DuckDB."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from expkit.errors import ExpkitError
from expkit.validation import run_checks

from .validation_support import DAY, MIN, T0, TinyWarehouse

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _spark_engine():
    def unavailable(reason: str) -> None:
        if os.environ.get("EXPKIT_REQUIRE_SPARK"):
            pytest.fail(f"EXPKIT_REQUIRE_SPARK is set but {reason}")
        pytest.skip(reason)

    try:
        from expkit.engines.spark_engine import SparkEngine, check_java
    except ImportError as err:
        unavailable(f"pyspark is not installed ({err})")
    try:
        check_java()
    except ExpkitError as err:
        unavailable(f"no JVM for Spark: {err}")
    return SparkEngine(conf={"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"})


def test_every_check_matches_duckdb_on_spark(tiny: TinyWarehouse) -> None:
    t = T0 + 2 * 60 * MIN
    tiny.write("requests", [{"request_id": 100 + i, "timestamp_ms": t + i, "ingest_ms": t + i + 30 * MIN,
                             "user_id": 7, "bucket": "treatment" if i == 3 else "control"}
                            for i in range(25)] + [{"request_id": 100, "timestamp_ms": t, "latency_ms": -3.0}])
    tiny.write("impressions", [{"request_id": 100, "item_id": 5, "position": 0, "timestamp_ms": t + 10}])
    tiny.write("clicks", [{"request_id": 100, "item_id": 9, "timestamp_ms": t + 20},
                          {"request_id": 100, "item_id": 5, "timestamp_ms": t + 5}])
    engine = _spark_engine()
    try:
        now = dt.datetime(2026, 11, 10, 4, 0)
        spark = run_checks(tiny.root, DAY, now=now, cadence="hourly", engine=engine)
    finally:
        engine.close()
    duck = run_checks(tiny.root, DAY, now=now, cadence="hourly")
    assert [(r.name, r.table) for r in spark] == [(r.name, r.table) for r in duck]
    for s, d in zip(spark, duck, strict=True):
        assert s.status == d.status, (s, d)
        if s.name == "event_delay" and d.value is not None:
            assert s.value == pytest.approx(d.value, rel=0.02)  # both approximate the p95
        else:
            assert s.value == d.value and s.facts == d.facts, (s, d)
    assert {(r.name, r.table) for r in duck if r.failed} >= {
        ("join_integrity", "clicks"), ("event_order", "clicks"), ("unique_ids", "requests"),
        ("bucket_consistency", "requests"), ("values_in_range", "requests"), ("values_in_range", "impressions"),
        ("event_delay", "requests")}
