"""Each check on hand-made rows: exact counts, sample keys, time semantics, cadences."""

from __future__ import annotations

import datetime as dt

import pytest

from expkit.errors import ExpkitError
from expkit.validation import CADENCES, CHECKS, checks_for, run_checks
from expkit.validation.checks import ALL_VISIBLE, resolve_now
from expkit.warehouse import DAY_MS

from .validation_support import DAY, MIN, T0, TinyWarehouse, find


def _run(wh: TinyWarehouse, cadence: str = "hourly", **kw):
    return run_checks(wh.root, DAY, cadence=cadence, **kw)


def test_cadences_nest_and_cover_every_check() -> None:
    names = {c: [d.name for d in checks_for(c)] for c in CADENCES}
    assert names["5m"] == ["staleness", "event_delay", "partition_completeness", "join_integrity"]
    assert set(names["5m"]) < set(names["hourly"]) < set(names["daily"]) == {c.name for c in CHECKS}
    assert "rollup_freshness" not in names["hourly"] and "late_data" in names["hourly"]
    with pytest.raises(ExpkitError, match="unknown cadence"):
        checks_for("weekly")


def test_healthy_rows_pass_every_check(tiny: TinyWarehouse) -> None:
    results = _run(tiny, now=dt.datetime(2026, 11, 10, 1, 30))
    bad = [r for r in results if r.status != "pass"]
    assert not bad, bad
    assert all(set(r.to_dict()) >= {"name", "table", "status", "value", "threshold", "detail"} for r in results)


def test_orphans_counted_with_sample_keys(tiny: TinyWarehouse) -> None:
    tiny.write("clicks", [{"request_id": 1, "item_id": 99, "timestamp_ms": T0 + 70 * MIN},
                          {"request_id": 77, "item_id": 1, "timestamp_ms": T0 + 71 * MIN}])
    tiny.write("impressions", [{"request_id": 55, "item_id": 3, "timestamp_ms": T0 + 72 * MIN}])
    results = _run(tiny, "5m")
    clicks = find(results, "join_integrity", "clicks")
    assert clicks.status == "fail" and clicks.facts["orphans"] == 2 and clicks.facts["rows"] == 3
    assert clicks.value == pytest.approx(2 / 3)
    assert clicks.facts["sample_keys"] == [[1, 99], [77, 1]]
    assert "(1, 99)" in clicks.detail
    imps = find(results, "join_integrity", "impressions")
    assert imps.facts["orphans"] == 1 and imps.facts["sample_keys"] == [[55]]
    assert find(results, "join_integrity", "saves").status == "pass"


def test_parent_on_previous_day_is_not_an_orphan(tiny: TinyWarehouse) -> None:
    """A click just after midnight belongs to an impression of the day before."""
    before = DAY - dt.timedelta(days=1)
    tiny.write("requests", [{"request_id": 9, "timestamp_ms": T0 - 2_000}], before)
    tiny.write("impressions", [{"request_id": 9, "item_id": 4, "timestamp_ms": T0 - 2_000}], before)
    tiny.write("clicks", [{"request_id": 9, "item_id": 4, "timestamp_ms": T0 + 3_000}])
    results = _run(tiny)
    assert find(results, "join_integrity", "clicks").facts["orphans"] == 0
    assert find(results, "event_order", "clicks").status == "pass"


def test_click_before_its_impression(tiny: TinyWarehouse) -> None:
    tiny.write("clicks", [{"request_id": 1, "item_id": 2, "timestamp_ms": T0 + 59 * MIN}])
    r = find(_run(tiny), "event_order", "clicks")
    assert r.status == "fail" and r.facts["before_parent"] == 1 and r.facts["rows"] == 2


def test_duplicates_counted_per_table(tiny: TinyWarehouse) -> None:
    tiny.write("plays", [{"play_id": 5, "timestamp_ms": T0 + 80 * MIN}] * 3)
    tiny.write("impressions", [{"request_id": 1, "item_id": 1, "timestamp_ms": T0 + 60 * MIN}])
    results = _run(tiny)
    plays = find(results, "unique_ids", "plays")
    assert plays.status == "fail" and plays.value == 2 and plays.facts["duplicated_keys"] == 1
    assert plays.facts["sample_keys"] == [[5]]
    imps = find(results, "unique_ids", "impressions")
    assert imps.value == 1 and imps.facts["sample_keys"] == [[1, 1]]
    assert find(results, "unique_ids", "clicks").value == 0


def test_user_in_two_buckets(tiny: TinyWarehouse) -> None:
    tiny.write("requests", [{"request_id": 2, "user_id": 42, "bucket": "control", "timestamp_ms": T0 + 90 * MIN},
                            {"request_id": 3, "user_id": 42, "bucket": "treatment", "timestamp_ms": T0 + 95 * MIN}])
    r = find(_run(tiny), "bucket_consistency", "requests")
    assert r.status == "fail" and r.value == 1 and r.facts["example_user_id"] == 42


def test_null_keys_and_values_out_of_range(tiny: TinyWarehouse) -> None:
    t = T0 + 100 * MIN
    tiny.write("requests", [
        {"request_id": 20, "user_id": None, "timestamp_ms": t},
        {"request_id": 21, "k_returned": 11, "timestamp_ms": t},
        {"request_id": 22, "latency_ms": -1.0, "fallback_level": 4, "timestamp_ms": t},
        {"request_id": 23, "status": "timeout", "timestamp_ms": t, "ingest_ms": t - 1},
    ])
    tiny.write("impressions", [{"request_id": 21, "item_id": 1, "position": 0, "timestamp_ms": t}])
    tiny.write("plays", [{"source": "radio", "timestamp_ms": t}])
    results = _run(tiny)
    assert find(results, "keys_not_null", "requests").value == 1
    req = find(results, "values_in_range", "requests")
    assert req.status == "fail" and req.facts["violations"] == {
        "ingest_before_event": 1, "k_returned": 1, "latency": 1, "fallback_level": 1, "status": 1}
    assert find(results, "values_in_range", "impressions").facts["violations"] == {"position": 1}
    assert find(results, "values_in_range", "plays").facts["violations"] == {"source": 1}
    assert find(results, "keys_not_null", "plays").status == "pass"


def test_row_in_the_wrong_partition(tiny: TinyWarehouse) -> None:
    tiny.write("saves", [{"request_id": 1, "item_id": 2, "timestamp_ms": T0 + DAY_MS + 5}])
    r = find(_run(tiny), "values_in_range", "saves")
    assert r.facts["violations"] == {"outside_partition": 1}


def test_now_hides_rows_not_yet_landed(tiny: TinyWarehouse) -> None:
    """Judged at 01:30, a click that lands at 02:00 does not exist yet; staleness counts from 01:30."""
    tiny.write("clicks", [{"request_id": 1, "item_id": 2, "timestamp_ms": T0 + 65 * MIN, "ingest_ms": T0 + 120 * MIN}])
    now = dt.datetime(2026, 11, 10, 1, 30, tzinfo=dt.timezone.utc)
    live = run_checks(tiny.root, DAY, now=now, cadence="hourly")
    assert find(live, "unique_ids", "clicks").facts["rows"] == 1
    stale = find(live, "staleness", "clicks")
    assert stale.value == pytest.approx(30 - 25 / 60, abs=0.01)  # the 01:00:05 click landed at 01:00:25
    assert stale.status == "pass"  # a sparse table: one row an hour does not make 30 min silent suspicious
    whole = _run(tiny)
    assert find(whole, "unique_ids", "clicks").facts["rows"] == 2


def test_silence_of_a_steady_table_is_stale(tiny: TinyWarehouse) -> None:
    """One play an hour, then nothing for 23 hours: judged at the end of the day, plays are stale."""
    r = find(_run(tiny, "5m"), "staleness", "plays")
    assert r.status == "fail" and r.value == pytest.approx(24 * 60 - 62 - 1 / 3, abs=0.01)


def test_event_delay_and_staleness_fail_on_a_dense_late_table(tiny: TinyWarehouse) -> None:
    t = T0 + 3 * 60 * MIN
    tiny.write("requests", [{"request_id": 100 + i, "timestamp_ms": t + i * 1000, "ingest_ms": t + i * 1000 + 40 * MIN}
                            for i in range(50)])
    results = run_checks(tiny.root, DAY, now=dt.datetime(2026, 11, 10, 4, 30), cadence="5m")
    delay = find(results, "event_delay", "requests")
    assert delay.status == "fail" and delay.value == pytest.approx(40, abs=0.5)
    assert delay.facts["bad_hours"] == ["2026-11-10T03:00:00Z"]
    stale = find(results, "staleness", "requests")
    assert stale.status == "fail" and stale.value == pytest.approx(50, abs=1)


def test_missing_partition_fails_completeness(tiny: TinyWarehouse) -> None:
    import shutil

    shutil.rmtree(tiny.root / "events" / "saves")
    r = find(_run(tiny, "5m"), "partition_completeness", "saves")
    assert r.status == "fail" and r.facts["missing_partition"]


def test_missing_hour_against_previous_days(tiny: TinyWarehouse) -> None:
    """Hour 05 has its usual 50 requests on the two previous days and none today."""
    for back in (1, 2):
        day = DAY - dt.timedelta(days=back)
        start = T0 - back * DAY_MS
        tiny.write("requests", [{"request_id": 1000 * back + i, "timestamp_ms": start + h * 60 * MIN + i}
                                for h in (5, 6) for i in range(50)], day)
    tiny.write("requests", [{"request_id": 5000 + i, "timestamp_ms": T0 + 6 * 60 * MIN + i} for i in range(50)])
    r = find(_run(tiny, "5m"), "partition_completeness", "requests")
    assert r.status == "fail" and r.facts["bad_hours"] == ["2026-11-10T05:00:00Z"]
    assert r.facts["hours"] == [{"hour": "2026-11-10T05:00:00Z", "rows": 0, "usual": 50}]


def test_resolve_now() -> None:
    start = T0
    assert resolve_now(DAY, None, wall_ms=start + 2 * DAY_MS) == (start + DAY_MS, ALL_VISIBLE)
    assert resolve_now(DAY, None, wall_ms=start + 600) == (start + 600, start + 600)
    assert resolve_now(DAY, dt.datetime(2026, 11, 10, 12)) == (start + 12 * 3_600_000,) * 2


def test_unreadable_file_fails_the_checks_that_read_it(tiny: TinyWarehouse) -> None:
    (tiny.root / "events" / "saves" / f"event_date={DAY}" / "part-99999.parquet").write_bytes(b"not parquet")
    results = _run(tiny)
    # the file is left out of every query and each check of saves fails, naming it (not judged);
    # the other tables are still judged (docs/validation.md, "Broken files and empty tables")
    broken = [r for r in results if r.detail.startswith("not judged")]
    assert broken and all(r.status == "fail" and r.table == "saves" and "part-99999.parquet" in r.detail
                          for r in broken)
    assert {r.name for r in broken} >= {"join_integrity", "unique_ids", "keys_not_null", "values_in_range"}
    assert find(results, "schema", "saves").status == "fail"
    assert find(results, "join_integrity", "clicks").status == "pass"
    assert find(results, "late_data", "all").status == "pass"  # reads no event file of a rolled-up day
