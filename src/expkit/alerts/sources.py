"""Where samples come from: the warehouse's rollups (batch replay and live monitor).

Health metrics are read through :mod:`expkit.series` (``health_counts`` for coverage, Top-K
fill, error and cache-hit rates; ``latency_quantiles`` for p95), outcome metrics through
:func:`expkit.readers.ratio_stats` and :func:`expkit.tiles.ratio.estimate_frame`, allocation
through :func:`expkit.stats.srm_test`, and freshness through :func:`ingest_freshness`, which
judges the ingest rollup *as of* each evaluation time (a replayed day is judged as of that
day, not as of today).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from expkit.alerts.metrics import METRICS, Sample, make_sample
from expkit.config import ExperimentConfig
from expkit.histogram import bucket_value, quantile_from_counts
from expkit.readers import ratio_stats, read_bins
from expkit.rollup import STATS_ROLLUP, manifest_path
from expkit.schema import EVENT_TABLES
from expkit.series import days_between, health_counts, latency_quantiles
from expkit.stats import srm_test
from expkit.tiles.base import TileParams
from expkit.tiles.ratio import estimate_frame
from expkit.warehouse import BIN_MS, DAY_MS, Warehouse

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
MISSING_HOUR_GRACE_MS = 15 * MINUTE_MS
"""An hour counts as missing once it ended this long ago without rows (the freshness SLO)."""
FRESHNESS_LOOKBACK_MS = DAY_MS
HEALTH_METRICS = ("coverage", "topk_fill", "error_rate", "cache_hit_rate", "requests")
FRESHNESS_METRICS = {"staleness_minutes": "staleness_ms", "arrival_delay_p95_minutes": "arrival_p95_ms",
                     "missing_hours": "missing_hours"}
OUTCOME_METRICS = ("ctr", "recall", "session_depth", "save_rate")


def ingest_freshness(
    wh: Warehouse,
    eval_ms: Sequence[int],
    tables: Sequence[str] = tuple(EVENT_TABLES),
    lookback_ms: int = FRESHNESS_LOOKBACK_MS,
    grace_ms: int = MISSING_HOUR_GRACE_MS,
    arrival_window_ms: int = BIN_MS,
) -> pd.DataFrame:
    """Freshness of each event table as of each evaluation time, from ``ingest_bins``.

    The rollup keeps, per table, 5-minute event bin and delay bucket, the row count and the
    newest ingest time. As of time ``t``:

    * ``staleness_ms`` = ``t`` − the newest ingest time of a group that had fully landed by
      ``t`` (the grain of ``series.ingest_quantiles(as_of_ms=t)``). It is never below the
      exact staleness, and at most the exact staleness as of ``t − Δ`` plus ``Δ``, with
      ``Δ`` = one bin + 2% of the delay (a group's rows land within that span); NaN when
      nothing landed in the lookback;
    * ``arrival_p95_ms`` = p95 ingest delay of the rows landing in ``(t − 5 min, t]`` (a
      group's landing time is estimated as bin middle + its delay, capped by its newest
      ingest); NaN when none landed;
    * ``arrived_rows`` = how many rows that was;
    * ``missing_hours`` = hours in the ``lookback`` before ``t`` that ended at least
      ``grace_ms`` before ``t``, on days whose rollups exist, with no row landed by ``t``
      (a missing partition makes every hour missing).

    Returns one row per evaluation time and table: ``t_ms, table, staleness_ms,
    arrival_p95_ms, arrived_rows, missing_hours``.
    """
    evals = np.asarray(sorted({int(t) for t in eval_ms}), dtype=np.int64)
    cols = ["t_ms", "table", "staleness_ms", "arrival_p95_ms", "arrived_rows", "missing_hours"]
    if evals.size == 0:
        return pd.DataFrame(columns=cols)
    days = days_between(int(evals[0]) - lookback_ms, int(evals[-1]))
    present = [d for d in days if wh.rollup_files("ingest_bins", [d])]
    df = read_bins(wh, "ingest_bins", present, select="event_table, bin_ms, idx, n, max_ingest_ms")
    hours = np.asarray([d0 + h * HOUR_MS for d0 in (_day_start(d) for d in present) for h in range(24)],
                       dtype=np.int64)
    out = []
    for table in tables:
        sub = df[df["event_table"] == table] if not df.empty else df
        out.append(_table_freshness(table, evals, sub, hours, lookback_ms, grace_ms, arrival_window_ms))
    return pd.concat(out, ignore_index=True)[cols]


def _day_start(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp() * 1000)


def _table_freshness(table: str, evals: np.ndarray, sub: pd.DataFrame, hours: np.ndarray, lookback_ms: int,
                     grace_ms: int, arrival_window_ms: int) -> pd.DataFrame:
    n_eval = evals.size
    staleness = np.full(n_eval, np.nan)
    arrival = np.full(n_eval, np.nan)
    arrived = np.zeros(n_eval, dtype=np.int64)
    first_landed = np.full(hours.size, np.inf)
    if not sub.empty:
        newest = sub["max_ingest_ms"].to_numpy(np.int64)
        bins = sub["bin_ms"].to_numpy(np.int64)
        idx = sub["idx"].to_numpy(np.int64)
        counts = sub["n"].to_numpy(np.int64)
        landed = np.minimum(newest, bins + BIN_MS // 2 + bucket_value(idx)).astype(np.int64)
        # Staleness: newest ingest among groups fully landed by t.
        newest_sorted = np.sort(newest)
        pos = np.searchsorted(newest_sorted, evals, side="right")
        last = np.where(pos > 0, newest_sorted[np.maximum(pos - 1, 0)], np.iinfo(np.int64).min)
        ok = (pos > 0) & (last >= evals - lookback_ms)
        staleness[ok] = (evals - last)[ok]
        # Arrival delay of what landed in the window before t.
        order = np.argsort(landed, kind="stable")
        landed_s, idx_s, counts_s = landed[order], idx[order], counts[order]
        lo = np.searchsorted(landed_s, evals - arrival_window_ms, side="right")
        hi = np.searchsorted(landed_s, evals, side="right")
        for i in np.flatnonzero(hi > lo):
            arrival[i] = quantile_from_counts(idx_s[lo[i]:hi[i]], counts_s[lo[i]:hi[i]], 0.95)
            arrived[i] = counts_s[lo[i]:hi[i]].sum()
        # First landing per hour of event time.
        hour_of = bins - bins % HOUR_MS
        firsts = pd.Series(landed).groupby(hour_of).min()
        where = np.searchsorted(hours, firsts.index.to_numpy(np.int64))
        inside = (where < hours.size) & (hours[np.minimum(where, hours.size - 1)] == firsts.index.to_numpy())
        first_landed[where[inside]] = firsts.to_numpy()[inside]
    ends = hours[None, :] + HOUR_MS
    due = (ends + grace_ms <= evals[:, None]) & (ends > evals[:, None] - lookback_ms)
    missing = (due & (first_landed[None, :] > evals[:, None])).sum(axis=1)
    return pd.DataFrame({
        "t_ms": evals, "table": table, "staleness_ms": staleness, "arrival_p95_ms": arrival,
        "arrived_rows": arrived, "missing_hours": missing,
    })


def eval_times(start_ms: int, end_ms: int, step_ms: int) -> list[int]:
    """Multiples of ``step_ms`` in ``(start_ms, end_ms]`` (the evaluation schedule)."""
    first = start_ms - start_ms % step_ms + step_ms
    return list(range(first, end_ms + 1, step_ms))


@dataclass(frozen=True)
class CheckRow:
    """A validation check row (spec §12 ``checks``) as the alert hook reads it."""

    name: str
    table: str | None
    status: str

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> CheckRow:
        """From a §12 check dict."""
        return cls(str(row.get("name", "")), row.get("table"), str(row.get("status", "")))


@dataclass
class WarehouseSource:
    """Samples from a warehouse's rollups for one experiment.

    ``checks`` is the hook for validation results: each check row (spec §12) becomes a
    ``validation_failed{table, check}`` sample (1 for ``fail``, else 0) at ``checks_at_ms``,
    the evaluation time the validation describes (for a day: its end).
    """

    wh: Warehouse
    config: ExperimentConfig
    params_file: Path
    checks: Sequence[CheckRow] = ()
    checks_at_ms: int | None = None
    _manifests: dict[dt.date, int | None] = field(default_factory=dict, repr=False)

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
        lo, hi = bins[0] - BIN_MS, bins[-1]
        names = [m for m in HEALTH_METRICS if m in wanted]
        if names:
            df = health_counts(self.wh, lo, hi, experiment_id=self.config.experiment_id)
            for row in df.itertuples(index=False):
                for m in names:
                    out.append(make_sample(m, int(row.bin_ms) + BIN_MS, getattr(row, m), **self._exp))
        if "latency_p95_ms" in wanted:
            q = latency_quantiles(self.wh, lo, hi, experiment_id=self.config.experiment_id)
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
            params = self._tile_params(day)
            stats = {m: ratio_stats(params, m, window="24h", day=day) for m in OUTCOME_METRICS
                     if m in wanted or (m == "session_depth" and {"allocation_deviation", "srm_pvalue"} & wanted)}
            for m, frame in stats.items():
                if m in wanted:
                    est = estimate_frame(frame)
                    for row in est[est["sum_den"] > 0].itertuples(index=False):
                        out.append(make_sample(m, t, float(row.estimate), bucket=str(row.bucket), **self._exp))
            if "session_depth" in stats:
                out += self._allocation(stats["session_depth"], t, wanted)
        return [s for s in out if math.isfinite(s.value)]

    def _allocation(self, session_depth: pd.DataFrame, t: int, wanted: set[str]) -> list[Sample]:
        # Users exposed that day per arm: every exposed user is a unit of session_depth.
        users = session_depth.set_index("bucket")["n"]
        arms = list(self.config.buckets)
        counts = np.asarray([float(users.get(a, 0)) for a in arms])
        if counts.sum() <= 0:
            return []
        res = srm_test(counts, [self.config.buckets[a] for a in arms], alpha=self.config.srm_pvalue_threshold)
        values = {"allocation_deviation": float(res.max_relative_deviation), "srm_pvalue": float(res.pvalue)}
        return [make_sample(m, t, v, **self._exp) for m, v in values.items() if m in wanted]

    def _tile_params(self, day: dt.date) -> TileParams:
        return TileParams(
            tile="alerts", event_date=day, window="24h", slice="bucket", filters={},
            buckets=list(self.config.buckets), config=self.config, params_file=self.params_file,
            warehouse=self.wh,
        )

    def built_at_ms(self, day: dt.date) -> int | None:
        """When the rollups of ``day`` were last built (``None`` if never)."""
        if day not in self._manifests:
            path = manifest_path(self.wh, day)
            built = None
            if path.is_file():
                try:
                    built = int(json.loads(path.read_text())["built_at_ms"])
                except (ValueError, KeyError, OSError):
                    built = None
            self._manifests[day] = built
        return self._manifests[day]

    def ready_until(self, start_ms: int, limit_ms: int, step_ms: int, settle_ms: int) -> int:
        """The last evaluation time in ``(start_ms, limit_ms]`` whose data is in the rollups.

        A time ``t`` is ready once the rollups of its day were built at least ``settle_ms``
        after ``t`` (so a live monitor never evaluates a bin from a rollup built before the
        bin's data had landed); evaluation stops at the first time that is not ready.
        """
        ready = start_ms
        for t in eval_times(start_ms, limit_ms, step_ms):
            day = dt.datetime.fromtimestamp((t - 1) / 1000, dt.timezone.utc).date()
            built = self.built_at_ms(day)
            if built is None or built < t + settle_ms:
                break
            ready = t
        return ready
