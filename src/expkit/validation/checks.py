"""The validation checks (docs/validation.md, "Checks"), as data: one runner, one entry per check.

Every check reads raw events through the ``check_*`` SQL templates (run by an engine, never
loaded into pandas) or the rollup manifests, and returns :class:`CheckResult` rows. A check
belongs to the cheapest cadence that runs it; each cadence runs its own checks and those of
the cadences before it:

=========  ==========================================================================
``5m``     staleness, event_delay, partition_completeness, join_integrity
``hourly`` + schema, event_order, bucket_consistency, unique_ids, keys_not_null,
           values_in_range, late_data
``daily``  + rollup_freshness
=========  ==========================================================================

Time: ``now`` is when the data is judged. A day that has ended is judged, by default, as of
its end with every row present (late rows included); a live day, or any day with an explicit
``now``, sees only rows with ``ingest_ms <= now`` (what a check running at ``now`` saw).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from expkit import lineage
from expkit.config import ExperimentConfig
from expkit.engines import Engine
from expkit.errors import ExpkitError
from expkit.names import HOUR_MS, MINUTE_MS
from expkit.rollup import ROLLUP_NAMES, day_staleness, manifest_path, raw_built_at_ms, source_fingerprint
from expkit.schema import EVENT_TABLES, schema_problems
from expkit.validation.late import scan_late_data
from expkit.validation.query import event_sources, open_engine, rows, run_template
from expkit.validation.results import CADENCES, CheckResult, Thresholds
from expkit.warehouse import DAY_MS, Warehouse, day_bounds_ms, ms_to_iso

ALL_VISIBLE = 2**62
"""``visible_ms`` that hides nothing."""


def _pct(x: float) -> str:
    return f"{x:.2%}"


def _minutes(ms: float | None) -> float | None:
    return None if ms is None else round(float(ms) / MINUTE_MS, 2)


def _hhmm(ms: int) -> str:
    return ms_to_iso(ms)[11:16]


def _no_rows(name: str, table: str, threshold: float | int | None, what: str,
             facts: dict[str, Any]) -> CheckResult:
    """A check with nothing to judge (0 of 0 rows): a warning without a value, never a pass."""
    return CheckResult(name, table, "warn", None, threshold, f"no data: {what}; nothing to judge",
                       {**facts, "no_data": True})


@dataclass
class CheckContext:
    """One validation run's inputs and its cache of query results.

    Attributes:
        warehouse: the warehouse.
        day: the event date checked.
        now_ms: when the data is judged (staleness reference; only hours ended by then count).
        visible_ms: rows with a later ``ingest_ms`` have not landed yet (``ALL_VISIBLE``: all rows).
        thresholds: the limits.
        engine: runs the templates.
    """

    warehouse: Warehouse
    day: dt.date
    now_ms: int
    visible_ms: int
    thresholds: Thresholds
    engine: Engine
    _cache: dict[tuple[Any, ...], pa.Table] = field(default_factory=dict)
    _problems: dict[tuple[str, dt.date], dict[Path, list[str]]] = field(default_factory=dict)

    @property
    def start_ms(self) -> int:
        return day_bounds_ms(self.day)[0]

    @property
    def end_ms(self) -> int:
        return self.start_ms + DAY_MS

    @property
    def judged_ms(self) -> int:
        """The time staleness and complete hours refer to: ``now``, at most the end of the day."""
        return min(self.now_ms, self.end_ms)

    def days_back(self, n: int) -> list[dt.date]:
        """The ``n`` days before the checked day, oldest first."""
        return [self.day - dt.timedelta(days=i) for i in range(n, 0, -1)]

    def file_problems(self, table: str, day: dt.date) -> dict[Path, list[str]]:
        """The files of ``table`` on ``day`` that do not match ``expkit/schema.py`` → their problems
        (Parquet footers only; cached per run)."""
        key = (table, day)
        if key not in self._problems:
            found = {f: schema_problems(table, [f]) for f in self.warehouse.event_files(table, day)}
            self._problems[key] = {f: p for f, p in found.items() if p}
        return self._problems[key]

    def unjudged(self) -> dict[str, list[str]]:
        """Tables with files that do not match the schema on the checked day or the day before
        (where joins look for parents) → their problems. Queries leave such files out, as the
        rollups refuse them, so the checks of these tables are not judged (docs/validation.md)."""
        out = {}
        for table in EVENT_TABLES:
            problems = [p for d in (self.day - dt.timedelta(days=1), self.day)
                        for found in self.file_problems(table, d).values() for p in found]
            if problems:
                out[table] = problems
        return out

    def query(self, template: str, days: list[dt.date], **params: Any) -> list[dict[str, Any]]:
        """Run ``template`` over the event files of ``days`` that match the schema (cached per run)."""
        key = (template, tuple(days), tuple(sorted(params.items())))
        if key not in self._cache:
            skip = {f for t in EVENT_TABLES for d in days for f in self.file_problems(t, d)}
            sources = event_sources(self.warehouse, days, skip=skip)
            self._cache[key] = run_template(self.engine, template, sources, **params)
        return rows(self._cache[key])

    def profile(self) -> dict[str, dict[int, dict[str, Any]]]:
        """Rows and ingest delay per table and hour of the checked day (rows visible by now)."""
        got = self.query("check_hourly_profile", [self.day], start_ms=self.start_ms, end_ms=self.end_ms,
                         visible_ms=self.visible_ms, bin_ms=HOUR_MS)
        out: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in EVENT_TABLES}
        for r in got:
            out[r["event_table"]][int(r["bin_ms"])] = r
        return out

    def join_rows(self) -> dict[str, dict[str, Any]]:
        """Join integrity and order counts per relation (children of the checked day)."""
        got = self.query("check_join_integrity", [self.day - dt.timedelta(days=1), self.day],
                         start_ms=self.start_ms, end_ms=self.join_end_ms, visible_ms=self.visible_ms)
        return {r["relation"]: r for r in got}

    @property
    def join_end_ms(self) -> int:
        """Children younger than the settle time are left out while their day is live."""
        if self.visible_ms >= ALL_VISIBLE:
            return self.end_ms
        return max(self.start_ms, min(self.end_ms, self.visible_ms - int(self.thresholds.settle_min * MINUTE_MS)))

    def row_rules(self) -> dict[str, dict[str, Any]]:
        got = self.query("check_row_rules", [self.day], start_ms=self.start_ms, end_ms=self.end_ms,
                         visible_ms=self.visible_ms)
        return {r["event_table"]: r for r in got}


# --- the checks ---------------------------------------------------------------------------


def check_staleness(ctx: CheckContext) -> list[CheckResult]:
    """Now − newest ingest per table, when that silence is longer than the table's arrival rate explains."""
    th = ctx.thresholds
    # The day before only matters early in the day (its rows are older than the checked day's).
    days = [ctx.day] if ctx.judged_ms - ctx.start_ms >= 2 * HOUR_MS else [ctx.day - dt.timedelta(days=1), ctx.day]
    got = {r["event_table"]: r for r in ctx.query("check_staleness", days, visible_ms=ctx.judged_ms,
                                                   window_ms=HOUR_MS)}
    out = []
    for table in EVENT_TABLES:
        r = got.get(table)
        if r is None:
            out.append(CheckResult("staleness", table, "fail", None, th.staleness_min,
                                   f"no {table} rows had landed by {ms_to_iso(ctx.judged_ms)}",
                                   {"as_of": ms_to_iso(ctx.judged_ms)}))
            continue
        newest = int(r["newest_ingest_ms"])
        stale_min = max(0.0, (ctx.judged_ms - newest) / MINUTE_MS)
        expected = float(r["recent_rows"]) * stale_min / 60.0
        facts = {"as_of": ms_to_iso(ctx.judged_ms), "newest_ingest": ms_to_iso(newest),
                 "rows_last_hour": int(r["recent_rows"]), "expected_rows_in_gap": round(expected, 1)}
        base = (f"newest {table} row landed at {ms_to_iso(newest)}, "
                f"{stale_min:.1f} min before {ms_to_iso(ctx.judged_ms)}")
        if stale_min <= th.staleness_min:
            status, detail = "pass", f"{base} (limit {th.staleness_min:g} min)"
        elif expected >= th.stale_min_expected_rows:
            status = "fail"
            detail = (f"{base}: stale beyond {th.staleness_min:g} min; about {expected:,.0f} rows "
                      f"were expected in that time at the last hour's rate")
        else:
            status = "pass"
            detail = (f"{base}; the table is sparse ({int(r['recent_rows'])} rows in the hour before), "
                      f"so the silence is not evidence of staleness")
        out.append(CheckResult("staleness", table, status, round(stale_min, 2), th.staleness_min, detail, facts))
    return out


def check_event_delay(ctx: CheckContext) -> list[CheckResult]:
    """p95 of ``ingest_ms − timestamp_ms`` in every hour of the day, per table."""
    th = ctx.thresholds
    limit_ms = th.delay_p95_min * MINUTE_MS
    out = []
    for table, hours in ctx.profile().items():
        if not hours:
            out.append(_no_rows("event_delay", table, th.delay_p95_min,
                                f"no {table} rows for {ctx.day} (see partition_completeness)", {}))
            continue
        slow = [h for h, r in sorted(hours.items()) if r["p95_delay_ms"] > limit_ms]
        dense = [h for h in slow if hours[h]["n_rows"] >= th.min_rows_for_quantile]
        worst = max(hours, key=lambda h: hours[h]["p95_delay_ms"])
        worst_min = _minutes(hours[worst]["p95_delay_ms"])
        facts = {
            "worst_hour": ms_to_iso(worst), "worst_p95_min": worst_min,
            "max_delay_min": _minutes(max(r["max_delay_ms"] for r in hours.values())),
            "bad_hours": [ms_to_iso(h) for h in slow],
            "hours": [{"hour": ms_to_iso(h), "rows": int(hours[h]["n_rows"]),
                       "p95_min": _minutes(hours[h]["p95_delay_ms"])} for h in slow],
        }
        if not slow:
            status = "pass"
            detail = (f"p95 ingest delay within {th.delay_p95_min:g} min in every hour "
                      f"(worst {_hhmm(worst)}: {worst_min} min)")
        else:
            status = "fail" if dense else "warn"
            listed = ", ".join(f"{_hhmm(h)} {_minutes(hours[h]['p95_delay_ms'])} min ({int(hours[h]['n_rows']):,} rows)"
                               for h in slow[:6])
            more = f" and {len(slow) - 6} more" if len(slow) > 6 else ""
            detail = f"p95 ingest delay above {th.delay_p95_min:g} min in {len(slow)} hour(s): {listed}{more}"
            if not dense:
                detail += f" (each with fewer than {th.min_rows_for_quantile} rows)"
        out.append(CheckResult("event_delay", table, status, worst_min, th.delay_p95_min, detail, facts))
    return out


CHI2_1_MEDIAN = 0.454936423119572
"""Median of the χ² distribution with one degree of freedom (``scipy.stats.chi2.ppf(0.5, 1)``)."""


def count_dispersion(days: Sequence[Sequence[float]]) -> float:
    """How much more hourly counts vary than Poisson counts would: φ ≥ 1, robustly.

    ``days`` are the hourly counts of whole days, in hour order. Rows come in clusters (a
    session's impressions, a user's saves), so counts vary φ times more than Poisson. Two
    estimates, each the median of ratios that are about φ·χ²₁, divided by the median of χ²₁:

    * between days: the same hour on consecutive days, ``(a − b)² / (a + b)``;
    * within a day, where the usual count changes smoothly from hour to hour: the second
      difference, ``(x[h-1] − 2 x[h] + x[h+1])² / (x[h-1] + 4 x[h] + x[h+1])``.

    A median ignores a few broken hours. Each estimate errs high in its own case (between days
    when a whole previous day was low, an incident yesterday; within a day when the profile is
    not smooth, a table busy for a few hours only), so φ is the smaller of the two (the second
    difference alone with a single day), and at least 1.

    >>> count_dispersion([[100, 100, 100, 100]]), count_dispersion([[5, 5]])
    (1.0, 1.0)
    >>> round(count_dispersion([[100, 130, 100, 130, 100]]), 1)  # ratios 3600/720, 3600/660, 3600/720
    11.0
    >>> count_dispersion([[0, 50, 50, 0], [0, 50, 50, 0]])  # a pulse, the same on both days
    1.0
    """
    within = [(x[h - 1] - 2 * x[h] + x[h + 1]) ** 2 / den
              for x in days for h in range(1, len(x) - 1) if (den := x[h - 1] + 4 * x[h] + x[h + 1]) > 0]
    between = [(a - b) ** 2 / (a + b) for x, y in zip(days, days[1:], strict=False)
               for a, b in zip(x, y, strict=True) if a + b > 0]
    estimates = [statistics.median(r) / CHI2_1_MEDIAN for r in (within, between) if r]
    return max(1.0, min(estimates)) if estimates else 1.0


def count_shortfall_pvalue(observed: float, expected: float, dispersion: float) -> float:
    """P(a count as low as ``observed``) when ``expected`` rows were due, counts varying ``dispersion``
    times as much as Poisson counts: the Poisson lower tail in units of ``dispersion`` rows
    (quasi-Poisson), ``P(N ≤ observed/φ)`` for ``N ~ Poisson(expected/φ)``.

    >>> float(f"{count_shortfall_pvalue(12, 59, 1.0):.4g}")  # scipy.stats.poisson.cdf(12, 59)
    1.104e-13
    >>> round(count_shortfall_pvalue(0, 5, 1.0), 6)     # exp(-5)
    0.006738
    """
    from scipy.special import gammaincc

    return float(gammaincc(observed / dispersion + 1.0, expected / dispersion))


@dataclass(frozen=True)
class HourBaseline:
    """The usual rows of a table per hour of day: medians over the previous days that have it,
    and the dispersion of those days' hourly counts (:func:`count_dispersion`)."""

    days: int
    usual: dict[int, float]
    dispersion: float


def _hour_baseline(ctx: CheckContext) -> dict[str, HourBaseline]:
    """:class:`HourBaseline` per table (tables without a partition on any previous day are absent)."""
    prev = ctx.days_back(ctx.thresholds.baseline_days)
    got = ctx.query("check_hourly_rows", prev, start_ms=day_bounds_ms(prev[0])[0], end_ms=ctx.start_ms,
                    bin_ms=HOUR_MS) if prev else []
    counts = {(r["event_table"], int(r["bin_ms"])): int(r["n_rows"]) for r in got}
    out = {}
    for table in EVENT_TABLES:
        days = [day_bounds_ms(d)[0] for d in prev if ctx.warehouse.event_files(table, d)]
        if days:
            per_day = [[counts.get((table, d + h * HOUR_MS), 0) for h in range(24)] for d in days]
            out[table] = HourBaseline(len(days), {h: statistics.median(row[h] for row in per_day) for h in range(24)},
                                      count_dispersion(per_day))
    return out


def check_partition_completeness(ctx: CheckContext) -> list[CheckResult]:
    """The day's partition exists for every table and every (ended) hour has its usual rows.

    An hour fails when it has fewer than ``hour_min_share`` of its usual rows *and* so few
    that chance cannot explain it (:func:`count_shortfall_pvalue` below ``hour_alpha``, at the
    dispersion of the previous days' counts, :func:`count_dispersion`). An hour whose usual rows
    are too few for even an empty hour to be significant is "too few to judge" and passes.
    Without a previous day only an empty hour can fail: when a quarter of the day's mean hour
    (the dispersion then taken from the day itself) would make it significant. The rule is
    documented in docs/validation.md.
    """
    th = ctx.thresholds
    complete = [ctx.start_ms + i * HOUR_MS for i in range(24) if ctx.start_ms + (i + 1) * HOUR_MS <= ctx.judged_ms]
    profile, baseline = ctx.profile(), _hour_baseline(ctx)
    out = []
    for table in EVENT_TABLES:
        files = ctx.warehouse.event_files(table, ctx.day)
        if not files and complete:
            out.append(CheckResult("partition_completeness", table, "fail", 0, 24, (
                f"partition event_date={ctx.day} of {table} is missing "
                f"({ctx.warehouse.event_partition(table, ctx.day)})"), {"missing_partition": True}))
            continue
        hours, base = profile[table], baseline.get(table)
        rows = {h: int(hours[h]["n_rows"]) if h in hours else 0 for h in complete}
        day_mean = sum(int(r["n_rows"]) for r in hours.values()) / max(1, len(complete))
        dispersion = base.dispersion if base is not None else count_dispersion([list(rows.values())])
        bad: list[tuple[int, int, float | None]] = []  # hour, rows, usual rows (None: no history)
        low: list[tuple[int, int, float, float | None]] = []  # ... and the p-value (None: too few to judge)
        for h, n in rows.items():
            if base is not None:  # near-empty against the usual volume, beyond chance
                usual = base.usual[(h - ctx.start_ms) // HOUR_MS]
                if not n < th.hour_min_share * usual:
                    continue
                pvalue = count_shortfall_pvalue(n, usual, dispersion)
                if count_shortfall_pvalue(0, usual, dispersion) >= th.hour_alpha:
                    low.append((h, n, usual, None))  # too few to judge: not even an empty hour would be significant
                elif pvalue >= th.hour_alpha:
                    low.append((h, n, usual, pvalue))  # within chance
                else:
                    bad.append((h, n, usual))
            elif n == 0 and day_mean >= th.hour_min_baseline_rows and count_shortfall_pvalue(
                    0, th.hour_min_share * day_mean, dispersion) < th.hour_alpha:  # no history: only an empty hour
                bad.append((h, n, None))
        facts = {"hours_checked": len(complete), "baseline_days": base.days if base else 0,
                 "dispersion": round(dispersion, 3), "alpha": th.hour_alpha,
                 "bad_hours": [ms_to_iso(h) for h, _, _ in bad],
                 "hours": [{"hour": ms_to_iso(h), "rows": n, "usual": u} for h, n, u in bad],
                 "low_hours": [{"hour": ms_to_iso(h), "rows": n, "usual": u, "pvalue": p} for h, n, u, p in low]}
        ok_hours = len(complete) - len(bad)
        against = "the same hour's median on previous days" if base else "the day's own volume (no history)"
        few = (f"; {len(low)} low hour(s) within chance ("
               + ", ".join(f"{_hhmm(h)} {n:,} vs usual {u:,.0f}: "
                           + ("too few rows to judge" if p is None else f"p = {p:.2g}") for h, n, u, p in low[:3])
               + f"{' …' if len(low) > 3 else ''}; counts vary {dispersion:.1f}x Poisson)") if low else ""
        if not bad:
            detail = (f"partition present; {len(complete)} of 24 hours ended, each with its usual rows "
                      f"(compared with {against}){few}") if complete else "no hour of the day has ended yet"
            status = "pass"
        else:
            status = "fail"
            listed = ", ".join(f"{_hhmm(h)} {n:,} rows" + (f" vs usual {u:,.0f}" if u is not None else "")
                               for h, n, u in bad[:6])
            detail = (f"{len(bad)} missing or near-empty hour(s) (< {th.hour_min_share:.0%} of {against}, "
                      f"p < {th.hour_alpha:g}): {listed}{' …' if len(bad) > 6 else ''}{few}")
        out.append(CheckResult("partition_completeness", table, status, ok_hours, len(complete), detail, facts))
    return out


_RELATIONS = {"clicks": "impressions", "saves": "impressions", "impressions": "requests"}
_KEYS = {"impressions": "(request_id, item_id)", "requests": "request_id"}


def _orphan_sample(ctx: CheckContext) -> dict[str, list[list[int | None]]]:
    got = ctx.query("check_orphan_sample", [ctx.day - dt.timedelta(days=1), ctx.day], start_ms=ctx.start_ms,
                    end_ms=ctx.join_end_ms, visible_ms=ctx.visible_ms, sample_size=ctx.thresholds.sample_size)
    out: dict[str, list[list[int | None]]] = {}
    for r in got:
        key = [r["request_id"]] if r["item_id"] is None else [r["request_id"], r["item_id"]]
        out.setdefault(r["relation"], []).append(key)
    return out


def check_join_integrity(ctx: CheckContext) -> list[CheckResult]:
    """Share of clicks, saves and impressions whose parent event exists (≥ 99%)."""
    th = ctx.thresholds
    joins = ctx.join_rows()
    sample = _orphan_sample(ctx) if any(r["orphans"] for r in joins.values()) else {}
    out = []
    for child, parent in _RELATIONS.items():
        r = joins.get(child, {"n_rows": 0, "orphans": 0})
        n, orphans = int(r["n_rows"]), int(r["orphans"] or 0)
        rate = orphans / n if n else 0.0
        keys = sample.get(child, [])
        facts = {"parent": parent, "rows": n, "orphans": orphans, "orphan_rate": rate, "integrity": 1 - rate,
                 "sample_keys": keys}
        if not n:
            out.append(_no_rows("join_integrity", child, round(1 - th.join_min, 6),
                                f"no {child} rows of {ctx.day} to look up in {parent}", facts))
            continue
        what = f"{child}→{parent}: {orphans:,} of {n:,} {child} have no {parent[:-1]} with the same {_KEYS[parent]}"
        if keys:
            what += "; e.g. " + ", ".join(str(tuple(k)) if len(k) > 1 else str(k[0]) for k in keys)
        if 1 - rate < th.join_min:
            status = "fail"
        elif rate > th.orphan_warn_rate:
            status = "warn"
        else:
            status = "pass"
        detail = f"{what} (orphan rate {_pct(rate)}, integrity {_pct(1 - rate)}; required ≥ {th.join_min:.0%})"
        out.append(CheckResult("join_integrity", child, status, rate, round(1 - th.join_min, 6), detail, facts))
    return out


def check_schema(ctx: CheckContext) -> list[CheckResult]:
    """Every event file of the day has the columns and types of ``expkit/schema.py`` (footers only)."""
    out = []
    for table in EVENT_TABLES:
        files = ctx.warehouse.event_files(table, ctx.day)
        problems = schema_problems(table, files)
        detail = ("; ".join(problems[:3]) + (" …" if len(problems) > 3 else "")) if problems else (
            f"{len(files)} file(s) have every column of expkit/schema.py (extra columns are ignored)")
        out.append(CheckResult("schema", table, "fail" if problems else "pass", len(problems), 0, detail,
                               {"problems": problems}))
    return out


def check_event_order(ctx: CheckContext) -> list[CheckResult]:
    """Clicks and saves after their impression, impressions not before their request."""
    th = ctx.thresholds
    out = []
    for child, parent in _RELATIONS.items():
        r = ctx.join_rows().get(child, {"n_rows": 0, "orphans": 0, "before_parent": 0})
        joined = int(r["n_rows"]) - int(r["orphans"] or 0)
        early = int(r["before_parent"] or 0)
        facts = {"parent": parent, "rows": joined, "before_parent": early}
        if not joined:
            out.append(_no_rows("event_order", child, th.order_fail_rate,
                                f"no {child} of {ctx.day} with their {parent[:-1]}", facts))
            continue
        rate = early / joined
        status = "fail" if rate > th.order_fail_rate else "warn" if early else "pass"
        detail = (f"{early:,} of {joined:,} {child} are timestamped before their {parent[:-1]} "
                  f"({_pct(rate)}; fails above {_pct(th.order_fail_rate)})")
        out.append(CheckResult("event_order", child, status, rate, th.order_fail_rate, detail, facts))
    return out


def check_bucket_consistency(ctx: CheckContext) -> list[CheckResult]:
    """Every user is in one bucket per experiment (requests and impressions of the day)."""
    got = ctx.query("check_bucket_consistency", [ctx.day], start_ms=ctx.start_ms, end_ms=ctx.end_ms,
                    visible_ms=ctx.visible_ms)
    if not got:
        return [CheckResult("bucket_consistency", "requests", "pass", 0, 0, f"no users on {ctx.day}")]
    out = []
    for r in got:
        mixed, users = int(r["mixed_users"] or 0), int(r["users"])
        facts = {"experiment_id": r["experiment_id"], "users": users, "mixed_users": mixed,
                 "example_user_id": r["example_user_id"]}
        detail = f"experiment {r['experiment_id']}: {mixed:,} of {users:,} users appear in more than one bucket"
        if mixed:
            detail += f" (e.g. user_id {r['example_user_id']})"
        out.append(CheckResult("bucket_consistency", "requests", "fail" if mixed else "pass", mixed, 0, detail, facts))
    return out


def check_unique_ids(ctx: CheckContext) -> list[CheckResult]:
    """Event ids (schema.EVENT_ID; impressions by request and item) are unique; duplicates counted."""
    got = ctx.query("check_duplicates", [ctx.day], start_ms=ctx.start_ms, end_ms=ctx.end_ms,
                    visible_ms=ctx.visible_ms, sample_size=ctx.thresholds.sample_size)
    total = {t: sum(int(r["n_rows"]) for r in hours.values()) for t, hours in ctx.profile().items()}
    out = []
    for table in EVENT_TABLES:
        dups = [r for r in got if r["event_table"] == table]
        extra = int(dups[0]["extra_rows"]) if dups else 0
        keys = int(dups[0]["duplicated_keys"]) if dups else 0
        sample = [[r["key1"]] if r["key2"] is None else [r["key1"], r["key2"]] for r in dups]
        rate = extra / total[table] if total[table] else 0.0
        facts = {"duplicate_rows": extra, "duplicated_keys": keys, "rows": total[table], "duplicate_rate": rate,
                 "sample_keys": sample}
        if not total[table]:
            out.append(_no_rows("unique_ids", table, 0, f"no {table} rows on {ctx.day}", facts))
            continue
        id_name = "(request_id, item_id)" if table == "impressions" else "id"
        detail = f"{extra:,} duplicate {table} rows ({keys:,} {id_name}s seen more than once, {_pct(rate)} of rows)"
        if sample:
            detail += "; e.g. " + ", ".join(str(tuple(k)) if len(k) > 1 else str(k[0]) for k in sample)
        out.append(CheckResult("unique_ids", table, "fail" if extra else "pass", extra, 0, detail, facts))
    return out


RANGE_RULES: dict[str, str] = {
    "ingest_before_event": "ingest_ms < timestamp_ms",
    "outside_partition": "timestamp_ms outside the partition's day",
    "k_returned": "k_returned not in 0..k_requested (or k_requested < 1)",
    "latency": "latency_ms negative or NaN",
    "fallback_level": "fallback_level not in 0-3",
    "status": "status not ok/error",
    "position": "position < 1",
    "source": "source not rec/search/browse/continue",
}
"""Column of ``check_row_rules`` → the rule it counts (values in range)."""


def check_keys_not_null(ctx: CheckContext) -> list[CheckResult]:
    """No null ids, user, session, time or bucket."""
    out = []
    for table in EVENT_TABLES:
        r = ctx.row_rules().get(table, {"n_rows": 0, "null_keys": 0})
        bad = int(r["null_keys"] or 0)
        facts = {"rows": int(r["n_rows"]), "null_key_rows": bad}
        if not facts["rows"]:
            out.append(_no_rows("keys_not_null", table, 0, f"no {table} rows on {ctx.day}", facts))
            continue
        out.append(CheckResult("keys_not_null", table, "fail" if bad else "pass", bad, 0,
                               f"{bad:,} of {int(r['n_rows']):,} {table} rows have a null key column", facts))
    return out


def check_values_in_range(ctx: CheckContext) -> list[CheckResult]:
    """Per-row value rules of :data:`RANGE_RULES` (position ≥ 1, k_returned ≤ k_requested, …)."""
    out = []
    for table in EVENT_TABLES:
        r = ctx.row_rules().get(table, {"n_rows": 0})
        broken = {rule: int(r.get(rule) or 0) for rule in RANGE_RULES}
        broken = {k: v for k, v in broken.items() if v}
        total = sum(broken.values())
        if not int(r["n_rows"]):
            out.append(_no_rows("values_in_range", table, 0, f"no {table} rows on {ctx.day}",
                                {"rows": 0, "violations": broken}))
            continue
        detail = (f"{total:,} rule violations in {int(r['n_rows']):,} {table} rows: "
                  + "; ".join(f"{RANGE_RULES[k]}: {v:,}" for k, v in broken.items())) if total else (
            f"all {int(r['n_rows']):,} {table} rows within range")
        out.append(CheckResult("values_in_range", table, "fail" if total else "pass", total, 0, detail,
                               {"rows": int(r["n_rows"]), "violations": broken}))
    return out


def check_late_data(ctx: CheckContext) -> list[CheckResult]:
    """Rows that landed after their day was rolled up, over the checked day and the days before."""
    th = ctx.thresholds
    days = [*ctx.days_back(th.late_lookback_days), ctx.day]
    scan = scan_late_data(ctx.warehouse, ctx.engine, days)
    total = sum(d.total_late_rows for d in scan.late)
    facts = {"affected_dates": [d.isoformat() for d in scan.affected_dates],
             "dates": [d.to_dict() for d in scan.late],
             "not_rolled_up": [d.isoformat() for d in scan.not_rolled_up if d < ctx.day],
             "days_scanned": [days[0].isoformat(), days[-1].isoformat()]}
    if not scan.late:
        status = "pass"
        detail = f"no rows landed after the rollups of {days[0]} to {days[-1]}"
    else:
        status = "fail" if total else "warn"
        parts = []
        for d in scan.late:
            per_table = ", ".join(f"{t} {n:,}" for t, n in d.late_rows.items() if n)
            files = f"{len(d.files)} file(s) new or changed"
            parts.append(f"{d.day}: {d.total_late_rows:,} rows ({f'{per_table}; ' if per_table else ''}{files})")
        first, last = min(scan.affected_dates), max(scan.affected_dates)
        detail = (f"late data after the rollup: {'; '.join(parts)}; rebuild with "
                  f"'expkit rollup --backfill --date {first} --to {last}'")
    earlier = [d for d in scan.not_rolled_up if d < ctx.day]  # the checked day's own rollup: rollup_freshness
    if earlier:
        detail += f"; never rolled up: {', '.join(d.isoformat() for d in earlier)}"
    return [CheckResult("late_data", "all", status, total, 0, detail, facts)]


def check_rollup_freshness(ctx: CheckContext) -> list[CheckResult]:
    """Rollups of the day exist and are not stale by the lineage rule (:func:`expkit.rollup.day_staleness`):
    its event files unchanged since the build, every table present, and its window statistics
    built from the current rollups of every day they read."""
    wh, day = ctx.warehouse, ctx.day
    path = manifest_path(wh, day)
    if not path.is_file():
        return [CheckResult("rollup_freshness", "all", "fail", None, 0,
                            f"no rollup of {day} (manifest {path} missing); run 'expkit rollup --date {day}'",
                            {"manifest": False})]
    state = day_staleness(wh, day)
    built = raw_built_at_ms(wh, day) or 0
    missing = [*state.raw.missing_outputs, *state.stats.missing_outputs]
    changes = [c for c in state.raw.changes]
    current = source_fingerprint(wh, day)
    newest_mtime = lineage.newest_ms(current) or 0
    behind_min = max(0.0, (newest_mtime - built) / MINUTE_MS)
    stats_inputs = [f"{c.input} ({c.change})" for c in state.stats.changes] + [
        f"{i} (stale)" for i in state.stats.stale_inputs]
    changed_files = [f"{c.input.split('/')[1]}/{c.name} ({c.change})" for c in changes]
    stale_inputs = sorted(set(stats_inputs))
    facts = {"built_at": ms_to_iso(built), "newest_event_file": ms_to_iso(newest_mtime) if newest_mtime else None,
             "missing_rollups": missing, "changed_files": changed_files, "stale_stats_inputs": stale_inputs}
    problems = []
    if missing:
        problems.append(f"rollup table(s) {', '.join(missing)} missing")
    if changes:
        problems.append(f"{len(changes)} event file(s) changed since the build, e.g. {changed_files[0]}")
    elif behind_min > 0:
        problems.append(f"event files are {behind_min:.1f} min newer than the build")
    if state.stats.stale and not state.stats.built:
        problems.append("its window statistics record no inputs (built by an older version)")
    elif stats_inputs:
        problems.append(f"its window statistics read {len(stale_inputs)} rollup partition(s) "
                        f"that changed, appeared or are stale since, e.g. {stale_inputs[0]}")
    if problems:
        detail = f"rollups of {day} built {ms_to_iso(built)} are out of date: " + "; ".join(problems) + (
            f"; run 'expkit rollup --backfill --date {day}'")
        value = len(changes) + len(missing) + len(stats_inputs) + int(not state.stats.built)
        return [CheckResult("rollup_freshness", "all", "fail", value, 0, detail, facts)]
    n_files = sum(len(v) for v in current.values())
    detail = (f"all {len(ROLLUP_NAMES)} rollups of {day} built {ms_to_iso(built)}, "
              f"after the last change to its {n_files} event files")
    return [CheckResult("rollup_freshness", "all", "pass", 0, 0, detail, facts)]


@dataclass(frozen=True)
class CheckDef:
    """One check: its name, the cheapest cadence that runs it, what it verifies, and its code."""

    name: str
    cadence: str
    description: str
    run: Callable[[CheckContext], list[CheckResult]]


CHECKS: tuple[CheckDef, ...] = (
    CheckDef("staleness", "5m", "now − newest ingest per table ≤ 15 min", check_staleness),
    CheckDef("event_delay", "5m", "p95 ingest delay of every hour ≤ 15 min, per table", check_event_delay),
    CheckDef("partition_completeness", "5m", "partition present; every hour has its usual rows",
             check_partition_completeness),
    CheckDef("join_integrity", "5m", "clicks/saves→impressions, impressions→requests ≥ 99%", check_join_integrity),
    CheckDef("schema", "hourly", "event files have the columns and types of expkit/schema.py", check_schema),
    CheckDef("event_order", "hourly", "a click or save comes after its impression", check_event_order),
    CheckDef("bucket_consistency", "hourly", "a user stays in one bucket", check_bucket_consistency),
    CheckDef("unique_ids", "hourly", "event ids are unique (duplicates counted)", check_unique_ids),
    CheckDef("keys_not_null", "hourly", "key columns are never null", check_keys_not_null),
    CheckDef("values_in_range", "hourly", "position ≥ 1, k_returned ≤ k_requested, latency ≥ 0, …",
             check_values_in_range),
    CheckDef("late_data", "hourly", "no rows landed after their day was rolled up", check_late_data),
    CheckDef("rollup_freshness", "daily", "rollups exist and are newer than the day's raw data",
             check_rollup_freshness),
)
"""Every check, in the order results are reported."""


def checks_for(cadence: str) -> list[CheckDef]:
    """The checks a cadence runs (its own and those of the faster cadences)."""
    if cadence not in CADENCES:
        raise ExpkitError(f"unknown cadence {cadence!r}; choose one of {list(CADENCES)}")
    level = CADENCES.index(cadence)
    return [c for c in CHECKS if CADENCES.index(c.cadence) <= level]


def _first_line(text: str) -> str:
    r"""The first line of a (possibly multi-line engine) error message.

    >>> _first_line('Binder Error: Referenced column "item_id" not found!\nCandidate bindings: ...')
    'Binder Error: Referenced column "item_id" not found!'
    """
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _not_judged(result: CheckResult, unjudged: dict[str, list[str]]) -> CheckResult:
    """``result`` replaced by a failure saying why it was not judged, when its table (or the
    parent table of a join) has files that do not match the schema."""
    table = next((t for t in (result.table, result.facts.get("parent")) if t in unjudged), None)
    if table is None:
        return result
    problems = unjudged[table]
    whose = "" if table == result.table else f"its parent table {table}: "
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return CheckResult(result.name, result.table, "fail", None, result.threshold,
                       f"not judged: {whose}{_first_line(problems[0])}{more}",
                       {"not_judged": True, "schema_problems": problems[:5]})


def _run_one(check: CheckDef, ctx: CheckContext) -> list[CheckResult]:
    """A check's results; unreadable data (an :class:`ExpkitError`) fails that check only, with
    the first line of the error (the whole error is in ``facts``). Results of tables with
    files that do not match the schema are not judged (see :meth:`CheckContext.unjudged`)."""
    try:
        results = check.run(ctx)
    except ExpkitError as err:
        return [CheckResult(check.name, "all", "fail", None, None, f"check could not run: {_first_line(str(err))}",
                            {"error": str(err)})]
    if check.name == "schema":
        return results
    unjudged = ctx.unjudged()
    return [_not_judged(r, unjudged) for r in results]


def resolve_now(day: dt.date, now: dt.datetime | int | None, wall_ms: int | None = None) -> tuple[int, int]:
    """``(now_ms, visible_ms)`` for checking ``day``: see the module docstring."""
    start, end = day_bounds_ms(day)
    if now is None:
        wall = int(time.time() * 1000) if wall_ms is None else wall_ms
        return (end, ALL_VISIBLE) if wall >= end else (wall, wall)
    if isinstance(now, dt.datetime):
        aware = now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)
        now = int(aware.timestamp() * 1000)
    return int(now), int(now)


def run_checks(
    warehouse: Warehouse | str,
    day: dt.date | str,
    now: dt.datetime | int | None = None,
    cadence: str = "daily",
    config: ExperimentConfig | None = None,
    *,
    thresholds: Thresholds | None = None,
    engine: Engine | None = None,
) -> list[CheckResult]:
    """Run the checks of ``cadence`` for ``day`` and return their results (nothing is stored).

    Args:
        warehouse: warehouse folder (or :class:`~expkit.warehouse.Warehouse`).
        day: the event date checked.
        now: when the data is judged (datetime, naive = UTC, or epoch ms); default: the end of
            ``day`` if it has ended, else the wall clock.
        cadence: ``5m``, ``hourly`` or ``daily`` (all checks).
        config: the experiment (its freshness SLO sets the delay and staleness limits).
        thresholds: override every limit at once.
        engine: an open engine to reuse (default: a DuckDB engine for this call).
    """
    from expkit.warehouse import parse_date

    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse.open(warehouse)
    day = parse_date(day)
    selected = checks_for(cadence)
    now_ms, visible_ms = resolve_now(day, now)
    eng = engine or open_engine()
    ctx = CheckContext(wh, day, now_ms, visible_ms, thresholds or Thresholds.from_config(config), eng)
    try:
        return [result for check in selected for result in _run_one(check, ctx)]
    finally:
        if engine is None:
            eng.close()
