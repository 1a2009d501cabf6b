"""``expkit live`` and ``expkit daily`` on one warehouse at the same time: the daily report of the
day before has the same health numbers as a daily run alone, each live page the same numbers as
live alone or live after the daily job (as if run one after the other), no file is partial and
neither reports a lock error.

Both take the rollup lock for their writes (the daily rebuild of the day before, the live
update of the day before and of today); nothing shares a database file (every DuckDB
connection is in memory).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from expkit.synth.stream import stream
from expkit.tiles.health import HEALTH_TILES

from .conftest import DAY, PARAMS, SEED

EXPKIT = [sys.executable, "-c", "import sys; from expkit.cli import main; sys.exit(main())"]
USERS = 400
BEFORE = DAY - dt.timedelta(days=1)
TICKS = [f"{DAY}T00:{m:02d}Z" for m in (40, 45, 50, 55)]
"""The simulated times of the ``live --once`` updates (the stream has landed up to 01:00)."""


def _live_once(root: Path, out: Path, now: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*EXPKIT, "live", "--warehouse", str(root), "--out", str(out), "--once", "--now", now,
                             "--params", str(PARAMS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _daily(root: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*EXPKIT, "daily", "--warehouse", str(root), "--out", str(out), "--date", str(BEFORE),
                             "--params", str(PARAMS), "--quiet", "--no-notify", "--lock-timeout", "600"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(proc: subprocess.Popen[str], what: str, timeout: float = 1800) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{what} failed ({proc.returncode}): {err[-2000:]}"
    assert "lock" not in err.lower(), f"{what}: {err[-2000:]}"
    return out


def _page_numbers(page: Path) -> dict[str, str]:
    """The parts of a live page computed from the data: the tiles and the freshness table."""
    text = page.read_text(encoding="utf-8")
    assert text.rstrip().endswith("</html>"), f"{page} is not a whole page"
    return {name: re.search(rf'<table id="{name}">.*?</table>', text, re.S).group(0)  # type: ignore[union-attr]
            for name in ("tiles", "freshness")}


def _health_numbers(report: Path) -> dict[str, Any]:
    summary = json.loads((report / str(BEFORE) / "summary.json").read_text(encoding="utf-8"))
    ids = {t.id for t in HEALTH_TILES}
    tiles = {k: (v.get("status"), v.get("headline")) for k, v in summary["tiles"].items() if k.split("@")[0] in ids}
    assert tiles, "the daily report has no health tile"
    return tiles


@pytest.mark.slow
def test_live_and_daily_at_once_give_what_each_gives_alone(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    stream(root, f"{DAY}T00:00", speed=1e9, users=USERS, seed=SEED, days=2, until=f"{DAY}T01:00")
    alone_live, alone_daily = tmp_path / "alone-live", tmp_path / "alone-daily"
    shutil.copytree(root, alone_live)
    shutil.copytree(root, alone_daily)

    # at once: the daily job of the day before, a long-running live process and live updates
    daily = _daily(root, tmp_path / "reports")
    running = subprocess.Popen([*EXPKIT, "live", "--warehouse", str(root), "--out", str(tmp_path / "running"),
                                "--every", "1", "--now", TICKS[0], "--params", str(PARAMS)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    together = {}
    for now in TICKS:
        out = tmp_path / f"live-{now[11:13]}{now[14:16]}"
        _finished(_live_once(root, out, now), f"live --once --now {now}")
        together[now] = _page_numbers(out / "index.html")
    _finished(daily, "daily")
    running.send_signal(signal.SIGTERM)
    lines = _finished(running, "live --every 1").splitlines()
    assert lines and all("error" not in json.loads(line) for line in lines), lines[-3:]
    _page_numbers(tmp_path / "running" / "index.html")

    # each alone, on copies of the warehouse as it was: live without the daily job, and the
    # daily job, then live (the daily builds the day before's engagement rollup, which the
    # fallback and anomaly tiles of the 24-hour window read: a live update that ran before the
    # daily's rollup shows the first, one after it the second, never anything else)
    _finished(_daily(alone_daily, tmp_path / "reports-alone"), "daily alone")
    assert _health_numbers(tmp_path / "reports") == _health_numbers(tmp_path / "reports-alone")
    for now in TICKS:
        serial = []
        for wh, name in ((alone_live, "alone"), (alone_daily, "after-daily")):
            out = tmp_path / f"{name}-{now[11:13]}{now[14:16]}"
            _finished(_live_once(wh, out, now), f"live --once --now {now} ({name})")
            serial.append(_page_numbers(out / "index.html"))
        assert together[now] in serial, f"the live page of {now} is neither live alone's nor live after daily's"
    for folder in (root, tmp_path / "reports", *tmp_path.glob("live-*")):
        leftovers = [p for p in folder.rglob(".*") if p.is_file() and p.name.endswith(".tmp")]
        assert not leftovers, f"temporary files left behind: {leftovers[:5]}"
