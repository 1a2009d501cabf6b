"""Open the report in headless Chromium from file://, with the network unreachable."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from report_browser import CHROMIUM, Browser
from report_support import ARTIFACTS, EVIL

from expkit.report import DailyResult

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason="chromium is not installed"),
]

CHART_TILES = {"latency", "ctr"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()


def _assert_clean(visit) -> None:
    assert all(u.startswith(("file://", "data:")) for u in visit.requests), visit.requests
    assert visit.failed_requests == []
    assert visit.exceptions == []
    assert visit.console_errors == []
    assert visit.dialogs == []


def test_index_in_browser(daily_run: DailyResult, browser: Browser) -> None:
    visit, dom = browser.visit(daily_run.index, ARTIFACTS / "index.png")
    _assert_clean(visit)
    assert dom["scripts"] == 0
    assert EVIL in dom["text"]  # shown as text, not run
    cards = {c["id"]: c for c in dom["cards"]}
    assert {cid.removeprefix("tile-"): c["status"] for cid, c in cards.items()} == {
        t.id: t.status for t in daily_run.tiles.values()
    }
    # each status has its own colour
    colours = {c["status"]: c["border"] for c in cards.values()}
    assert len(set(colours.values())) == len(colours) == 5
    assert "NoSidecar" in cards["tile-recall"]["text"]
    # the alert timeline is an inline SVG with one bar per alert
    assert dom["svgMarks"] and dom["svgMarks"][0] > 10
    links = dom["links"]
    assert "../2026-11-04/index.html" in links
    assert {f"tiles/{t}.html" for t in daily_run.tiles} <= set(links)


@pytest.mark.parametrize("tile_id", ["latency", "errors", "volume", "fallback", "cache", "ctr", "recall", "lift"])
def test_tile_page_in_browser(daily_run: DailyResult, browser: Browser, tile_id: str) -> None:
    page = daily_run.out_dir / "tiles" / f"{tile_id}.html"
    shot = ARTIFACTS / f"tile-{tile_id}.png" if tile_id in ("latency", "fallback") else None
    visit, dom = browser.visit(page, shot)
    _assert_clean(visit)
    assert f"Tile {tile_id}" in dom["title"]
    if tile_id in CHART_TILES:
        # one inline copy of the chart library, the script drawing the charts, one spec per chart
        assert dom["expkitScripts"] == ["expkit-chart-spec"] * 2 + ["chart-library", "draw-charts"]
        assert dom["charts"] == ["drawn", "drawn"]
        assert len(dom["svgMarks"]) == 3, "two charts drawn in the page, one inlined as static SVG"
        assert all(n > 20 for n in dom["svgMarks"])
        assert all(w > 50 and h > 50 for w, h in dom["svgSizes"])
        assert EVIL in dom["text"]  # in the table and the chart axis, as text
    elif not dom["charts"]:
        assert dom["scripts"] == 0, "a page without charts has no script"
    if daily_run.tiles[tile_id].failed:
        assert daily_run.tiles[tile_id].error in dom["text"]
    assert "../index.html" in dom["links"]
