"""One real daily run of the test tiles: outcomes, layout, summary.json, static page checks."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from report_support import ALERTS, DAY, EVIL, PARAMS, tile

from expkit.report import DailyResult, run_tile_page, summary_problems

pytestmark = pytest.mark.slow

MAX_PAGE_BYTES = 1_500_000


class _Refs(HTMLParser):
    """Collects the resource references of script/link/img (and every tag name)."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.tags: list[str] = []
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag in ("script", "link", "img", "iframe", "source", "video", "audio"):
            for name, value in attrs:
                if name in ("src", "href", "srcset") and value:
                    self.refs.append((tag, value))


def pages(result: DailyResult) -> list[Path]:
    return [result.index, *sorted((result.out_dir / "tiles").glob("*.html"))]


def test_every_outcome_and_failure_isolation(daily_run: DailyResult) -> None:
    status = {t.id: t.status for t in daily_run.tiles.values()}
    assert status == {
        "latency": "ok",
        "errors": "breach",
        "volume": "no_data",
        "fallback": "failed",
        "cache": "failed",
        "ctr": "warn",
        "recall": "failed",
        "lift": "failed",
    }
    assert not daily_run.ok
    assert sorted(daily_run.failed_tiles) == ["cache", "fallback", "lift", "recall"]
    errors = {t.id: t.error for t in daily_run.tiles.values() if t.failed}
    assert errors["fallback"] == "ValueError: boom: bad <input> for 2026-11-05"
    assert errors["cache"].startswith("Timeout:") and "4 s" in errors["cache"]
    assert errors["recall"].startswith("NoSidecar:")
    assert errors["lift"].startswith("no notebook ") and "missing.ipynb" in errors["lift"]
    assert "make notebooks" in errors["lift"]  # the fix, in the line the page shows
    for text in errors.values():
        assert "Traceback" not in text and "\n" not in text and len(text) <= 300
    # the time-out is per tile: the slow tile did not hold the others back
    assert daily_run.tiles["cache"].duration_s < 30


def test_layout(daily_run: DailyResult) -> None:
    day = daily_run.out_dir
    assert day == daily_run.index.parent and day.name == DAY.isoformat()
    ids = set(daily_run.tiles)
    assert {p.stem for p in (day / "tiles").glob("*.html")} == ids
    assert {p.stem for p in (day / "notebooks").glob("*.ipynb")} == ids - {"lift"}
    assert not [p for p in day.parent.iterdir() if p.name.startswith((".tmp-", ".old-"))]
    nb = nbformat.read(day / "notebooks" / "latency.ipynb", as_version=4)
    injected = nb.metadata["papermill"]["parameters"]
    assert injected["event_date"] == "2026-11-05"
    assert injected["params_file"].endswith("params/experiment.yaml")
    assert Path(injected["warehouse"]).is_absolute()
    # a timed-out notebook is still kept, saved when it stopped with the cells that ran
    partial = nbformat.read(day / "notebooks" / "cache.ipynb", as_version=4)
    assert [c.execution_count for c in partial.cells][:2] == [1, 2]


def test_summary_json_shape(daily_run: DailyResult) -> None:
    doc = json.loads(daily_run.summary_path.read_text())
    assert summary_problems(doc) == []
    assert doc["date"] == "2026-11-05"
    assert doc["generated_at"].endswith("Z")
    assert doc["code_version"]
    assert doc["params"]["experiment_id"] == "rec_ranker_v2"
    assert doc["ok"] is False
    assert list(doc["tiles"]) == [
        "latency",
        "errors",
        "volume",
        "fallback",
        "cache",
        "ctr",
        "recall",
        "lift",
    ]
    latency = doc["tiles"]["latency"]
    assert latency["status"] == "ok" and latency["error"] is None
    assert latency["html"] == "tiles/latency.html"
    assert latency["headline"]["worst_genre"] == EVIL
    assert latency["as_of"] == "2026-11-05T23:55:00Z"
    assert doc["tiles"]["fallback"]["headline"] == {}
    assert doc["tiles"]["fallback"]["error"].startswith("ValueError")
    for t in doc["tiles"].values():
        assert (daily_run.out_dir / t["html"]).is_file()
    assert [a["rule"] for a in doc["alerts"]] == [a["rule"] for a in ALERTS]
    assert [c["status"] for c in doc["checks"]] == ["pass", "fail"]


def test_pages_are_offline_small_and_escaped(daily_run: DailyResult) -> None:
    for page in pages(daily_run):
        raw = page.read_bytes()
        assert len(raw) <= MAX_PAGE_BYTES, page
        parser = _Refs()
        parser.feed(raw.decode("utf-8"))
        # scripts: none, or the chart specs (JSON data), then one inline copy of the chart
        # library and the script drawing the charts; nothing loaded by src
        specs = [a for a in parser.scripts if a.get("type") == "application/json"]
        code = [a.get("data-expkit") for a in parser.scripts if a.get("type") != "application/json"]
        assert all(a.get("class") == "expkit-chart-spec" for a in specs), page
        assert code == (["chart-library", "draw-charts"] if specs else []), page
        assert not any("src" in a for a in parser.scripts), page
        remote = [r for r in parser.refs if r[1].lower().startswith(("http:", "https:", "//"))]
        assert remote == [], page
        text = raw.decode("utf-8")
        assert EVIL not in text, page
        assert "cdnjs" not in text and "unpkg" not in text and "mathjax" not in text.lower()
    index = daily_run.index.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    assert "ValueError: boom: bad &lt;input&gt; for 2026-11-05" in index


def test_page_header(daily_run: DailyResult) -> None:
    html = (daily_run.out_dir / "tiles" / "latency.html").read_text()
    for needle in (
        "rec_ranker_v2",
        "2026-11-05",
        "24h",
        "2026-11-05T23:55:00Z",
        daily_run.summary["code_version"],
        daily_run.summary["started_at"],
        "Executed notebook",
        "../notebooks/latency.ipynb",
    ):
        assert needle in html, needle
    assert "sidecar_path" not in html
    failed = (daily_run.out_dir / "tiles" / "fallback.html").read_text()
    assert "This tile failed" in failed and "boom: bad &lt;input&gt;" in failed
    assert "<dd>24h</dd>" in failed  # the window comes from the notebook defaults


def test_index_links_previous_day(daily_run: DailyResult) -> None:
    index = daily_run.index.read_text()
    assert 'href="../2026-11-04/index.html"' in index
    prev = (daily_run.out_dir.parent / "2026-11-04" / "index.html").read_text()
    assert 'href="../2026-11-05/index.html"' in prev  # refreshed once this day existed


def test_run_tile_ad_hoc_keeps_the_published_day_intact(tmp_path: Path) -> None:
    day_dir = tmp_path / "reports" / DAY.isoformat()
    (day_dir / "tiles").mkdir(parents=True)
    (day_dir / "summary.json").write_text("{}")
    published = day_dir / "tiles" / "volume.html"
    published.write_text("published page")
    t = tile("volume", "health", "plain.ipynb", status="warn")
    outcome = run_tile_page(t, tmp_path / "wh", DAY, day_dir, PARAMS, parameters={"window": "7d"})
    assert outcome.status == "warn" and outcome.error is None
    assert outcome.html == "adhoc/tiles/volume.html"
    page = (day_dir / outcome.html).read_text()
    assert "7d" in page and 'href="../../index.html"' in page
    assert (day_dir / outcome.notebook).is_file()
    assert published.read_text() == "published page"
