"""A pipeline that stopped landing files before midnight: the live tier keeps evaluating the
alert rules on the next day (which has no event file at all), so ``data_stale`` fires, also for
a live tier started only after midnight, instead of showing no alert."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from expkit.alerts.state import AlertStore
from expkit.live import tick
from expkit.synth.stream import stream
from expkit.warehouse import Warehouse

from .conftest import DAY, PARAMS, SEED

NEXT = DAY + dt.timedelta(days=1)


def _ms(day: dt.date, hour: int, minute: int = 0) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.timezone.utc).timestamp() * 1000)


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A streamed day whose files stop landing at 14:00."""
    root = tmp_path_factory.mktemp("stopped")
    stream(root, f"{DAY}T13:00", speed=1e9, users=300, seed=SEED, until=f"{DAY}T14:00")
    return root


def _copy(src: Path, dst: Path) -> Warehouse:
    import shutil

    shutil.copytree(src, dst)
    return Warehouse.open(dst)


def _stale_tables(wh: Warehouse) -> set[str]:
    return {a.labels.get("table", "") for a in AlertStore(wh).load().active.values()
            if a.rule == "data_stale" and a.state == "firing"}


def test_started_after_midnight_without_new_files_fires_data_stale(stopped: Path, tmp_path: Path) -> None:
    wh = _copy(stopped, tmp_path / "wh")
    t = tick(wh, tmp_path / "page", PARAMS, now_ms=_ms(NEXT, 1), page=False)
    # the catch-up hour 00:00-01:00 of a day without any event file was evaluated
    assert t.monitor.evaluated.get("5m", (None, None))[1] == f"{NEXT}T00:55:00Z", t.monitor.evaluated
    assert {"requests", "impressions"} <= _stale_tables(wh)


def test_evaluation_goes_on_past_midnight(stopped: Path, tmp_path: Path) -> None:
    wh = _copy(stopped, tmp_path / "wh")
    tick(wh, tmp_path / "page", PARAMS, now_ms=_ms(DAY, 14, 30), page=False)
    t = tick(wh, tmp_path / "page", PARAMS, now_ms=_ms(NEXT, 0, 30), page=False)
    assert t.monitor.evaluated["5m"][1] == f"{NEXT}T00:25:00Z", t.monitor.evaluated
    assert "requests" in _stale_tables(wh)


def test_a_broken_file_is_shown_on_the_page_and_alerts_stay_honest(stopped: Path, tmp_path: Path) -> None:
    """A landed file without a required column: the rollups refuse it, and the update still writes
    the page with the one-line error and how far the alerts were evaluated (instead of no page,
    which the browser only reports as stale); ``--once`` exits 2 with that line."""
    import subprocess
    import sys

    import pyarrow.parquet as pq

    wh = _copy(stopped, tmp_path / "wh")
    later = [f for f in (wh.root / "events").glob(f"*/event_date={DAY}/live-1[3-9][0-9][0-9].parquet")
             if f.name > "live-1340.parquet"]  # land after 13:40
    held = tmp_path / "held"
    for f in later:
        (held / f.parent.relative_to(wh.root)).mkdir(parents=True, exist_ok=True)
        f.rename(held / f.relative_to(wh.root))
    tick(wh, tmp_path / "page", PARAMS, now_ms=_ms(DAY, 13, 40), page=False)
    for f in later:
        (held / f.relative_to(wh.root)).rename(f)
    bad = min(f for f in later if f.parent.parent.name == "requests")
    pq.write_table(pq.read_table(bad).drop_columns(["latency_ms"]), bad)
    t = tick(wh, tmp_path / "page", PARAMS, now_ms=_ms(DAY, 14, 0))
    assert t.error is not None and bad.name in t.error and "latency_ms" in t.error
    page = t.page.read_text()
    assert 'id="update-error"' in page and bad.name in page
    assert f"alerts evaluated up to {DAY}T13:35:00Z" in page  # not past the refused file's minute
    assert f'data-now-ms="{_ms(DAY, 14, 0)}"' in page
    run = subprocess.run([sys.executable, "-m", "expkit.cli", "live", "--warehouse", str(wh.root), "--out",
                          str(tmp_path / "cli"), "--once", "--now", f"{DAY}T14:01Z", "--params", str(PARAMS)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and bad.name in lines[0] and "latency_ms" in lines[0]
    assert 'id="update-error"' in (tmp_path / "cli" / "index.html").read_text()


def test_an_experiment_id_absent_from_the_data_is_said_on_the_page(stopped: Path, tmp_path: Path) -> None:
    """A parameters file whose experiment_id the requests do not carry: every tile would say "no
    requests" and no health alert could fire; the page says why, in one line, at the top."""
    import html
    import shutil

    params = tmp_path / "params" / "experiment.yaml"
    params.parent.mkdir()
    params.write_text(PARAMS.read_text().replace("experiment_id: rec_ranker_v2", "experiment_id: rec_ranker_v3"))
    for name in ("alerts.yaml", "metrics.yaml"):
        shutil.copy(PARAMS.parent / name, params.parent / name)
    wh = _copy(stopped, tmp_path / "wh")
    page = html.unescape(tick(wh, tmp_path / "page", params, now_ms=_ms(DAY, 13, 50)).page.read_text())
    assert 'id="experiment-notice"' in page
    assert "experiment_id 'rec_ranker_v3'" in page and "experiments found: rec_ranker_v2" in page
    ok = tick(wh, tmp_path / "ok", PARAMS, now_ms=_ms(DAY, 13, 51)).page.read_text()
    assert 'id="experiment-notice"' not in ok


def test_freshness_tile_breaches_when_nothing_landed_in_its_window(stopped: Path, tmp_path: Path) -> None:
    """Files stopped landing at 14:00; at 15:30 the last hour holds no ingest row. That silence is
    the freshness finding: the tile breaches with the staleness (it said "No data ... run 'expkit
    rollup'", grey, as if nothing were wrong)."""
    wh = _copy(stopped, tmp_path / "wh")
    cells = tick(wh, tmp_path / "page", PARAMS, now_ms=_ms(DAY, 15, 30)).page.read_text()
    cell = cells[cells.index('data-tile="freshness" data-window="1h"'):]
    cell = cell[:cell.index("</td>")]
    assert 'data-status="breach"' in cell, cell[:400]
    assert "no rows landed" in cell and "rollup" not in cell, cell[:400]
