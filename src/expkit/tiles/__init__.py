"""Dashboard tiles: one function per tile, one thin notebook per tile.

Importing this package is cheap (the tile modules and the analysis stack load on first
use), so a report kernel that only shows a precomputed tile stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from expkit.tiles.base import TileParams, TileResult, resolve_params
    from expkit.tiles.rendered import RenderedTile


def run_tile(tile: str, result_path: str | None = None, **params: Any) -> TileResult | RenderedTile:
    """Validate ``params`` and compute tile ``tile``; what every tile notebook calls.

    Parameters are those of the notebooks' parameters cell: ``event_date``, ``window``,
    ``slice``, ``filters``, ``buckets``, ``params_file``, ``warehouse``.

    ``result_path`` (set by the daily report) names a rendering of this tile saved by the
    report's own process (:class:`~expkit.tiles.rendered.RenderedTile`); when it exists and
    was computed with exactly these parameters it is returned instead of computing again.
    Either result has ``save_sidecar``, ``show``, ``status``, ``headline`` and ``summary``.
    """
    if result_path:
        from expkit.tiles.rendered import load_matching

        found = load_matching(result_path, tile, params)
        if found is not None:
            return found
    from expkit.tiles.registry import TILES

    return TILES[tile].compute(check_params(tile, **params))


def check_params(tile: str, **params: Any) -> TileParams:
    """Validate tile ``tile``'s parameters as :func:`run_tile` does, without computing it.

    Every check that needs no computation runs here: windows, slices, buckets, the parameters
    file, and the tile's own check (filter values against those the experiment has seen, filter
    columns the tile cannot apply). ``expkit tile`` calls it before a kernel starts, so a bad
    parameter is a one-line error (exit 2) with nothing written. Returns the resolved parameters.
    """
    from expkit.errors import ExpkitError
    from expkit.tiles.base import resolve_params
    from expkit.tiles.registry import TILES

    if tile not in TILES:
        raise ExpkitError(f"unknown tile {tile!r}; choose one of {list(TILES)}")
    spec = TILES[tile]
    p = resolve_params(tile, spec.slices, **params)
    spec.check(p)
    return p


def __getattr__(name: str) -> Any:
    if name in ("TileParams", "TileResult", "resolve_params"):
        from expkit.tiles import base

        return getattr(base, name)
    raise AttributeError(f"module 'expkit.tiles' has no attribute {name!r}")


__all__ = ["TileParams", "TileResult", "check_params", "resolve_params", "run_tile"]
