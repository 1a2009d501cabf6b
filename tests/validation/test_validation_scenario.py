"""Synthetic days with injected incidents: each is caught with the injected numbers; clean days pass;
late data is detected, backfilled (the tiles' rollups change by exactly the late rows) and a second
backfill changes nothing. All from one shared self-test run (fixture ``scenario``)."""

from __future__ import annotations

import datetime as dt

import pytest

from expkit.selftest import SelftestReport
from expkit.validation import latest_run, load_runs, run_checks

from .validation_support import END, SCENARIO_INCIDENTS, find

INCIDENT_DAY = END
CLEAN_DAYS = (END - dt.timedelta(days=2), END - dt.timedelta(days=1))


def _incident(report: SelftestReport, name: str) -> dict:
    return next(i for i in report.truth["incidents"] if i["name"] == name)


def test_selftest_misses_nothing(scenario: SelftestReport) -> None:
    misses = [o for o in scenario.outcomes if o.result == "miss"]
    assert not misses, scenario.format_table()
    caught = {o.item for o in scenario.outcomes if o.area == "incident" and o.result == "ok"}
    assert caught == set(SCENARIO_INCIDENTS)


@pytest.mark.parametrize("day", CLEAN_DAYS)
def test_clean_days_pass_every_check(scenario: SelftestReport, day: dt.date) -> None:
    run = scenario.runs[day]
    assert len(run.checks) >= 35
    not_passed = [(c.name, c.table, c.status, c.detail) for c in run.checks if c.status != "pass"]
    assert not not_passed


def test_orphan_clicks_fail_join_integrity_at_the_injected_rate(scenario: SelftestReport) -> None:
    clicks = find(list(scenario.runs[INCIDENT_DAY].checks), "join_integrity", "clicks")
    injected = _incident(scenario, "orphan_clicks")["injected"]["orphan_clicks"]
    total = scenario.truth["rows_by_date"][INCIDENT_DAY.isoformat()]["clicks"]
    assert clicks.status == "fail" and clicks.threshold == pytest.approx(0.01)
    # duplicate_events copies 2% of the clicks, orphans included, and a copied orphan is an orphan too.
    assert injected / total <= clicks.value <= 1.05 * injected / total
    assert clicks.facts["rows"] == total
    assert len(clicks.facts["sample_keys"]) == 5 and all(len(k) == 2 for k in clicks.facts["sample_keys"])
    others = [find(list(scenario.runs[INCIDENT_DAY].checks), "join_integrity", t) for t in ("saves", "impressions")]
    assert [c.status for c in others] == ["pass", "pass"]


def test_duplicates_counted_exactly(scenario: SelftestReport) -> None:
    injected = _incident(scenario, "duplicate_events")["injected"]
    checks = list(scenario.runs[INCIDENT_DAY].checks)
    for table in ("clicks", "impressions"):
        r = find(checks, "unique_ids", table)
        assert r.status == "fail" and r.value == injected[table] > 0
    assert [find(checks, "unique_ids", t).value for t in ("requests", "saves", "plays")] == [0, 0, 0]


def test_stale_partition_breaks_the_delay_of_its_hour(scenario: SelftestReport) -> None:
    r = find(list(scenario.runs[INCIDENT_DAY].checks), "event_delay", "impressions")
    assert r.status == "fail" and r.value > 45
    assert "2026-11-14T12:00:00Z" in r.facts["bad_hours"]
    assert find(list(scenario.runs[CLEAN_DAYS[-1]].checks), "event_delay", "impressions").value < 15


def test_stale_partition_is_stale_while_it_happens(scenario: SelftestReport) -> None:
    """The 5-minute check at 12:40 sees no impression since about 12:00."""
    now = dt.datetime(2026, 11, 14, 12, 40, tzinfo=dt.timezone.utc)
    results = run_checks(scenario.warehouse, INCIDENT_DAY, now=now, cadence="5m")
    stale = find(results, "staleness", "impressions")
    assert stale.status == "fail" and 25 < stale.value < 45
    assert find(results, "staleness", "requests").status == "pass"
    assert {r.name for r in results} == {"staleness", "event_delay", "partition_completeness", "join_integrity"}


def test_late_data_is_detected_on_its_day_only(scenario: SelftestReport) -> None:
    late = find(list(scenario.runs[INCIDENT_DAY].checks), "late_data", "all")
    assert late.status == "fail"
    assert late.value == sum(scenario.truth["late_rows"].values()) > 0
    assert late.facts["affected_dates"] == [INCIDENT_DAY.isoformat()]
    assert {f["name"] for f in late.facts["dates"][0]["files"]} == {"part-late-00000.parquet"}
    assert "expkit rollup --backfill --date 2026-11-14" in late.detail
    assert find(list(scenario.runs[INCIDENT_DAY].checks), "rollup_freshness", "all").status == "fail"


def test_backfill_rebuilds_that_day_and_the_numbers_change(scenario: SelftestReport) -> None:
    b = scenario.backfill
    assert b is not None and b.detected == [INCIDENT_DAY] and b.rebuilt == [INCIDENT_DAY]
    late = scenario.truth["late_rows"]
    assert b.after.totals["ingest_bins"]["n"] - b.before.totals["ingest_bins"]["n"] == sum(late.values())
    # Late sessions add requests, impressions and clicks to the health and outcome rollups.
    for name, column in (("health_bins", "requests"), ("outcome_stats", "sum_den"), ("outcome_stats", "sum_num")):
        assert b.after.totals[name][column] > b.before.totals[name][column], (name, column)
    assert b.after.totals["health_bins"]["requests"] - b.before.totals["health_bins"]["requests"] <= late["requests"]
    after = {(c.name, c.table): c.status for c in b.run_after.checks}
    assert after[("late_data", "all")] == "pass" and after[("rollup_freshness", "all")] == "pass"


def test_second_backfill_changes_nothing(scenario: SelftestReport) -> None:
    b = scenario.backfill
    assert b is not None and b.second_rebuilt == []
    assert b.again == b.after  # same totals and the same files (modification times)


def test_runs_are_stored_as_history(scenario: SelftestReport) -> None:
    runs = load_runs(scenario.warehouse, INCIDENT_DAY)
    assert len(runs) >= 2  # before and after the backfill
    latest = latest_run(scenario.warehouse, INCIDENT_DAY)
    assert latest is not None and latest.cadence == "daily"
    assert find(list(latest.checks), "late_data", "all").status == "pass"  # the run after the backfill
    assert latest.to_dict()["checks"][0].keys() >= {"name", "table", "status", "value", "threshold", "detail"}
    assert latest_run(scenario.warehouse, dt.date(2020, 1, 1)) is None


def test_rebuilding_gives_the_same_content(scenario: SelftestReport) -> None:
    b = scenario.backfill
    assert b is not None and b.forced.same_totals(b.after)
    assert b.forced.mtimes != b.after.mtimes  # it was rebuilt
