"""The outcome tiles (docs/metrics.md, "Outcome metrics"): the readout (the verdict,
docs/readout.md), one per catalogue metric asking for a tile
page (CTR proxy, Recall@K, session depth, save rate in the shipped ``params/metrics.yaml``), lift
vs control, traffic allocation, experiment timeline.

Every outcome tile checks its filter values, before it computes (and, from ``expkit tile``,
before a kernel starts), against the values the experiment has seen (a typo or a stray quote
is an error naming the known values, not an empty tile or a failed page). A filter on an
impression attribute (surface, genre, provider) is refused unless the tile is sliced by that
column: a user has impressions of several values, so it cannot narrow the users compared; sliced
by it, it keeps those rows of the table. The lift tile
refuses a filter on ``bucket``: it always compares every treatment arm with the control
(choose the arms shown with ``buckets``).
"""

from __future__ import annotations

from collections.abc import Callable

from expkit.catalogue import catalogue_for
from expkit.errors import ExpkitError
from expkit.readers import EVENT_ATTRIBUTES, slice_values
from expkit.tiles.allocation import ALLOCATION_SLICES, allocation_tile
from expkit.tiles.arms import ALL_SLICES, USER_SLICES
from expkit.tiles.base import TileParams, TileResult, check_filter_characters
from expkit.tiles.lift import LIFT_SLICES, lift_tile
from expkit.tiles.novelty import check_novelty_params, novelty_tile
from expkit.tiles.ratio import ratio_metric, ratio_tile
from expkit.tiles.readout import readout_tile
from expkit.tiles.spec import Tile
from expkit.tiles.timeline import TIMELINE_SLICES, timeline_tile


def check_filter_values(p: TileParams) -> None:
    """Raise :class:`ExpkitError` when a filter value never occurs in the experiment up to
    ``event_date`` (the message lists the values that do).

    Without a rollup for the day only the characters are checked (the tile then reports no data).
    """
    for column in p.filters:
        if column in EVENT_ATTRIBUTES and column != p.slice:
            raise ExpkitError(
                f"parameter filters: {column} is an attribute of each impression, not of the user (a user has "
                f"impressions of several values), so it cannot narrow the users of tile {p.tile}; slice by it "
                f"(slice={column}, where the tile supports it) to keep those rows of its table, or filter on a "
                "user attribute (cohort, region, client)"
            )
    for column, values in p.filters.items():
        known = slice_values(p, column)
        if not known:
            check_filter_characters({column: values})
        unknown = [v for v in values if v not in known]
        if known and unknown:
            raise ExpkitError(
                f"parameter filters: {column} value {unknown[0]!r} does not occur in experiment "
                f"{p.config.experiment_id} up to {p.event_date}; known values: {known}"
            )


def check_lift_params(p: TileParams) -> None:
    """The lift tile's checks: those of every outcome tile, and no filter on ``bucket``."""
    check_filter_values(p)
    if "bucket" in p.filters:
        raise ExpkitError(
            f"parameter filters: the lift tile compares every treatment arm with the control {p.config.control!r} "
            f"and cannot filter on bucket ({p.filters['bucket']}); choose the arms shown with -p buckets=... "
            "(e.g. buckets=" + ",".join(p.config.treatments[:1] or list(p.config.buckets)) + ") instead"
        )


def _ratio_compute(metric: str) -> Callable[[TileParams], TileResult]:
    def compute(p: TileParams) -> TileResult:
        if metric not in p.config.catalogue:
            raise ExpkitError(f"tile {metric}: the catalogue {p.config.catalogue.source} of experiment "
                              f"{p.config.experiment_id} has no metric {metric!r}")
        return ratio_tile(p, ratio_metric(p.config, metric))

    return compute


def _ratio(metric: str) -> Tile:
    m = catalogue_for(None)[metric]
    slices = ALL_SLICES if m.event_slices else USER_SLICES
    return Tile(metric, "outcomes", m.title, slices, _ratio_compute(metric), check_filter_values)


OUTCOME_TILES: list[Tile] = [
    Tile("readout", "outcomes", "Readout", ("bucket",), readout_tile, check_filter_values),
    *(_ratio(m) for m in catalogue_for(None).tile_ids),
    Tile("lift", "outcomes", "Lift vs control", LIFT_SLICES, lift_tile, check_lift_params),
    Tile("allocation", "outcomes", "Traffic allocation", ALLOCATION_SLICES, allocation_tile, check_filter_values),
    Tile("timeline", "outcomes", "Experiment timeline", TIMELINE_SLICES, timeline_tile, check_filter_values),
    Tile("novelty", "outcomes", "Novelty and primacy", ("bucket",), novelty_tile, check_novelty_params),
]
