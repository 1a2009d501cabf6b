"""Freshness as of each evaluation time, from the ingest rollup, against the exact values
computed from raw events; a missing partition fires data_stale."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest

from expkit.alerts import AlertStore, evaluate_day, load_alerts, monitor_once
from expkit.alerts.sources import eval_times
from expkit.config import ExperimentConfig
from expkit.rollup import build_rollups
from expkit.series import ingest_freshness
from expkit.synth import generate
from expkit.warehouse import Warehouse, day_bounds_ms

from .conftest import END, PARAMS, RULES, fresh_state

MIN = 60_000


def exact_newest(wh: Path, table: str, times: np.ndarray) -> np.ndarray:
    ingest = duckdb.connect().execute(
        f"SELECT ingest_ms FROM read_parquet('{wh}/events/{table}/event_date=*/*.parquet') ORDER BY 1"
    ).fetchnumpy()["ingest_ms"]
    return ingest[np.searchsorted(ingest, times, side="right") - 1]


@pytest.mark.parametrize("table", ["requests", "impressions", "clicks", "saves", "plays"])
def test_staleness_bounds_against_raw_events(incident_wh: Path, table: str) -> None:
    start, end = day_bounds_ms(END)
    times = np.asarray(eval_times(start, end, 5 * MIN))
    df = ingest_freshness(Warehouse.open(incident_wh), times.tolist(), tables=[table])
    estimate = df["staleness_ms"].to_numpy()
    exact = times - exact_newest(incident_wh, table, times)
    assert np.all(estimate >= exact)
    lag = 5 * MIN + 2 * MIN  # one bin + 2% of delays up to 90 minutes (stale_partition)
    assert np.all(estimate <= times - exact_newest(incident_wh, table, times - lag))
    assert (df["missing_hours"] == 0).all()


def test_late_rows_show_in_the_arrival_delay(incident_wh: Path, truth: dict) -> None:
    stale = next(i for i in truth["incidents"] if i["name"] == "stale_partition")
    times = eval_times(stale["start_ms"] - 30 * MIN, stale["end_ms"] + 120 * MIN, 5 * MIN)
    df = ingest_freshness(Warehouse.open(incident_wh), times, tables=["impressions", "requests"]).set_index(
        ["table", "t_ms"])
    p95 = df["arrival_p95_ms"] / MIN
    assert p95.loc["requests"].max() < 15
    late = p95.loc["impressions"]
    assert late.loc[stale["end_ms"]] > 45 and late.loc[stale["start_ms"] - 5 * MIN] < 15


def test_missing_partition_fires_data_stale(tmp_path: Path, config: ExperimentConfig) -> None:
    root = tmp_path / "wh"
    generate(root, days=2, end=END, users=600, seed=3, experiment_id=config.experiment_id,
             buckets=config.buckets, control=config.control)
    shutil.rmtree(root / "events" / "plays" / f"event_date={END}")
    build_rollups(root, END - dt.timedelta(days=1), config)
    build_rollups(root, END, config)
    alerts = [a for a in evaluate_day(root, END, config, PARAMS)
              if a["rule"] == "data_stale" and a["labels"].get("table") == "plays"]
    assert len(alerts) == 1 and alerts[0]["state"] == "firing"
    start, _ = day_bounds_ms(END)
    fired = dt.datetime.fromisoformat(alerts[0]["fired_at"].replace("Z", "+00:00")).timestamp() * 1000
    assert start + 15 * MIN < fired <= start + 20 * MIN  # stale 15 min after the last play of the day before
    hours = ingest_freshness(Warehouse.open(root), [start + 6 * 3_600_000], tables=["plays"])["missing_hours"]
    assert hours.iloc[0] == 5  # 00:00-05:00 ended >= 15 min before 06:00


def test_validation_rows_feed_data_stale(clean_week: Path, config: ExperimentConfig) -> None:
    checks = [
        {"name": "partition_completeness", "table": "clicks", "status": "fail", "value": 20, "threshold": 24},
        {"name": "join_integrity", "table": "clicks", "status": "fail"},  # not a freshness check
        {"name": "staleness", "table": "requests", "status": "pass"},
    ]
    stale = [a for a in evaluate_day(clean_week, END, config, PARAMS, checks=checks) if a["rule"] == "data_stale"]
    assert [(a["labels"], a["state"], a["fired_at"]) for a in stale] == [
        ({"experiment": "rec_ranker_v2", "table": "clicks", "check": "partition_completeness"}, "firing",
         "2026-11-15T00:00:00Z")]


def test_staleness_after_a_day_without_files_is_measured(clean_week: Path, config: ExperimentConfig,
                                                         tmp_path: Path) -> None:
    """Nothing landed in the last 24 hours: staleness counts from the newest ingest before them
    (docs/alerts.md: freshness has data unless nothing ever landed), so data_stale keeps firing."""
    _, stop = day_bounds_ms(END)
    now = stop + 30 * 3_600_000  # 06:00 two days after the last day
    df = ingest_freshness(Warehouse.open(clean_week), [now], tables=["requests", "clicks"]).set_index("table")
    for table in ("requests", "clicks"):
        exact = now - exact_newest(clean_week, table, np.asarray([now]))[0]
        assert exact <= df.loc[table, "staleness_ms"] <= exact + 7 * MIN, table  # one bin + 2% of delays
    wh = fresh_state(clean_week, tmp_path / "wh")
    monitor_once(wh, config, PARAMS, load_alerts(RULES), now, since_ms=now - 3_600_000)
    stale = {a.labels.get("table") for a in AlertStore(Warehouse.open(wh)).load().active.values()
             if a.rule == "data_stale" and a.state == "firing"}
    assert {"requests", "clicks"} <= stale
