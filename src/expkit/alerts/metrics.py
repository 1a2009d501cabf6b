"""The metrics alert rules may name, and the samples the rule engine consumes.

A *sample* is one value of one metric for one label set, measured over a window
``[start_ms, end_ms)`` and evaluated at ``end_ms`` (point metrics such as staleness have
``start_ms == end_ms``). Health metrics come per 5-minute bin, outcome metrics (every ratio
metric of the project's catalogue, ``params/metrics.yaml``, but those with a health metric's id)
per day (the 24 h window of the day). Every sample carries the ``experiment`` label.

>>> METRICS["error_rate"].step, METRICS["ctr"].step, METRICS["staleness_minutes"].labels
('5m', '1d', ('experiment', 'table'))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from expkit.catalogue import catalogue_for
from expkit.warehouse import BIN_MS, DAY_MS

LabelKey = tuple[tuple[str, str], ...]
"""A label set as sorted ``(name, value)`` pairs (hashable)."""


@dataclass(frozen=True)
class MetricInfo:
    """A metric alert rules can use.

    Attributes:
        name: the name rules write.
        step: ``5m`` (one sample per 5-minute bin) or ``1d`` (one per day).
        kind: ``window`` (measured over the step before the evaluation time) or ``point``
            (a state as of the evaluation time).
        labels: the labels its samples carry.
        unit: for people.
        description: what it measures and where it comes from.
    """

    name: str
    step: Literal["5m", "1d"]
    kind: Literal["window", "point"]
    labels: tuple[str, ...]
    unit: str
    description: str

    @property
    def step_ms(self) -> int:
        """The step in milliseconds."""
        return BIN_MS if self.step == "5m" else DAY_MS


def _m(name: str, step: Literal["5m", "1d"], kind: Literal["window", "point"], labels: tuple[str, ...],
       unit: str, description: str) -> MetricInfo:
    return MetricInfo(name, step, kind, ("experiment", *labels), unit, description)


HEALTH_NAMES = frozenset({"latency_p95_ms", "coverage", "topk_fill", "error_rate", "cache_hit_rate", "requests"})
"""Health metrics of the 5-minute bins: a ratio metric of the catalogue with one of these ids
(the coverage and error-rate guardrails) is not also an alert metric of the day."""

METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    _m("latency_p95_ms", "5m", "window", (), "ms",
       "p95 request latency of the bin, from the merged latency histogram (series.latency_quantiles)"),
    _m("coverage", "5m", "window", (), "ratio", "ok requests with >= 1 item / requests (series.health_counts)"),
    _m("topk_fill", "5m", "window", (), "ratio", "sum k_returned / sum k_requested (series.health_counts)"),
    _m("error_rate", "5m", "window", (), "ratio", "failed requests / requests (series.health_counts)"),
    _m("cache_hit_rate", "5m", "window", (), "ratio", "cache hits / requests (series.health_counts)"),
    _m("requests", "5m", "window", (), "count", "non-shadow requests in the bin"),
    _m("staleness_minutes", "5m", "point", ("table",), "min",
       "evaluation time - newest ingest_ms landed by then, per event table (ingest_bins)"),
    _m("arrival_delay_p95_minutes", "5m", "point", ("table",), "min",
       "p95 ingest delay of the rows that landed in the 5 minutes before the evaluation time"),
    _m("missing_hours", "5m", "point", ("table",), "hours",
       "complete hours of the last 24 h (ended >= 15 min ago, on days with rollups) without rows"),
    _m("validation_failed", "5m", "point", ("table", "check"), "flag",
       "1 for a failed validation check row passed to the evaluation (see docs/alerts.md)"),
    *(_m(mid, "1d", "window", ("bucket",), "ratio" if m.format == "percent" else m.format,
         f"{m.title} of the day per arm (outcome_stats, 24h; params/metrics.yaml)")
      # error_rate and coverage are also per-user ratios (guardrails); rules keep the 5-minute health ones
      for mid, m in catalogue_for(None).metrics.items() if m.kind == "ratio" and mid not in HEALTH_NAMES),
    _m("allocation_deviation", "1d", "window", (), "ratio",
       "largest |observed share / planned share - 1| over arms, users of the day (srm_test)"),
    _m("srm_pvalue", "1d", "window", (), "p", "SRM chi-square p-value of the day's users per arm (srm_test)"),
)}


@dataclass(frozen=True)
class Sample:
    """One metric value for one label set over ``[start_ms, end_ms)``, evaluated at ``end_ms``."""

    metric: str
    labels: LabelKey
    start_ms: int
    end_ms: int
    value: float

    @property
    def label_dict(self) -> dict[str, str]:
        """The labels as a dict."""
        return dict(self.labels)


def label_key(labels: dict[str, str]) -> LabelKey:
    """A hashable, order-independent label set."""
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def make_sample(metric: str, end_ms: int, value: float, **labels: str) -> Sample:
    """A sample of ``metric`` evaluated at ``end_ms`` (its window follows from the metric)."""
    info = METRICS[metric]
    start = end_ms - info.step_ms if info.kind == "window" else end_ms
    return Sample(metric, label_key(labels), int(start), int(end_ms), float(value))
