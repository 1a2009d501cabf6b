"""Running the report under control: the lock before any worker, progress only for what
happens, "no alerts" only when alerts ran, ad-hoc pages outside the published days, tile
worker output in the tile's log, Ctrl-C and kill -9 leaving nothing behind
(docs/reliability.md, docs/reports.md)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from report_support import DAY, PARAMS

from expkit import interrupts
from expkit.atomic import FileLock
from expkit.cli import main
from expkit.config import load_experiment
from expkit.errors import ExpkitError
from expkit.report import DailySteps, ProgressEvent, compute, run_daily
from expkit.report.compute import TileComputer
from expkit.report.daily import adhoc_dir
from expkit.report.runner import SOCKET_DIR_PREFIX, sweep_orphan_socket_dirs
from expkit.rollup import build_range
from expkit.synth import generate
from expkit.tiles.registry import TILES

REPO = Path(__file__).resolve().parents[2]
EXPKIT = Path(sys.executable).parent / "expkit"
END = dt.date(2026, 11, 14)


# --- the lock first, progress, the alerts section ------------------------------------------


def test_a_run_that_cannot_take_the_lock_starts_no_worker(tmp_path: Path) -> None:
    """With the day locked, ``--lock-timeout 0`` fails at once and a short wait says it waits,
    names the holder, and gives up; neither starts a tile worker (nor a step, nor a kernel)."""
    compute.stop_workers()
    out = tmp_path / "reports"
    out.mkdir()
    events: list[ProgressEvent] = []
    with FileLock(out / f".{DAY}.lock"):
        with pytest.raises(ExpkitError, match="locked by another run"):
            run_daily(tmp_path / "wh", DAY, out, PARAMS, workers=2, lock_timeout=0, progress=events.append)
        assert events == []
        with pytest.raises(ExpkitError, match="locked by another run"):
            run_daily(tmp_path / "wh", DAY, out, PARAMS, workers=2, lock_timeout=0.3, progress=events.append)
    assert [(e.stage, e.message) for e in events] == [
        ("lock", f"waiting for the lock of {DAY} (held by process {os.getpid()}), up to 0.3 s")]
    assert compute._pool == {}, "a tile worker was started before the lock was taken"


@pytest.mark.parametrize(("built", "message"), [
    (True, re.compile(rf"built the rollups of {DAY} in \d+\.\d s")),
    (False, re.compile(rf"the rollups of {DAY} are up to date")),
])
def test_progress_says_what_the_rollup_step_did(tmp_path: Path, built: bool, message: re.Pattern[str]) -> None:
    events: list[ProgressEvent] = []
    run_daily(tmp_path / "wh", DAY, tmp_path / "reports", PARAMS, tiles=[], progress=events.append,
              steps=DailySteps(rollup=lambda w, d, p: built))
    rollup = [e.message for e in events if e.stage == "rollup"]
    assert rollup[0] == f"checking the rollups of {DAY}" and len(rollup) == 2 and message.fullmatch(rollup[1])
    assert "lock" not in [e.stage for e in events]  # nobody held it: no waiting to report


def test_index_says_no_alerts_only_when_alerts_were_evaluated(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    ran = run_daily(tmp_path / "wh", DAY, out, PARAMS, tiles=[], steps=DailySteps(alerts=lambda w, d, p: []))
    assert "No alerts for this day." in ran.index.read_text() and ran.summary["steps_run"] == ["alerts"]
    skipped = run_daily(tmp_path / "wh", DAY, out, PARAMS, tiles=[], steps=DailySteps())
    page = skipped.index.read_text()
    assert "No alerts for this day" not in page and "Alerts were not evaluated in this run." in page

    def broken(warehouse: Path, day: dt.date, params_file: Path) -> list:
        raise ValueError("rules file unreadable")

    failed = run_daily(tmp_path / "wh", DAY, out, PARAMS, tiles=[], steps=DailySteps(alerts=broken))
    page = failed.index.read_text()
    assert "No alerts for this day" not in page
    assert "Alerts were not evaluated in this run (the alerts step failed: ValueError: rules file unreadable)" in page


# --- ad-hoc pages ----------------------------------------------------------------------------


def test_adhoc_folders_are_one_per_parameter_set_outside_the_days(tmp_path: Path) -> None:
    def folder(**parameters: str) -> Path:
        return adhoc_dir(tmp_path, "ctr", END, parameters, warehouse=tmp_path / "wh", params_file=PARAMS)

    a, same, other = folder(window="7d"), folder(window="7d"), folder(window="24h")
    assert a == same != other
    assert a.parent == other.parent == tmp_path / "adhoc"
    assert re.fullmatch(rf"ctr-{END}-[0-9a-f]{{10}}", a.name)
    assert folder() != adhoc_dir(tmp_path, "ctr", END, {}, warehouse=tmp_path / "wh2", params_file=PARAMS)


# --- tile workers ----------------------------------------------------------------------------


def _warns(parameters: dict, path: Path) -> None:
    """Module-level, so it pickles into a worker: prints and warns like Altair does."""
    print("printed by the tile")
    warnings.warn("I don't know how to infer vegalite type from 'empty'.", UserWarning, stacklevel=1)
    path.write_text(json.dumps({"pid": os.getpid()}))


def test_tile_worker_output_goes_to_the_tiles_log_and_ctrl_c_does_not_reach_it(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    compute.stop_workers()
    log = tmp_path / "logs" / "a.log"
    with TileComputer(workers=1, processes=True) as computer:
        computer.submit("a", _warns, {}, tmp_path / "a.json", log)
        assert computer.wait("a", timeout=60)[0] is None
        worker = compute._pool[0].process
        worker.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends the whole process group
        time.sleep(0.5)
        assert worker.poll() is None
        computer.submit("b", _warns, {}, tmp_path / "b.json", tmp_path / "logs" / "b.log")
        assert computer.wait("b", timeout=60)[0] is None
    assert json.loads((tmp_path / "b.json").read_text())["pid"] == worker.pid
    text = log.read_text()
    assert "printed by the tile" in text and "UserWarning: I don't know how to infer vegalite type" in text
    compute.stop_workers()
    err = capfd.readouterr().err
    assert "vegalite" not in err and "Traceback" not in err and "KeyboardInterrupt" not in err


# --- kernel socket folders -------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_orphan_kernel_socket_folders_of_dead_processes_are_swept(tmp_path: Path) -> None:
    dead = tmp_path / f"{SOCKET_DIR_PREFIX}{_dead_pid()}-abcd1234"
    alive = tmp_path / f"{SOCKET_DIR_PREFIX}{os.getpid()}-efgh5678"
    unrelated = tmp_path / f"{SOCKET_DIR_PREFIX}nopid"
    for d in (dead, alive, unrelated):
        d.mkdir()
        (d / "0123456789ab-shell").write_text("")
    assert sweep_orphan_socket_dirs(str(tmp_path)) == [str(dead)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, unrelated.name])


# --- real runs: kill -9 and Ctrl-C -----------------------------------------------------------


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short $TMPDIR (kernel socket paths must stay under the 108-byte Unix limit)."""
    with tempfile.TemporaryDirectory(prefix="ek", dir="/tmp") as d:
        yield Path(d)


KILL_AFTER_FIRST_TILE = """
import datetime as dt, os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from report_support import tile
from expkit.report import run_daily

def progress(event):
    if event.stage == "tile":
        os.kill(os.getpid(), signal.SIGKILL)

run_daily(Path(sys.argv[1]), dt.date.fromisoformat(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[5]),
          tiles=[tile("latency", "health", "plain.ipynb", status="ok"),
                 tile("cache", "health", "sleeps.ipynb", timeout=60)], workers=2, progress=progress)
"""


@pytest.mark.slow
def test_kill_9_mid_run_leaves_a_socket_folder_that_the_next_run_sweeps(tmp_path: Path, short_tmp: Path) -> None:
    env = {**os.environ, "TMPDIR": str(short_tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_AFTER_FIRST_TILE, str(tmp_path / "wh"), DAY.isoformat(), str(tmp_path / "r"),
         str(Path(__file__).parent), str(PARAMS)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == -signal.SIGKILL, err.decode()
        left = [p.name for p in short_tmp.iterdir()]
        assert left == [f"{SOCKET_DIR_PREFIX}{proc.pid}-" + left[0].rsplit("-", 1)[1]], left
        # the next run's first kernel sweeps it
        code = "from expkit.report.runner import _kernel_socket_prefix; print(_kernel_socket_prefix())"
        fresh = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert fresh.returncode == 0, fresh.stderr
        assert list(short_tmp.iterdir()) == []  # the killed run's folder swept, the fresh one removed at exit
    finally:
        _kill_group(proc.pid)


def _kernels_of(pid: int) -> list[int]:
    """Live kernel processes started by process ``pid`` (jupyter_client gives each its own
    session and sets JPY_PARENT_PID)."""
    found = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"JPY_PARENT_PID={pid}".encode() in env.read_bytes().split(b"\0"):
                found.append(int(env.parent.name))
        except OSError:
            continue
    return found


def _kill_group(pgid: int) -> None:
    """Kill what the test started: the process group and the kernels of its leader."""
    for pid in _kernels_of(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@pytest.fixture(scope="module")
def small_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two synthetic days, 300 users, rolled up."""
    wh = tmp_path_factory.mktemp("runctl") / "wh"
    generate(wh, days=2, end=END, users=300, seed=3)
    build_range(wh, END - dt.timedelta(days=1), END, load_experiment(PARAMS))
    return wh


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_ctrl_c_ends_daily_with_one_line_and_leaves_nothing(small_warehouse: Path, tmp_path: Path,
                                                             short_tmp: Path) -> None:
    """SIGINT to the whole process group (a terminal's Ctrl-C) while tiles run: exit 130, one line
    "interrupted", no traceback from any worker, no temp folder, kernel folder or process left."""
    out = tmp_path / "reports"
    proc = subprocess.Popen(
        [str(EXPKIT), "daily", "--warehouse", str(small_warehouse), "--date", END.isoformat(), "--out", str(out),
         "--workers", "2"],
        env={**os.environ, "TMPDIR": str(short_tmp)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("[expkit] tile [1/"):  # workers and kernels are busy now
                break
        else:
            pytest.fail("the run ended before its first tile: " + "".join(lines))
        os.killpg(proc.pid, signal.SIGINT)
        _, rest = proc.communicate(timeout=120)
        assert proc.returncode == 130, "".join(lines) + rest
        # a tile that finished as the signal arrived may still report; then one line, nothing else
        *before, last = rest.strip().splitlines()
        assert last == "expkit daily: interrupted" and all(line.startswith("[expkit] ") for line in before), rest
        deadline = time.monotonic() + 15
        while (_group_alive(proc.pid) or _kernels_of(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_alive(proc.pid), "a tile worker outlived the interrupted run"
        assert _kernels_of(proc.pid) == [], "a kernel outlived the interrupted run"
        assert [p.name for p in out.iterdir() if not p.name.endswith(".lock")] == []
        assert list(short_tmp.iterdir()) == []
    finally:
        _kill_group(proc.pid)


@pytest.mark.slow
def test_adhoc_pages_survive_the_next_daily_run_and_do_not_overwrite_each_other(
    small_warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Also: a real ``expkit daily --quiet`` prints nothing on stderr (the tiles' warnings, e.g.
    Altair's on an empty chart, go to their logs)."""
    out = tmp_path / "reports"
    run_daily(small_warehouse, END, out, PARAMS, tiles=[])  # a published day
    pages = []
    for window in ("7d", "24h"):
        base = ["tile", "volume", "--warehouse", str(small_warehouse), "--date", END.isoformat(), "--out", str(out)]
        assert main([*base, "-p", f"window={window}", "--quiet"]) == 0
        pages.append(Path(json.loads(capsys.readouterr().out)["html"]))
    first, second = pages
    assert first != second and first.is_file() and second.is_file()
    assert first.parent.parent.parent == out / "adhoc" and out / END.isoformat() not in first.parents
    assert "<dd>7d</dd>" in first.read_text() and "<dd>24h</dd>" in second.read_text()
    before = first.read_bytes()
    daily = subprocess.run(  # the next daily run of that day
        [str(EXPKIT), "daily", "--warehouse", str(small_warehouse), "--date", END.isoformat(), "--out", str(out),
         "--workers", "2", "--quiet"], capture_output=True, text=True, timeout=600)
    assert daily.returncode == 0 and daily.stderr == "", daily.stderr
    assert first.read_bytes() == before and second.is_file()
    assert len(list((out / END.isoformat() / "tiles").glob("*.html"))) == len(TILES)


# --- Ctrl-C inside a DuckDB query --------------------------------------------------------------

LONG_QUERY = "select count(*) from range(100000000000) a"


def _interrupt_soon() -> threading.Timer:
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


@pytest.mark.slow  # DuckDB may take ~10 s to notice the interrupt on a loaded machine
def test_ctrl_c_in_a_steps_query_stops_the_run_instead_of_failing_the_step(tmp_path: Path) -> None:
    """DuckDB turns Ctrl-C into RuntimeError('Query interrupted'); the run must stop, not record
    a failed validation and go on to the tiles."""

    def validate(warehouse: Path, day: dt.date, params_file: Path) -> list:
        duckdb.connect().execute(LONG_QUERY).fetchall()
        return []

    events: list[ProgressEvent] = []
    with interrupts.handling(), pytest.raises(KeyboardInterrupt):
        _interrupt_soon()
        run_daily(tmp_path / "wh", DAY, tmp_path / "r", PARAMS, tiles=[], progress=events.append,
                  steps=DailySteps(validate=validate))
    assert "tiles" not in [e.stage for e in events]
    assert [p.name for p in (tmp_path / "r").iterdir()] == [f".{DAY}.lock"]


COMMAND_RUNNING_A_QUERY = f"""
import duckdb, sys
from expkit import cli

def cmd_rollup(args):
    con = duckdb.connect()
    print("querying", flush=True)
    con.execute({LONG_QUERY!r}).fetchall()

cli.cmd_rollup = cmd_rollup
sys.exit(cli.main(["rollup", "--date", "2026-11-14"]))
"""


@pytest.mark.slow  # DuckDB may take up to ~20 s to notice the interrupt on a loaded machine
def test_ctrl_c_in_a_commands_query_is_one_line_and_exit_130(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", COMMAND_RUNNING_A_QUERY], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=tmp_path)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "querying\n"
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        _kill_group(proc.pid)
    assert proc.returncode == 130 and err.strip().splitlines() == ["expkit rollup: interrupted"], err
