"""The dashboard's tiles: id → section, title, notebook and the function that computes it.

Tile ids are fixed (docs/metrics.md, "Tiles"); a ratio metric of the project's catalogue
(``params/metrics.yaml``) asking for a tile page has one, with the metric's id. The notebook of
tile T is ``notebooks/<section>/T.ipynb`` (``make notebooks`` writes it).
"""

from __future__ import annotations

from collections.abc import Sequence

from expkit.errors import ExpkitError
from expkit.names import HEALTH_IDS, OUTCOME_IDS
from expkit.tiles.spec import Tile, notebooks_dir


def ordered_tiles(health: Sequence[Tile], outcomes: Sequence[Tile], catalogue_tiles: Sequence[str]) -> dict[str, Tile]:
    """The tiles in dashboard order; refuses (never drops) a tile registered in one place only.

    Every id of :data:`~expkit.names.HEALTH_IDS` / :data:`~expkit.names.OUTCOME_IDS` (the ids
    users type) needs its tile in that section's list and the reverse, except the tile pages of
    the catalogue's metrics (``catalogue_tiles``), which go right after the readout.

    >>> ordered_tiles([], [], [])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    expkit.errors.ExpkitError: tile registry: 'latency' is a health tile id (expkit.names.HEALTH_IDS) without a ...
    """
    problems: list[str] = []
    sections = [("health", HEALTH_IDS, health, "expkit.tiles.health"),
                ("outcome", OUTCOME_IDS, outcomes, "expkit.tiles.outcomes")]
    for what, ids, tiles, module in sections:
        have = [t.id for t in tiles]
        problems += [f"{i!r} is registered twice in {module}" for i in sorted({i for i in have if have.count(i) > 1})]
        problems += [f"{t.id!r} of {module} has no compute function" for t in tiles if t.compute is None]
        problems += [f"{i!r} is a {what} tile id (expkit.names.{what.upper()}_IDS) without a tile in {module}"
                     for i in ids if i not in have]
        allowed = set(ids) | (set(catalogue_tiles) if what == "outcome" else set())
        problems += [f"{i!r} is a tile of {module} but not a {what} tile id (add it to expkit.names."
                     f"{what.upper()}_IDS{' or give its catalogue metric a tile page' if what == 'outcome' else ''})"
                     for i in have if i not in allowed]
    if problems:
        raise ExpkitError("tile registry: " + "; ".join(problems))
    by_id = {t.id: t for t in [*health, *outcomes]}
    order = [*HEALTH_IDS, *OUTCOME_IDS]
    extra = [t.id for t in outcomes if t.id not in order]  # the metric tiles, in catalogue order
    at = order.index("readout") + 1
    order[at:at] = extra
    return {i: by_id[i] for i in order}


def _all_tiles() -> dict[str, Tile]:
    from expkit.catalogue import catalogue_for
    from expkit.tiles.health import HEALTH_TILES
    from expkit.tiles.outcomes import OUTCOME_TILES

    return ordered_tiles(HEALTH_TILES, OUTCOME_TILES, catalogue_for(None).tile_ids)


TILES: dict[str, Tile] = _all_tiles()
"""Every implemented tile, in dashboard order (health first)."""

__all__ = ["HEALTH_IDS", "OUTCOME_IDS", "TILES", "Tile", "notebooks_dir"]
