"""A warehouse with a column missing (or a table with no rows): every check says so on one line,
none passes on nothing, and the index shows the numbers formatted."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from expkit.report.index import render_index
from expkit.report.summary import build_summary
from expkit.validation import run_checks

from .validation_support import END

ZERO_OF_ZERO = re.compile(r"\b0 of 0\b")


def _drop_column(wh: Path, table: str, column: str, days: list[str]) -> None:
    for day in days:
        for f in (wh / "events" / table / f"event_date={day}").glob("*.parquet"):
            pq.write_table(pq.read_table(f).drop([column]), f)


@pytest.fixture(params=["last day", "both days"])
def without_item_id(request: pytest.FixtureRequest, small: Path, tmp_path: Path) -> Path:
    """``small`` with ``item_id`` dropped from the clicks of the checked day (the day before
    keeps it, so an engine reading both fills it with nulls) or of both days (no file has it)."""
    wh = tmp_path / "wh"
    shutil.copytree(small, wh)
    days = [END.isoformat()] if request.param == "last day" else sorted(
        p.name.split("=", 1)[1] for p in (wh / "events" / "clicks").glob("event_date=*"))
    _drop_column(wh, "clicks", "item_id", days)
    return wh


def _assert_readable(results) -> None:
    for r in results:
        assert "\n" not in r.detail, (r.name, r.table, r.detail)
        assert "(;" not in r.detail, (r.name, r.detail)
        assert not ZERO_OF_ZERO.search(r.detail) or r.status != "pass", (r.name, r.table, r.detail)
        assert r.status != "pass" or r.value is not None, (r.name, r.table, r.detail)


def test_missing_column_is_reported_not_measured(without_item_id: Path) -> None:
    results = run_checks(without_item_id, END, cadence="daily")
    _assert_readable(results)
    by = {(r.name, r.table): r for r in results}
    schema = by[("schema", "clicks")]
    assert schema.status == "fail" and "no column 'item_id'" in schema.detail
    for name in ("join_integrity", "event_order", "keys_not_null", "values_in_range", "unique_ids"):
        clicks = by[(name, "clicks")]
        assert clicks.status == "fail" and clicks.value is None, (name, clicks.detail)
        assert clicks.detail.startswith("not judged:") and "item_id" in clicks.detail
    assert not any("orphan rate 100" in r.detail or r.facts.get("orphan_rate") == 1.0 for r in results)
    # the other tables are still measured (the broken files are left out, not the whole query)
    assert by[("join_integrity", "impressions")].status == "pass"
    assert by[("keys_not_null", "requests")].status == "pass" and by[("keys_not_null", "requests")].value == 0
    assert not any(r.detail.startswith("check could not run") for r in results)


def test_a_table_without_rows_is_no_data_not_a_pass(small: Path, tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    shutil.copytree(small, wh)
    shutil.rmtree(wh / "events" / "clicks" / f"event_date={END}")
    results = run_checks(wh, END, cadence="hourly")
    _assert_readable(results)
    by = {(r.name, r.table): r for r in results}
    assert by[("partition_completeness", "clicks")].status == "fail"
    for name in ("join_integrity", "event_order", "keys_not_null", "values_in_range", "unique_ids"):
        r = by[(name, "clicks")]
        assert (r.status, r.value, r.facts.get("no_data")) == ("warn", None, True), (name, r.detail)
        assert r.detail.startswith("no data:")


def test_index_formats_check_values(without_item_id: Path) -> None:
    checks = [r.to_dict() for r in run_checks(without_item_id, END, cadence="daily")]
    checks.append({"name": "join_integrity", "table": "saves", "status": "warn", "value": 0.028982630272952854,
                   "threshold": 0.01, "detail": "hand-made row with a long rate"})
    checks.append({"name": "unique_ids", "table": "requests", "status": "fail", "value": 69597, "threshold": 0,
                   "detail": "hand-made row with a large count"})
    summary = build_summary(date=END, generated_at="2026-11-15T01:30:00Z", params={}, tiles=[], alerts=[],
                            checks=checks, run_seconds=1.0)
    html = render_index(summary)
    table = html[html.index('<section id="validation">'):]
    cells = re.findall(r'<td class="num">([^<]*)</td>', table)
    assert len(cells) == 2 * len(checks)
    assert "0.029" in cells and "69,597" in cells and "0.028982630272952854" not in table
    assert all(len(re.sub(r"[^0-9]", "", c)) <= 6 for c in cells), cells
