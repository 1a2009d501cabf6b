"""The health tiles (spec §3 health, §5)."""

from __future__ import annotations

from expkit.tiles.registry import Tile

HEALTH_TILES: list[Tile] = []
