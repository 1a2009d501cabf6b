"""Tiles computed in the report's process: the computer's order and time-outs, the lazy pool,
the slowest-first order from the previous report, and the light path a report kernel takes."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from expkit import run_tile
from expkit.report.compute import TileComputer
from expkit.report.daily import previous_durations
from expkit.report.runner import run_parallel
from expkit.tiles.rendered import RenderedTile, load_matching

ROOT = Path(__file__).resolve().parents[2]


class _T:
    def __init__(self, id: str) -> None:  # noqa: A002 - mirrors Tile.id
        self.id = id


def _writer(delay: float = 0.0, fail: bool = False):
    def prerender(parameters, path: Path) -> None:
        time.sleep(delay)
        if fail:
            raise ValueError("boom")
        path.write_text(json.dumps(parameters))

    return prerender


def test_computer_computes_in_order_and_reports_time(tmp_path: Path) -> None:
    """One thread computes the tiles in submission order; wait gives no error and the seconds spent."""
    with TileComputer(workers=1) as computer:
        for name, delay in (("slow", 0.3), ("fast", 0.0)):
            computer.submit(name, _writer(delay), {"tile": name}, tmp_path / f"{name}.json")
        error, seconds = computer.wait("slow", timeout=10)
        assert error is None and seconds >= 0.3
        assert computer.wait("fast", timeout=10)[0] is None
    assert json.loads((tmp_path / "slow.json").read_text()) == {"tile": "slow"}
    assert computer.wait("never-submitted", timeout=1) == (None, 0.0)


def test_computer_failure_leaves_no_file_and_no_error(tmp_path: Path) -> None:
    """A tile that raises leaves nothing behind: its notebook computes it and shows the real error."""
    path = tmp_path / "bad.json"
    path.write_text("stale")
    with TileComputer(workers=1) as computer:
        computer.submit("bad", _writer(fail=True), {}, path)
        assert computer.wait("bad", timeout=10)[0] is None
    assert not path.exists()


def test_computer_timeout_and_withdrawal(tmp_path: Path) -> None:
    """Past its time-out a running tile is a time-out; a queued tile that never got a thread is withdrawn."""
    release = threading.Event()

    def hangs(parameters, path: Path) -> None:
        release.wait(30)

    with TileComputer(workers=1) as computer:
        computer.submit("hangs", hangs, {}, tmp_path / "hangs.json")
        computer.submit("queued", _writer(), {}, tmp_path / "queued.json")
        error, _ = computer.wait("hangs", timeout=0.5)
        assert error == "Timeout: the tile did not finish within 0.5 s"
        assert computer.wait("queued", timeout=0.2) == (None, 0.0)
        release.set()
        time.sleep(0.3)
    assert not (tmp_path / "queued.json").exists(), "a withdrawn tile is not computed later"


def _in_worker(parameters, path: Path) -> None:
    """Module-level, so it pickles: what the worker process sees."""
    if parameters.get("crash"):
        os.kill(os.getpid(), signal.SIGKILL)
    if parameters.get("hang"):
        time.sleep(60)
    if parameters.get("fail"):
        raise ValueError("boom in the worker")
    if parameters.get("noisy"):  # output on stdout must not corrupt the answers on the pipe
        print("noise")
        os.write(1, b"raw noise on fd 1\n")
    path.write_text(json.dumps({"pid": os.getpid(), "env": os.environ.get("EXPKIT_TEST_VALUE"), "cwd": os.getcwd()}))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z" if Path(f"/proc/{pid}").exists() else True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks processes through /proc")
def test_processes_compute_in_a_worker_with_the_reports_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With processes, a tile is computed in a worker process that takes the report's environment
    and folder at submission; failures are reported like on a thread; a crashed worker fails only
    its tile and the next tile gets a new one; work that does not pickle runs on the thread."""
    monkeypatch.setenv("EXPKIT_TEST_VALUE", "set after the worker started")
    monkeypatch.chdir(tmp_path)
    with TileComputer(workers=1, processes=True) as computer:
        computer.submit("a", _in_worker, {"noisy": True}, tmp_path / "a.json")
        computer.submit("bad", _in_worker, {"fail": True}, tmp_path / "bad.json")
        computer.submit("crash", _in_worker, {"crash": True}, tmp_path / "crash.json")
        computer.submit("b", _in_worker, {}, tmp_path / "b.json")
        computer.submit("local", _writer(), {"x": 1}, tmp_path / "local.json")
        for tile in ("a", "bad", "crash", "b", "local"):
            assert computer.wait(tile, timeout=60)[0] is None, tile
    a, b = (json.loads((tmp_path / f"{t}.json").read_text()) for t in "ab")
    assert a["pid"] != os.getpid() and a["env"] == "set after the worker started" and a["cwd"] == str(tmp_path)
    assert b["pid"] != a["pid"], "the crashed worker was replaced"
    assert not (tmp_path / "bad.json").exists() and not (tmp_path / "crash.json").exists()
    assert json.loads((tmp_path / "local.json").read_text()) == {"x": 1}, "a local function runs on the thread"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks processes through /proc")
def test_processes_a_worker_past_its_time_out_is_killed(tmp_path: Path) -> None:
    with TileComputer(workers=1, processes=True) as computer:
        computer.submit("first", _in_worker, {}, tmp_path / "first.json")
        assert computer.wait("first", timeout=60)[0] is None
        pid = json.loads((tmp_path / "first.json").read_text())["pid"]
        computer.submit("hangs", _in_worker, {"hang": True}, tmp_path / "hangs.json")
        error, _ = computer.wait("hangs", timeout=1.0)
        assert error == "Timeout: the tile did not finish within 1 s"
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), "the hanging tile's worker process is gone"


def test_registered_tiles_reach_a_worker_by_id() -> None:
    """What the report sends a worker process for a registered tile (its compute may be a
    closure) is the tile's id and a module-level function; a notebook-only tile is not sent."""
    from expkit.report.tiles import prerender_of
    from expkit.tiles.registry import TILES
    from expkit.tiles.spec import Tile

    for tile in TILES.values():
        sent = pickle.loads(pickle.dumps(prerender_of(tile)))
        assert sent.args == (tile.id,) and sent.func.__name__ == "prerender_tile"
    assert prerender_of(Tile("plain", "health", "Plain", notebook_file=Path("plain.ipynb"))) is None


def test_in_order_ready_yields_finished_tiles_first(tmp_path: Path) -> None:
    """Tiles not computed here come first, then the rest in the order they finish."""
    with TileComputer(workers=2) as computer:
        computer.submit("slow", _writer(0.6), {}, tmp_path / "slow.json")
        computer.submit("fast", _writer(0.05), {}, tmp_path / "fast.json")
        tiles = [_T("slow"), _T("fast"), _T("plain")]
        order = [t.id for t in computer.in_order_ready(tiles, lambda t: 10)]
    assert order == ["plain", "fast", "slow"]


def test_run_parallel_takes_lazy_items_only_when_a_worker_is_free() -> None:
    """With an iterator, at most ``workers`` items are taken ahead; results come in the order taken."""
    taken: list[int] = []
    running = 0
    peak = 0
    lock = threading.Lock()

    def source():
        for i in range(6):
            taken.append(i)
            yield i

    def work(i: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            assert len(taken) <= i + 2 + 1
        time.sleep(0.05)
        with lock:
            running -= 1
        return i * 10

    assert run_parallel(source(), work, workers=2) == [0, 10, 20, 30, 40, 50]
    assert peak == 2


def test_previous_durations(tmp_path: Path) -> None:
    """Run times come from the newest report up to the day; none, or a broken summary, gives {}."""
    import datetime as dt

    assert previous_durations(tmp_path, dt.date(2026, 11, 5)) == {}
    for day, secs in (("2026-11-03", 1.0), ("2026-11-04", 2.0), ("2026-11-09", 9.0)):
        d = tmp_path / day
        d.mkdir()
        (d / "index.html").write_text("<html></html>")
        (d / "summary.json").write_text(json.dumps({"tiles": {"ctr": {"duration_s": secs}, "lift": {}}}))
    assert previous_durations(tmp_path, dt.date(2026, 11, 5)) == {"ctr": 2.0}
    (tmp_path / "2026-11-04" / "summary.json").write_text("{not json")
    assert previous_durations(tmp_path, dt.date(2026, 11, 5)) == {}


def test_rendered_tile_round_trip_and_matching(tmp_path: Path) -> None:
    """Saved and loaded unchanged; it matches only its own tile and parameters (after JSON)."""
    params = {"window": "24h", "filters": {"region": ("eu",)}, "buckets": None}
    r = RenderedTile("ctr", {"tile": "ctr", "status": "warn", "headline": {"x": 1}, "summary": "s"},
                     ({"text/html": "<b>x</b>"}, {"image/svg+xml": "<svg></svg>"}), params)
    path = r.save(tmp_path / "ctr.json")
    back = RenderedTile.load(path)
    assert back is not None and back.outputs == r.outputs and back.sidecar() == r.sidecar()
    assert back.status == "warn" and back.headline == {"x": 1} and back.summary == "s"
    assert load_matching(path, "ctr", {"window": "24h", "filters": {"region": ["eu"]}, "buckets": None})
    assert load_matching(path, "ctr", {**params, "window": "7d"}) is None
    assert load_matching(path, "lift", params) is None
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    assert RenderedTile.load(tmp_path / "other.json") is None
    assert RenderedTile.load(tmp_path / "missing.json") is None
    r.save_sidecar(tmp_path / "sidecar.json")
    assert json.loads((tmp_path / "sidecar.json").read_text())["status"] == "warn"


def test_run_tile_uses_a_matching_rendering_and_computes_otherwise(tmp_path: Path) -> None:
    """A matching rendering is returned without reading any data; a mismatch computes (and here
    fails on the empty warehouse, which proves it did not use the file)."""
    from expkit.errors import ExpkitError

    args = {"event_date": "2026-11-14", "window": "24h", "slice": "bucket", "filters": {}, "buckets": None,
            "params_file": str(ROOT / "params" / "experiment.yaml"), "warehouse": str(tmp_path / "empty")}
    path = RenderedTile("ctr", {"tile": "ctr", "status": "ok"}, ({"text/html": "hi"},), args).save(tmp_path / "r.json")
    found = run_tile("ctr", result_path=str(path), **args)
    assert isinstance(found, RenderedTile) and found.outputs == ({"text/html": "hi"},)
    with pytest.raises(ExpkitError, match="has no events/ folder"):
        run_tile("ctr", result_path=str(path), **{**args, "window": "7d", "event_date": None})


def test_showing_a_rendering_imports_no_analysis_stack(tmp_path: Path) -> None:
    """What a report kernel runs (import expkit, load the rendering, show it) stays light:
    no pandas, numpy, DuckDB, Altair or statsmodels, which cost a fresh kernel seconds."""
    path = RenderedTile("ctr", {"tile": "ctr", "status": "ok"}, ({"text/html": "hi"},), {}).save(tmp_path / "r.json")
    code = (
        "import sys, expkit\n"
        f"r = expkit.run_tile('ctr', result_path={str(path)!r})\n"
        "r.show()\n"
        "heavy = [m for m in ('pandas', 'numpy', 'duckdb', 'altair', 'statsmodels', 'scipy', 'pyarrow')"
        " if m in sys.modules]\n"
        "print(type(r).__name__, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "RenderedTile []"
