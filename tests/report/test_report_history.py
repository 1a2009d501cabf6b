"""`expkit daily` on a warehouse whose earlier days were never rolled up: it builds the history
its report reads (the numbers then equal those of a fully rolled-up warehouse), or, with
--no-history, says at the top of the index which days are missing and what they feed."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from report_browser import Browser
from report_support import ARTIFACTS, REPO

from expkit import run_tile
from expkit.alerts import evaluate_day
from expkit.cli import main
from expkit.config import load_experiment
from expkit.report.summary import jsonable, normalize_alerts
from expkit.rollup import build_range, build_rollups, manifest_path
from expkit.synth import generate
from expkit.warehouse import Warehouse

pytestmark = pytest.mark.slow

PARAMS = REPO / "params" / "experiment.yaml"
END = dt.date(2026, 11, 14)
DAYS = 9
EARLIER = [END - dt.timedelta(days=i) for i in range(DAYS - 1, 0, -1)]
OUTCOME_TILES = ("ctr", "recall", "session_depth", "save_rate", "lift")
ROLLING_RULES = {"ctr_low", "recall_low", "session_depth_low", "traffic_imbalance"}


@dataclass(frozen=True)
class Run:
    """One `expkit daily` run: exit status, progress lines, its summary and index page."""

    code: int
    progress: list[str]
    summary: dict
    index: Path
    warehouse: Path


def _daily(wh: Path, out: Path, *flags: str) -> Run:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["daily", "--warehouse", str(wh), "--date", END.isoformat(), "--out", str(out),
                     "--params", str(PARAMS), "--workers", "2", *flags])
    day = out / END.isoformat()
    summary = json.loads((day / "summary.json").read_text())
    return Run(code, err.getvalue().splitlines(), summary, day / "index.html", wh)


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``full``: every day rolled up; ``last_a``, ``last_b``: only END rolled up."""
    root = tmp_path_factory.mktemp("history-report")
    config = load_experiment(PARAMS)
    generate(root / "events", days=DAYS, end=END, users=2000, seed=21)
    full = Path(shutil.copytree(root / "events", root / "full"))
    build_range(full, EARLIER[0], END, config)
    build_rollups(root / "events", END, config)
    return {"full": full, **{k: Path(shutil.copytree(root / "events", root / k)) for k in ("last_a", "last_b")}}


@pytest.fixture(scope="module")
def with_history(warehouses: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _daily(warehouses["last_a"], tmp_path_factory.mktemp("reports-history"))


@pytest.fixture(scope="module")
def without_history(warehouses: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _daily(warehouses["last_b"], tmp_path_factory.mktemp("reports-no-history"), "--no-history")


def _headline(tile: str, wh: Path, window: str = "24h") -> dict:
    result = run_tile(tile, event_date=END.isoformat(), warehouse=str(wh), params_file=str(PARAMS), window=window)
    return jsonable(result.sidecar()["headline"])


def test_daily_builds_the_earlier_days_with_progress_lines(with_history: Run) -> None:
    assert with_history.code == 0, with_history.progress[-5:]
    lines = [x.removeprefix("[expkit] ") for x in with_history.progress]
    building = [x for x in lines if x.startswith("history: building ")]
    assert building == [f"history: building {d} ({i}/8)" for i, d in enumerate(EARLIER, 1)]
    assert f"history: rebuilding {END}: its windows read the days just built" in lines
    wh = Warehouse.open(with_history.warehouse)
    assert all(manifest_path(wh, d).is_file() for d in EARLIER)
    history = with_history.summary["history"]
    assert history["missing_days"] == [] and history["affected_tiles"] == [] and history["affected_alerts"] == []
    assert 'id="history-notice"' not in with_history.index.read_text()


def test_report_numbers_equal_a_fully_rolled_up_warehouse(with_history: Run, warehouses: dict[str, Path]) -> None:
    full, built = warehouses["full"], with_history.warehouse
    tiles = with_history.summary["tiles"]
    # the report's own tiles that read earlier days: baselines, a point per experiment day
    for tile in ("anomaly", "volume", "freshness", "timeline", "allocation", "ctr", "lift"):
        shown = dict(tiles[tile]["headline"])
        shown.pop("validation", None)  # the report adds the day's checks to the freshness tile
        assert shown == _headline(tile, full), tile
    assert tiles["anomaly"]["status"] != "no_data"
    # the 7d (and 30d) windows of the outcome tiles
    for tile in OUTCOME_TILES:
        for window in ("7d", "30d"):
            assert _headline(tile, built, window) == _headline(tile, full, window), (tile, window)
    # the alert replay: the 2-day rules see the same days
    reference = normalize_alerts(evaluate_day(full, END, load_experiment(PARAMS), params_file=PARAMS))
    assert with_history.summary["alerts"] == reference


def test_no_history_names_missing_days_tiles_and_alerts(without_history: Run) -> None:
    lines = [x.removeprefix("[expkit] ") for x in without_history.progress]
    assert not any(x.startswith("history: building") for x in lines)
    assert any(x.startswith("history: skipped (--no-history): 8 earlier days not rolled up") for x in lines)
    wh = Warehouse.open(without_history.warehouse)
    assert not any(manifest_path(wh, d).is_file() for d in EARLIER)  # nothing was built
    history = without_history.summary["history"]
    assert history["missing_days"] == [d.isoformat() for d in EARLIER]
    tiles = {t["tile"]: t["parts"] for t in history["affected_tiles"]}
    assert "7-day baseline" in tiles["anomaly"]
    assert "the experiment to date (cum)" in tiles["timeline"]
    assert set(OUTCOME_TILES) <= set(tiles) and all("7d window" in tiles[t] for t in OUTCOME_TILES)
    assert {a["rule"] for a in history["affected_alerts"]} == ROLLING_RULES
    # what the notice warns about: without its baseline days the anomaly tile scores nothing
    assert without_history.summary["tiles"]["anomaly"]["status"] == "no_data"
    html = without_history.index.read_text()
    notice = html.index('id="history-notice"')
    assert notice < html.index("<main>")
    top = html[notice:html.index("</header>")]
    assert all(d.isoformat() in top for d in EARLIER)
    assert all(f"<code>{rule}</code>" in top for rule in ROLLING_RULES)
    assert "anomaly" in top and "timeline" in top


def test_no_history_notice_shows_at_the_top_in_a_browser(without_history: Run, browser: Browser) -> None:
    visit, dom = browser.visit(without_history.index, ARTIFACTS / "index-no-history.png")
    assert all(u.startswith(("file://", "data:")) for u in visit.requests), visit.requests
    assert visit.exceptions == [] and visit.console_errors == []
    text = dom["text"]  # rendered text only: a hidden notice would not be in it
    assert "Missing history" in text
    assert text.index("Missing history") < text.index("Health\n") < text.index("Outcomes\n")
    assert all(d.isoformat() in text[: text.index("Health\n")] for d in EARLIER)
    assert "ctr_low" in text[: text.index("Health\n")]
