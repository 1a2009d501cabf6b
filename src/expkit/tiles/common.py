"""Helpers shared by tiles: the no-data result, the result of a typed compute step, the data as-of time."""

from __future__ import annotations

from typing import Any

import pandas as pd

from expkit.readers import ingest_watermark
from expkit.series import memo
from expkit.tiles.base import TileParams, TileResult, headline_of
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


def typed_result(p: TileParams, section: str, title: str, result: Any, summary: str,
                 table: pd.DataFrame, charts: list[Any]) -> TileResult:
    """The :class:`TileResult` of a tile's typed compute result (a dataclass with ``status`` and
    ``notes``): its headline is :func:`~expkit.tiles.base.headline_of` the result, which it keeps."""
    return TileResult(
        tile=p.tile, section=section, title=title, status=result.status, headline=headline_of(result),
        summary=summary, table=table, charts=charts, params=p.describe(), as_of=data_as_of(p),
        experiment_id=p.config.experiment_id, notes=list(result.notes), result=result,
    )
