"""Trust gates: may the day's outcome numbers be believed at all? (docs/readout.md, "Trust gates").

A gate fails when something that invalidates a comparison happened: a sample ratio mismatch
(overall or on any day of the window; a mismatch within one slice value is shown by the
allocation tile but does not fail the gate, since many slice values are tested), a
validation check that failed on the experiment's event tables that day, users seen in more
than one arm, or a P1/P2 alert or a kill switch that fired that day (an incident that ended
before midnight still touched the data). A failed gate makes the readout's verdict
``untrustworthy`` with the gate named.

Each gate is a pure function of evidence computed elsewhere: the SRM tests of the window and
of each day, the day's stored validation checks and its recorded alert timeline (both in
``summary.json`` shapes, handed to tiles by :func:`expkit.run_tile`). A gate whose evidence
is missing (validation or the alert rules did not run) is ``not_judged``: the verdict says
so instead of trusting it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from expkit.decision import TrustGate

SERIOUS_SEVERITIES = ("P1", "P2")
"""Alert severities whose firing makes the day's comparison untrustworthy."""

DATA_CHECKS = (
    "join_integrity", "unique_ids", "keys_not_null", "schema", "staleness", "partition_completeness",
    "event_delay", "late_data", "rollup_freshness", "values_in_range", "event_order",
)
"""Validation checks (docs/validation.md) whose failure on the experiment's tables breaks the comparison."""


def srm_gate(pvalue: float, threshold: float, days: Sequence[str] = ()) -> TrustGate:
    """The sample-ratio-mismatch gate: the window's χ² p-value and the days with a mismatch.

    >>> srm_gate(0.48, 0.001).status
    'pass'
    >>> srm_gate(1e-9, 0.001, ["2026-11-10"]).detail
    'sample ratio mismatch overall (p = 1e-09 < 0.001) and on 2026-11-10'
    >>> srm_gate(float("nan"), 0.001).status
    'not_judged'
    """
    if not math.isfinite(pvalue):
        return TrustGate("srm", "not_judged", "no users in the window, so the split of users is unchecked")
    parts = []
    if pvalue < threshold:
        parts.append(f"overall (p = {pvalue:.2g} < {threshold:g})")
    if days:
        parts.append("on " + ", ".join(days))
    if parts:
        return TrustGate("srm", "fail", "sample ratio mismatch " + " and ".join(parts))
    return TrustGate("srm", "pass", f"users split as planned (p = {pvalue:.2g})")


def _failed(checks: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    return sorted({f"{c.get('name')} ({c.get('table')})" for c in checks
                   if c.get("status") == "fail" and c.get("name") in names})


def validation_gate(checks: Sequence[Mapping[str, Any]] | None) -> TrustGate:
    """Failed data checks on the day's event tables.

    >>> validation_gate([{"name": "join_integrity", "table": "clicks", "status": "fail"}]).detail
    'validation failed: join_integrity (clicks)'
    >>> validation_gate(None).status
    'not_judged'
    """
    if checks is None:
        return TrustGate("validation", "not_judged", "validation did not run for this day")
    failed = _failed(checks, DATA_CHECKS)
    if failed:
        return TrustGate("validation", "fail", "validation failed: " + ", ".join(failed))
    return TrustGate("validation", "pass", "the data checks passed")


def bucket_gate(checks: Sequence[Mapping[str, Any]] | None) -> TrustGate:
    """Users seen in more than one arm (the ``bucket_consistency`` check)."""
    mine = [c for c in checks or [] if c.get("name") == "bucket_consistency"]
    if not mine:
        return TrustGate("bucket_consistency", "not_judged", "users in several arms were not checked")
    bad = [c for c in mine if c.get("status") == "fail"]
    if bad:
        return TrustGate("bucket_consistency", "fail",
                         "users seen in more than one arm: " + "; ".join(str(c.get("detail") or "") for c in bad))
    return TrustGate("bucket_consistency", "pass", "every user stayed in one arm")


def clock(iso: Any, day: str | dt.date | None = None) -> str:
    """``HH:MM`` of an ISO-8601 UTC time, with its date in front when it is not ``day`` (an alert
    carried over from the day before); ``?`` when absent.

    >>> clock("2026-11-12T10:00:00Z", "2026-11-12"), clock("2026-11-11T23:10:00Z", "2026-11-12"), clock(None)
    ('10:00', '2026-11-11 23:10', '?')
    """
    text = str(iso or "")
    if len(text) < 16:
        return "?"
    return text[11:16] if day is None or text[:10] == str(day) else f"{text[:10]} {text[11:16]}"


def alerts_gate(alerts: Sequence[Mapping[str, Any]] | None, day: str | dt.date | None = None) -> TrustGate:
    """A P1/P2 alert or a kill switch that fired that day, resolved or not (``None``: the alert
    rules were not evaluated for the day); a firing carried over from before ``day`` names its date.

    >>> alerts_gate([{"rule": "error_rate_high", "severity": "P1", "fired_at": "2026-11-05T08:10:00Z",
    ...               "state": "resolved", "kill_switch": "disable_experiment"}]).detail
    'error_rate_high (P1) fired at 08:10 UTC and pulled disable_experiment'
    """
    if alerts is None:
        return TrustGate("alerts", "not_judged", "the alert rules were not evaluated for this day")
    # one phrase per rule, severity and kill switch: a flapping alert fires many times a day
    fired: dict[tuple[Any, Any, Any], list[str]] = {}
    for a in alerts or []:
        if not a.get("fired_at") or not (a.get("severity") in SERIOUS_SEVERITIES or a.get("kill_switch")):
            continue
        fired.setdefault((a.get("rule"), a.get("severity"), a.get("kill_switch")), []).append(str(a["fired_at"]))
    hits = []
    for (rule, severity, switch), times in fired.items():
        first, last = clock(min(times), day), clock(max(times), day)
        when = f"at {first}" if len(times) == 1 else f"{len(times)} times from {first} to {last}"
        hits.append(f"{rule} ({severity}) fired {when} UTC" + (f" and pulled {switch}" if switch else ""))
    if hits:
        return TrustGate("alerts", "fail", "; ".join(hits))
    return TrustGate("alerts", "pass", "no P1/P2 alert or kill switch fired")
