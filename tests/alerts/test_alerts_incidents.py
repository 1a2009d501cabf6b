"""End to end on synthetic data: every injected incident fires its rule with the right
severity and labels within 5 minutes of its condition holding for ``for``, and resolves after
the incident ends; a clean week fires nothing (docs/alerts.md)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from expkit.alerts import evaluate_day
from expkit.cli import main
from expkit.config import ExperimentConfig

from .conftest import END, PARAMS

MIN = 60_000
DAY = 86_400_000
# incident -> (rule, severity, extra labels, for in ms)
EXPECTED = {
    "latency_spike": ("latency_p95_high", "P2", {}, 10 * MIN),
    "error_burst": ("error_rate_high", "P1", {}, 10 * MIN),
    "cache_failure": ("cache_hit_low", "P3", {}, 10 * MIN),
    "coverage_drop": ("coverage_low", "P2", {}, 10 * MIN),
    "stale_partition": ("data_stale", "P2", {"table": "impressions"}, 0),
    "traffic_imbalance": ("traffic_imbalance", "P2", {}, DAY),
}


def ms(iso: str | None) -> int | None:
    if iso is None:
        return None
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.fixture(scope="module")
def timeline(incident_wh: Path, config: ExperimentConfig) -> list[dict[str, Any]]:
    return evaluate_day(incident_wh, END, config, PARAMS)


def incident(truth: dict[str, Any], name: str) -> dict[str, Any]:
    return next(i for i in truth["incidents"] if i["name"] == name)


def find(timeline: list[dict[str, Any]], rule: str, **labels: str) -> list[dict[str, Any]]:
    return [a for a in timeline if a["rule"] == rule and all(a["labels"].get(k) == v for k, v in labels.items())]


def stale_condition_start(wh: Path, start_ms: int) -> int:
    """When true staleness of impressions (now - newest ingest, from raw events) passed 15 min."""
    files = str(wh / "events" / "impressions" / "event_date=*" / "*.parquet")
    prev = duckdb.connect().execute(f"""
        SELECT a FROM (SELECT ingest_ms AS a, lead(ingest_ms) OVER (ORDER BY ingest_ms) AS b
                       FROM read_parquet('{files}'))
        WHERE a >= {start_ms - 3_600_000} AND b - a > {15 * MIN} ORDER BY a LIMIT 1""").fetchone()
    return int(prev[0]) + 15 * MIN


@pytest.mark.parametrize("name", list(EXPECTED))
def test_incident_fires_its_rule_in_time(name: str, timeline: list[dict[str, Any]], truth: dict[str, Any],
                                         incident_wh: Path) -> None:
    rule, severity, extra, for_ms = EXPECTED[name]
    inc = incident(truth, name)
    alerts = find(timeline, rule, **extra)
    assert len(alerts) == 1, alerts
    a = alerts[0]
    assert a["severity"] == severity
    assert a["labels"] == {"experiment": "rec_ranker_v2", **extra}
    condition = stale_condition_start(incident_wh, inc["start_ms"]) if name == "stale_partition" else inc["start_ms"]
    fired = ms(a["fired_at"])
    assert condition + for_ms <= fired <= condition + for_ms + 5 * MIN, (name, a["fired_at"])
    if name == "traffic_imbalance":  # the whole last day: nothing after it to resolve on
        assert a["state"] == "firing"
    else:
        assert a["state"] == "resolved"
        assert inc["end_ms"] < ms(a["resolved_at"]) <= inc["end_ms"] + (95 if name == "stale_partition" else 5) * MIN


def test_ctr_collapse_fires_ctr_low_for_every_arm_after_two_days(timeline: list[dict[str, Any]],
                                                                  truth: dict[str, Any]) -> None:
    inc = incident(truth, "ctr_collapse")
    alerts = find(timeline, "ctr_low")
    assert sorted(a["labels"]["bucket"] for a in alerts) == ["control", "treatment"]
    for a in alerts:
        assert a["severity"] == "P3" and a["state"] == "firing"
        assert ms(a["active_at"]) == inc["start_ms"]
        assert ms(a["fired_at"]) == inc["start_ms"] + 2 * DAY
        assert a["value"] < 0.005


def test_ctr_low_is_only_pending_after_one_bad_day(incident_wh: Path, config: ExperimentConfig) -> None:
    day_before = evaluate_day(incident_wh, END - dt.timedelta(days=1), config, PARAMS)
    assert {(a["rule"], a["state"]) for a in day_before} == {("ctr_low", "pending")}


def test_no_other_alert_fires(timeline: list[dict[str, Any]]) -> None:
    expected = {(r, tuple(sorted(x.items()))) for r, _, x, _ in EXPECTED.values()}
    expected |= {("ctr_low", (("bucket", "control"),)), ("ctr_low", (("bucket", "treatment"),))}
    fired = [a for a in timeline if a["fired_at"]]
    extra = [a for a in fired if (a["rule"], tuple(sorted((k, v) for k, v in a["labels"].items()
                                                           if k != "experiment"))) not in expected]
    # Empty responses also lower Top-K fill: coverage_drop and error_burst trip topk_fill_low.
    assert sorted((a["rule"], a["active_at"]) for a in extra) == [
        ("topk_fill_low", "2026-11-14T15:00:00Z"), ("topk_fill_low", "2026-11-14T19:30:00Z")]


def test_p1_inhibits_p3_of_the_same_experiment(timeline: list[dict[str, Any]]) -> None:
    by_time = {a["active_at"]: a for a in find(timeline, "topk_fill_low")}
    during_p1 = by_time["2026-11-14T19:30:00Z"]
    assert during_p1["inhibited"] and during_p1["notified_at"] is None
    alone = by_time["2026-11-14T15:00:00Z"]
    assert not alone["inhibited"] and alone["notified_at"] == alone["fired_at"]


def test_timeline_has_the_summary_json_shape(timeline: list[dict[str, Any]]) -> None:
    keys = {"rule", "severity", "labels", "state", "active_at", "fired_at", "resolved_at", "kill_switch"}
    for a in timeline:
        assert keys <= set(a)
        assert a["state"] in ("pending", "firing", "resolved")
        for k in ("active_at", "fired_at", "resolved_at"):
            assert a[k] is None or (a[k].endswith("Z") and ms(a[k]) is not None)
    kill = {a["rule"]: a["kill_switch"] for a in timeline if a["kill_switch"]}
    assert kill == {"error_rate_high": "disable_experiment", "data_stale": "serve_cached",
                    "cache_hit_low": "bypass_cache", "traffic_imbalance": "pause_experiment"}
    json.dumps(timeline)  # plain JSON


def test_cli_eval_json_and_exit_code(incident_wh: Path, timeline: list[dict[str, Any]],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["alerts", "eval", "--warehouse", str(incident_wh), "--date", str(END), "--json",
               "--params", str(PARAMS)])
    assert rc == 1  # a P1 and P2s fired
    assert json.loads(capsys.readouterr().out) == timeline


def test_clean_week_fires_nothing(clean_week: Path, config: ExperimentConfig,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(7):
        day = END - dt.timedelta(days=i)
        fired = [a for a in evaluate_day(clean_week, day, config, PARAMS)
                 if a["fired_at"] and a["severity"] in ("P1", "P2", "P3")]
        assert fired == [], (day, fired)
    assert main(["alerts", "eval", "--warehouse", str(clean_week), "--date", str(END), "--params", str(PARAMS)]) == 0
    assert "no alerts" in capsys.readouterr().out
