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
    without_compute = replace(HEALTH_TILES[0], compute=None)
    with pytest.raises(ExpkitError, match="'latency' of expkit.tiles.health has no compute function"):
        ordered_tiles([without_compute, *HEALTH_TILES[1:]], OUTCOME_TILES, ids)


def test_one_list_of_tile_parameters() -> None:
    """The notebooks' parameters cell, run_tile's arguments, resolve_params' signature and
    `expkit tile -p` all come from expkit.names.TILE_NOTEBOOK_PARAMETERS."""
    import inspect

    from expkit.names import TILE_ARGUMENTS, TILE_NOTEBOOK_PARAMETERS, TILE_PARAMETERS
    from expkit.tiles.base import resolve_params
    from expkit.tiles.registry import TILES

    signature = list(inspect.signature(resolve_params).parameters)
    assert signature[:2] == ["tile", "supported_slices"] and tuple(signature[2:]) == TILE_ARGUMENTS
    assert set(TILE_PARAMETERS) < set(TILE_ARGUMENTS)
    names = [p.name for p in TILE_NOTEBOOK_PARAMETERS]
    for tile in TILES.values():
        import nbformat

        cells = nbformat.read(tile.notebook, as_version=4).cells
        params = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
        assert [line.split(" = ")[0] for line in params.source.splitlines()[1:]] == names, tile.id


def test_a_misspelt_tile_parameter_is_named_with_the_ones_tiles_take() -> None:
    """``run_tile("ctr", windw="7d")`` raised a TypeError about an internal function; it names the
    parameter and the list, before anything is read."""
    import expkit
    from expkit.errors import ExpkitError

    for tile, key in (("ctr", "windw"), ("lift", "metrics")):
        with pytest.raises(ExpkitError, match=rf"run_tile\({tile!r}\): unknown parameter '{key}'; tiles take \["
                                              r"'event_date', 'window'"):
            expkit.run_tile(tile, warehouse="/nonexistent", **{key: "x"})
