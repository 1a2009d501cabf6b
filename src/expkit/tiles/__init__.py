"""Dashboard tiles: one function per tile, one thin notebook per tile.

Notebooks call :func:`expkit.run_tile` (:mod:`expkit.api`), which validates the parameters
here (:func:`check_params`), gathers the tile's inputs and computes it.

Importing this package is cheap (the tile modules and the analysis stack load on first
use), so a report kernel that only shows a precomputed tile stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from expkit.tiles.base import TileParams, TileResult, resolve_params


def check_params(tile: str, **params: Any) -> TileParams:
    """Validate tile ``tile``'s parameters as :func:`expkit.run_tile` does, without computing it.

    Every check that needs no computation runs here: windows, slices, buckets, the parameters
    file, and the tile's own check (filter values against those the experiment has seen, filter
    columns the tile cannot apply). ``expkit tile`` calls it before a kernel starts, so a bad
    parameter is a one-line error (exit 2) with nothing written. Returns the resolved parameters.
    """
    from expkit.errors import ExpkitError
    from expkit.names import TILE_ARGUMENTS
    from expkit.tiles.base import resolve_params
    from expkit.tiles.registry import TILES

    if tile not in TILES:
        raise ExpkitError(f"unknown tile {tile!r}; choose one of {list(TILES)}")
    unknown = [k for k in params if k not in TILE_ARGUMENTS]
    if unknown:
        raise ExpkitError(f"run_tile({tile!r}): unknown parameter {unknown[0]!r}; tiles take {list(TILE_ARGUMENTS)}")
    spec = TILES[tile]
    p = resolve_params(tile, spec.slices, **params)
    spec.check(p)
    return p


def __getattr__(name: str) -> Any:
    if name in ("TileParams", "TileResult", "resolve_params"):
        from expkit.tiles import base

        return getattr(base, name)
    raise AttributeError(f"module 'expkit.tiles' has no attribute {name!r}")


__all__ = ["TileParams", "TileResult", "check_params", "resolve_params"]
