"""The scheduled daily job with its default steps: rollup → validate → alerts → tiles → report.

:func:`daily` is what ``expkit daily`` and ``expkit demo`` call; the report layer
(:mod:`expkit.report`) runs the notebooks and writes the pages, this module supplies the
steps that read the warehouse. Validation results feed the alert replay (the ``data_stale``
rule reads the freshness checks).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from expkit.alerts import evaluate_day
from expkit.config import load_experiment
from expkit.report import DailyResult, DailySteps, ProgressEvent, run_daily
from expkit.rollup import STATS_ROLLUP, open_engine, refresh, stale_dates
from expkit.validation import validate_day
from expkit.warehouse import Warehouse


def ensure_rollups(warehouse: Path, day: dt.date, params_file: Path) -> None:
    """Rebuild what is stale (:func:`expkit.rollup.stale_dates`) among ``day`` and the rolled-up
    days before it (late data), so that every window of ``day`` reads current rollups."""
    wh = Warehouse.open(warehouse)
    wh.require_events(day)
    config = load_experiment(params_file)
    built = [d for d in wh.rollup_dates(STATS_ROLLUP) if d < day]
    stale = stale_dates(wh, [*built, day], config)
    if stale:
        eng = open_engine("duckdb", wh)
        try:
            refresh(wh, eng, stale, config)
        finally:
            eng.close()


def default_steps(notify: bool = False) -> DailySteps:
    """Rollup if needed, validation, then the alert replay of the day fed with its checks.

    With ``notify`` the replay also delivers notifications (where no live monitor runs).
    """
    checks: list[dict[str, Any]] = []

    def validate(warehouse: Path, day: dt.date, params_file: Path) -> list[dict[str, Any]]:
        checks[:] = validate_day(warehouse, day, config=load_experiment(params_file))
        return checks

    def alerts(warehouse: Path, day: dt.date, params_file: Path) -> list[dict[str, Any]]:
        return evaluate_day(warehouse, day, load_experiment(params_file), params_file=params_file,
                            notify=notify, checks=checks)

    return DailySteps(rollup=ensure_rollups, validate=validate, alerts=alerts)


def daily(
    warehouse: Path,
    day: dt.date,
    out: Path,
    params_file: Path,
    workers: int | None = None,
    timeout: float = 600.0,
    progress: Callable[[str], None] | None = None,
    lock_timeout: float | None = 3600,
    notify: bool = False,
) -> DailyResult:
    """Run the daily job for ``day``; the report lands in ``out/<day>/index.html``."""
    load_experiment(params_file)  # reject a bad parameters file before anything runs
    Warehouse.open(warehouse).require_events(day)

    def emit(event: ProgressEvent) -> None:
        if progress:
            counter = f" [{event.done}/{event.total}]" if event.total else ""
            progress(f"{event.stage}{counter}: {event.message}")

    return run_daily(
        warehouse, day, out, params_file, workers=workers, timeout=timeout,
        steps=default_steps(notify), progress=emit, lock_timeout=lock_timeout,
    )
