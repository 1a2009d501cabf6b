"""The tile list the report layer runs, and how it is passed in.

The registry belongs to :mod:`expkit.tiles.registry` (``TILES``: tile id ->
:class:`~expkit.tiles.spec.Tile`, the one tile class: registered tiles have a compute
function, notebook-only ones, for tests and ad-hoc registries, do not). Every report function takes
the tiles as a parameter and only falls back to that registry when none are given, so
tests and ad-hoc runs can pass their own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from expkit.errors import ExpkitError
from expkit.tiles.spec import Tile

SECTIONS: tuple[str, ...] = ("health", "outcomes")


TilesArg = Mapping[str, Tile] | Iterable[Tile] | None


def prerender_of(tile: Tile) -> Callable[[Mapping[str, Any], Path], None] | None:
    """How the report computes ``tile`` ahead of its notebook (:mod:`expkit.report.compute`):
    a registered tile (it has ``compute``) through :func:`expkit.api.prerender_tile`; ``None``
    for a notebook-only tile, whose notebook then computes it."""
    if tile.compute is None:
        return None
    from expkit.api import prerender_tile

    return functools.partial(prerender_tile, tile.id)


def default_tiles() -> dict[str, Tile]:
    """The project's tile registry (``expkit.tiles.registry.TILES``)."""
    try:
        from expkit.tiles.registry import TILES
    except ImportError as exc:
        raise ExpkitError(
            f"the tile registry expkit.tiles.registry could not be imported ({exc}); "
            "pass the tiles explicitly or reinstall expkit"
        ) from exc
    return dict(TILES)


def _as_list(tiles: TilesArg) -> list[Tile]:
    if tiles is None:
        tiles = default_tiles()
    return list(tiles.values()) if isinstance(tiles, Mapping) else list(tiles)


def resolve_tiles(tiles: TilesArg = None) -> list[Tile]:
    """Normalize ``tiles`` (a mapping, an iterable, or ``None`` for the registry) to a list.

    Health tiles come first, then outcomes, each in the order given. Raises
    :class:`ExpkitError` on a duplicate id or an unknown section. A missing notebook
    is not an error here: that tile alone fails when it runs.
    """
    items = _as_list(tiles)
    seen: set[str] = set()
    for t in items:
        if t.id in seen:
            raise ExpkitError(f"tile id {t.id!r} appears twice in the tile list")
        seen.add(t.id)
        if t.section not in SECTIONS:
            raise ExpkitError(f"tile {t.id!r} has section {t.section!r}; expected one of {', '.join(SECTIONS)}")
    return sorted(items, key=lambda t: SECTIONS.index(t.section))


def find_tile(tile: str | Tile, tiles: TilesArg = None) -> Tile:
    """Look a tile up by id (or pass a tile object through)."""
    if not isinstance(tile, str):
        return tile
    items = _as_list(tiles)
    for t in items:
        if t.id == tile:
            resolve_tiles([t])
            return t
    known = ", ".join(t.id for t in items)
    raise ExpkitError(f"unknown tile {tile!r}; known tiles: {known}")
