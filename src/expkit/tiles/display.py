"""Render a :class:`~expkit.tiles.base.TileResult` for display: headline, notes, charts, tables.

Everything a tile shows is a list of MIME bundles (HTML, and per chart its Vega-Lite spec with
an optional static SVG; no JavaScript), so the same outputs can be shown live or saved and
shown later (:mod:`expkit.tiles.rendered`).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from expkit.charts import STATUS_COLORS, chart_bundle

if TYPE_CHECKING:
    import pandas as pd

    from expkit.tiles.base import TileResult


def headline_html(result: TileResult) -> str:
    """The headline block: status badge, summary line and notes (all values escaped)."""
    color = STATUS_COLORS.get(result.status, "#757575")
    label = result.status.replace("_", " ").upper()
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    return (
        f'<div class="expkit-headline" data-status="{html.escape(result.status)}">'
        f'<span style="background:{color};color:white;padding:2px 8px;border-radius:4px;'
        f'font-weight:bold">{html.escape(label)}</span> '
        f"<b>{html.escape(result.title)}</b> — {html.escape(result.summary)}"
        + (f"<ul>{notes}</ul>" if notes else "")
        + "</div>"
    )


def table_html(table: pd.DataFrame, title: str | None = None) -> str:
    """A table (values escaped, numbers to 6 significant digits), under an optional bold title."""
    head = f"<p><b>{html.escape(title)}</b></p>" if title else ""
    return head + table.to_html(index=False, escape=True, float_format=lambda v: f"{v:.6g}")


def result_outputs(result: TileResult, svg: bool = True) -> list[dict[str, Any]]:
    """The headline, each chart (:func:`~expkit.charts.chart_bundle`, with a static SVG when
    ``svg``) and the table, as MIME bundles in display order."""
    out: list[dict[str, Any]] = [{"text/html": headline_html(result)}]
    out.extend(chart_bundle(chart, svg=svg) for chart in result.charts)
    if not result.table.empty:
        out.append({"text/html": table_html(result.table)})
    return out
