"""Helpers shared by tiles: the no-data result and the data as-of time."""

from __future__ import annotations

from expkit.readers import ingest_watermark
from expkit.series import memo
from expkit.tiles.base import TileParams, TileResult
from expkit.warehouse import ms_to_iso


def data_as_of(p: TileParams) -> str | None:
    """ISO time of the newest ingested event of the report date (from ``ingest_bins``)."""
    newest = memo(("ingest_watermark", str(p.warehouse.root), p.event_date.isoformat()),
                  lambda: ingest_watermark(p.warehouse, p.event_date))
    return None if newest is None else ms_to_iso(newest)


def no_data_result(p: TileParams, tile: str, section: str, title: str, why: str) -> TileResult:
    """An explicit "no data" state (never a zero); an outcome tile dated before the experiment's
    start says so, whatever ``why`` (its windows are empty by definition)."""
    start = p.config.start_date
    if section == "outcomes" and start is not None and p.event_date < start:
        why = f"{p.event_date} is before the experiment's start ({start}): outcome windows begin on {start}"
    return TileResult(
        tile=p.tile, section=section, title=title, status="no_data",
        headline={"no_data": True, "reason": why}, summary=f"No data: {why}",
        params=p.describe(), as_of=data_as_of(p), experiment_id=p.config.experiment_id,
    )
