"""Atomic output, reruns, the per-day lock, killed runs, steps. No kernels: tiles=[]."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from report_support import CHECKS, DAY, PARAMS, fake_steps

from expkit.errors import ExpkitError
from expkit.report import DailySteps, ProgressEvent, clean_stale, run_daily


def _run(out: Path, tmp_path: Path, **kw):
    kw.setdefault("tiles", [])
    return run_daily(tmp_path / "wh", DAY, out, PARAMS, **kw)


def _leftovers(out: Path) -> list[str]:
    return [p.name for p in out.iterdir() if p.name.startswith((".tmp-", ".old-"))]


def test_rerun_replaces_the_day(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    first = _run(out, tmp_path, steps=fake_steps())
    assert first.ok and len(first.checks) == 2
    second = _run(out, tmp_path, steps=DailySteps(validate=lambda w, d, p: CHECKS[:1]))
    doc = json.loads(second.summary_path.read_text())
    assert [c["name"] for c in doc["checks"]] == ["partition_complete"]
    assert doc["alerts"] == []
    assert _leftovers(out) == []
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [DAY.isoformat(), "index.html"]


def test_failure_midway_keeps_the_previous_report(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    _run(out, tmp_path, steps=fake_steps())
    before = {p.relative_to(out): p.read_bytes() for p in (out / DAY.isoformat()).rglob("*") if p.is_file()}

    def die_at_index(event: ProgressEvent) -> None:
        if event.stage == "index":
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        _run(out, tmp_path, steps=DailySteps(), progress=die_at_index)
    after = {p.relative_to(out): p.read_bytes() for p in (out / DAY.isoformat()).rglob("*") if p.is_file()}
    assert after == before
    assert _leftovers(out) == []


KILL_SCRIPT = """
import datetime as dt, os, signal, sys
from pathlib import Path
from expkit.report import run_daily

def progress(event):
    if event.stage == "index":
        os.kill(os.getpid(), signal.SIGKILL)

run_daily(Path(sys.argv[1]), dt.date.fromisoformat(sys.argv[2]), Path(sys.argv[3]),
          Path(sys.argv[4]), tiles=[], progress=progress)
"""


def test_killed_run_leaves_previous_report_and_is_cleaned_up(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    first = _run(out, tmp_path, steps=fake_steps())
    index_before = first.index.read_bytes()
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(tmp_path / "wh"), DAY.isoformat(), str(out), str(PARAMS)],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert first.index.read_bytes() == index_before
    assert len(_leftovers(out)) == 1  # the killed run's half-built folder
    _run(out, tmp_path)
    assert _leftovers(out) == []


def test_clean_stale_only_touches_its_own_day(tmp_path: Path) -> None:
    (tmp_path / f".tmp-{DAY}-deadbeef").mkdir()
    (tmp_path / f".old-{DAY}-deadbeef").mkdir()
    (tmp_path / ".tmp-2026-11-06-cafecafe").mkdir()  # another date, maybe building now
    removed = clean_stale(tmp_path, DAY.isoformat())
    assert len(removed) == 2
    assert [p.name for p in tmp_path.iterdir()] == [".tmp-2026-11-06-cafecafe"]


def test_second_run_of_the_same_day_fails_fast_when_locked(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    entered, release = threading.Event(), threading.Event()

    def slow_rollup(warehouse, day, params_file) -> None:
        entered.set()
        assert release.wait(30)

    first: dict = {}
    t = threading.Thread(
        target=lambda: first.setdefault("r", _run(out, tmp_path, steps=DailySteps(rollup=slow_rollup)))
    )
    t.start()
    try:
        assert entered.wait(30)
        with pytest.raises(ExpkitError, match="locked by another run"):
            _run(out, tmp_path, lock_timeout=0.2)
        # another date is not blocked
        other = run_daily(tmp_path / "wh", DAY + dt.timedelta(days=1), out, PARAMS, tiles=[], lock_timeout=0)
        assert other.index.is_file()
    finally:
        release.set()
        t.join(60)
    assert first["r"].index.is_file()


def test_second_run_waits_and_never_interleaves(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    spans: list[tuple[float, float]] = []

    def rollup(warehouse, day, params_file) -> None:
        start = time.monotonic()
        time.sleep(0.5)
        spans.append((start, time.monotonic()))

    def run() -> None:
        _run(out, tmp_path, steps=DailySteps(rollup=rollup), lock_timeout=30)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert len(spans) == 2
    (a0, a1), (b0, b1) = sorted(spans)
    assert a1 <= b0
    assert _leftovers(out) == []
    assert json.loads((out / DAY.isoformat() / "summary.json").read_text())["date"] == DAY.isoformat()


def test_failing_steps(tmp_path: Path) -> None:
    out = tmp_path / "reports"

    def broken(warehouse, day, params_file):
        raise KeyError("no such table <impressions>")

    result = _run(out, tmp_path, steps=DailySteps(validate=broken, alerts=lambda w, d, p: []))
    assert not result.ok
    assert result.step_errors == {"validate": "KeyError: 'no such table <impressions>'"}
    assert "Step <strong>validate</strong> failed" in result.index.read_text()
    assert "no such table &lt;impressions&gt;" in result.index.read_text()

    def no_rollup(warehouse, day, params_file):
        raise ExpkitError("no events for 2026-11-05 in the warehouse")

    with pytest.raises(ExpkitError, match="no events"):
        _run(out, tmp_path, steps=DailySteps(rollup=no_rollup))
    assert result.index.is_file()  # the earlier report is still there


def test_progress_events(tmp_path: Path) -> None:
    events: list[ProgressEvent] = []
    _run(tmp_path / "reports", tmp_path, steps=fake_steps(), progress=events.append)
    # no "lock" event: nobody held the lock, so the run did not wait for it
    assert [e.stage for e in events] == ["rollup", "validate", "alerts", "tiles", "index", "done"]
