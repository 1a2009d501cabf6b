"""The request-level health tiles: latency, coverage & Top-K fill, errors, cache, fallback, volume.

Each reads the per-bin series of :mod:`expkit.series` for the overall traffic (series ``all``)
and per value of the tile's slice, applies its rules (:mod:`expkit.tiles.health_core`: a bin
with fewer than 20 requests decides nothing; proportions are judged with their 95% Wilson
interval) and shows the metric per 5-minute bin with its threshold lines, a table per series
and the bins beyond a threshold. The rules of each tile are in its docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd

from expkit.charts import bar_chart, series_chart, stacked_area_chart
from expkit.config import Slos
from expkit.errors import ExpkitError
from expkit.histogram import RELATIVE_ERROR
from expkit.names import HOUR_MS, Status
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
    Health,
    HealthContext,
    Judgement,
    Metric,
    Rule,
    alert_limit,
    bin_frame_times,
    health_result,
    judge,
    metric_chart,
    render_health,
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
V = TypeVar("V")


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


@dataclass(frozen=True)
class Quantiles:
    """Latency quantiles (ms) of a set of requests.

    Attributes:
        p50, p95, p99: the quantiles (from merged log-scale histograms); requests: how many.
    """

    p50: float
    p95: float
    p99: float
    requests: int


@dataclass(frozen=True)
class LatencySlo:
    """The latency thresholds (ms): the warm and cold p95 SLOs, the p95 alert."""

    warm_p95: float
    cold_p95: float
    alert_p95: float


@dataclass(frozen=True)
class LatencyValues:
    """The latency tile's own numbers over the window (overall traffic).

    Attributes:
        latency_ms: ``all``, ``warm``, ``cold`` → :class:`Quantiles`.
        cold_share: share of cold (cache miss) requests.
        relative_error: of the quantiles (histogram resolution).
        slo_ms: :class:`LatencySlo`.
    """

    latency_ms: dict[str, Quantiles]
    cold_share: float
    relative_error: float
    slo_ms: LatencySlo


def compute_latency(ctx: HealthContext) -> Health[LatencyValues] | None:
    """Latency quantiles per bin and series, judged; ``None`` without requests."""
    p = ctx.p
    s: Slos = p.config.slos
    q = with_series(latency_quantiles, ctx)
    if q.empty:
        return None
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
    w = window.set_index("series").loc[OVERALL]
    values = LatencyValues(
        latency_ms={c: Quantiles(w[f"p50_{c}"], w[f"p95_{c}"], w[f"p99_{c}"], int(w[f"n_{c}"]))
                    for c in ("all", "warm", "cold")},
        cold_share=w["cold_share"], relative_error=RELATIVE_ERROR,
        slo_ms=LatencySlo(s.latency_p95_warm_ms, s.latency_p95_cold_ms, s.latency_p95_alert_ms),
    )
    notes = [f"Percentiles from merged log-scale histograms: within {RELATIVE_ERROR:.0%} of the exact value."]
    return health_result(ctx, j, values, rules, notes, {"window": window})


def render_latency(p: TileParams, h: Health[LatencyValues]) -> TileResult:
    """The latency tile's page: p95 all/warm/cold, p50/p95/p99, p95 per series, cold share; table."""
    s, j, window, lat = p.config.slos, h.judgement, h.frames["window"], h.values.latency_ms
    overall_bins = j.bins[j.bins["series"] == OVERALL]
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
        metric_chart(j.bins, P95, h.judged_by, f"p95 latency per 5-minute bin, per {p.slice} (ms)"),
        metric_chart(j.bins, Metric("cold_share", "cold share"), [], "Share of cold (cache miss) requests per bin",
                     flag=False),
    ]
    table = summary_table(
        window.assign(**{"requests": window["n_all"]}), j,
        [Metric("p50_all", "p50", fmt=".1f", unit=" ms"), P95, Metric("p99_all", "p99", fmt=".1f", unit=" ms"),
         P95_WARM, P95_COLD, Metric("cold_share", "cold share", fmt=".1%")],
        p.slice, extra_cols=["requests"],
    )
    summary = (f"p95 {lat['all'].p95:.1f} ms (warm {lat['warm'].p95:.1f}, cold {lat['cold'].p95:.1f}) "
               f"over {p.window}; {status_words(j)}")
    return render_health(p, "Latency", h, summary, table, charts)


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
    h = compute_latency(ctx)
    return _no_data(ctx, "Latency") if h is None else render_latency(p, h)


SeriesValues = dict[str, dict[str, float]]
"""Series (``all``, then each slice value) → metric → its value over the window."""


def _rate_compute(
    ctx: HealthContext,
    metrics: list[Metric],
    rules: list[Rule],
    values: Callable[[pd.Series, SeriesValues], V],
    notes: list[str] | None = None,
    counts: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    frames: dict[str, pd.DataFrame] | None = None,
) -> Health[V] | None:
    """A tile of per-bin request proportions, judged; ``values`` makes the tile's own numbers of
    the overall window row and the per-series values. ``None`` without requests."""
    bins, window = counts if counts is not None else _counts(ctx)
    if window.empty or window["requests"].sum() == 0:
        return None
    j = judge(bins, window, rules)
    w = window.set_index("series").loc[OVERALL]
    series = {s: {m.name: window.set_index("series").loc[s, m.name] for m in metrics} for s in series_order(window)}
    return health_result(ctx, j, values(w, series), rules, notes or [], {"window": window, **(frames or {})})


def _rate_render(
    p: TileParams,
    title: str,
    h: Health[Any],
    metrics: list[Metric],
    chart_titles: list[str],
    extra_charts: list[Any] | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
) -> TileResult:
    """The page of a tile of per-bin request proportions: a chart per metric, table per series."""
    j, window = h.judgement, h.frames["window"]
    charts = [metric_chart(j.bins, m, h.judged_by, t) for m, t in zip(metrics, chart_titles, strict=True)]
    charts += extra_charts or []
    table = summary_table(window, j, metrics, p.slice, extra_cols=["requests"])
    w = window.set_index("series").loc[OVERALL]
    values = "; ".join(f"{m.label} {m.format(w[m.name])}" for m in metrics)
    summary = f"{values} over {p.window}; {status_words(j)}"
    return render_health(p, title, h, summary, table, charts, tables)


@dataclass(frozen=True)
class CoverageValues:
    """The coverage tile's own numbers over the window.

    Attributes:
        coverage, topk_fill: overall coverage and Top-K fill; requests: how many.
        catalog_coverage: arm (``all``: every shown arm) → distinct items shown / active
            catalog (``None`` without the ``item_hours`` rollup).
        series: per series, coverage and Top-K fill.
    """

    coverage: float
    topk_fill: float
    requests: int
    catalog_coverage: dict[str, float] | None
    series: SeriesValues


CATALOG_TITLE = "Catalog coverage (distinct items shown / active catalog of the last 30 days)"


def compute_coverage(ctx: HealthContext) -> Health[CoverageValues] | None:
    """Coverage and Top-K fill per bin and series, judged, and catalog coverage; ``None`` without requests."""
    p = ctx.p
    s = p.config.slos
    rules = [
        Rule(COVERAGE, "below", alert_limit(p, "coverage_low", s.coverage_min), "breach", "bin", "coverage_low"),
        Rule(TOPK_FILL, "below", alert_limit(p, "topk_fill_low", s.topk_fill_min), "breach", "bin", "topk_fill_low"),
        Rule(COVERAGE, "below", s.coverage_min, "warn", "window", "slo_coverage"),
        Rule(TOPK_FILL, "below", s.topk_fill_min, "warn", "window", "slo_topk_fill"),
    ]
    catalog, notes = _catalog_coverage(ctx)
    h = _rate_compute(
        ctx, [COVERAGE, TOPK_FILL], rules,
        lambda w, series: CoverageValues(
            coverage=w["coverage"], topk_fill=w["topk_fill"], requests=int(w["requests"]),
            catalog_coverage=catalog.set_index("bucket")["catalog_coverage"].to_dict() if not catalog.empty else None,
            series=series),
        notes=notes, frames={"catalog": catalog},
    )
    if h is None:
        return None
    return replace(h, metric_status={"coverage": _metric_status(h.judgement, COVERAGE.label),
                                     "topk_fill": _metric_status(h.judgement, TOPK_FILL.label)})


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
    h = compute_coverage(ctx)
    if h is None:
        return _no_data(ctx, "Coverage & Top-K fill")
    return _rate_render(
        p, "Coverage & Top-K fill", h, [COVERAGE, TOPK_FILL],
        [f"Coverage per 5-minute bin, per {p.slice}", f"Top-K fill rate per 5-minute bin, per {p.slice}"],
        tables={CATALOG_TITLE: h.frames["catalog"]},
    )


def _metric_status(j: Judgement, label: str) -> Status:
    """The status one metric alone would give (``coverage`` vs ``Top-K fill`` on one tile)."""
    levels = j.findings.loc[j.findings["metric"] == label, "level"].tolist()
    return "breach" if "breach" in levels else "warn" if levels else "ok"


def _catalog_coverage(ctx: HealthContext) -> tuple[pd.DataFrame, list[str]]:
    p = ctx.p
    buckets = ctx.filters.get("bucket")
    eid = ctx.experiment_id
    shown = pd.concat([items_shown(p.warehouse, ctx.start_ms, ctx.end_ms, buckets, eid),
                       items_shown(p.warehouse, ctx.start_ms, ctx.end_ms, buckets, eid, by_bucket=True)])
    active = items_shown(p.warehouse, ctx.end_ms - CATALOG_ACTIVE_DAYS * DAY_MS, ctx.end_ms, buckets, eid)
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


@dataclass(frozen=True)
class ErrorValues:
    """The error tile's own numbers over the window.

    Attributes:
        error_rate: overall; requests: how many.
        errors: failed requests; errors_by_component_severity: ``component/severity`` → errors.
        alert_rate, slo_rate: the per-bin alert threshold and the window's SLO.
        series: per series, the error rate.
    """

    error_rate: float
    requests: int
    errors: int
    errors_by_component_severity: dict[str, int]
    alert_rate: float
    slo_rate: float
    series: SeriesValues


def compute_errors(ctx: HealthContext) -> Health[ErrorValues] | None:
    """Error rate per bin and series, judged, and errors by component × severity; ``None`` without requests."""
    p = ctx.p
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
    breakdown = pd.DataFrame()
    components: dict[str, int] = {}
    if not by_bin.empty:
        req = bins[bins["series"] == OVERALL].set_index("bin_ms")["requests"]
        by_bin["kind"] = by_bin["error_component"] + " · " + by_bin["error_severity"]
        by_bin["error rate"] = by_bin["errors"] / by_bin["bin_ms"].map(req).astype(float)
        by_bin["time"] = bin_frame_times(by_bin)
        n = float(window.set_index("series").loc[OVERALL, "requests"]) if not window.empty else np.nan
        breakdown = total.drop(columns=["slice_value"]).assign(
            share_of_errors=lambda d: d["errors"] / d["errors"].sum(), error_rate=lambda d: d["errors"] / n,
        ).sort_values("errors", ascending=False).reset_index(drop=True)
        components = {f"{r['error_component']}/{r['error_severity']}": int(r["errors"])
                      for r in breakdown.to_dict("records")}
    errors = int(window["errors"].iloc[0]) if not window.empty else 0
    return _rate_compute(
        ctx, [ERROR_RATE], rules,
        lambda w, series: ErrorValues(
            error_rate=w["error_rate"], requests=int(w["requests"]), errors=errors,
            errors_by_component_severity=components, alert_rate=ERROR_RATE_ALERT,
            slo_rate=p.config.slos.error_rate_max, series=series),
        counts=counts, frames={"by_bin": by_bin, "breakdown": breakdown},
    )


def errors_tile(p: TileParams) -> TileResult:
    """Error rate (failed / requests) per bin, by component × severity.

    Rules: **breach** when a bin's error rate exceeds 1% (alert ``error_rate_high``, threshold
    from ``alerts.yaml``) with its 95% Wilson interval entirely above; **warn** when the window's error rate reaches
    ``slos.error_rate_max`` (0.1%): a 5-minute bin has too few requests to test a 0.1% target,
    so the SLO is an objective over the window. Bins with fewer than 20 requests are not judged.
    """
    ctx = HealthContext.of(p)
    h = compute_errors(ctx)
    if h is None:
        return _no_data(ctx, "Error rate")
    by_bin = h.frames["by_bin"]
    charts = []
    if not by_bin.empty:
        charts.append(stacked_area_chart(by_bin[["time", "kind", "error rate"]], "time", "error rate", "kind",
                                         "Error rate per 5-minute bin by component · severity", ".2%", bars=True,
                                         x_domain=(ms_to_iso(ctx.start_ms), ms_to_iso(ctx.end_ms))))
    return _rate_render(
        p, "Error rate", h, [ERROR_RATE], [f"Error rate per 5-minute bin, per {p.slice}"], extra_charts=charts,
        tables={"Errors by component × severity over the window (all traffic)": h.frames["breakdown"]},
    )


@dataclass(frozen=True)
class CacheValues:
    """The cache tile's own numbers over the window.

    Attributes:
        cache_hit_rate: overall; requests: how many.
        latency_ms_by_cache: ``all``, ``warm``, ``cold`` → :class:`Quantiles` (empty when the
            latency histograms could not be read: a note says why).
        alert_rate, slo_rate: the per-bin alert threshold and the SLO.
        series: per series, the hit rate.
    """

    cache_hit_rate: float
    requests: int
    latency_ms_by_cache: dict[str, Quantiles]
    alert_rate: float
    slo_rate: float
    series: SeriesValues


def compute_cache(ctx: HealthContext) -> Health[CacheValues] | None:
    """Cache hit rate per bin and series, judged, and latency of hits vs misses; ``None`` without requests."""
    p = ctx.p
    s = p.config.slos
    rules = [
        Rule(CACHE_HIT, "below", alert_limit(p, "cache_hit_low", CACHE_HIT_ALERT), "breach", "bin", "cache_hit_low"),
        Rule(CACHE_HIT, "below", s.cache_hit_min, "warn", "bin", "slo_cache_hit", confidence=0.999),
        Rule(CACHE_HIT, "below", s.cache_hit_min, "warn", "window", "slo_cache_hit"),
    ]
    notes: list[str] = []
    latency: dict[str, Quantiles] = {}
    lat_table = pd.DataFrame()
    try:
        q = latency_quantiles(p.warehouse, ctx.start_ms, ctx.end_ms, None, ctx.filters, ctx.experiment_id)
        qw = latency_quantiles(p.warehouse, ctx.start_ms, ctx.end_ms, None, ctx.filters, ctx.experiment_id,
                               per_bin=False)
    except ExpkitError as err:
        notes.append(f"Latency of hits vs misses not shown: {err}")
        q = qw = pd.DataFrame()
    if not q.empty:
        lat_table = qw.drop(columns=["slice_value"]).rename(columns={"n": "requests"})
        latency = {r["cache"]: Quantiles(r["p50"], r["p95"], r["p99"], int(r["requests"]))
                   for r in lat_table.to_dict("records")}
    return _rate_compute(
        ctx, [CACHE_HIT], rules,
        lambda w, series: CacheValues(
            cache_hit_rate=w["cache_hit_rate"], requests=int(w["requests"]), latency_ms_by_cache=latency,
            alert_rate=CACHE_HIT_ALERT, slo_rate=s.cache_hit_min, series=series),
        notes=notes, frames={"latency": q, "latency_table": lat_table},
    )


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
    h = compute_cache(ctx)
    if h is None:
        return _no_data(ctx, "Cache efficacy")
    s, q = p.config.slos, h.frames["latency"]
    charts: list[Any] = []
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
    return _rate_render(
        p, "Cache efficacy", h, [CACHE_HIT], [f"Cache hit rate per 5-minute bin, per {p.slice}"],
        extra_charts=charts, tables={"Latency by cache state over the window (ms)": h.frames["latency_table"]},
    )


FALLBACK_LEVELS = {f"fallback_{lv}_share": f"level {lv}" for lv in range(4)}
"""Column of the share of each fallback level → its label."""
NON_PRIMARY = Metric("non_primary", "share not served by the primary model", fmt=".2%")


@dataclass(frozen=True)
class FallbackValues:
    """The fallback tile's own numbers over the window.

    Attributes:
        shares: ``level 0`` … ``level 3`` → share of requests served at that level.
        non_primary_share: share served by a fallback (level ≥ 1); requests: how many.
        ctr_by_level: fallback level → pooled CTR of the impressions served at it.
        slo: always ``None``: no SLO applies to fallback usage.
    """

    shares: dict[str, float]
    non_primary_share: float
    requests: int
    ctr_by_level: dict[str, float]
    slo: None = None


def compute_fallback(ctx: HealthContext) -> Health[FallbackValues] | None:
    """Shares per fallback level per bin and series, and CTR per level; ``None`` without requests."""
    p = ctx.p
    bins, window = _counts(ctx)
    if window.empty or window["requests"].sum() == 0:
        return None
    bins = bins.assign(non_primary=1 - bins["fallback_0_share"])
    window = window.assign(non_primary=1 - window["fallback_0_share"])
    j = judge(bins, window, [])
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
    w = window.set_index("series").loc[OVERALL]
    by_level = ctr.groupby("fallback level")[["impressions", "clicks"]].sum() if len(ctr) else pd.DataFrame()
    ctr_level = (by_level["clicks"] / by_level["impressions"]).to_dict() if len(by_level) else {}
    values = FallbackValues(shares={label: w[col] for col, label in FALLBACK_LEVELS.items()},
                            non_primary_share=w["non_primary"], requests=int(w["requests"]), ctr_by_level=ctr_level)
    notes.append("No SLO applies to fallback usage: the status is informational.")
    return health_result(ctx, j, values, [], notes, {"window": window, "ctr": ctr})


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
    h = compute_fallback(ctx)
    if h is None:
        return _no_data(ctx, "Fallback analysis")
    j, window, ctr = h.judgement, h.frames["window"], h.frames["ctr"]
    overall = j.bins[j.bins["series"] == OVERALL]
    charts = [stacked_area_chart(_melt_times(overall, FALLBACK_LEVELS, "share", "fallback level"), "time", "share",
                                 "fallback level", "Share of requests per fallback level, per 5-minute bin")]
    charts.append(metric_chart(j.bins, NON_PRIMARY, [], f"Share of requests on a fallback (level ≥ 1), per {p.slice}",
                               flag=False))
    if not ctr.empty:
        charts.append(bar_chart(ctr, "fallback level", "ctr", "bucket", "CTR per fallback level and arm", ".2%"))
    metrics = [Metric(col, label, fmt=".2%") for col, label in FALLBACK_LEVELS.items()]
    table = summary_table(window, j, [*metrics, NON_PRIMARY], p.slice, extra_cols=["requests"])
    primary = window.set_index("series").loc[OVERALL, "fallback_0_share"]
    summary = (f"primary model serves {primary:.2%} of requests over {p.window}; "
               + ", ".join(f"{k} {v:.2%}" for k, v in h.values.shares.items() if k != "level 0"))
    return render_health(p, "Fallback analysis", h, summary, table, charts,
                         {"CTR per fallback level (effectiveness)": ctr})


@dataclass(frozen=True)
class VolumeValues:
    """The volume tile's own numbers over the window.

    Attributes:
        requests: requests in the window; usual_requests: the usual volume of its whole hours.
        volume_ratio: the window's requests against their usual volume, over the hours that have one.
        share: series → its share of the requests.
        baseline_days: days the usual volume looks back.
    """

    requests: int
    usual_requests: float
    volume_ratio: float
    share: dict[str, float]
    baseline_days: int


def compute_volume(ctx: HealthContext) -> Health[VolumeValues] | None:
    """Requests per hour and series against the same hour on previous days, judged; ``None`` without requests."""
    lookback = ctx.start_ms - BASELINE_DAYS * DAY_MS
    raw = with_series(health_counts, ctx, start_ms=lookback)
    in_window = raw[raw["bin_ms"] >= ctx.start_ms] if not raw.empty else raw
    if in_window.empty or in_window["requests"].sum() == 0:
        return None
    # whole hours only: the hour still running (today) is not a drop in traffic
    hours = _full_hours(raw, lookback, ctx.hours_end)
    hours["baseline"] = same_time_baseline(hours, "requests", ctx.start_ms, HOUR_MS, BASELINE_DAYS)
    hours = hours[hours["bin_ms"] >= ctx.start_ms].copy()
    hours["volume_ratio"] = hours["requests"] / hours["baseline"].where(hours["baseline"] > 0)
    window = cast(pd.DataFrame, in_window.groupby("series", as_index=False)["requests"].sum())
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
    w = window.set_index("series").loc[OVERALL]
    values = VolumeValues(requests=int(w["requests"]), usual_requests=w["baseline"], volume_ratio=w["volume_ratio"],
                          share=window.set_index("series")["share"].to_dict(), baseline_days=BASELINE_DAYS)
    notes = ["Usual volume: median of the same hour over the previous 7 days (≥ 2 days needed)."]
    return health_result(ctx, j, values, rules, notes, {"window": window, "hours": hours, "raw": raw})


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
    h = compute_volume(ctx)
    if h is None:
        return _no_data(ctx, "Request volume")
    j, window, hours = h.judgement, h.frames["window"], h.frames["hours"]
    five = h.frames["raw"].copy()
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
        metric_chart(j.bins, VOLUME, h.judged_by,
                     f"Requests per hour vs the same hour on previous days, per {p.slice}"),
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
    v = h.values
    summary = (f"{v.requests:,} requests over {p.window}"
               + (f" ({v.volume_ratio:.0%} of the usual volume)" if np.isfinite(v.volume_ratio) else
                  " (no earlier days to compare with)") + f"; {status_words(j)}")
    return render_health(p, "Request volume", h, summary, table, charts)


def _full_hours(raw: pd.DataFrame, start_ms: int, end_ms: int) -> pd.DataFrame:
    """Requests per hour and series on every hour of days with data (missing hours = 0 requests)."""
    h = raw.assign(bin_ms=raw["bin_ms"] - raw["bin_ms"] % HOUR_MS).groupby(
        ["series", "bin_ms"], as_index=False)["requests"].sum()
    days = sorted({int(b) - int(b) % DAY_MS for b in h["bin_ms"]})
    first_day = days[0] if days else start_ms
    grid = np.arange(max(first_day, start_ms), end_ms, HOUR_MS, dtype=np.int64)
    idx = pd.MultiIndex.from_product([series_order(h), grid], names=["series", "bin_ms"])
    return h.set_index(["series", "bin_ms"]).reindex(idx, fill_value=0).reset_index()
