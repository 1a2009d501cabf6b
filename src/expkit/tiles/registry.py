"""The dashboard's tiles: id → section, title, notebook and the function that computes it.

Tile ids are fixed (docs/metrics.md, "Tiles"); a ratio metric of the project's catalogue
(``params/metrics.yaml``) asking for a tile page has one, with the metric's id. The notebook of
tile T is ``notebooks/<section>/T.ipynb`` (``make notebooks`` writes it).
"""

from __future__ import annotations

from expkit.names import HEALTH_IDS, OUTCOME_IDS
from expkit.tiles.spec import Tile, notebooks_dir


def _all_tiles() -> dict[str, Tile]:
    from expkit.tiles.health import HEALTH_TILES
    from expkit.tiles.outcomes import OUTCOME_TILES

    tiles = {t.id: t for t in [*HEALTH_TILES, *OUTCOME_TILES]}
    order = [i for i in (*HEALTH_IDS, *OUTCOME_IDS) if i in tiles]
    # catalogue tiles other than the built-in ones: after the built-in metric tiles, before lift
    extra = [t.id for t in OUTCOME_TILES if t.id not in order]
    at = order.index("lift") if "lift" in order else len(order)
    order[at:at] = extra
    return {i: tiles[i] for i in order}


TILES: dict[str, Tile] = _all_tiles()
"""Every implemented tile, in dashboard order (health first)."""

__all__ = ["HEALTH_IDS", "OUTCOME_IDS", "TILES", "Tile", "notebooks_dir"]
