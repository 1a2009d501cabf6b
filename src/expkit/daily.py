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
from expkit.rollup import build_rollups, stale_dates
from expkit.validation import validate_day
from expkit.warehouse import Warehouse


def ensure_rollups(warehouse: Path, day: dt.date, params_file: Path) -> None:
    """Build the rollups of ``day`` when they are missing or older than its events."""
    wh = Warehouse.open(warehouse)
    wh.require_events(day)
    if stale_dates(wh, [day]):
        build_rollups(wh, day, load_experiment(params_file))


def experiment_notices(warehouse: Path, day: dt.date, params_file: Path) -> list[str]:
    """One line when the parameters file's ``experiment_id`` is absent from the day's data
    (every tile would then show no data with no hint why); none otherwise or without a rollup."""
    from expkit.readers import experiment_users

    config = load_experiment(params_file)
    found = experiment_users(Warehouse.open(warehouse), day)
    if found is None or found.get(config.experiment_id):
        return []
    others = ", ".join(found) or "none"
    return [f"experiment_id {config.experiment_id!r} of {params_file} does not occur in the data up to {day} "
            f"(experiments found: {others}): every tile shows no data; fix experiment_id in the parameters file"]


def default_steps(notify: bool = False) -> DailySteps:
    """Rollup if needed, a notice if the experiment is absent from the data, validation, then the
    alert replay of the day fed with its checks.

    With ``notify`` the replay also delivers notifications (where no live monitor runs).
    """
    checks: list[dict[str, Any]] = []

    def validate(warehouse: Path, day: dt.date, params_file: Path) -> list[dict[str, Any]]:
        checks[:] = validate_day(warehouse, day, config=load_experiment(params_file))
        return checks

    def alerts(warehouse: Path, day: dt.date, params_file: Path) -> list[dict[str, Any]]:
        return evaluate_day(warehouse, day, load_experiment(params_file), params_file=params_file,
                            notify=notify, checks=checks)

    return DailySteps(rollup=ensure_rollups, validate=validate, alerts=alerts, notices=experiment_notices)


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
