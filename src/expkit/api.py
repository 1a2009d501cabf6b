"""``expkit.run_tile``: parameters → the tile's inputs → its result (docs/architecture.md).

A tile computes from the warehouse plus inputs decided elsewhere, which it receives as data
in its :class:`~expkit.tiles.base.TileParams`: the thresholds of the alert rules (a health
tile breaches on the per-bin condition its alert fires on, docs/alerts.md), the day's stored
validation results (the freshness tile shows them) and the day's recorded alert timeline
(the readout's trust gate). This module sits above the tiles, the alerts and the validation,
and gathers them, so none of them imports another.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from expkit.tiles.base import TileParams, TileResult
    from expkit.tiles.rendered import RenderedTile


@functools.lru_cache(maxsize=8)
def _rule_thresholds(path: str, mtime_ns: int) -> dict[str, float]:
    from expkit.alerts.rules import load_alerts

    return {r.name: float(r.condition.threshold) for r in load_alerts(path).rules}


def alert_limits(params_file: Path) -> dict[str, float]:
    """Alert rule name → threshold, from ``alerts.yaml`` beside ``params_file`` (empty without one)."""
    from expkit.alerts.rules import default_rules_file

    path = default_rules_file(params_file)
    if not path.is_file():
        return {}
    return _rule_thresholds(str(path), path.stat().st_mtime_ns)


def with_inputs(p: TileParams) -> TileParams:
    """``p`` with the alert-rule thresholds, the day's stored validation results and its
    recorded alert timeline filled in."""
    from expkit.alerts.state import AlertStore
    from expkit.validation import latest_run

    run = latest_run(p.warehouse, p.event_date)
    checks = tuple(c.to_dict() for c in run.checks) if run else None
    alerts = AlertStore(p.warehouse).load_day(p.event_date, p.config.experiment_id)
    return dataclasses.replace(p, alert_limits=alert_limits(p.params_file), checks=checks,
                               alerts=None if alerts is None else tuple(alerts))


def run_tile(tile: str, result_path: str | None = None, **params: Any) -> TileResult | RenderedTile:
    """Validate ``params`` and compute tile ``tile``; what every tile notebook calls.

    Parameters are those of the notebooks' parameters cell: ``event_date``, ``window``,
    ``slice``, ``filters``, ``buckets``, ``params_file``, ``warehouse``.

    ``result_path`` (set by the daily report) names a rendering of this tile saved by the
    report's own process (:class:`~expkit.tiles.rendered.RenderedTile`); when it exists and
    was computed with exactly these parameters it is returned instead of computing again.
    Either result has ``save_sidecar``, ``show``, ``status``, ``headline`` and ``summary``.
    To recompute a rendering in full: ``run_tile(r.tile, **r.parameters)``.
    """
    if result_path:
        from expkit.tiles.rendered import load_matching

        found = load_matching(result_path, tile, params)
        if found is not None:
            return found
    return compute_tile(tile, **params)


def compute_tile(tile: str, **params: Any) -> TileResult:
    """Validate ``params``, gather the tile's inputs and compute tile ``tile`` (no saved rendering)."""
    from expkit.tiles import check_params
    from expkit.tiles.registry import TILES

    params_ = with_inputs(check_params(tile, **params))
    compute = TILES[tile].compute
    assert compute is not None, "the registry refuses tiles without a compute function"  # noqa: S101
    return compute(params_)


def prerender_tile(tile: str, parameters: Mapping[str, Any], path: Path) -> None:
    """Compute registered tile ``tile`` here and save it rendered at ``path`` for its notebook.

    ``parameters`` are the notebook's (its defaults overlaid with what the report injects);
    the tile arguments among them are what the notebook passes to :func:`run_tile`, which then
    finds this file through ``result_path`` instead of computing again. Raises what the tile
    raises. The daily report runs it in a worker process (:mod:`expkit.report.compute`).
    """
    from expkit.names import TILE_ARGUMENTS

    args = {k: parameters[k] for k in TILE_ARGUMENTS if k in parameters}
    compute_tile(tile, **args).rendered(args, svg=False).save(path)  # the report's pages draw the charts
