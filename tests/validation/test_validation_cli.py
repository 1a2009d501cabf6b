"""``expkit validate`` and ``expkit selftest`` on the command line: output shapes, exit codes, history."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from expkit.cli import main
from expkit.selftest import SelftestReport
from expkit.validation import load_runs
from expkit.validation.commands import parse_now

from .validation_support import END

CHECK_KEYS = {"name", "table", "status", "value", "threshold", "detail"}


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out)


def test_validate_json_fails_on_the_incident_day(scenario: SelftestReport, capsys: pytest.CaptureFixture[str]) -> None:
    before = len(load_runs(scenario.warehouse, END))
    code = main(["validate", "--warehouse", str(scenario.warehouse), "--date", END.isoformat(), "--json", "--quiet"])
    doc = _json(capsys)
    assert code == 1
    assert doc["date"] == END.isoformat() and doc["as_of"] == "2026-11-15T00:00:00Z" and doc["status"] == "fail"
    assert all(CHECK_KEYS <= set(c) for c in doc["checks"])
    assert {c["status"] for c in doc["checks"]} <= {"pass", "warn", "fail"}
    failed = {(c["name"], c["table"]) for c in doc["checks"] if c["status"] == "fail"}
    assert {("join_integrity", "clicks"), ("unique_ids", "clicks"), ("event_delay", "impressions")} <= failed
    assert len(load_runs(scenario.warehouse, END)) == before + 1


def test_validate_text_passes_on_a_clean_day(scenario: SelftestReport, capsys: pytest.CaptureFixture[str]) -> None:
    day = END - dt.timedelta(days=1)
    code = main(["validate", "--warehouse", str(scenario.warehouse), "--date", day.isoformat(), "--no-record"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0].startswith(f"{day} daily validation") and " 0 failed" in out
    assert "PASS  join_integrity" in out


def test_validate_5m_cadence_replayed_at_a_time(scenario: SelftestReport, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", "--warehouse", str(scenario.warehouse), "--date", END.isoformat(), "--cadence", "5m",
                 "--now", "12:40", "--json", "--no-record"])
    doc = _json(capsys)
    assert code == 1 and doc["as_of"] == "2026-11-14T12:40:00Z"
    assert {c["name"] for c in doc["checks"]} == {"staleness", "event_delay", "partition_completeness",
                                                  "join_integrity"}
    stale = [c for c in doc["checks"] if c["name"] == "staleness" and c["status"] == "fail"]
    assert [c["table"] for c in stale] == ["impressions"]


@pytest.mark.parametrize("argv, message", [
    (["--date", "2026-02-30"], "not a valid date"),
    (["--date", "2026-11-14", "--now", "noon"], "--now 'noon' is not a time"),
])
def test_validate_usage_errors_exit_2(scenario: SelftestReport, capsys: pytest.CaptureFixture[str],
                                      argv: list[str], message: str) -> None:
    assert main(["validate", "--warehouse", str(scenario.warehouse), *argv]) == 2
    assert message in capsys.readouterr().err


def test_validate_missing_warehouse_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--warehouse", str(tmp_path / "none"), "--date", "2026-11-14"]) == 2
    assert "no events/ folder" in capsys.readouterr().err


def test_parse_now() -> None:
    day = dt.date(2026, 11, 14)
    utc = dt.timezone.utc
    assert parse_now("12:30", day) == dt.datetime(2026, 11, 14, 12, 30, tzinfo=utc)
    assert parse_now("2026-11-14T12:30:00Z", day) == dt.datetime(2026, 11, 14, 12, 30, tzinfo=utc)
    assert parse_now("2026-11-14T13:30:00+01:00", day).astimezone(utc).hour == 12
    assert parse_now(None, day) is None


def test_selftest_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two days, one incident, validation and alerts only: the table, the JSON and exit status 0."""
    code = main(["selftest", "--incident", "orphan_clicks", "--days", "2", "--users", "3000", "--no-tiles",
                 "--workdir", str(tmp_path), "--json", "--quiet"])
    doc = _json(capsys)
    assert code == 0 and doc["ok"], doc
    rows = {(o["area"], o["item"]): o for o in doc["outcomes"]}
    assert rows[("incident", "orphan_clicks")]["result"] == "ok"
    assert rows[("clean day", "2026-11-13 validation")]["result"] == "ok"
    assert (tmp_path / "warehouse" / "truth.json").is_file()


def test_selftest_rejects_bad_incident(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["selftest", "--incident", "meteor_strike", "--quiet"]) == 2
    assert "unknown incident 'meteor_strike'" in capsys.readouterr().err
