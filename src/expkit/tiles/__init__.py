"""Dashboard tiles: one function per tile, one thin notebook per tile."""

from __future__ import annotations

from typing import Any

from expkit.errors import ExpkitError
from expkit.tiles.base import TileParams, TileResult, resolve_params


def run_tile(tile: str, **params: Any) -> TileResult:
    """Validate ``params`` and compute tile ``tile``; what every tile notebook calls.

    Parameters are those of the notebooks' parameters cell: ``event_date``, ``window``,
    ``slice``, ``filters``, ``buckets``, ``params_file``, ``warehouse``.
    """
    from expkit.tiles.registry import TILES

    if tile not in TILES:
        raise ExpkitError(f"unknown tile {tile!r}; choose one of {list(TILES)}")
    spec = TILES[tile]
    p = resolve_params(tile, spec.slices, **params)
    return spec.compute(p)


__all__ = ["TileParams", "TileResult", "resolve_params", "run_tile"]
