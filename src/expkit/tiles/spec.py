"""What a dashboard tile is: its id, section, title, supported slices, compute function and notebook.

Kept apart from :mod:`expkit.tiles.registry` so the tile modules can describe themselves
without importing the registry that lists them. The report runs the same class: a registered
tile (with ``compute``) or a notebook-only one (tests, ad-hoc registries).

>>> t = Tile("plain", "health", "Plain", notebook_file=Path("plain.ipynb"), parameters={"x": 1})
>>> t.compute is None, t.notebook.name, dict(t.parameters)
(True, 'plain.ipynb', {'x': 1})
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
        compute: ``(TileParams) -> TileResult``; ``None`` for a notebook-only tile, whose
            notebook computes everything itself (the report then runs it without computing
            it ahead).
        check: ``(TileParams) -> None``, raising :class:`~expkit.errors.ExpkitError` on
            parameters this tile cannot answer (filter values, filter columns); run by
            :func:`expkit.tiles.check_params` before anything is computed or a kernel starts.
            By default, filter values must be possible slice values.
        notebook_file: its notebook; default ``notebooks/<section>/<id>.ipynb`` (:attr:`notebook`).
        parameters: extra Papermill parameters the report passes to its notebook.
        timeout: seconds for this tile, overriding the run's; ``None`` keeps the run's.
    """

    id: str
    section: str
    title: str
    slices: tuple[str, ...] = ("bucket",)
    compute: Callable[[TileParams], TileResult] | None = None
    check: Callable[[TileParams], None] = check_filter_characters_of
    notebook_file: Path | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None

    @property
    def notebook(self) -> Path:
        """The notebook the report runs (``notebook_file``, else the generated one)."""
        if self.notebook_file is not None:
            return Path(self.notebook_file)
        return notebooks_dir() / self.section / f"{self.id}.ipynb"
