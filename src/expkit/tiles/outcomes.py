"""The outcome tiles (spec §3 outcomes, §5): CTR proxy, Recall@K, session depth, save rate,
lift vs control, traffic allocation, experiment timeline."""

from __future__ import annotations

from expkit.tiles.ratio import RATIO_METRICS, ratio_tile
from expkit.tiles.registry import Tile


def _ratio(metric: str) -> Tile:
    m = RATIO_METRICS[metric]
    return Tile(metric, "outcomes", m.title, m.slices, lambda p: ratio_tile(p, m))


OUTCOME_TILES: list[Tile] = [_ratio("ctr"), _ratio("recall"), _ratio("session_depth"), _ratio("save_rate")]
