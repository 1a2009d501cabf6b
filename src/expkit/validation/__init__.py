"""Data validation (docs/validation.md): freshness, completeness, join integrity, consistency, late data.

``run_checks`` returns the results of one cadence's checks; ``validate`` also stores them
(``state/validation/<date>/``); ``validate_day`` is the daily report's step.

>>> from expkit.validation import checks_for
>>> [c.name for c in checks_for("5m")]
['staleness', 'event_delay', 'partition_completeness', 'join_integrity']
"""

from importlib import import_module
from typing import Any

# Loaded on first use, so that ``expkit --help`` (which imports expkit.validation.commands)
# does not pull in DuckDB and pandas.
_LAZY = {
    "validate": "api", "validate_day": "api",
    "CHECKS": "checks", "CheckContext": "checks", "CheckDef": "checks", "checks_for": "checks",
    "run_checks": "checks",
    "ValidationRun": "history", "latest_run": "history", "load_runs": "history",
    "LateDay": "late", "LateScan": "late", "scan_late_data": "late",
    "CADENCES": "results", "STATUSES": "results", "CheckResult": "results", "Thresholds": "results",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"expkit.validation.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'expkit.validation' has no attribute {name!r}")


__all__ = [
    "CADENCES", "CHECKS", "STATUSES", "CheckContext", "CheckDef", "CheckResult", "LateDay", "LateScan",
    "Thresholds", "ValidationRun", "checks_for", "latest_run", "load_runs", "run_checks", "scan_late_data",
    "validate", "validate_day",
]
