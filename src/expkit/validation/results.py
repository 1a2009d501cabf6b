"""What a validation check reports, and the thresholds it is judged against."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from expkit.config import ExperimentConfig
from expkit.names import CADENCES  # noqa: F401 - re-exported

STATUSES = ("pass", "warn", "fail")
"""Check statuses, least severe first (the summary.json contract)."""


@dataclass(frozen=True)
class CheckResult:
    """One check of one table (a ``checks`` entry of summary.json).

    Attributes:
        name: check name, e.g. ``join_integrity``.
        table: the event table judged (the child table for joins, ``all`` for cross-table checks).
        status: ``pass``, ``warn`` or ``fail``.
        value: the measured number, in the unit of ``threshold`` (minutes, a rate, a count).
        threshold: the limit ``value`` is judged against (see ``detail`` for the direction).
        detail: one or two sentences for people: what was measured, examples of offending keys.
        facts: the same as data (JSON document) for tools: counts, offending hours, sample keys.
    """

    name: str
    table: str
    status: str
    value: float | int | None
    threshold: float | int | None
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} not in {STATUSES}")

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def to_dict(self) -> dict[str, Any]:
        """The summary.json shape ``{"name", "table", "status", "value", "threshold", "detail"}`` plus ``facts``."""
        value = self.value
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        return {
            "name": self.name,
            "table": self.table,
            "status": self.status,
            "value": value,
            "threshold": self.threshold,
            "detail": self.detail,
            "facts": self.facts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        """Inverse of :meth:`to_dict` (for stored history)."""
        return cls(data["name"], data["table"], data["status"], data.get("value"), data.get("threshold"),
                   data.get("detail", ""), dict(data.get("facts") or {}))


@dataclass(frozen=True)
class Thresholds:
    """Limits of the validation checks (docs/validation.md, "Checks"); defaults follow the seed.

    Attributes:
        delay_p95_min: largest p95 ingest delay of any hour, minutes (the freshness SLO).
        staleness_min: largest time since the newest ingest, minutes.
        stale_min_expected_rows: a silence only counts as stale when at least this many rows were
            expected in it at the table's recent arrival rate (sparse tables are quiet by nature).
        join_min: smallest share of child rows with their parent (join integrity).
        orphan_warn_rate: orphan rate above which the join check warns while still passing.
        order_fail_rate: share of children earlier than their parent above which ``event_order``
            fails (any such row warns).
        hour_min_share: an hour with fewer rows than this share of the same hour's median on the
            previous days is near-empty and fails completeness, when chance cannot explain it
            (see ``hour_alpha``).
        hour_alpha: a near-empty hour fails only when a count that low has a probability below
            this at the dispersion of the table's counts (quasi-Poisson lower tail); hours whose
            usual count is too small for even an empty hour to reach it are too few to judge.
        hour_min_baseline_rows: without any previous day, an empty hour fails only when the
            table averages at least this many rows per hour that day.
        baseline_days: previous days compared in the completeness check.
        min_rows_for_quantile: hours with fewer rows only warn on a high p95 delay.
        late_lookback_days: days before the checked day searched for late data.
        settle_min: when judging a live day, children younger than this are left out of the join
            (their parents may still be in flight).
        sample_size: offending keys shown per check.
    """

    delay_p95_min: float = 15.0
    staleness_min: float = 15.0
    stale_min_expected_rows: float = 10.0
    join_min: float = 0.99
    orphan_warn_rate: float = 0.001
    order_fail_rate: float = 0.001
    hour_min_share: float = 0.25
    hour_alpha: float = 1e-4
    hour_min_baseline_rows: int = 40
    baseline_days: int = 7
    min_rows_for_quantile: int = 20
    late_lookback_days: int = 7
    settle_min: float = 15.0
    sample_size: int = 5

    @classmethod
    def from_config(cls, config: ExperimentConfig | None) -> Thresholds:
        """Defaults, with the freshness limits taken from the experiment's SLOs."""
        if config is None:
            return cls()
        fresh = float(config.slos.freshness_max_min)
        return cls(delay_p95_min=fresh, staleness_min=fresh)
