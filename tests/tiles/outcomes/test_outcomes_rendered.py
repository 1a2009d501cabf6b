"""The daily report computes tiles in its own process and the notebooks show them: what a
notebook shows must be exactly what the tile shows when computed in the notebook itself."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from outcomes_support import END, Built

from expkit import run_tile
from expkit.charts import VEGALITE_MIME
from expkit.report.daily import run_tile_page as report_tile
from expkit.tiles.registry import TILES


@pytest.mark.slow
@pytest.mark.parametrize("tile", ["ctr", "lift", "latency"])
def test_report_notebook_shows_what_the_tile_computes(clean: Built, tile: str, tmp_path: Path) -> None:
    outcome = report_tile(tile, clean.path, END, tmp_path, clean.params_file)
    assert outcome.error is None, outcome.error
    nb = nbformat.read(tmp_path / outcome.notebook, as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "result_path = " in injected.source, "the report hands the notebook its computed tile"
    assert "result_path" not in outcome.params, "an internal parameter, not shown on the page"
    shown = [dict(o["data"]) for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "display_data"]
    live = run_tile(tile, event_date=END.isoformat(), warehouse=str(clean.path), params_file=str(clean.params_file))
    assert shown == live.outputs(svg=False), "the report's pages draw the charts: no SVG in the notebook"
    assert any(VEGALITE_MIME in b for b in shown), "charts shown as Vega-Lite specs"
    assert not any("image/svg+xml" in b for b in shown)
    assert not (tmp_path / ".results").exists(), "the precomputed tiles are not left in the report folder"


@pytest.mark.slow
def test_every_tile_chart_is_valid_vega_lite(clean: Built) -> None:
    """Charts are built and converted without re-validation for speed; here every tile's charts
    are validated against the Vega-Lite schema (Altair's own check)."""
    for tile in TILES:
        result = run_tile(tile, event_date=END.isoformat(), warehouse=str(clean.path),
                          params_file=str(clean.params_file))
        for chart in result.charts:
            chart.to_dict(validate=True)
