"""The data freshness tile: ingest delay per event table, staleness, partitions and hours present.

Reads ``ingest_bins`` (a log-scale histogram of ``ingest_ms - timestamp_ms`` per table and
5-minute bin of event time, every row counted, shadow included: freshness is about the
pipeline). Validation results (docs/validation.md) are shown and folded into the status when the caller
passes them as ``checks``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from expkit.errors import ExpkitError
from expkit.names import HOUR_MS
from expkit.schema import EVENT_TABLES
from expkit.series import ingest_freshness, ingest_quantiles
from expkit.tiles.base import OMIT_NONE, TileParams, TileResult
from expkit.tiles.common import data_as_of, no_data_result
from expkit.tiles.health_core import (
    MIN_QUANTILE_REQUESTS,
    SECTION,
    Health,
    HealthContext,
    Metric,
    Rule,
    alert_limit,
    bin_frame_times,
    health_result,
    judge,
    metric_chart,
    render_health,
    same_time_baseline,
    status_words,
    summary_table,
)
from expkit.warehouse import DAY_MS, day_bounds_ms, ms_to_iso

MIN_EXPECTED_ROWS = 10
"""An empty hour counts as missing when it usually holds at least this many rows (P(0) < 1e-4)."""
CHECK_LEVEL = {"fail": "breach", "warn": "warn"}
BASELINE_DAYS = 7
"""The usual rows per hour of a table: the same hour on the previous 7 days."""

DELAY_P95 = Metric("p95_min", "p95 ingest delay", n="n", fmt=".1f", unit=" min", min_n=MIN_QUANTILE_REQUESTS)
DELAY_MAX = Metric("max_min", "max ingest delay", n="n", fmt=".1f", unit=" min", min_n=1)
STALENESS = Metric("staleness_min", "staleness", n="usual_last_hour", fmt=".1f", unit=" min",
                   min_n=4 * MIN_EXPECTED_ROWS)
"""Staleness is judged for tables that usually land ≥ 10 rows per 15 minutes at the window's end
(a quiet table is stale by chance)."""


def check_freshness_params(p: TileParams) -> None:
    """The freshness tile is per event table: refuse filters (before a kernel starts, from ``expkit tile``)."""
    if p.filters:
        raise ExpkitError(
            f"the freshness tile is per event table; filters ({sorted(p.filters)}) do not apply: remove them"
        )


@dataclass(frozen=True)
class TableFreshness:
    """One event table's freshness over the window.

    Attributes:
        rows: rows of the window; p50_min, p95_min, p99_min, max_min: ingest delay (minutes).
        staleness_min: report time − newest ingest (minutes).
        gaps: missing partitions and hours.
    """

    rows: int
    p50_min: float
    p95_min: float
    p99_min: float
    max_min: float
    staleness_min: float
    gaps: int


@dataclass(frozen=True)
class Gap:
    """A missing partition or hour: the table (``series``), its start time (ISO) and the rule."""

    series: str
    time: str
    rule: str


@dataclass(frozen=True)
class FreshnessValues:
    """The freshness tile's own numbers over the window.

    Attributes:
        report_time: the time staleness is measured at (ISO).
        threshold_min: ``slos.freshness_max_min``.
        tables: event table → :class:`TableFreshness`.
        max_staleness_min, max_p95_delay_min: the worst over tables.
        gaps: the missing partitions and hours (at most 200).
        validation: ``pass``, ``warn``, ``fail`` → validation checks with that status (``None``,
            no headline key, when no results were passed to the tile).
    """

    report_time: str
    threshold_min: float
    tables: dict[str, TableFreshness]
    max_staleness_min: float
    max_p95_delay_min: float
    gaps: list[Gap]
    validation: dict[str, int] | None = field(default=None, metadata=OMIT_NONE)


def compute_freshness(
    ctx: HealthContext, checks: Sequence[Mapping[str, Any]] | None = None
) -> Health[FreshnessValues] | None:
    """Ingest delay per bin and table, staleness, partitions and hours present, validation,
    judged; ``None`` without ``ingest_bins`` rows."""
    p = ctx.p
    s = p.config.slos
    limit = float(s.freshness_max_min)
    report_ms = ctx.report_ms
    wh = p.warehouse
    bins = ingest_quantiles(wh, ctx.start_ms, ctx.end_ms)
    if bins.empty:
        return None
    bins = _minutes(bins.rename(columns={"event_table": "series"}))
    window = _minutes(ingest_quantiles(wh, ctx.start_ms, ctx.end_ms, per_bin=False, as_of_ms=report_ms)
                      .rename(columns={"event_table": "series"}))
    window["staleness_min"] = np.maximum(report_ms - window["newest_ingest_ms"].astype(float), 0) / 60_000
    hours, gaps = _hours_present(ctx)
    last = hours[hours["bin_ms"] == ctx.hours_end - HOUR_MS].set_index("series")["usual"]
    window["usual_last_hour"] = window["series"].map(last).fillna(0.0)
    stale_limit = alert_limit(p, "data_stale", limit)
    rules = [
        Rule(DELAY_P95, "above", limit, "breach", "bin", "event_delay_p95"),
        Rule(DELAY_MAX, "above", limit, "warn", "bin", "event_delay_max"),
        Rule(STALENESS, "above", stale_limit, "breach", "window", "data_stale"),
        Rule(DELAY_P95, "above", limit, "warn", "window", "slo_event_delay"),
    ]
    check_rows = _check_findings(checks or [])
    j = judge(bins, window, rules, extra=[*gaps, *check_rows])
    missing = pd.DataFrame(gaps)
    by_table = missing.groupby("series").size() if len(missing) else pd.Series(dtype=int)
    per_table = {
        r["series"]: TableFreshness(rows=int(r["n"]), p50_min=r["p50_min"], p95_min=r["p95_min"],
                                    p99_min=r["p99_min"], max_min=r["max_min"], staleness_min=r["staleness_min"],
                                    gaps=int(by_table.get(r["series"], 0)))
        for r in window.to_dict("records")
    }
    frames = {"window": window, "hours": hours, "missing": missing}
    validation = None
    if checks is not None:
        cdf = pd.DataFrame([dict(c) for c in checks])
        frames["checks"] = cdf
        counts = cdf["status"].value_counts().to_dict() if "status" in cdf else {}
        validation = {k: int(counts.get(k, 0)) for k in ("pass", "warn", "fail")}
    values = FreshnessValues(
        report_time=ms_to_iso(report_ms), threshold_min=limit, tables=per_table,
        max_staleness_min=float(window["staleness_min"].max()), max_p95_delay_min=float(window["p95_min"].max()),
        gaps=[Gap(g["series"], g["time"], g["rule"]) for g in gaps[:200]], validation=validation,
    )
    notes = ["Staleness = report time − newest ingest time (report time: the end of the day for a past date)."]
    if checks is None:
        notes.append("Validation results are not shown: none were passed to the tile.")
    if p.buckets and set(p.buckets) != set(p.config.buckets):
        notes.append("Freshness covers every arm: the buckets parameter does not apply.")
    return health_result(ctx, j, values, rules, notes, frames)


def render_freshness(p: TileParams, h: Health[FreshnessValues]) -> TileResult:
    """The freshness tile's page: delay charts, rows per hour, the table per event table, gaps, checks."""
    j, v = h.judgement, h.values
    window, missing = h.frames["window"], h.frames["missing"]
    charts = [
        metric_chart(j.bins, DELAY_P95, h.judged_by,
                     "p95 ingest delay per 5-minute bin of event time, per table (min)"),
        metric_chart(j.bins, DELAY_MAX, h.judged_by, "Largest ingest delay per 5-minute bin, per table (min)"),
        _rows_chart(h.frames["hours"]),
    ]
    window = window.copy()
    window["newest ingest"] = window["newest_ingest_ms"].map(lambda t: ms_to_iso(t) if pd.notna(t) else None)
    window["gaps (days/hours missing)"] = [v.tables[t].gaps for t in window["series"]]
    table = summary_table(
        window.rename(columns={"n": "rows"}).assign(n=window["n"]), j,
        [Metric("p50_min", "p50 delay", fmt=".2f", unit=" min"), DELAY_P95,
         Metric("p99_min", "p99 delay", fmt=".2f", unit=" min"), DELAY_MAX, STALENESS],
        "table", extra_cols=["rows", "newest ingest", "gaps (days/hours missing)"],
    )
    summary = (f"p95 ingest delay ≤ {v.max_p95_delay_min:.1f} min, staleness ≤ {v.max_staleness_min:.1f} min "
               f"(threshold {v.threshold_min:g} min), {len(missing)} gap(s); {status_words(j)}")
    tables = {"Missing partitions and hours": missing[["series", "time", "metric", "value", "limit", "rule"]]
              .rename(columns={"series": "table", "value": "rows", "limit": "usual rows"}) if len(missing)
              else missing}
    if "checks" in h.frames:
        tables["Validation checks"] = h.frames["checks"]
    return render_health(p, "Data freshness", h, summary, table, charts, tables)


def freshness_tile(
    p: TileParams,
    checks: Sequence[Mapping[str, Any]] | None = None,
    now_ms: int | None = None,
) -> TileResult:
    """Ingest delay p50/p95/max per table, staleness, partitions and hours present, validation.

    Rules (threshold ``slos.freshness_max_min``, 15 min), per event table: **breach** when a
    5-minute bin (≥ 100 rows) has a p95 ingest delay above the threshold (the validation event-delay
    check), when staleness (report time − newest ingest, report time = the end of the day
    for a past date) exceeds it (alert ``data_stale``; only for tables that usually land ≥ 10
    rows per 15 minutes at that time of day), when a day of the window lacks rows of
    the table (partition missing; days before the warehouse's first day are not expected), or
    when an hour is empty that usually holds ≥ 10 rows (the median of the same hour over the
    previous 7 days, or the table's share of the hour's requests without history). **warn**
    when only some rows of a bin are late (max delay above the threshold) or the window's p95
    is. ``checks`` (validation result rows ``name, table, status, value, threshold, detail``)
    are listed, a ``fail`` breaches and a ``warn`` warns. Filters do not apply (tables, not
    request slices, are the series). A window without any landed row, on a day that has events,
    breaches when the newest earlier row is older than the staleness limit (a stalled ingestion);
    a day without events is "no data".
    """
    check_freshness_params(p)
    ctx = HealthContext.of(p, now=now_ms)
    ctx = HealthContext(p, ctx.start_ms, ctx.end_ms, {}, ctx.report_ms)
    h = compute_freshness(ctx, checks)
    if h is None:
        return _silent_window(p, ctx) or no_data_result(
            p, p.tile, SECTION, "Data freshness",
            f"no ingest_bins rows in the {p.window} window {ctx.span()} (run 'expkit rollup')")
    return render_freshness(p, h)


def _silent_window(p: TileParams, ctx: HealthContext) -> TileResult | None:
    """A breach when the window's day has events, nothing landed in the window, and rows landed
    before it, longer ago than the staleness limit (that silence is the finding: a stalled
    pipeline, not missing rollups). A day without any event stays "no data"."""
    if not any(p.warehouse.event_files(t, p.event_date) for t in EVENT_TABLES):
        return None
    fresh = ingest_freshness(p.warehouse, [ctx.report_ms])
    newest = fresh["staleness_ms"].min()
    limit = alert_limit(p, "data_stale", float(p.config.slos.freshness_max_min))
    if not np.isfinite(newest) or newest / 60_000 <= limit:
        return None
    minutes = float(newest) / 60_000
    why = (f"no rows landed in the {p.window} window {ctx.span()}: the newest row of any table landed "
           f"{minutes:,.0f} min before {ms_to_iso(ctx.report_ms)} (threshold {limit:g} min); the ingestion "
           "looks stalled")
    return TileResult(
        tile=p.tile, section=SECTION, title="Data freshness", status="breach",
        headline={"max_staleness_min": minutes, "threshold_min": limit, "no_rows_in_window": True},
        summary=f"Breach: {why}", params=p.describe(), as_of=data_as_of(p), experiment_id=p.config.experiment_id,
    )


def _minutes(df: pd.DataFrame) -> pd.DataFrame:
    """Delay columns in minutes (``p50_min`` … ``max_min``)."""
    for q in ("p50", "p95", "p99"):
        df[f"{q}_min"] = df[q] / 60_000
    df["max_min"] = df["max_delay_ms"].astype(float) / 60_000
    return df


def _hours_present(ctx: HealthContext) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Rows per table and hour of the window, and findings for missing partitions and hours."""
    wh = ctx.p.warehouse
    rolled = wh.rollup_dates("ingest_bins")
    first_ms = ctx.start_ms
    if rolled:
        first_ms = max(ctx.start_ms, day_bounds_ms(rolled[0])[0])
    lookback = max(ctx.start_ms, first_ms) - BASELINE_DAYS * DAY_MS
    raw = ingest_quantiles(wh, lookback, ctx.end_ms, bin_ms=HOUR_MS)[["bin_ms", "event_table", "n"]]
    tables = sorted(set(raw["event_table"])) if len(raw) else []
    lo = min(first_ms, int(raw["bin_ms"].min()) if len(raw) else first_ms)
    grid = np.arange(lo - lo % HOUR_MS, ctx.hours_end, HOUR_MS, dtype=np.int64)
    idx = pd.MultiIndex.from_product([tables, grid], names=["series", "bin_ms"])
    hours = (raw.rename(columns={"event_table": "series"}).set_index(["series", "bin_ms"])
             .reindex(idx, fill_value=0).reset_index())
    hours["usual"] = same_time_baseline(hours, "n", ctx.start_ms, HOUR_MS, days=BASELINE_DAYS, min_days=1)
    hours = hours[hours["bin_ms"] >= first_ms].copy()
    # Without history, expect the table's share of the hour's requests.
    req = hours[hours["series"] == "requests"].set_index("bin_ms")["n"]
    totals = hours.groupby("series")["n"].sum()
    share = totals / totals.get("requests", np.nan)
    fallback = hours["bin_ms"].map(req).astype(float) * hours["series"].map(share).astype(float)
    hours["usual"] = hours["usual"].fillna(fallback)
    hours["day_ms"] = hours["bin_ms"] - hours["bin_ms"] % DAY_MS
    day_rows = hours.groupby(["series", "day_ms"])["n"].sum()
    gaps: list[dict[str, Any]] = []
    missing_days = set()
    for (table, day), rows in day_rows.items():
        if rows == 0:
            missing_days.add((table, day))
            gaps.append(_gap(table, day, 0, np.nan, "partition_missing", "partition (day)"))
    empty = hours[(hours["n"] == 0) & (hours["usual"] >= MIN_EXPECTED_ROWS)]
    for r in empty.itertuples():
        if (r.series, r.day_ms) not in missing_days:
            gaps.append(_gap(r.series, r.bin_ms, 0, r.usual, "hour_missing", "hour"))
    hours["status"] = np.where((hours["n"] == 0) & (hours["usual"] >= MIN_EXPECTED_ROWS), "breach", "ok")
    return hours, gaps


def _gap(table: str, at_ms: int, rows: int, usual: float, rule: str, what: str) -> dict[str, Any]:
    return {"series": table, "bin_ms": int(at_ms), "time": ms_to_iso(int(at_ms)), "metric": f"rows per {what}",
            "value": rows, "evidence": rows, "limit": usual, "n": rows, "level": "breach", "rule": rule}


def _rows_chart(hours: pd.DataFrame) -> Any:
    """Rows per hour and table against the usual rows of that hour (missing hours marked red)."""
    from expkit.charts import series_chart

    df = hours[["bin_ms", "series", "n", "usual", "status"]].rename(columns={"series": "table"})
    df["rows vs usual"] = df["n"] / df["usual"].where(df["usual"] > 0)
    df["time"] = bin_frame_times(df)
    df["missing"] = df["status"] == "breach"
    return series_chart(df[["time", "table", "rows vs usual", "missing"]], "time", "rows vs usual", color="table",
                        title="Rows per hour of event time vs the usual rows of that hour, per table "
                              "(missing hours marked)", value_format=".0%", flag="missing", y_title="rows vs usual")


def _check_findings(checks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Findings for validation checks that did not pass."""
    out = []
    for c in checks:
        level = CHECK_LEVEL.get(str(c.get("status")))
        if level:
            out.append({"series": c.get("table") or "all", "bin_ms": None, "time": "window",
                        "metric": f"check {c.get('name')}", "value": c.get("value"), "evidence": c.get("value"),
                        "limit": c.get("threshold"), "n": None, "level": level, "rule": f"validation: {c.get('name')}"})
    return out
