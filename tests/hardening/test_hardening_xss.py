"""Data values carrying HTML or script are shown as text on every report page, never run.

Genre, provider and region values of a synthetic warehouse are rewritten to markup, the real
``expkit daily`` runs, ad-hoc tile pages slice by those columns, and headless Chromium opens
every page: no script runs, no dialog opens, nothing is fetched, and the values read as text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hardening_support import END, PARAMS, Cli, build_warehouse, rewrite
from report_browser import CHROMIUM, Browser

from expkit.config import load_experiment
from expkit.rollup import build_range

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs chromium")]

HOSTILE = {
    "genre": "<script>alert(1)</script>",
    "provider": "<img src=x onerror=alert(2)>",
    "region": '"><img src=x onerror=alert(3)>',
}
# Ad-hoc pages that show each column's values (run after the daily report, into adhoc/, one
# folder per tile and parameters).
ADHOC = [("ctr", "genre"), ("save_rate", "provider"), ("allocation", "region"), ("latency", "region")]


def _poison(table: pa.Table) -> pa.Table:
    """Replace the first value (in sort order) of each hostile column by its markup."""
    for col, evil in HOSTILE.items():
        if col in table.column_names:
            first = pc.min_max(table[col])["min"]
            i = table.schema.get_field_index(col)
            table = table.set_column(i, col, pc.if_else(pc.equal(table[col], first), evil, table[col]))
    return table


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("xss")
    wh = build_warehouse(root / "wh")
    for f in (wh / "events").rglob("*.parquet"):
        if f.parts[-3] in ("requests", "impressions"):
            rewrite(f, _poison)
    build_range(wh, END.replace(day=END.day - 1), END, load_experiment(PARAMS))
    return root


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()


def test_every_page_shows_markup_as_text(report: Path, cli: Cli, browser: Browser) -> None:
    wh, out = report / "wh", report / "reports"
    code, _, err = cli("daily", "--warehouse", wh, "--date", END.isoformat(), "--out", out, "--workers", "2",
                       "--quiet")
    assert code in (0, 1), err
    for tile, column in ADHOC:
        code, _, err = cli("tile", tile, "--warehouse", wh, "--date", END.isoformat(), "--out", out,
                           "-p", f"slice={column}", "--quiet")
        assert code == 0, err
    pages = sorted((out / END.isoformat()).rglob("*.html")) + sorted((out / "adhoc").rglob("*.html"))
    assert len(pages) >= 16 + 1  # index, one page per tile, the ad-hoc pages
    shown = set()
    for page in pages:
        visit, dom = browser.visit(page)
        assert visit.dialogs == [] and visit.exceptions == [], page
        assert all(u == page.resolve().as_uri() or u.startswith("data:") for u in visit.requests), visit.requests
        # the only scripts: the chart specs (JSON), the chart library and the script drawing them
        charts = len(dom["charts"])
        assert dom["expkitScripts"] == (["expkit-chart-spec"] * charts + ["chart-library", "draw-charts"]
                                        if charts else []), page
        assert set(dom["charts"]) <= {"drawn"}, page
        shown |= {col for col, evil in HOSTILE.items() if evil in dom["text"]}
    assert shown == set(HOSTILE)  # each value was on some page, as text
