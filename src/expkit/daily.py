"""The scheduled daily job with its default steps: rollup → validate → alerts → tiles → report.

:func:`daily` is what ``expkit daily`` and ``expkit demo`` call; the report layer
(:mod:`expkit.report`) runs the notebooks and writes the pages, this module supplies the
steps that read the warehouse.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from expkit.config import load_experiment
from expkit.report import DailyResult, DailySteps, ProgressEvent, run_daily
from expkit.rollup import build_rollups, stale_dates
from expkit.warehouse import Warehouse


def ensure_rollups(warehouse: Path, day: dt.date, params_file: Path) -> None:
    """Build the rollups of ``day`` when they are missing or older than its events."""
    wh = Warehouse.open(warehouse)
    wh.require_events(day)
    if stale_dates(wh, [day]):
        build_rollups(wh, day, load_experiment(params_file))


def _optional_step(module: str, function: str) -> Callable[..., Any] | None:
    """A step provided by an optional part of expkit (validation, alerts), if installed."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name and module.startswith(err.name):
            return None
        raise
    return getattr(mod, function, None)


def default_steps() -> DailySteps:
    """Rollup if needed, then validation and alert replay for the day."""
    validate = _optional_step("expkit.validation", "validate_day")
    evaluate = _optional_step("expkit.alerts", "evaluate_day")
    return DailySteps(
        rollup=ensure_rollups,
        validate=(
            (lambda wh, day, params_file: validate(wh, day, config=load_experiment(params_file)))
            if validate else None
        ),
        alerts=(
            (lambda wh, day, params_file: evaluate(wh, day, load_experiment(params_file), params_file=params_file))
            if evaluate else None
        ),
    )


def daily(
    warehouse: Path,
    day: dt.date,
    out: Path,
    params_file: Path,
    workers: int | None = None,
    timeout: float = 600.0,
    progress: Callable[[str], None] | None = None,
    lock_timeout: float | None = 3600,
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
        steps=default_steps(), progress=emit, lock_timeout=lock_timeout,
    )
