"""The request-level health tiles: latency, coverage & Top-K fill, errors, cache, fallback, volume.

Each reads the per-bin series of :mod:`expkit.series` for the overall traffic (series ``all``)
and per value of the tile's slice, applies its rules (:mod:`expkit.tiles.health_core`: a bin
with fewer than 20 requests decides nothing; proportions are judged with their 95% Wilson
interval) and shows the metric per 5-minute bin with its threshold lines, a table per series
and the bins beyond a threshold. The rules of each tile are in its docstring.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from expkit.charts import bar_chart, series_chart, stacked_area_chart
from expkit.config import Slos
from expkit.errors import ExpkitError
from expkit.histogram import RELATIVE_ERROR
from expkit.names import HOUR_MS
from expkit.series import (
    engagement_counts,
    error_counts,
    health_counts,
    items_shown,
    latency_quantiles,
)
from expkit.tiles.base import TileParams, TileResult
from expkit.tiles.common import no_data_result
from expkit.tiles.health_core import (
    MIN_QUANTILE_REQUESTS,
    OVERALL,
    SECTION,
    VOLUME_MIN_BASELINE,
    HealthContext,
    Judgement,
    Metric,
    Rule,
    alert_limit,
    bin_frame_times,
    finish,
    judge,
    metric_chart,
    same_time_baseline,
    series_order,
    status_words,
    summary_table,
    with_series,
)
from expkit.warehouse import BIN_MS, DAY_MS, ms_to_iso

ERROR_RATE_ALERT = 0.01
"""Alert rule ``error_rate_high``: error rate > 1% (when ``alerts.yaml`` does not say otherwise)."""
CACHE_HIT_ALERT = 0.70
"""Alert rule ``cache_hit_low``: cache hit rate < 70% (when ``alerts.yaml`` does not say otherwise)."""
VOLUME_LOST, VOLUME_LOW, VOLUME_HIGH = 0.05, 0.5, 2.0
"""Volume rules: an hour below 5% of its usual traffic breaches, below 50% or above 200% warns."""
BASELINE_DAYS = 7
CATALOG_ACTIVE_DAYS = 30
"""Catalog coverage counts the items shown in the window among those shown in the last 30 days."""

P95 = Metric("p95_all", "p95", n="n_all", fmt=".1f", unit=" ms", min_n=MIN_QUANTILE_REQUESTS)
P95_WARM = Metric("p95_warm", "warm p95", n="n_warm", fmt=".1f", unit=" ms", min_n=MIN_QUANTILE_REQUESTS)
P95_COLD = Metric("p95_cold", "cold p95", n="n_cold", fmt=".1f", unit=" ms", min_n=MIN_QUANTILE_REQUESTS)
COVERAGE = Metric("coverage", "coverage", proportion=True)
TOPK_FILL = Metric("topk_fill", "Top-K fill", proportion=True)
ERROR_RATE = Metric("error_rate", "error rate", proportion=True, fmt=".3%")
CACHE_HIT = Metric("cache_hit_rate", "cache hit rate", proportion=True)
VOLUME = Metric("volume_ratio", "volume vs usual", n="baseline", fmt=".0%", min_n=VOLUME_MIN_BASELINE)


def _no_data(ctx: HealthContext, title: str, what: str = "requests") -> TileResult:
    p = ctx.p
    flt = f" matching filters {ctx.filters}" if ctx.filters else ""
    return no_data_result(p, p.tile, SECTION, title, f"no {what}{flt} in the {p.window} window {ctx.span()}")


def _counts(ctx: HealthContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-bin and per-window health counts (with rates), overall and per slice value."""
    bins = with_series(health_counts, ctx)
    window = with_series(health_counts, ctx, per_bin=False)
    return bins, window


def _wide_quantiles(q: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """One row per ``index`` with ``n_<cache>``, ``p50_<cache>`` … for cache all/warm/cold."""
    wide = q.pivot(index=index, columns="cache", values=["n", "p50", "p95", "p99"])
    wide.columns = [f"{v}_{c}" for v, c in wide.columns]
    for c in ("all", "warm", "cold"):
        for v in ("n", "p50", "p95", "p99"):
            if f"{v}_{c}" not in wide:
                wide[f"{v}_{c}"] = 0 if v == "n" else np.nan
    for c in ("n_all", "n_warm", "n_cold"):
        wide[c] = wide[c].fillna(0).astype("int64")
    wide["cold_share"] = wide["n_cold"] / wide["n_all"].where(wide["n_all"] > 0)
    return wide.reset_index()


def _melt_times(df: pd.DataFrame, columns: dict[str, str], value: str, key: str) -> pd.DataFrame:
    """Long format for a chart: ``time``, ``key`` (the label of each column) and ``value``."""
    out = df[["bin_ms", *columns]].rename(columns=columns).melt(
        id_vars="bin_ms", var_name=key, value_name=value)
    out["time"] = bin_frame_times(out)
    return out.drop(columns=["bin_ms"])


def latency_tile(p: TileParams) -> TileResult:
    """Latency p50/p95/p99 per 5-minute bin, overall and warm (cache hit) / cold, from merged histograms.

    Rules: **breach** when a bin's p95 (all requests) exceeds 100 ms (the threshold of alert
    ``latency_p95_high`` in ``alerts.yaml``, else ``slos.latency_p95_alert_ms``); **warn** when a bin's warm p95 exceeds
    ``latency_p95_warm_ms`` (50 ms) or its cold p95 ``latency_p95_cold_ms`` (200 ms), or the
    window's warm or cold p95 does. A bin (or its warm/cold part) with fewer than 100
    requests is not judged: its p95 would rest on one or two requests. Quantiles come from
    log-scale histograms: within 1% of the exact value. The cold share per bin shows a cache
    failure's effect on the latency mix.
    """
    ctx = HealthContext.of(p)
    s: Slos = p.config.slos
    q = with_series(latency_quantiles, ctx)
    if q.empty:
        return _no_data(ctx, "Latency")
    bins = _wide_quantiles(q, ["series", "bin_ms"])
    window = _wide_quantiles(with_series(latency_quantiles, ctx, per_bin=False), ["series"])
    rules = [
        Rule(P95, "above", alert_limit(p, "latency_p95_high", s.latency_p95_alert_ms), "breach", "bin",
             "latency_p95_high"),
        Rule(P95_WARM, "above", s.latency_p95_warm_ms, "warn", "bin", "slo_latency_p95_warm"),
        Rule(P95_COLD, "above", s.latency_p95_cold_ms, "warn", "bin", "slo_latency_p95_cold"),
        Rule(P95_WARM, "above", s.latency_p95_warm_ms, "warn", "window", "slo_latency_p95_warm"),
        Rule(P95_COLD, "above", s.latency_p95_cold_ms, "warn", "window", "slo_latency_p95_cold"),
    ]
    j = judge(bins, window, rules)
    overall_bins = j.bins[j.bins["series"] == OVERALL]
    w = window.set_index("series").loc[OVERALL]
    lat = {c: {"p50": w[f"p50_{c}"], "p95": w[f"p95_{c}"], "p99": w[f"p99_{c}"], "requests": int(w[f"n_{c}"])}
           for c in ("all", "warm", "cold")}
    thresholds = [(f"warm SLO {s.latency_p95_warm_ms:g} ms", s.latency_p95_warm_ms),
                  (f"alert {s.latency_p95_alert_ms:g} ms", s.latency_p95_alert_ms),
                  (f"cold SLO {s.latency_p95_cold_ms:g} ms", s.latency_p95_cold_ms)]
    charts = [
        series_chart(_melt_times(overall_bins, {"p95_all": "all", "p95_warm": "warm", "p95_cold": "cold"},
                                 "p95 (ms)", "requests"),
                     x="time", y="p95 (ms)", color="requests", thresholds=thresholds,
                     title="p95 latency per 5-minute bin: all, warm (cache hit), cold (ms)", value_format=",.0f",
                     y_title="p95 (ms)"),
        series_chart(_melt_times(overall_bins, {"p50_all": "p50", "p95_all": "p95", "p99_all": "p99"},
                                 "latency (ms)", "quantile"),
                     x="time", y="latency (ms)", color="quantile", thresholds=thresholds[1:2],
                     title="p50 / p95 / p99 latency per 5-minute bin, all requests (ms)", value_format=",.0f",
                     y_title="latency (ms)"),
        metric_chart(j.bins, P95, rules, f"p95 latency per 5-minute bin, per {p.slice} (ms)"),
        metric_chart(j.bins, Metric("cold_share", "cold share"), [], "Share of cold (cache miss) requests per bin",
                     flag=False),
    ]
    table = summary_table(
        window.assign(**{"requests": window["n_all"]}), j,
        [Metric("p50_all", "p50", fmt=".1f", unit=" ms"), P95, Metric("p99_all", "p99", fmt=".1f", unit=" ms"),
         P95_WARM, P95_COLD, Metric("cold_share", "cold share", fmt=".1%")],
        p.slice, extra_cols=["requests"],
    )
    summary = (f"p95 {lat['all']['p95']:.1f} ms (warm {lat['warm']['p95']:.1f}, cold {lat['cold']['p95']:.1f}) "
               f"over {p.window}; {status_words(j)}")
    headline = {"latency_ms": lat, "cold_share": w["cold_share"], "relative_error": RELATIVE_ERROR,
                "slo_ms": {"warm_p95": s.latency_p95_warm_ms, "cold_p95": s.latency_p95_cold_ms,
                           "alert_p95": s.latency_p95_alert_ms}}
    notes = [f"Percentiles from merged log-scale histograms: within {RELATIVE_ERROR:.0%} of the exact value."]
    return finish(ctx, "Latency", j, headline, summary, table, charts, rules, notes)


def _rate_tile(
    ctx: HealthContext,
    title: str,
    metrics: list[Metric],
    rules: list[Rule],
    chart_titles: list[str],
    headline: dict[str, Any] | None = None,
    extra_charts: list[Any] | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
    notes: list[str] | None = None,
    counts: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> tuple[TileResult, Judgement | None]:
    """A tile of per-bin request proportions: judge, chart each metric, table per series."""
    p = ctx.p
    bins, window = counts if counts is not None else _counts(ctx)
    if window.empty or window["requests"].sum() == 0:
        return _no_data(ctx, title), None
    j = judge(bins, window, rules)
    charts = [metric_chart(j.bins, m, rules, t) for m, t in zip(metrics, chart_titles, strict=True)]
    charts += extra_charts or []
    table = summary_table(window, j, metrics, p.slice, extra_cols=["requests"])
    w = window.set_index("series").loc[OVERALL]
    values = "; ".join(f"{m.label} {m.format(w[m.name])}" for m in metrics)
    head = {m.name: w[m.name] for m in metrics} | {"requests": int(w["requests"])} | (headline or {})
    head["series"] = {s: {m.name: window.set_index("series").loc[s, m.name] for m in metrics}
                      for s in series_order(window)}
    summary = f"{values} over {p.window}; {status_words(j)}"
    return finish(ctx, title, j, head, summary, table, charts, rules, notes or [], tables), j


def coverage_tile(p: TileParams) -> TileResult:
    """Coverage (ok requests with ≥ 1 item / requests) and Top-K fill (Σ returned / Σ requested) per bin.

    Rules: **breach** when a bin's coverage is below 95% (alert ``coverage_low``) or its Top-K
    fill below 99% (alert ``topk_fill_low``; thresholds from ``alerts.yaml``, else ``slos``),
    with its 95% Wilson interval (at the request level) entirely below; **warn** when the
    window's coverage or fill misses its target (``slos.coverage_min``,
    ``slos.topk_fill_min``). Bins with fewer than 20 requests are not judged. Failed requests
    return no items, so an error burst lowers the fill rate too. Secondary: catalog coverage =
    distinct items shown in the window / distinct items shown in the 30 days to the report date
    (the active catalog), per arm, exact (from ``item_hours``), shown but not judged.
    """
    ctx = HealthContext.of(p)
    s = p.config.slos
    rules = [
        Rule(COVERAGE, "below", alert_limit(p, "coverage_low", s.coverage_min), "breach", "bin", "coverage_low"),
        Rule(TOPK_FILL, "below", alert_limit(p, "topk_fill_low", s.topk_fill_min), "breach", "bin", "topk_fill_low"),
        Rule(COVERAGE, "below", s.coverage_min, "warn", "window", "slo_coverage"),
        Rule(TOPK_FILL, "below", s.topk_fill_min, "warn", "window", "slo_topk_fill"),
    ]
    catalog, notes = _catalog_coverage(ctx)
    result, j = _rate_tile(
        ctx, "Coverage & Top-K fill", [COVERAGE, TOPK_FILL], rules,
        [f"Coverage per 5-minute bin, per {p.slice}", f"Top-K fill rate per 5-minute bin, per {p.slice}"],
        headline={"catalog_coverage": catalog.set_index("bucket")["catalog_coverage"].to_dict()
                  if not catalog.empty else None},
        tables={"Catalog coverage (distinct items shown / active catalog of the last 30 days)": catalog},
        notes=notes,
    )
    if j is not None:
        result.headline["metric_status"] = {
            "coverage": _metric_status(j, COVERAGE.label), "topk_fill": _metric_status(j, TOPK_FILL.label)}
    return result


def _metric_status(j: Judgement, label: str) -> str:
    """The status one metric alone would give (``coverage`` vs ``Top-K fill`` on one tile)."""
    levels = j.findings.loc[j.findings["metric"] == label, "level"].tolist()
    return "breach" if "breach" in levels else "warn" if levels else "ok"


def _catalog_coverage(ctx: HealthContext) -> tuple[pd.DataFrame, list[str]]:
    p = ctx.p
    buckets = ctx.filters.get("bucket")
    kw = dict(buckets=buckets, experiment_id=ctx.experiment_id)
    shown = pd.concat([items_shown(p.warehouse, ctx.start_ms, ctx.end_ms, **kw),
                       items_shown(p.warehouse, ctx.start_ms, ctx.end_ms, by_bucket=True, **kw)])
    active = items_shown(p.warehouse, ctx.end_ms - CATALOG_ACTIVE_DAYS * DAY_MS, ctx.end_ms, **kw)
    notes = []
    other = sorted(set(ctx.filters) - {"bucket"})
    if other:
        notes.append(f"Catalog coverage covers all traffic of the chosen arms: filters on {other} do not apply "
                     "(item_hours is kept per arm).")
    if shown.empty or active.empty:
        notes.append("Catalog coverage: no item_hours rollup for this window (rebuild with 'expkit rollup').")
        return pd.DataFrame(columns=["bucket", "items shown", "active catalog", "catalog_coverage"]), notes
    size = int(active["items"].iloc[0])
    out = shown.rename(columns={"items": "items shown"})
    out["active catalog"] = size
    out["catalog_coverage"] = out["items shown"] / size
    return out.reset_index(drop=True), notes


def errors_tile(p: TileParams) -> TileResult:
    """Error rate (failed / requests) per bin, by component × severity.

    Rules: **breach** when a bin's error rate exceeds 1% (alert ``error_rate_high``, threshold
    from ``alerts.yaml``) with its 95% Wilson interval entirely above; **warn** when the window's error rate reaches
    ``slos.error_rate_max`` (0.1%): a 5-minute bin has too few requests to test a 0.1% target,
    so the SLO is an objective over the window. Bins with fewer than 20 requests are not judged.
    """
    ctx = HealthContext.of(p)
    rules = [
        Rule(ERROR_RATE, "above", alert_limit(p, "error_rate_high", ERROR_RATE_ALERT), "breach", "bin",
             "error_rate_high"),
        Rule(ERROR_RATE, "above", p.config.slos.error_rate_max, "warn", "window", "slo_error_rate"),
    ]
    counts = _counts(ctx)
    bins, window = counts
    wh = p.warehouse
    by_bin = error_counts(wh, ctx.start_ms, ctx.end_ms, None, ctx.filters, ctx.experiment_id)
    total = error_counts(wh, ctx.start_ms, ctx.end_ms, None, ctx.filters, ctx.experiment_id, per_bin=False)
    charts = []
    breakdown = pd.DataFrame()
    components: dict[str, Any] = {}
    if not by_bin.empty:
        req = bins[bins["series"] == OVERALL].set_index("bin_ms")["requests"]
        by_bin["kind"] = by_bin["error_component"] + " · " + by_bin["error_severity"]
        by_bin["error rate"] = by_bin["errors"] / by_bin["bin_ms"].map(req).astype(float)
        by_bin["time"] = bin_frame_times(by_bin)
        charts.append(stacked_area_chart(by_bin[["time", "kind", "error rate"]], "time", "error rate", "kind",
                                         "Error rate per 5-minute bin by component · severity", ".2%", bars=True,
                                         x_domain=(ms_to_iso(ctx.start_ms), ms_to_iso(ctx.end_ms))))
        n = float(window.set_index("series").loc[OVERALL, "requests"]) if not window.empty else np.nan
        breakdown = total.drop(columns=["slice_value"]).assign(
            share_of_errors=lambda d: d["errors"] / d["errors"].sum(), error_rate=lambda d: d["errors"] / n,
        ).sort_values("errors", ascending=False).reset_index(drop=True)
        components = {f"{r.error_component}/{r.error_severity}": int(r.errors) for r in breakdown.itertuples()}
    result, _ = _rate_tile(
        ctx, "Error rate", [ERROR_RATE], rules, [f"Error rate per 5-minute bin, per {p.slice}"],
        headline={"errors": int(window["errors"].iloc[0]) if not window.empty else 0,
                  "errors_by_component_severity": components, "alert_rate": ERROR_RATE_ALERT,
                  "slo_rate": p.config.slos.error_rate_max},
        extra_charts=charts, tables={"Errors by component × severity over the window (all traffic)": breakdown},
        counts=counts,
    )
    return result


def cache_tile(p: TileParams) -> TileResult:
    """Cache hit rate per bin, and latency of hits vs misses.

    Rules: **breach** when a bin's hit rate is below 70% (alert ``cache_hit_low``, threshold
    from ``alerts.yaml``) with its 95% Wilson interval entirely below; **warn** when a bin's hit rate is below
    ``slos.cache_hit_min`` (85%) with its 99.9% interval entirely below, or the window's hit
    rate is below 85%. Bins with fewer than
    20 requests are not judged. The latency of hits vs misses is shown, not judged (the
    latency tile judges it).
    """
    ctx = HealthContext.of(p)
    s = p.config.slos
    rules = [
        Rule(CACHE_HIT, "below", alert_limit(p, "cache_hit_low", CACHE_HIT_ALERT), "breach", "bin", "cache_hit_low"),
        Rule(CACHE_HIT, "below", s.cache_hit_min, "warn", "bin", "slo_cache_hit", confidence=0.999),
        Rule(CACHE_HIT, "below", s.cache_hit_min, "warn", "window", "slo_cache_hit"),
    ]
    notes: list[str] = []
    charts: list[Any] = []
    latency: dict[str, Any] = {}
    lat_table = pd.DataFrame()
    try:
        q = latency_quantiles(p.warehouse, ctx.start_ms, ctx.end_ms, None, ctx.filters, ctx.experiment_id)
        qw = latency_quantiles(p.warehouse, ctx.start_ms, ctx.end_ms, None, ctx.filters, ctx.experiment_id,
                               per_bin=False)
    except ExpkitError as err:
        notes.append(f"Latency of hits vs misses not shown: {err}")
        q = qw = pd.DataFrame()
    if not q.empty:
        split = q[q["cache"].isin(["warm", "cold"])].assign(
            cache=lambda d: d["cache"].map({"warm": "hit (warm)", "cold": "miss (cold)"}))
        split["time"] = bin_frame_times(split)
        charts.append(series_chart(
            split[["time", "cache", "p95"]].rename(columns={"p95": "p95 (ms)"}), "time", "p95 (ms)", "cache",
            thresholds=[(f"warm SLO {s.latency_p95_warm_ms:g} ms", s.latency_p95_warm_ms),
                        (f"cold SLO {s.latency_p95_cold_ms:g} ms", s.latency_p95_cold_ms)],
            title="p95 latency per 5-minute bin: cache hits vs misses (ms)", value_format=",.0f",
            y_title="p95 (ms)"))
        lat_table = qw.drop(columns=["slice_value"]).rename(columns={"n": "requests"})
        latency = {r.cache: {"p50": r.p50, "p95": r.p95, "p99": r.p99, "requests": int(r.requests)}
                   for r in lat_table.itertuples()}
    result, _ = _rate_tile(
        ctx, "Cache efficacy", [CACHE_HIT], rules, [f"Cache hit rate per 5-minute bin, per {p.slice}"],
        headline={"latency_ms_by_cache": latency, "alert_rate": CACHE_HIT_ALERT, "slo_rate": s.cache_hit_min},
        extra_charts=charts, tables={"Latency by cache state over the window (ms)": lat_table}, notes=notes,
    )
    return result


def fallback_tile(p: TileParams) -> TileResult:
    """Share of requests per fallback level (0 = primary model … 3 = static list) per bin; CTR per level.

    No SLO or alert rule applies to fallback usage, so the status is ``ok`` whenever the window
    has requests (``no_data`` otherwise); fallback trouble surfaces on the coverage, error and
    latency tiles and as an anomaly. CTR per level (clicks / impressions of responses served
    at that level) measures each level's effectiveness; it comes from ``engagement_bins``,
    kept per arm, so filters other than ``bucket`` do not apply to it (a note says so). It is
    a pooled impression ratio, for comparing levels, not an interval-backed outcome metric.
    """
    ctx = HealthContext.of(p)
    bins, window = _counts(ctx)
    if window.empty or window["requests"].sum() == 0:
        return _no_data(ctx, "Fallback analysis")
    levels = {f"fallback_{lv}_share": f"level {lv}" for lv in range(4)}
    bins = bins.assign(non_primary=1 - bins["fallback_0_share"])
    window = window.assign(non_primary=1 - window["fallback_0_share"])
    j = judge(bins, window, [])
    overall = bins[bins["series"] == OVERALL]
    charts = [stacked_area_chart(_melt_times(overall, levels, "share", "fallback level"), "time", "share",
                                 "fallback level", "Share of requests per fallback level, per 5-minute bin")]
    non_primary = Metric("non_primary", "share not served by the primary model", fmt=".2%")
    charts.append(metric_chart(j.bins, non_primary, [], f"Share of requests on a fallback (level ≥ 1), per {p.slice}",
                               flag=False))
    eng = engagement_counts(p.warehouse, ctx.start_ms, ctx.end_ms, ctx.filters.get("bucket"), ctx.experiment_id,
                            per_bin=False)
    notes = []
    other = sorted(set(ctx.filters) - {"bucket"})
    if other:
        notes.append(f"CTR per level covers all traffic of the chosen arms: filters on {other} do not apply.")
    ctr = pd.DataFrame(columns=["bucket", "fallback level", "impressions", "clicks", "ctr"])
    if not eng.empty:
        ctr = eng.assign(**{"fallback level": eng["fallback_level"].map(
            lambda lv: f"level {lv}" if lv >= 0 else "request not logged")})
        ctr["ctr"] = ctr["clicks"] / ctr["impressions"].where(ctr["impressions"] > 0)
        ctr = ctr[["bucket", "fallback level", "impressions", "clicks", "ctr"]]
        charts.append(bar_chart(ctr, "fallback level", "ctr", "bucket", "CTR per fallback level and arm", ".2%"))
    metrics = [Metric(col, label, fmt=".2%") for col, label in levels.items()]
    table = summary_table(window, j, [*metrics, non_primary], p.slice, extra_cols=["requests"])
    w = window.set_index("series").loc[OVERALL]
    shares = {label: w[col] for col, label in levels.items()}
    by_level = ctr.groupby("fallback level")[["impressions", "clicks"]].sum() if len(ctr) else pd.DataFrame()
    ctr_level = (by_level["clicks"] / by_level["impressions"]).to_dict() if len(by_level) else {}
    summary = (f"primary model serves {w['fallback_0_share']:.2%} of requests over {p.window}; "
               + ", ".join(f"{k} {v:.2%}" for k, v in shares.items() if k != "level 0"))
    headline = {"shares": shares, "non_primary_share": w["non_primary"], "requests": int(w["requests"]),
                "ctr_by_level": ctr_level, "slo": None}
    notes.append("No SLO applies to fallback usage: the status is informational.")
    return finish(ctx, "Fallback analysis", j, headline, summary, table, charts, [], notes,
                  {"CTR per fallback level (effectiveness)": ctr})


def volume_tile(p: TileParams) -> TileResult:
    """Requests per 5-minute bin and per slice value, against the same time on previous days.

    The usual volume of an hour is the median of the same hour over the previous 7 days (at
    least 2 days with data). Rules, per hour and series: **breach** when an hour carries less
    than 5% of its usual volume (traffic lost or data missing); **warn** when it carries less
    than 50% or more than 200%. Only hours that usually carry ≥ 1,000 requests are judged (a
    halving of a smaller hour can be chance: requests come in sessions). No SLO applies to
    volume; a shift between arms is the allocation tile's job (SRM), not this one's.
    """
    ctx = HealthContext.of(p)
    lookback = ctx.start_ms - BASELINE_DAYS * DAY_MS
    raw = with_series(health_counts, ctx, start_ms=lookback)
    in_window = raw[raw["bin_ms"] >= ctx.start_ms] if not raw.empty else raw
    if in_window.empty or in_window["requests"].sum() == 0:
        return _no_data(ctx, "Request volume")
    # whole hours only: the hour still running (today) is not a drop in traffic
    hours = _full_hours(raw, lookback, ctx.hours_end)
    hours["baseline"] = same_time_baseline(hours, "requests", ctx.start_ms, HOUR_MS, BASELINE_DAYS)
    hours = hours[hours["bin_ms"] >= ctx.start_ms].copy()
    hours["volume_ratio"] = hours["requests"] / hours["baseline"].where(hours["baseline"] > 0)
    window = in_window.groupby("series", as_index=False)["requests"].sum()
    usual = hours.groupby("series")["baseline"].sum(min_count=1)
    compared = hours[hours["baseline"].notna()].groupby("series")["requests"].sum()
    window["baseline"] = window["series"].map(usual)
    window["share"] = window["requests"] / window.set_index("series")["requests"].get(OVERALL, np.nan)
    # the window against its usual volume, over the hours that have one
    window["volume_ratio"] = window["series"].map(compared) / window["baseline"].where(window["baseline"] > 0)
    rules = [
        Rule(VOLUME, "below", VOLUME_LOST, "breach", "bin", "traffic_lost"),
        Rule(VOLUME, "below", VOLUME_LOW, "warn", "bin", "traffic_low"),
        Rule(VOLUME, "above", VOLUME_HIGH, "warn", "bin", "traffic_high"),
    ]
    j = judge(hours, window, rules)
    five = raw.copy()
    five["usual"] = same_time_baseline(five, "requests", ctx.start_ms, BIN_MS, BASELINE_DAYS)
    five = five[five["bin_ms"] >= ctx.start_ms]
    overall = five[five["series"] == OVERALL]
    lines = pd.concat([
        five.assign(kind="observed")[["bin_ms", "series", "kind", "requests"]],
        overall.assign(kind="usual (median, same time on previous days)", requests=overall["usual"])[
            ["bin_ms", "series", "kind", "requests"]],
    ])
    lines["time"] = bin_frame_times(lines)
    charts = [
        series_chart(lines.drop(columns=["bin_ms"]), "time", "requests", color="series", dash="kind",
                     title=f"Requests per 5-minute bin, per {p.slice}, and the usual volume", value_format=",.0f",
                     y_title="requests per 5 minutes"),
        metric_chart(j.bins, VOLUME, rules, f"Requests per hour vs the same hour on previous days, per {p.slice}"),
    ]
    sliced = hours[hours["series"] != OVERALL]
    if not sliced.empty:
        share = sliced.assign(share=sliced["requests"] / sliced["bin_ms"].map(
            hours[hours["series"] == OVERALL].set_index("bin_ms")["requests"]).astype(float))
        share["time"] = bin_frame_times(share)
        charts.append(stacked_area_chart(share[["time", "series", "share"]], "time", "share", "series",
                                         f"Share of requests per {p.slice}, per hour"))
    table = summary_table(window, j, [Metric("share", "share", fmt=".1%"), VOLUME], p.slice,
                          extra_cols=["requests", "baseline"])
    w = window.set_index("series").loc[OVERALL]
    summary = (f"{int(w['requests']):,} requests over {p.window}"
               + (f" ({w['volume_ratio']:.0%} of the usual volume)" if np.isfinite(w["volume_ratio"]) else
                  " (no earlier days to compare with)") + f"; {status_words(j)}")
    headline = {"requests": int(w["requests"]), "usual_requests": w["baseline"], "volume_ratio": w["volume_ratio"],
                "share": window.set_index("series")["share"].to_dict(), "baseline_days": BASELINE_DAYS}
    notes = ["Usual volume: median of the same hour over the previous 7 days (≥ 2 days needed)."]
    return finish(ctx, "Request volume", j, headline, summary, table, charts, rules, notes)


def _full_hours(raw: pd.DataFrame, start_ms: int, end_ms: int) -> pd.DataFrame:
    """Requests per hour and series on every hour of days with data (missing hours = 0 requests)."""
    h = raw.assign(bin_ms=raw["bin_ms"] - raw["bin_ms"] % HOUR_MS).groupby(
        ["series", "bin_ms"], as_index=False)["requests"].sum()
    days = sorted({int(b) - int(b) % DAY_MS for b in h["bin_ms"]})
    first_day = days[0] if days else start_ms
    grid = np.arange(max(first_day, start_ms), end_ms, HOUR_MS, dtype=np.int64)
    idx = pd.MultiIndex.from_product([series_order(h), grid], names=["series", "bin_ms"])
    return h.set_index(["series", "bin_ms"]).reindex(idx, fill_value=0).reset_index()
