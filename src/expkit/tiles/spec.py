"""What a dashboard tile is: its id, section, title, supported slices, compute function and notebook.

Kept apart from :mod:`expkit.tiles.registry` so the tile modules can describe themselves
without importing the registry that lists them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from expkit.tiles.base import TileParams, TileResult, check_filter_characters


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

    @property
    def notebook(self) -> Path:
        return notebooks_dir() / self.section / f"{self.id}.ipynb"
