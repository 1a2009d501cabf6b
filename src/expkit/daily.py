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
from expkit.alerts.rules import default_rules_file, load_alerts
from expkit.config import load_experiment
from expkit.report import DailyResult, DailySteps, ProgressEvent, run_daily
from expkit.rollup import build_rollups, stale_dates
from expkit.validation import validate_day
from expkit.warehouse import Warehouse


def ensure_rollups(warehouse: Path, day: dt.date, params_file: Path) -> bool:
    """Build the rollups of ``day`` when they are missing or older than its events; True if it did."""
    wh = Warehouse.open(warehouse)
    wh.require_events(day)
    if not stale_dates(wh, [day]):
        return False
    build_rollups(wh, day, load_experiment(params_file))
    return True


def check_inputs(params_file: Path, rules_file: Path | None = None) -> None:
    """Reject a bad parameters file or alert rules file (``alerts.yaml`` beside the parameters
    unless ``rules_file``) before anything runs: :class:`~expkit.errors.ExpkitError`, exit 2."""
    load_experiment(params_file)
    load_alerts(rules_file or default_rules_file(params_file))


def default_steps(notify: bool = False, rules_file: Path | None = None) -> DailySteps:
    """Rollup if needed, validation, then the alert replay of the day fed with its checks.

    With ``notify`` the replay also delivers notifications (where no live monitor runs);
    ``rules_file`` replaces ``alerts.yaml`` beside the parameters file.
    """
    checks: list[dict[str, Any]] = []

    def validate(warehouse: Path, day: dt.date, params_file: Path) -> list[dict[str, Any]]:
        checks[:] = validate_day(warehouse, day, config=load_experiment(params_file))
        return checks

    def alerts(warehouse: Path, day: dt.date, params_file: Path) -> list[dict[str, Any]]:
        return evaluate_day(warehouse, day, load_experiment(params_file), params_file=params_file,
                            rules_file=rules_file, notify=notify, checks=checks)

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
    rules_file: Path | None = None,
) -> DailyResult:
    """Run the daily job for ``day``; the report lands in ``out/<day>/index.html``.

    The alert rules are ``rules_file``, else ``alerts.yaml`` beside ``params_file``; both
    files are checked before anything runs.
    """
    check_inputs(params_file, rules_file)
    Warehouse.open(warehouse).require_events(day)

    def emit(event: ProgressEvent) -> None:
        if progress:
            counter = f" [{event.done}/{event.total}]" if event.total else ""
            progress(f"{event.stage}{counter}: {event.message}")

    return run_daily(
        warehouse, day, out, params_file, workers=workers, timeout=timeout,
        steps=default_steps(notify, rules_file), progress=emit, lock_timeout=lock_timeout,
    )
