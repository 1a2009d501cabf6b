"""Broken event data: missing, empty or corrupt Parquet files and schema drift.

A missing column, a wrong type or an unreadable file stops the rollup before it replaces
anything, naming table, file and column; validation reports it as a failed ``schema`` check.
An extra column is tolerated (the engines read by name).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hardening_support import END, PARAMS, Cli, assert_one_line_error, event_file, rewrite, snapshot

from expkit.schema import EVENT_TABLES


def _missing_column(wh: Path) -> tuple[Path, str]:
    f = event_file(wh, "clicks")
    rewrite(f, lambda t: t.drop_columns(["item_id"]))
    return f, "has no column 'item_id'"


def _wrong_type(wh: Path) -> tuple[Path, str]:
    f = event_file(wh, "requests")
    rewrite(f, lambda t: t.set_column(t.schema.get_field_index("latency_ms"), "latency_ms",
                                      t["latency_ms"].cast(pa.string())))
    return f, "column 'latency_ms' is string, expected double"


def _corrupt(wh: Path) -> tuple[Path, str]:
    f = event_file(wh, "impressions")
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    return f, "is not a readable Parquet file"


def _empty_file(wh: Path) -> tuple[Path, str]:
    f = event_file(wh, "saves").with_name("part-00001.parquet")
    f.write_bytes(b"")
    return f, "is not a readable Parquet file"


BROKEN: dict[str, Callable[[Path], tuple[Path, str]]] = {
    "missing column": _missing_column, "wrong type": _wrong_type, "corrupt file": _corrupt,
    "empty (0-byte) file": _empty_file,
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_rollup_names_the_file_and_column_and_replaces_nothing(wh: Path, cli: Cli, case: str) -> None:
    path, message = BROKEN[case](wh)
    rollups = snapshot(wh / "rollups")
    code, _, err = cli("rollup", "--warehouse", wh, "--date", END.isoformat(), "--params", PARAMS, "--quiet")
    assert_one_line_error(code, err, path, message)
    assert snapshot(wh / "rollups") == rollups


@pytest.mark.parametrize("case", list(BROKEN))
def test_validation_fails_the_schema_check(wh: Path, cli: Cli, case: str) -> None:
    path, message = BROKEN[case](wh)
    code, out, _ = cli("validate", "--warehouse", wh, "--date", END.isoformat(), "--cadence", "hourly",
                       "--json", "--no-record")
    assert code == 1
    failed = [c for c in json.loads(out)["checks"] if c["name"] == "schema" and c["status"] == "fail"]
    assert len(failed) == 1 and str(path) in failed[0]["detail"] and message in failed[0]["detail"]


def test_daily_stops_at_the_rollup_and_writes_no_report(wh: Path, tmp_path: Path, cli: Cli) -> None:
    path, message = _missing_column(wh)
    code, _, err = cli("daily", "--warehouse", wh, "--date", END.isoformat(), "--out", tmp_path / "r", "--quiet")
    assert_one_line_error(code, err, path, message)
    assert not (tmp_path / "r" / END.isoformat()).exists()


def _rollup_rows(wh: Path) -> dict[str, int]:
    return json.loads((wh / "state" / "rollups" / f"{END}.json").read_text())["rows"]


@pytest.mark.parametrize("case", ["extra column", "zero-row file", "narrower integer type"])
def test_tolerated_drift_rolls_up_to_the_same_numbers(wh: Path, cli: Cli, case: str) -> None:
    before = _rollup_rows(wh)
    f = event_file(wh, "requests")
    if case == "extra column":
        rewrite(f, lambda t: t.append_column("debug_note", pa.array(["x"] * t.num_rows)))
    elif case == "zero-row file":
        pq.write_table(EVENT_TABLES["requests"].empty_table(), f.with_name("part-00009.parquet"))
    else:
        rewrite(f, lambda t: t.set_column(t.schema.get_field_index("k_requested"), "k_requested",
                                          t["k_requested"].cast(pa.int16())))
    code, _, err = cli("rollup", "--warehouse", wh, "--date", END.isoformat(), "--quiet")
    assert code == 0, err
    assert _rollup_rows(wh) == before
    code, out, _ = cli("validate", "--warehouse", wh, "--date", END.isoformat(), "--json", "--no-record")
    assert all(c["status"] == "pass" for c in json.loads(out)["checks"] if c["name"] == "schema")


def test_a_missing_table_partition_is_an_empty_table_and_fails_completeness(wh: Path, cli: Cli) -> None:
    shutil.rmtree(wh / "events" / "clicks" / f"event_date={END}")
    code, _, err = cli("rollup", "--warehouse", wh, "--date", END.isoformat(), "--quiet")
    assert code == 0, err
    assert _rollup_rows(wh)["user_day"] > 0
    code, out, _ = cli("validate", "--warehouse", wh, "--date", END.isoformat(), "--json", "--no-record")
    failed = {(c["name"], c["table"]) for c in json.loads(out)["checks"] if c["status"] == "fail"}
    assert code == 1 and ("partition_completeness", "clicks") in failed


def test_a_missing_requests_partition_is_no_data(wh: Path, cli: Cli) -> None:
    shutil.rmtree(wh / "events" / "requests" / f"event_date={END}")
    rollups = snapshot(wh / "rollups")
    code, _, err = cli("rollup", "--warehouse", wh, "--date", END.isoformat(), "--quiet")
    assert_one_line_error(code, err, f"no events for {END}", "partition event_date=2026-11-14 missing")
    assert snapshot(wh / "rollups") == rollups
