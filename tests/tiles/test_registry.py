"""The tile registry (expkit.tiles.registry)."""

from __future__ import annotations

import pytest


def test_the_registry_refuses_a_tile_registered_in_one_place_only() -> None:
    """A tile function without its id in expkit.names, or an id without its tile, is an error
    naming both places, never a tile silently left out of the report."""
    from dataclasses import replace

    from expkit.errors import ExpkitError
    from expkit.tiles.health import HEALTH_TILES
    from expkit.tiles.outcomes import OUTCOME_TILES
    from expkit.tiles.registry import ordered_tiles

    ids = ["ctr", "recall", "session_depth", "save_rate"]
    assert list(ordered_tiles(HEALTH_TILES, OUTCOME_TILES, ids))[:9] == [t.id for t in HEALTH_TILES] + ["readout"]
    with pytest.raises(ExpkitError, match="'anomaly' is a health tile id .* without a tile in expkit.tiles.health"):
        ordered_tiles(HEALTH_TILES[:-1], OUTCOME_TILES, ids)
    stray = replace(OUTCOME_TILES[0], id="mystery")
    with pytest.raises(ExpkitError, match="'mystery' is a tile of expkit.tiles.outcomes but not an? outcome tile id"):
        ordered_tiles(HEALTH_TILES, [*OUTCOME_TILES, stray], ids)
    with pytest.raises(ExpkitError, match="'lift' is registered twice"):
        ordered_tiles(HEALTH_TILES, [*OUTCOME_TILES, next(t for t in OUTCOME_TILES if t.id == "lift")], ids)
    # a catalogue metric with a tile page is welcome, after the shipped metric tiles
    extra = replace(OUTCOME_TILES[1], id="top3_ctr")
    order = list(ordered_tiles(HEALTH_TILES, [*OUTCOME_TILES, extra], [*ids, "top3_ctr"]))
    assert order[order.index("readout"):order.index("lift")] == ["readout", *ids, "top3_ctr"]
