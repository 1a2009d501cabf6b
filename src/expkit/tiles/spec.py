"""What a dashboard tile is: its id, section, title, supported slices, compute function and notebook.

Kept apart from :mod:`expkit.tiles.registry` so the tile modules can describe themselves
without importing the registry that lists them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expkit.tiles.base import TileParams, TileResult, check_filter_characters
from expkit.tiles.rendered import TILE_ARGUMENTS


def notebooks_dir() -> Path:
    """``notebooks/`` of the checkout (``$EXPKIT_NOTEBOOKS`` overrides)."""
    env = os.environ.get("EXPKIT_NOTEBOOKS")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "notebooks").is_dir() and (parent / "pyproject.toml").is_file():
            return parent / "notebooks"
    return Path.cwd() / "notebooks"


def check_filter_characters_of(p: TileParams) -> None:
    """The default :attr:`Tile.check`: filter values must be possible slice values."""
    check_filter_characters(p.filters)


@dataclass(frozen=True)
class Tile:
    """One dashboard tile.

    Attributes:
        id: tile id (docs/metrics.md, "Tiles").
        section: ``health`` or ``outcomes``.
        title: human title.
        slices: slice columns it supports (``bucket`` = per arm).
        compute: ``(TileParams) -> TileResult``.
        check: ``(TileParams) -> None``, raising :class:`~expkit.errors.ExpkitError` on
            parameters this tile cannot answer (filter values, filter columns); run by
            :func:`expkit.tiles.check_params` before anything is computed or a kernel starts.
            By default, filter values must be possible slice values.
    """

    id: str
    section: str
    title: str
    slices: tuple[str, ...]
    compute: Callable[[TileParams], TileResult]
    check: Callable[[TileParams], None] = check_filter_characters_of

    def __reduce__(self) -> tuple[Any, ...]:
        # A registered tile pickles as its id (its compute function may be a closure), so the
        # report can hand it to a worker process (expkit.report.compute).
        from expkit.tiles.registry import TILES

        if TILES.get(self.id) == self:
            return (registered_tile, (self.id,))
        return super().__reduce__()

    @property
    def notebook(self) -> Path:
        return notebooks_dir() / self.section / f"{self.id}.ipynb"

    def prerender(self, parameters: Mapping[str, Any], path: Path) -> None:
        """Compute this tile here and save it rendered at ``path`` for its notebook to show.

        ``parameters`` are the notebook's (its defaults overlaid with what the report
        injects); the tile arguments among them are what the notebook passes to
        :func:`expkit.run_tile`, which then finds this file through ``result_path``
        instead of computing again. Raises what the tile raises.
        """
        from expkit.tiles import run_tile

        args = {k: parameters[k] for k in TILE_ARGUMENTS if k in parameters}
        result = run_tile(self.id, **args)
        result.rendered(args, svg=False).save(path)  # the report's pages draw the charts themselves


def registered_tile(tile_id: str) -> Tile:
    """The registered tile ``tile_id`` (what a pickled registered :class:`Tile` loads as)."""
    from expkit.tiles.registry import TILES

    return TILES[tile_id]
