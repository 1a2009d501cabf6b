"""Show a :class:`~expkit.tiles.base.TileResult` in a notebook: headline, notes, charts, table."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from expkit.charts import STATUS_COLORS, enable_offline

if TYPE_CHECKING:
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


def show_result(result: TileResult) -> None:
    from IPython.display import HTML, display

    enable_offline()
    display(HTML(headline_html(result)))
    for chart in result.charts:
        display(chart)
    if not result.table.empty:
        display(HTML(result.table.to_html(index=False, escape=True, float_format=lambda v: f"{v:.6g}")))
