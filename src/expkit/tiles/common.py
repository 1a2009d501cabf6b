"""Helpers shared by tiles: the no-data result, the result of a typed compute step, the data as-of time
and the capping of a metric."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from expkit.readers import ingest_watermark, metric_caps
from expkit.series import memo
from expkit.tiles.base import SHOWN_ONLY, TileParams, TileResult, headline_of
from expkit.warehouse import ms_to_iso


def data_as_of(p: TileParams) -> str | None:
    """ISO time of the newest ingested event of the report date (from ``ingest_bins``)."""
    newest = memo(("ingest_watermark", str(p.warehouse.root), p.event_date.isoformat()),
                  lambda: ingest_watermark(p.warehouse, p.event_date))
    return None if newest is None else ms_to_iso(newest)


def over_window(window: str) -> str:
    """How a card names the window its numbers cover (``over 24h``), as the health cards do."""
    return f"over {window}"


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


@dataclass(frozen=True)
class MetricCap:
    """How a capped metric was capped over the tile's window (docs/metrics.md, "Capping per-user values").

    Its headline (:func:`~expkit.tiles.base.headline_of`, summary.json) is ``value``,
    ``quantile``, ``capped_users`` and ``text``.

    Attributes:
        metric: the metric id.
        title: its title.
        value: the threshold each user's numerator was capped at.
        quantile: the catalogue's quantile level (None: a fixed value).
        how: how the threshold was chosen (``99.9th percentile``, ``fixed value``).
        capped_users: users of the window (every arm) above the threshold.
        window: the window.
        text: ``capped at 41 (99.9th percentile)`` (set from the others).

    >>> MetricCap("plays", "Plays", 41.0, 0.999, "99.9th percentile", 3, "7d").text
    'capped at 41 (99.9th percentile)'
    """

    metric: str = field(metadata=SHOWN_ONLY)
    title: str = field(metadata=SHOWN_ONLY)
    value: float
    quantile: float | None
    how: str = field(metadata=SHOWN_ONLY)
    capped_users: int
    window: str = field(metadata=SHOWN_ONLY)
    text: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", f"capped at {self.value:,.6g} ({self.how})")

    def note(self) -> str:
        """The tile's line.

        >>> MetricCap("plays", "Plays per user", 41.0, 0.999, "99.9th percentile", 3, "7d").note()
        'Plays per user: per-user values capped at 41 (99.9th percentile) over the 7d window; 3 user(s) above it'
        """
        return f"{self.title}: per-user values {self.text} over the {self.window} window; " \
               f"{self.capped_users:,} user(s) above it"

    def to_dict(self) -> dict[str, Any]:
        """The headline entry (summary.json): ``value``, ``quantile``, ``capped_users``, ``text``.

        >>> MetricCap("plays", "Plays", 41.0, None, "fixed value", 3, "7d").to_dict()
        {'value': 41.0, 'quantile': None, 'capped_users': 3, 'text': 'capped at 41 (fixed value)'}
        """
        return headline_of(self)


def capped_metrics(p: TileParams, metrics: Sequence[str]) -> dict[str, MetricCap]:
    """The capped ones of ``metrics`` with their thresholds over the tile's window (none: empty)."""
    cat = p.config.catalogue
    out = {}
    for metric, applied in metric_caps(p, metrics).items():
        cap = cat[metric].cap
        assert cap is not None
        out[metric] = MetricCap(metric, cat[metric].title, applied.value, cap.quantile, cap.describe(),
                                applied.capped_users, p.window)
    return out
