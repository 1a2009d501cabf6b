"""Helpers shared by tiles: the no-data result and the data as-of time."""

from __future__ import annotations

from expkit.readers import ingest_watermark
from expkit.tiles.base import TileParams, TileResult
from expkit.warehouse import ms_to_iso


def data_as_of(p: TileParams) -> str | None:
    """ISO time of the newest ingested event of the report date (from ``ingest_bins``)."""
    newest = ingest_watermark(p.warehouse, p.event_date)
    return None if newest is None else ms_to_iso(newest)


def no_data_result(p: TileParams, tile: str, section: str, title: str, why: str) -> TileResult:
    """An explicit "no data" state (never a zero)."""
    return TileResult(
        tile=p.tile, section=section, title=title, status="no_data",
        headline={"no_data": True, "reason": why}, summary=f"No data: {why}",
        params=p.describe(), as_of=data_as_of(p), experiment_id=p.config.experiment_id,
    )
