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


UTC_PROBE = """(async () => {
  await window.expkitChartsReady;
  const centre = (el) => { const r = el.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; };
  return {
    localHourOf1400Utc: new Date(Date.UTC(2026, 10, 14, 14)).getHours(),
    charts: Array.from(document.querySelectorAll('div.expkit-chart svg.marks')).map((svg) => {
      const xAxis = Array.from(svg.querySelectorAll('g.role-axis'))
        .find((g) => (g.getAttribute('aria-label') || '').startsWith('X-axis'));
      // a label's tick gives its position (the end labels are drawn flush with the axis ends)
      const ticks = Array.from(xAxis.querySelectorAll('g.role-axis-tick line')).map((l) => centre(l)[0]);
      return {
        labels: Array.from(xAxis.querySelectorAll('g.role-axis-label text')).map((t, i) => [t.textContent, ticks[i]]),
        points: Array.from(svg.querySelectorAll('g.mark-symbol path')).map(centre),
      };
    }),
  };
})()"""
"""Each chart's x-axis labels (text, x of its tick) and drawn points (x, y centres), in page pixels."""


@pytest.fixture(scope="module")
def browser_new_york() -> Iterator[Browser]:
    b = Browser(tz="America/New_York")
    try:
        yield b
    finally:
        b.close()


def _time_charts_page(tmp_path) -> object:
    """A tile page with two real expkit charts: an hourly series with a spike at 14:00 UTC (times
    tz-aware, as the health tiles make them) and a daily series (naive dates, as the timeline's)."""
    import nbformat
    import numpy as np
    import pandas as pd

    from expkit.charts import DAY_AXIS, bands_chart, chart_bundle, series_chart
    from expkit.report.html import PageInfo, write_tile_page

    hours = pd.DataFrame({"time": pd.date_range("2026-11-14", periods=24, freq="h", tz="UTC"),
                          "p95 ms": np.where(np.arange(24) == 14, 800.0, 40.0)})
    days = pd.DataFrame({"day": pd.to_datetime(["2026-11-12", "2026-11-13", "2026-11-14"]),
                         "ctr": [0.03, 0.031, 0.029], "low": [0.028, 0.029, 0.027], "high": [0.032, 0.033, 0.031]})
    charts = [series_chart(hours, "time", "p95 ms", title="latency"),
              bands_chart(days, "day", "ctr", bands=[("low", "high")], x_axis=DAY_AXIS, title="ctr by day")]
    cell = nbformat.v4.new_code_cell("result.show()")
    cell.outputs = [nbformat.v4.new_output("display_data", data=chart_bundle(c, svg=False)) for c in charts]
    nb = nbformat.v4.new_notebook(cells=[cell])
    page = tmp_path / "utc.html"
    write_tile_page(nb, PageInfo("latency", "Latency", "health", "breach", "2026-11-14"), page)
    return page


def _nearest(points: list[list[float]], x: float) -> tuple[int, float]:
    """Index (in x order) of the point nearest to ``x`` and its distance in pixels."""
    xs = sorted(p[0] for p in points)
    i = min(range(len(xs)), key=lambda k: abs(xs[k] - x))
    return i, abs(xs[i] - x)


def test_time_axes_are_utc_in_a_new_york_browser(browser_new_york: Browser, tmp_path) -> None:
    """In a browser whose time zone is New York, a 14:00 UTC spike sits at the tick labelled
    02 PM (not 09 AM) and each day's point at its own date: axes say UTC like the pages do."""
    visit, dom = browser_new_york.visit(_time_charts_page(tmp_path), probe=UTC_PROBE)
    _assert_clean(visit)
    assert isinstance(dom, dict) and "charts" in dom, dom
    assert dom["localHourOf1400Utc"] == 9, "the browser must really run in New York time"
    hourly, daily = dom["charts"]
    assert len(hourly["points"]) == 24 and len(daily["points"]) == 3
    spike = min(range(24), key=lambda k: hourly["points"][k][1])  # points are drawn in data order
    assert spike == 14
    clock = [(text, x) for text, x in hourly["labels"] if len(text) == 5 and text[3:] in ("AM", "PM")]
    assert len(clock) >= 4, hourly["labels"]
    for text, x in clock:  # e.g. "03 PM": the tick must sit on the 15:00 UTC point
        hour = int(text[:2]) % 12 + (12 if text.endswith("PM") else 0)
        index, gap = _nearest(hourly["points"], x)
        assert (index, text) == (hour, text) and gap < 2, (text, index, gap)
    assert any(text == "12 PM" for text, _ in clock)
    spike_x = hourly["points"][14][0]
    at_spike = min(clock, key=lambda item: abs(item[1] - spike_x))
    assert at_spike[0] == "02 PM" and abs(at_spike[1] - spike_x) < 2, at_spike
    assert [text for text, _ in sorted(daily["labels"], key=lambda item: item[1])] == ["Nov 12", "Nov 13", "Nov 14"]
    for text, x in daily["labels"]:
        index, gap = _nearest(daily["points"], x)
        assert f"Nov {12 + index}" == text and gap < 2, (text, index, gap)
