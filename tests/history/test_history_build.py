"""The history a day's report reads: what is needed and why, what gets built, what a report
without it lacks (expkit.history), on a real nine-day warehouse rolled up with DuckDB."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from history_support import END, FIRST

from expkit.alerts.rules import AlertsConfig
from expkit.config import ExperimentConfig
from expkit.history import build_history, plan_history, rule_days
from expkit.report.index import render_index
from expkit.rollup import STATS_ROLLUP, manifest_path
from expkit.tiles.registry import TILES
from expkit.warehouse import Warehouse

START = dt.date(2026, 11, 1)  # start_date of params/experiment.yaml


def days(first: dt.date, last: dt.date) -> tuple[dt.date, ...]:
    return tuple(first + dt.timedelta(days=i) for i in range((last - first).days + 1))


def stats_rows(wh: Path, day: dt.date) -> pa.Table:
    """The day's outcome_stats, rows in a canonical order."""
    table = pq.read_table(Warehouse.open(wh).rollup_files(STATS_ROLLUP, [day]))
    keys = [c for c in table.column_names if table.schema.field(c).type in (pa.string(), pa.large_string())]
    return table.sort_by([(k, "ascending") for k in keys])


def test_needs_follow_windows_baselines_and_rule_look_backs(
    last_day_wh: Path, config: ExperimentConfig, rules: AlertsConfig
) -> None:
    plan = plan_history(Warehouse.open(last_day_wh), END, config, rules)
    by_label = {n.label: n.days for n in plan.needs}
    # 7d: the day and the six before it; 30d: 30 days; cum: since start_date (2026-11-01)
    assert by_label["7d window"] == days(dt.date(2026, 11, 8), END)
    assert by_label["30d window"] == days(dt.date(2026, 10, 16), END)
    assert by_label["the experiment to date (cum) (timeline, readout, novelty)"] == days(START, END)
    # the anomaly tile compares each point with the same time on each of the previous 7 days
    assert by_label["7-day baseline (anomaly)"] == days(dt.date(2026, 11, 7), END)
    # ctr_low holds "for: 2d" on a daily step: the day and the two before it decide it
    assert by_label["alert ctr_low (for 2d)"] == days(dt.date(2026, 11, 12), END)
    assert by_label["alert traffic_imbalance (for 1d)"] == days(dt.date(2026, 11, 13), END)
    # CUPED: the cuped.lookback_days (14) days before start_date, read by the adjusted comparisons
    pre = [d for label, d in by_label.items() if label.startswith("CUPED pre-period")]
    assert pre == [days(dt.date(2026, 10, 18), dt.date(2026, 10, 31))]
    # rules on 5-minute bins with a 10-minute "for" read the day alone: no history needed
    assert not any("latency_p95_high" in label or "data_stale" in label for label in by_label)
    assert rule_days(rules.rule("error_rate_high"), END) == (END,)
    # days before the warehouse's first day have no events: nothing to build
    assert plan.no_events == days(dt.date(2026, 10, 16), FIRST - dt.timedelta(days=1))
    assert plan.gaps().days_without_events == days(START, FIRST - dt.timedelta(days=1))


def test_plan_builds_missing_days_oldest_first_then_the_day_itself(
    last_day_wh: Path, config: ExperimentConfig, rules: AlertsConfig
) -> None:
    plan = plan_history(Warehouse.open(last_day_wh), END, config, rules)
    assert plan.stale == days(FIRST, END - dt.timedelta(days=1))
    # the day was rolled up before its earlier days existed: its windows must be rebuilt too
    assert plan.to_build == days(FIRST, END)
    assert plan.earlier == days(FIRST, END - dt.timedelta(days=1))


def test_build_history_equals_a_fully_rolled_up_warehouse(
    last_day_only: Path, full_wh: Path, config: ExperimentConfig, rules: AlertsConfig
) -> None:
    wh = Warehouse.open(last_day_only)
    lines: list[str] = []
    failed = build_history(wh, plan_history(wh, END, config, rules), config, progress=lines.append)
    assert failed == {}
    earlier = days(FIRST, END - dt.timedelta(days=1))
    assert lines[0].startswith(f"8 earlier days to build for {END} ({FIRST} … {END - dt.timedelta(days=1)})")
    assert "7d window" in lines[0] and "7-day baseline (anomaly)" in lines[0] and "alert ctr_low" in lines[0]
    assert lines[1:9] == [f"building {d} ({i}/8)" for i, d in enumerate(earlier, 1)]
    assert lines[9] == f"rebuilding {END}: its windows read the days just built"
    # built in date order: each day's statistics are newer than those of the day before (the
    # report day, whose events did not change, gets its statistics recomputed, not its raw rollups)
    built = [json.loads(manifest_path(wh, d).read_text())["stats"]["built_at_ms"] for d in days(FIRST, END)]
    assert built == sorted(built)
    for d in days(FIRST, END):  # every window of every day, 7d/30d/cum included
        assert stats_rows(last_day_only, d).equals(stats_rows(full_wh, d)), d
    again = plan_history(wh, END, config, rules)
    assert again.stale == () and again.to_build == () and again.gaps().missing_days == ()


def test_a_day_rebuilt_in_the_middle_rebuilds_the_days_after_it(
    full_wh: Path, tmp_path: Path, config: ExperimentConfig, rules: AlertsConfig
) -> None:
    copy = Path(shutil.copytree(full_wh, tmp_path / "wh"))
    wh = Warehouse.open(copy)
    middle = dt.date(2026, 11, 10)
    manifest_path(wh, middle).unlink()  # as if its rollups had never been built
    plan = plan_history(wh, END, config, rules)
    # the later days' windows read the middle day: their statistics are stale with it (expkit.lineage)
    assert plan.stale == days(middle, END)
    assert plan.to_build == days(middle, END)


def test_gaps_name_missing_days_tiles_and_alert_rules(
    last_day_wh: Path, config: ExperimentConfig, rules: AlertsConfig
) -> None:
    gaps = plan_history(Warehouse.open(last_day_wh), END, config, rules).gaps()
    assert gaps.missing_days == days(FIRST, END - dt.timedelta(days=1))
    tiles = {t.tile: t.parts for t in gaps.affected_tiles}
    assert set(tiles) == set(TILES)  # every tile's 7d and 30d windows
    assert "7-day baseline" in tiles["anomaly"]
    assert "the experiment to date (cum)" in tiles["timeline"] and "the experiment to date (cum)" in tiles["readout"]
    assert "one point per experiment day" in tiles["allocation"]
    assert tiles["ctr"] == ("7d window", "30d window")
    alerts = {a.rule: a for a in gaps.affected_alerts}
    assert set(alerts) == {"ctr_low", "recall_low", "session_depth_low", "traffic_imbalance"}
    assert alerts["ctr_low"].days == days(dt.date(2026, 11, 12), END - dt.timedelta(days=1))
    assert alerts["traffic_imbalance"].look_back == "1d"
    doc = gaps.to_json()
    assert doc["missing_days"][0] == FIRST.isoformat()
    assert {a["rule"] for a in doc["affected_alerts"]} == set(alerts)


def test_a_broken_earlier_day_becomes_a_named_gap(
    last_day_only: Path, config: ExperimentConfig, rules: AlertsConfig
) -> None:
    wh = Warehouse.open(last_day_only)
    broken = dt.date(2026, 11, 9)
    f = wh.event_files("impressions", broken)[0]
    table = pq.read_table(f)
    pq.write_table(table.drop_columns(["item_id"]), f)  # a required column gone
    plan = plan_history(wh, END, config, rules)
    failed = build_history(wh, plan, config)
    assert list(failed) == [broken] and "item_id" in failed[broken]
    assert plan.gaps(missing=failed).missing_days == (broken,)
    assert plan_history(wh, END, config, rules).stale == (broken,)


def _summary(history: dict | None) -> dict:
    return {"date": END.isoformat(), "generated_at": "2026-11-15T00:00:00Z", "code_version": "t", "params": {},
            "tiles": {t: {"status": "ok", "title": t, "section": "health"} for t in TILES},
            "alerts": [], "checks": [], "history": history}


def test_index_names_the_missing_history_at_the_top(
    last_day_wh: Path, config: ExperimentConfig, rules: AlertsConfig
) -> None:
    gaps = plan_history(Warehouse.open(last_day_wh), END, config, rules).gaps()
    html = render_index(_summary(gaps.to_json()))
    notice = html.index('id="history-notice"')
    assert notice < html.index("<main>")
    text = html[notice:html.index("</header>")]
    assert all(d.isoformat() in text for d in gaps.missing_days)
    assert "7-day baseline: volume, anomaly" in text
    assert "7d window; 30d window: every tile, when run with that window" in text
    assert "<code>ctr_low</code> (P3, for 2d)" in text
    assert "latency_p95_high" not in text
    # nothing missing: no notice
    assert 'id="history-notice"' not in render_index(_summary(plan_history(
        Warehouse.open(last_day_wh), END, config, rules).gaps(missing=()).to_json()))
    assert 'id="history-notice"' not in render_index(_summary(None))
