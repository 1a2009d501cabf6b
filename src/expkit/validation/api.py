"""Validate a date and keep the result: what ``expkit validate`` and the daily report call."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

from expkit.config import ExperimentConfig, load_experiment
from expkit.engines import Engine
from expkit.validation.checks import resolve_now, run_checks
from expkit.validation.history import ValidationRun, record_run
from expkit.validation.results import Thresholds
from expkit.warehouse import Warehouse, parse_date

log = logging.getLogger(__name__)


def _config(config: ExperimentConfig | str | Path | None) -> ExperimentConfig | None:
    return load_experiment(config) if isinstance(config, str | Path) else config


def validate(
    warehouse: Warehouse | str | Path,
    day: dt.date | str,
    now: dt.datetime | int | None = None,
    cadence: str = "daily",
    config: ExperimentConfig | str | Path | None = None,
    *,
    thresholds: Thresholds | None = None,
    engine: Engine | None = None,
    record: bool = True,
) -> ValidationRun:
    """Run the checks of ``cadence`` for ``day`` (see :func:`run_checks`) and store the run.

    ``config`` may be an :class:`~expkit.config.ExperimentConfig` or its parameters file.
    With ``record`` the run is appended to ``state/validation/<day>/``. A history that cannot
    be written (a read-only warehouse) costs the record, not the results: one warning is
    logged and the run comes back with ``unrecorded`` saying why (docs/validation.md).
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse.open(warehouse)
    day = parse_date(day)
    checked_at = int(time.time() * 1000)
    t0 = time.perf_counter()
    checks = run_checks(wh, day, now=now, cadence=cadence, config=_config(config), thresholds=thresholds,
                        engine=engine)
    run = ValidationRun(day, cadence, checked_at, resolve_now(day, now, checked_at)[0], time.perf_counter() - t0,
                        tuple(checks))
    if record:
        try:
            record_run(wh, run)
        except OSError as err:
            reason = f"{type(err).__name__}: {err.strerror or err}" + (f" ({err.filename})" if err.filename else "")
            log.warning("validation history of %s not recorded (%s); the checks' results stand", day, reason)
            run = dataclasses.replace(run, unrecorded=reason)
    return run


def validate_day(
    warehouse: Warehouse | str | Path,
    day: dt.date | str,
    now: dt.datetime | int | None = None,
    config: ExperimentConfig | str | Path | None = None,
    engine: Engine | None = None,
) -> list[dict[str, Any]]:
    """Every check for ``day`` (stored as history), as ``summary.json`` ``checks`` records.

    ``engine``: an open engine to run the checks' queries (default: DuckDB for this call).
    """
    return [c.to_dict() for c in validate(warehouse, day, now=now, cadence="daily", config=config,
                                          engine=engine).checks]
