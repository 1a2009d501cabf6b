"""Where samples come from: the warehouse's rollups (batch replay and live monitor).

Health metrics are read through :mod:`expkit.series` (``health_counts`` for coverage, Top-K
fill, error and cache-hit rates; ``latency_quantiles`` for p95), outcome metrics through
:func:`expkit.readers.ratio_stats` and :func:`expkit.tiles.ratio.estimate_frame`, allocation
through :func:`expkit.stats.srm_test`, and freshness through
:func:`expkit.series.ingest_freshness`, which judges the ingest rollup *as of* each evaluation
time (a replayed day is judged as of that day, not as of today).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from expkit import incremental, lineage
from expkit.alerts.metrics import HEALTH_NAMES, METRICS, Sample, make_sample
from expkit.config import ExperimentConfig
from expkit.estimates import estimate_frame
from expkit.names import MINUTE_MS
from expkit.readers import ReadScope, ratio_stats
from expkit.rollup import STATS_ROLLUP, day_staleness, raw_built_at_ms, rollup_graph
from expkit.schema import EVENT_TABLES
from expkit.series import health_counts, ingest_freshness, latency_quantiles
from expkit.stats import srm_test
from expkit.warehouse import BIN_MS, DAY_MS, Warehouse

HEALTH_METRICS = ("coverage", "topk_fill", "error_rate", "cache_hit_rate", "requests")
FRESHNESS_METRICS = {"staleness_minutes": "staleness_ms", "arrival_delay_p95_minutes": "arrival_p95_ms",
                     "missing_hours": "missing_hours"}


def eval_times(start_ms: int, end_ms: int, step_ms: int) -> list[int]:
    """Multiples of ``step_ms`` in ``(start_ms, end_ms]`` (the evaluation schedule)."""
    first = start_ms - start_ms % step_ms + step_ms
    return list(range(first, end_ms + 1, step_ms))


@dataclass(frozen=True)
class CheckRow:
    """A validation check row (``checks`` of summary.json) as the alert hook reads it."""

    name: str
    table: str | None
    status: str

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> CheckRow:
        """From a summary.json check dict."""
        return cls(str(row.get("name", "")), row.get("table"), str(row.get("status", "")))


@dataclass
class WarehouseSource:
    """Samples from a warehouse's rollups for one experiment.

    ``checks`` is the hook for validation results: each check row (as in summary.json) becomes a
    ``validation_failed{table, check}`` sample (1 for ``fail``, else 0) at ``checks_at_ms``,
    the evaluation time the validation describes (for a day: its end).
    """

    wh: Warehouse
    config: ExperimentConfig
    params_file: Path
    checks: Sequence[CheckRow] = ()
    checks_at_ms: int | None = None
    health_experiment_id: str | None = None
    """Whose requests the 5-minute health metrics read (default: the experiment's own); the
    samples keep the experiment's label. A portfolio day sets the platform's
    (:func:`expkit.readers.platform_health_id`)."""
    _manifests: dict[dt.date, int | None] = field(default_factory=dict, repr=False)
    _has_events: dict[dt.date, bool] = field(default_factory=dict, repr=False)
    _graph: lineage.Graph = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._graph = rollup_graph(self.wh)

    def samples(self, metrics: Iterable[str], start_ms: int, end_ms: int) -> list[Sample]:
        """Samples of ``metrics`` evaluated at times in ``(start_ms, end_ms]``."""
        wanted = set(metrics)
        unknown = wanted - set(METRICS)
        if unknown:
            raise KeyError(f"unknown metrics {sorted(unknown)}")
        out: list[Sample] = []
        bins = eval_times(start_ms, end_ms, BIN_MS) if any(METRICS[m].step == "5m" for m in wanted) else []
        days = eval_times(start_ms, end_ms, DAY_MS) if any(METRICS[m].step == "1d" for m in wanted) else []
        if bins:
            out += self._health(wanted, bins)
            out += self._freshness(wanted, bins)
            out += self._validation(wanted, bins)
        if days:
            out += self._outcomes(wanted, days)
        return out

    @property
    def _exp(self) -> dict[str, str]:
        return {"experiment": self.config.experiment_id}

    def _health(self, wanted: set[str], bins: list[int]) -> list[Sample]:
        out: list[Sample] = []
        health_id = self.health_experiment_id or self.config.experiment_id
        lo, hi = bins[0] - BIN_MS, bins[-1]
        names = [m for m in HEALTH_METRICS if m in wanted]
        if names:
            df = health_counts(self.wh, lo, hi, experiment_id=health_id)
            for row in df.itertuples(index=False):
                for m in names:
                    # pandas-stubs type an itertuples field as any scalar; bin_ms is an integer column.
                    bin_ms = int(row.bin_ms)  # type: ignore[arg-type]
                    out.append(make_sample(m, bin_ms + BIN_MS, getattr(row, m), **self._exp))
        if "latency_p95_ms" in wanted:
            q = latency_quantiles(self.wh, lo, hi, experiment_id=health_id)
            q = q[q["cache"] == "all"]
            for b, p95 in zip(q["bin_ms"].to_numpy(np.int64), q["p95"].to_numpy(float), strict=True):
                out.append(make_sample("latency_p95_ms", int(b) + BIN_MS, p95, **self._exp))
        return [s for s in out if math.isfinite(s.value)]

    def _freshness(self, wanted: set[str], bins: list[int]) -> list[Sample]:
        names = [m for m in FRESHNESS_METRICS if m in wanted]
        if not names:
            return []
        df = ingest_freshness(self.wh, bins)
        out = []
        for m in names:
            col = df[FRESHNESS_METRICS[m]].to_numpy(float)
            scale = 1.0 if m == "missing_hours" else MINUTE_MS
            for t, table, v in zip(df["t_ms"].to_numpy(np.int64), df["table"], col, strict=True):
                if math.isfinite(v):
                    out.append(make_sample(m, int(t), v / scale, table=str(table), **self._exp))
        return out

    def _validation(self, wanted: set[str], bins: list[int]) -> list[Sample]:
        if "validation_failed" not in wanted or self.checks_at_ms not in bins:
            return []
        return [
            make_sample("validation_failed", int(self.checks_at_ms), 1.0 if c.status == "fail" else 0.0,
                        table=c.table or "", check=c.name, **self._exp)
            for c in self.checks
        ]

    def _outcomes(self, wanted: set[str], days: list[int]) -> list[Sample]:
        out: list[Sample] = []
        for t in days:
            day = dt.datetime.fromtimestamp((t - DAY_MS) / 1000, dt.timezone.utc).date()
            if not self.wh.rollup_files(STATS_ROLLUP, [day]):
                continue
            params = self._scope(day)
            outcome = [m for m in self.config.catalogue.ratio_ids if m in wanted and m not in HEALTH_NAMES]
            for m in outcome:
                est = estimate_frame(ratio_stats(params, m, window="24h", day=day))
                for row in est[est["sum_den"] > 0].itertuples(index=False):
                    out.append(make_sample(m, t, float(row.estimate), bucket=str(row.bucket), **self._exp))
            if {"allocation_deviation", "srm_pvalue"} & wanted:
                # every metric has a row per exposed user: the first one's n counts them
                users = ratio_stats(params, self.config.catalogue.ratio_ids[0], window="24h", day=day)
                out += self._allocation(users, t, wanted)
        return [s for s in out if math.isfinite(s.value)]

    def _allocation(self, stats: pd.DataFrame, t: int, wanted: set[str]) -> list[Sample]:
        # Users exposed that day per arm: every exposed user is a unit of every metric.
        users = stats.set_index("bucket")["n"]
        arms = list(self.config.buckets)
        counts = np.asarray([float(users.get(a, 0)) for a in arms])
        if counts.sum() <= 0:
            return []
        res = srm_test(counts, [self.config.buckets[a] for a in arms], alpha=self.config.srm_pvalue_threshold)
        values = {"allocation_deviation": float(res.max_relative_deviation), "srm_pvalue": float(res.pvalue)}
        return [make_sample(m, t, v, **self._exp) for m, v in values.items() if m in wanted]

    def _scope(self, day: dt.date) -> ReadScope:
        return ReadScope(event_date=day, window="24h", slice="bucket", filters={},
                         buckets=list(self.config.buckets), config=self.config, warehouse=self.wh)

    def built_at_ms(self, day: dt.date) -> int | None:
        """When the rollups of ``day`` were last built (``None`` if never, or if they are stale by
        the lineage rule of :func:`expkit.rollup.day_staleness`: not ready until rebuilt), or the
        time the incremental health rollups hold every landed file to (:mod:`expkit.incremental`),
        whichever is later."""
        if day not in self._manifests:
            built = raw_built_at_ms(self.wh, day)
            if built is not None and day_staleness(self.wh, day, self._graph).stale:
                built = None
            live = incremental.as_of_ms(self.wh, day)  # health rollups kept up to date by 'expkit live'
            if live is not None and (built is None or live > built):
                built = live
            self._manifests[day] = built
        return self._manifests[day]

    def ready_until(self, start_ms: int, limit_ms: int, step_ms: int, settle_ms: int) -> int:
        """The last evaluation time in ``(start_ms, limit_ms]`` whose data is in the rollups.

        A time ``t`` is ready once the rollups of its day were built at least ``settle_ms``
        after ``t`` (so a live monitor never evaluates a bin from a rollup built before the
        bin's data had landed); evaluation stops at the first time that is not ready. A day
        without any event file has nothing to wait for: its times are ready (a pipeline that
        stopped before midnight is judged stale on the next day instead of not judged at all).
        """
        ready = start_ms
        for t in eval_times(start_ms, limit_ms, step_ms):
            day = dt.datetime.fromtimestamp((t - 1) / 1000, dt.timezone.utc).date()
            built = self.built_at_ms(day)
            if built is None and not self.has_events(day):
                ready = t
                continue
            if built is None or built < t + settle_ms:
                break
            ready = t
        return ready

    def has_events(self, day: dt.date) -> bool:
        """Whether any event table has a file of ``day``."""
        if day not in self._has_events:
            self._has_events[day] = any(self.wh.event_files(t, day) for t in EVENT_TABLES)
        return self._has_events[day]
