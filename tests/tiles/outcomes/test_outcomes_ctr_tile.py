"""The CTR tile end to end: Papermill run of the real notebook for every window, offline HTML,
and an explicit "no data" state for a missing partition."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest

import expkit
from expkit.config import load_experiment
from expkit.report import run_tile_page
from expkit.rollup import build_rollups

REPO = Path(__file__).resolve().parents[3]
PARAMS = REPO / "params" / "experiment.yaml"
END = dt.date(2026, 11, 14)
REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


@pytest.mark.slow
@pytest.mark.parametrize("window", ["1h", "24h", "7d", "30d"])
def test_ctr_notebook_runs_for_every_window(small_wh: Path, tmp_path: Path, window: str) -> None:
    outcome = run_tile_page("ctr", small_wh, END, tmp_path, PARAMS, parameters={"window": window}, timeout=300)
    assert outcome.status == "ok", outcome.error
    sidecar = json.loads((tmp_path / "sidecars" / "ctr.json").read_text())
    assert sidecar["params"]["window"] == window
    arms = sidecar["headline"]["arms"]
    assert set(arms) == {"control", "treatment"}
    for a in arms.values():
        assert a["low"] < a["estimate"] < a["high"]
    page = (tmp_path / outcome.html).read_text()
    assert 'class="expkit-chart-spec"' in page and 'data-expkit="chart-library"' in page and "CTR proxy" in page
    assert not REMOTE.search(page), REMOTE.search(page)
    assert "import expkit" not in page  # no code cells


def test_missing_partition_is_no_data_not_zero(small_wh: Path, tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    shutil.copytree(small_wh, wh)
    shutil.rmtree(wh / "events" / "impressions" / f"event_date={END}")
    build_rollups(wh, END, load_experiment(PARAMS))
    res = expkit.run_tile("ctr", warehouse=wh, event_date=END, window="24h")
    assert res.status == "no_data"
    assert res.headline["no_data"] is True and "no impressions" in res.summary


@pytest.mark.parametrize(("window", "words"), [("24h", "over 24h"), ("7d", "over 7d")])
def test_outcome_cards_say_their_window(small_wh: Path, window: str, words: str) -> None:
    """The index shows the lift card (24h by default) beside the readout (the experiment to date):
    a card's numbers must say which window they are, as the health cards do ("over 24h")."""
    for tile in ("ctr", "lift"):
        res = expkit.run_tile(tile, warehouse=small_wh, event_date=END, window=window, params_file=PARAMS)
        assert res.status != "no_data", res.summary
        assert words in res.summary, (tile, res.summary)


@pytest.mark.slow
def test_a_tile_page_header_says_what_its_card_says(small_wh: Path, tmp_path: Path) -> None:
    """The readout judges the experiment to date and shows a verdict; the lift tile an outcome. Their
    pages' headers said "Window 24h" and "OK"/"Breach" while the cards said the verdict."""
    from expkit.report.index import card_badge

    for tile in ("readout", "lift"):
        outcome = run_tile_page(tile, small_wh, END, tmp_path / tile, PARAMS, timeout=300)
        assert outcome.status != "failed", outcome.error
        label, _tone = card_badge(outcome.status, outcome.headline)
        assert label not in ("OK", "Warn", "Breach"), (tile, label)  # a verdict or an outcome
        page = (tmp_path / tile / outcome.html).read_text()
        h1 = page[page.index("<h1>"):page.index("</h1>")]
        assert f">{label}</span>" in h1, (tile, h1)
        window = re.search(r"<dt>Window</dt><dd>([^<]*)</dd>", page)
        assert window is not None and window.group(1) == outcome.headline["window"], (tile, window)
    assert outcome.headline["window"] == "24h" and json.loads(
        (tmp_path / "readout" / "sidecars" / "readout.json").read_text())["headline"]["window"] == "cum"
