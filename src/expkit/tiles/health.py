"""The health tiles (docs/metrics.md, "Health metrics"): registered here, computed in ``health_*`` modules.

=========== ============================================ ==================================
tile        shows                                        status (details in each docstring)
=========== ============================================ ==================================
latency     p50/p95/p99 all, warm, cold per 5-min bin    breach: a bin's p95 > 100 ms
coverage    coverage, Top-K fill per bin; catalog cov.   breach: a bin's coverage < 95% or fill < 99%
errors      error rate per bin, component × severity     breach: a bin's error rate > 1%
fallback    share per fallback level; CTR per level      informational (no SLO)
cache       hit rate per bin; latency hit vs miss        breach: a bin's hit rate < 70%
volume      requests per bin/slice vs previous days      breach: an hour < 5% of its usual volume
freshness   ingest delay, staleness, partitions, hours   breach: p95 delay or staleness > 15 min, gaps
anomaly     robust/classic z of every series             warn: an anomaly lasting ≥ 10 minutes
=========== ============================================ ==================================

Warn-level rules (SLO targets over the window, softer per-bin targets) are in
:mod:`expkit.tiles.health_core` and the tiles' docstrings. Bins with fewer than 20 requests
(100 for a quantile) never decide a status.
"""

from __future__ import annotations

from expkit.tiles.base import TileParams, TileResult
from expkit.tiles.health_anomaly import anomaly_tile
from expkit.tiles.health_freshness import check_freshness_params, freshness_tile
from expkit.tiles.health_requests import (
    cache_tile,
    coverage_tile,
    errors_tile,
    fallback_tile,
    latency_tile,
    volume_tile,
)
from expkit.tiles.spec import Tile

FRESHNESS_CHECKS = ("staleness", "event_delay", "partition_completeness", "late_data", "rollup_freshness")
"""Validation checks the freshness tile shows (and folds into its status)."""

REQUEST_TILE_SLICES = ("bucket", "cohort", "region", "surface", "client")
"""Request-level slices (genre and provider exist only on impressions)."""

def freshness_with_checks(p: TileParams) -> TileResult:
    """The freshness tile with the day's newest stored validation results (when validated)."""
    checks = None if p.checks is None else [dict(c) for c in p.checks if c.get("name") in FRESHNESS_CHECKS]
    return freshness_tile(p, checks=checks)


HEALTH_TILES: list[Tile] = [
    Tile("latency", "health", "Latency", REQUEST_TILE_SLICES, latency_tile),
    Tile("coverage", "health", "Coverage & Top-K fill", REQUEST_TILE_SLICES, coverage_tile),
    Tile("errors", "health", "Error rate", REQUEST_TILE_SLICES, errors_tile),
    Tile("fallback", "health", "Fallback analysis", REQUEST_TILE_SLICES, fallback_tile),
    Tile("cache", "health", "Cache efficacy", REQUEST_TILE_SLICES, cache_tile),
    Tile("volume", "health", "Request volume", REQUEST_TILE_SLICES, volume_tile),
    Tile("freshness", "health", "Data freshness", ("bucket",), lambda p: freshness_with_checks(p),
         check_freshness_params),
    Tile("anomaly", "health", "Anomaly detection", REQUEST_TILE_SLICES, anomaly_tile),
]
