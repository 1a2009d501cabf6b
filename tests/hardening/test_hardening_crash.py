"""Processes killed (SIGKILL) mid-run: nothing half-written is read, the next run recovers.

Killed alert evaluation and delivery are covered in tests/alerts/test_alerts_state.py, a killed
report run in tests/report/test_report_atomic.py (see docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from hardening_support import END, PARAMS, START, Cli, assert_one_line_error, event_file, snapshot

from expkit.daily import ensure_rollups
from expkit.rollup import RAW_ROLLUPS, ROLLUP_NAMES, stale_dates
from expkit.schema import EVENT_TABLES
from expkit.warehouse import Warehouse

KILL_AT = 3
"""The rollup is killed while writing its third table, after half the file is on disk."""

DIE_MID_WRITE = f"""
import datetime as dt, os, signal, sys
import expkit.rollup as rollup
from expkit.config import load_experiment

real, calls = rollup.write_parquet, []

def dying(engine, template, values, sources, path):
    calls.append(path)
    rows = real(engine, template, values, sources, path)
    if len(calls) == {KILL_AT}:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return rows

rollup.write_parquet = dying
rollup.build_rollups(sys.argv[1], dt.date.fromisoformat(sys.argv[2]), load_experiment(sys.argv[3]))
"""


def _manifest(wh: Path) -> dict:
    return json.loads((wh / "state" / "rollups" / f"{END}.json").read_text())


def test_rollup_killed_mid_write_keeps_every_partition_whole_and_reruns(wh: Path) -> None:
    rows_before = _manifest(wh)["rows"]
    previous_day = {n: snapshot(wh / "rollups" / n / f"event_date={START}") for n in ROLLUP_NAMES}
    untouched = [r.name for r in RAW_ROLLUPS[KILL_AT - 1:]] + ["outcome_stats"]
    old = {n: snapshot(wh / "rollups" / n / f"event_date={END}") for n in untouched}
    late = event_file(wh, "clicks")
    os.utime(late)  # late data: the day's rollup is now stale and gets rebuilt

    proc = subprocess.run([sys.executable, "-c", DIE_MID_WRITE, str(wh), END.isoformat(), str(PARAMS)],
                          capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()

    w = Warehouse.open(wh)
    killed = wh / "rollups" / RAW_ROLLUPS[KILL_AT - 1].name
    assert [p.name for p in killed.iterdir() if p.name.startswith(".tmp-")], "the half-written folder"
    for name in ROLLUP_NAMES:  # readers see only whole partitions: the new or the old one
        files = w.rollup_files(name, [END])
        assert len(files) == 1 and not files[0].parent.name.startswith(".")
        assert pq.read_table(files[0]).num_rows == rows_before[name]
        assert snapshot(wh / "rollups" / name / f"event_date={START}") == previous_day[name]
    for name in untouched:
        assert snapshot(wh / "rollups" / name / f"event_date={END}") == old[name]
    assert stale_dates(w, [END]) == [END]  # no manifest was written: the next run rebuilds

    ensure_rollups(wh, END, PARAMS)  # what the next `expkit daily` does first
    assert stale_dates(w, [END]) == [] and _manifest(wh)["rows"] == rows_before
    assert not [p for p in (wh / "rollups").rglob(".*")]


def test_synth_killed_leaves_only_whole_partitions_and_a_clear_rerun_error(tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "wh"
    argv = [sys.executable, "-m", "expkit.cli", "synth", "--out", str(out), "--days", "6",
            "--end", END.isoformat(), "--users", "300"]
    with subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            if ": done (" in line:  # the first day has been moved into place
                proc.send_signal(signal.SIGKILL)
                break
        assert proc.wait(60) == -signal.SIGKILL
    assert not (out / "truth.json").exists()
    parts = {t: {p.name for p in (out / "events" / t).iterdir()} for t in EVENT_TABLES}
    in_every_table = set.intersection(*parts.values())
    assert in_every_table and len(in_every_table) < 6
    # A day is moved into place one table at a time (five renames): a kill between two of them
    # leaves that day, and only that day, the newest, in some of the tables.
    partial = set.union(*parts.values()) - in_every_table
    assert len(partial) <= 1 and all(d > max(in_every_table) for d in partial), parts
    for table in EVENT_TABLES:  # every visible partition is whole: only finished, readable files
        files = list((out / "events" / table).rglob("*"))
        assert all(f.is_dir() or f.suffix == ".parquet" for f in files), files
        for f in files:
            if f.is_file():
                pq.read_table(f)
    code, _, err = cli("synth", "--out", out, "--days", "6", "--end", END.isoformat(), "--users", "300")
    assert_one_line_error(code, err, out, "already contains events; choose an empty folder or delete it")
