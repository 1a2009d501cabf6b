"""The dashboard's tiles: id → section, title, notebook and the function that computes it.

Tile ids are fixed by the spec (§12); the notebook of tile T is
``notebooks/<section>/T.ipynb``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from expkit.tiles.base import TileParams, TileResult

HEALTH_IDS = ("latency", "coverage", "errors", "fallback", "cache", "volume", "freshness", "anomaly")
OUTCOME_IDS = ("ctr", "recall", "session_depth", "save_rate", "lift", "allocation", "timeline")


def notebooks_dir() -> Path:
    """``notebooks/`` of the checkout (``$EXPKIT_NOTEBOOKS`` overrides)."""
    import os

    env = os.environ.get("EXPKIT_NOTEBOOKS")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "notebooks").is_dir() and (parent / "pyproject.toml").is_file():
            return parent / "notebooks"
    return Path.cwd() / "notebooks"


@dataclass(frozen=True)
class Tile:
    """One dashboard tile.

    Attributes:
        id: tile id (spec §12).
        section: ``health`` or ``outcomes``.
        title: human title.
        slices: slice columns it supports (``bucket`` = per arm).
        compute: ``(TileParams) -> TileResult``.
    """

    id: str
    section: str
    title: str
    slices: tuple[str, ...]
    compute: Callable[[TileParams], TileResult]

    @property
    def notebook(self) -> Path:
        return notebooks_dir() / self.section / f"{self.id}.ipynb"


def _all_tiles() -> dict[str, Tile]:
    from expkit.tiles.health import HEALTH_TILES
    from expkit.tiles.outcomes import OUTCOME_TILES

    tiles = {t.id: t for t in [*HEALTH_TILES, *OUTCOME_TILES]}
    order = [i for i in (*HEALTH_IDS, *OUTCOME_IDS) if i in tiles]
    return {i: tiles[i] for i in order}


TILES: dict[str, Tile] = _all_tiles()
"""Every implemented tile, in dashboard order (health first)."""
