"""Helpers shared by tiles: the no-data result and the data as-of time."""

from __future__ import annotations

from expkit.readers import read_bins
from expkit.tiles.base import TileParams, TileResult
from expkit.warehouse import ms_to_iso


def data_as_of(p: TileParams) -> str | None:
    """ISO time of the newest ingested event of the report date (from ``ingest_bins``)."""
    df = read_bins(p.warehouse, "ingest_bins", [p.event_date], select="max(max_ingest_ms) AS t")
    if df.empty or df["t"].isna().all():
        return None
    return ms_to_iso(int(df["t"].iloc[0]))


def no_data_result(p: TileParams, tile: str, section: str, title: str, why: str) -> TileResult:
    """An explicit "no data" state (never a zero)."""
    return TileResult(
        tile=p.tile, section=section, title=title, status="no_data",
        headline={"no_data": True, "reason": why}, summary=f"No data: {why}",
        params=p.describe(), as_of=data_as_of(p), experiment_id=p.config.experiment_id,
    )
