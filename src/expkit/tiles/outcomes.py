"""The outcome tiles (spec §3, §5): CTR proxy, Recall@K, session depth, save rate,
lift vs control, traffic allocation, experiment timeline.

Every outcome tile first checks its filter values against the values the experiment has seen
(a typo or a stray quote is an error naming the known values, not an empty tile).
"""

from __future__ import annotations

from collections.abc import Callable

from expkit.errors import ExpkitError
from expkit.readers import slice_values
from expkit.tiles.allocation import ALLOCATION_SLICES, allocation_tile
from expkit.tiles.base import TileParams, TileResult
from expkit.tiles.lift import LIFT_SLICES, lift_tile
from expkit.tiles.ratio import RATIO_METRICS, ratio_tile
from expkit.tiles.spec import Tile
from expkit.tiles.timeline import TIMELINE_SLICES, timeline_tile


def check_filter_values(p: TileParams) -> None:
    """Raise :class:`ExpkitError` when a filter value never occurs in the experiment up to ``event_date``.

    Without a rollup for the day nothing is checked (the tile then reports no data).
    """
    for column, values in p.filters.items():
        known = slice_values(p, column)
        unknown = [v for v in values if v not in known]
        if known and unknown:
            raise ExpkitError(
                f"parameter filters: {column} value {unknown[0]!r} does not occur in experiment "
                f"{p.config.experiment_id} up to {p.event_date}; known values: {known}"
            )


def _checked(compute: Callable[[TileParams], TileResult]) -> Callable[[TileParams], TileResult]:
    def run(p: TileParams) -> TileResult:
        check_filter_values(p)
        return compute(p)

    return run


def _ratio(metric: str) -> Tile:
    m = RATIO_METRICS[metric]
    return Tile(metric, "outcomes", m.title, m.slices, _checked(lambda p: ratio_tile(p, m)))


OUTCOME_TILES: list[Tile] = [
    _ratio("ctr"),
    _ratio("recall"),
    _ratio("session_depth"),
    _ratio("save_rate"),
    Tile("lift", "outcomes", "Lift vs control", LIFT_SLICES, _checked(lift_tile)),
    Tile("allocation", "outcomes", "Traffic allocation", ALLOCATION_SLICES, _checked(allocation_tile)),
    Tile("timeline", "outcomes", "Experiment timeline", TIMELINE_SLICES, _checked(timeline_tile)),
]
