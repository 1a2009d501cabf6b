"""Data validation (spec §7): freshness, completeness, join integrity, consistency, late data.

``run_checks`` returns the results of one cadence's checks; ``validate`` also stores them
(``state/validation/<date>/``); ``validate_day`` is the daily report's step.

>>> from expkit.validation import checks_for
>>> [c.name for c in checks_for("5m")]
['staleness', 'event_delay', 'partition_completeness', 'join_integrity']
"""

from expkit.validation.api import validate, validate_day
from expkit.validation.checks import CHECKS, CheckContext, CheckDef, checks_for, run_checks
from expkit.validation.history import ValidationRun, latest_run, load_runs
from expkit.validation.late import LateDay, LateScan, scan_late_data
from expkit.validation.results import CADENCES, STATUSES, CheckResult, Thresholds

__all__ = [
    "CADENCES", "CHECKS", "STATUSES", "CheckContext", "CheckDef", "CheckResult", "LateDay", "LateScan",
    "Thresholds", "ValidationRun", "checks_for", "latest_run", "load_runs", "run_checks", "scan_late_data",
    "validate", "validate_day",
]
