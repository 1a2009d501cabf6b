"""What the health tiles share: the window, per-bin threshold rules, status, charts, result.

Status rules (docs/metrics.md, "SLOs and targets"; docs/alerts.md), the same for every health tile:

* A **bin rule** compares a metric of each 5-minute bin (or hour, for volume) of each series
  (the overall series ``all`` and every value of the tile's slice) with a limit. A bin with
  fewer than the metric's ``min_n`` requests (20 unless said otherwise) decides nothing: the
  table counts it as "not judged". For a proportion (coverage, Top-K fill, error rate, cache
  hit rate) a judged bin crosses the limit only when its whole Wilson interval lies beyond
  it (at the request level), so one failed request among 50 at night is not taken for a 2%
  error rate; a quantile or a ratio crosses when its value does. The interval is 95% for
  alert thresholds (far from healthy values: an incident must show at once) and 99.9% for
  bin-level SLO warnings (closer to healthy values, and tested on thousands of bins).
* A **window rule** compares the value of the whole window with an SLO target (an objective
  over the window, like an error budget): a 5-minute bin has too few requests to test a
  0.1% error-rate target.
* ``breach``: a rule of level breach fired (the per-bin conditions of the alert rules of docs/alerts.md,
  e.g. p95 > 100 ms or error rate > 1% in a bin). ``warn``: only warn-level rules fired
  (e.g. the window missed an SLO target). ``ok``: nothing fired. ``no_data``: the window holds
  no requests (never shown as a zero).
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import numpy as np
import pandas as pd

from expkit.charts import deferrable, series_chart
from expkit.config import WINDOWS
from expkit.names import HOUR_MS, Status
from expkit.readers import window_bounds
from expkit.stats import proportion_interval
from expkit.tiles.base import (
    INLINE,
    OMIT_NONE,
    SHOWN_ONLY,
    TileParams,
    TileResult,
    check_filter_characters,
    headline_of,
    worst,
)
from expkit.tiles.common import data_as_of
from expkit.warehouse import BIN_MS, DAY_MS, ms_to_iso

MIN_BIN_REQUESTS = 20
"""Bins with fewer requests than this do not decide a status."""
MAX_LISTED_BINS = 500
"""At most this many bin times per status in the headline (the count is always given)."""
OVERALL = "all"
SECTION = "health"

Level = Literal["warn", "breach"]


@dataclass(frozen=True)
class Metric:
    """A per-bin health metric.

    Attributes:
        name: its column in the per-bin and window frames.
        label: human name.
        n: the column counting what the value comes from (requests, rows); decides judging.
        proportion: a share of ``n`` (judged with its Wilson interval).
        fmt: format spec of a value (``.2%``, ``.1f``).
        unit: appended to formatted values (`` ms``).
        min_n: bins with fewer than this ``n`` are not judged.
    """

    name: str
    label: str
    n: str = "requests"
    proportion: bool = False
    fmt: str = ".2%"
    unit: str = ""
    min_n: int = MIN_BIN_REQUESTS

    def format(self, value: float | None) -> str:
        """``value`` for people (``n/a`` for missing).

        >>> Metric("p95", "p95", fmt=".1f", unit=" ms").format(34.06), Metric("c", "c").format(float("nan"))
        ('34.1 ms', 'n/a')
        """
        if value is None or not np.isfinite(value):
            return "n/a"
        return f"{value:{self.fmt}}{self.unit}"


@dataclass(frozen=True)
class Rule:
    """One threshold of a health tile.

    Attributes:
        metric: what is compared.
        bad: ``above`` (higher is worse) or ``below``.
        limit: the threshold.
        level: ``breach`` or ``warn`` when it fires.
        scope: ``bin`` (each judged bin) or ``window`` (the whole window's value).
        name: the alert rule or SLO it stands for (``latency_p95_high``, ``slo_error_rate``).
        confidence: of the Wilson interval that must lie beyond the limit (proportions, bins).
    """

    metric: Metric
    bad: Literal["above", "below"]
    limit: float
    level: Level
    scope: Literal["bin", "window"] = "bin"
    name: str = ""
    confidence: float = 0.95

    def describe(self) -> str:
        """What the rule checks.

        >>> Rule(Metric("p95_all", "p95", fmt=".0f", unit=" ms"), "above", 100, "breach").describe()
        'p95 > 100 ms in a bin (breach)'
        """
        op = ">" if self.bad == "above" else "<"
        where = "in a bin" if self.scope == "bin" else "over the window"
        return f"{self.metric.label} {op} {self.metric.format(self.limit)} {where} ({self.level})"

    def crossed(self, evidence: np.ndarray) -> np.ndarray:
        """Where ``evidence`` lies beyond the limit (NaN never does).

        >>> Rule(Metric("coverage", "coverage"), "below", 0.95, "breach").crossed(np.array([0.9, 0.97, np.nan]))
        array([ True, False, False])
        """
        with np.errstate(invalid="ignore"):
            return evidence > self.limit if self.bad == "above" else evidence < self.limit


_REPORT_TIME: contextvars.ContextVar[int | None] = contextvars.ContextVar("expkit_report_time", default=None)


def now_ms() -> int:
    """The current time in epoch ms, or the time set by :func:`report_time` (the live page of a
    replayed day; tests also replace this function)."""
    fixed = _REPORT_TIME.get()
    return int(time.time() * 1000) if fixed is None else fixed


@contextlib.contextmanager
def report_time(ms: int | None) -> Iterator[None]:
    """Within the block, health tiles take ``ms`` as the current time (``None``: the clock)."""
    token = _REPORT_TIME.set(ms)
    try:
        yield
    finally:
        _REPORT_TIME.reset(token)


@dataclass(frozen=True)
class HealthContext:
    """A health tile's parameters resolved to a time range and effective filters.

    Attributes:
        p: the validated tile parameters.
        start_ms, end_ms: the window ``[start, end)`` in epoch ms, ending at the report time
            (the end of ``event_date``, or, while that day is still running, the start of the
            current 5-minute bin: later bins have no data yet, which is not missing data).
        filters: ``p.filters`` plus the chosen arms (``p.buckets``) when not all arms.
        report_ms: the report time (end of the day, or now).
    """

    p: TileParams
    start_ms: int
    end_ms: int
    filters: dict[str, list[str]]
    report_ms: int = 0

    @classmethod
    def of(cls, p: TileParams, now: int | None = None) -> HealthContext:
        """Resolve ``p``; rejects filter values that no slice value can have (quotes etc.)."""
        check_filter_characters(p.filters)
        filters = {k: list(v) for k, v in p.filters.items()}
        if set(p.buckets) != set(p.config.buckets):
            chosen = [b for b in p.buckets if b in filters.get("bucket", p.buckets)]
            filters["bucket"] = chosen
        start, end = window_bounds(p.event_date, p.window)
        current = now_ms() if now is None else now
        if end - DAY_MS <= current < end:
            end = current - current % BIN_MS
            start = end - WINDOWS[p.window]
            return cls(p, start, end, filters, current)
        return cls(p, start, end, filters, end)

    @property
    def hours_end(self) -> int:
        """End of the window's last complete hour."""
        return self.end_ms - self.end_ms % HOUR_MS

    @property
    def slice(self) -> str:
        """The slice column (``bucket`` = per arm)."""
        return self.p.slice

    @property
    def experiment_id(self) -> str:
        return self.p.config.experiment_id

    def span(self) -> str:
        """``2026-11-14T00:00:00Z – 2026-11-15T00:00:00Z``."""
        return f"{ms_to_iso(self.start_ms)} – {ms_to_iso(self.end_ms)}"


def alert_limit(p: TileParams, rule: str, default: float) -> float:
    """The threshold of alert rule ``rule`` (docs/alerts.md), as gathered into ``p.alert_limits``.

    Tiles breach on the same per-bin condition the alert rule fires on; without a rules file
    (or without that rule) ``default`` applies.
    """
    return float(p.alert_limits.get(rule, default))


def with_series(
    fn: Callable[..., pd.DataFrame], ctx: HealthContext, start_ms: int | None = None, **kwargs: Any
) -> pd.DataFrame:
    """``fn`` (a :mod:`expkit.series` reader) for the overall series and per slice value.

    Returns one frame with a ``series`` column: ``all`` for the whole (filtered) traffic, then
    one value per slice value.
    """
    start = ctx.start_ms if start_ms is None else start_ms
    args = dict(filters=ctx.filters, experiment_id=ctx.experiment_id, **kwargs)
    overall = fn(ctx.p.warehouse, start, ctx.end_ms, None, **args)
    sliced = fn(ctx.p.warehouse, start, ctx.end_ms, ctx.slice, **args)
    overall = overall.assign(series=OVERALL)
    sliced = sliced.assign(series=sliced["slice_value"].astype(str))
    frames = [f for f in (overall, sliced) if not f.empty]
    if not frames:
        return overall.drop(columns=["slice_value"])
    return pd.concat(frames, ignore_index=True).drop(columns=["slice_value"])


def series_order(df: pd.DataFrame) -> list[str]:
    """``all`` first, then the slice values in order."""
    values = sorted(set(df["series"]) - {OVERALL}) if len(df) else []
    return ([OVERALL] if len(df) and (df["series"] == OVERALL).any() else []) + values


def wilson_evidence(rule: Rule, value: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The end of a proportion's Wilson interval (``rule.confidence``) closest to passing ``rule``."""
    low, high = proportion_interval(np.nan_to_num(value) * n, n, method="wilson", alpha=1 - rule.confidence)
    ev = np.asarray(low if rule.bad == "above" else high, dtype=float)
    return np.where(np.isfinite(value) & (n > 0), ev, np.nan)


@dataclass
class Judgement:
    """The outcome of a tile's rules.

    Attributes:
        status: ``ok``, ``warn`` or ``breach`` (``no_data`` is decided before judging).
        bins: the per-bin frame with ``judged`` (enough requests) and ``status`` per bin.
        findings: one row per bin (or window) and rule that fired: ``series``, ``time``
            (None for the window), ``metric``, ``value``, ``evidence``, ``limit``, ``n``,
            ``level``, ``rule``.
    """

    status: Status
    bins: pd.DataFrame
    findings: pd.DataFrame
    not_judged_label: str = f"bins not judged (< {MIN_BIN_REQUESTS} requests)"

    def bin_times(self, level: Level) -> list[int]:
        """Start times (ms) of the bins where a ``level`` rule fired, any series."""
        f = self.findings
        f = f[(f["level"] == level) & f["bin_ms"].notna()]
        return sorted({int(v) for v in f["bin_ms"]})


FINDING_COLUMNS = ["series", "bin_ms", "time", "metric", "value", "evidence", "limit", "n", "level", "rule"]


def judge(
    bins: pd.DataFrame,
    window: pd.DataFrame,
    rules: Sequence[Rule],
    extra: Iterable[Mapping[str, Any]] = (),
) -> Judgement:
    """Apply ``rules`` to a per-bin frame and a per-window frame (both with ``series``).

    ``extra`` adds findings decided elsewhere (missing partitions, validation checks), with
    the keys of :data:`FINDING_COLUMNS`. The bins frame gets ``judged`` (for the first bin
    rule's metric) and ``status`` (``breach``/``warn``/``ok``/``not judged``).
    """
    rows: list[dict[str, Any]] = [dict(r) for r in extra]
    bins = bins.copy()
    bins["status"] = "ok"
    bin_rules = [r for r in rules if r.scope == "bin"]
    label = f"bins not judged (< {MIN_BIN_REQUESTS} requests)"
    if bin_rules:
        m0 = bin_rules[0].metric
        label = f"bins not judged (< {m0.min_n:,} {m0.n.replace('_', ' ')})"
        bins["judged"] = bins[m0.n].fillna(0).to_numpy(float) >= m0.min_n
        bins.loc[~bins["judged"], "status"] = "not judged"
    for rule in rules:
        m = rule.metric
        frame = bins if rule.scope == "bin" else window
        if frame.empty or m.name not in frame:
            continue
        value = frame[m.name].to_numpy(dtype=float)
        n = frame[m.n].fillna(0).to_numpy(dtype=float)
        if rule.scope == "bin":
            evidence = wilson_evidence(rule, value, n) if m.proportion else value
            fired = rule.crossed(evidence) & (n >= m.min_n)
        else:
            evidence = value
            fired = rule.crossed(evidence) & (n >= max(m.min_n, 1))
        if not fired.any():
            continue
        hit = frame[fired]
        if rule.scope == "bin":
            idx = hit.index
            current = bins.loc[idx, "status"]
            bins.loc[idx, "status"] = np.where(
                (current == "breach") | (rule.level == "breach"), "breach", "warn"
            )
        for (_, r), ev in zip(hit.iterrows(), evidence[fired], strict=True):
            b = r["bin_ms"] if rule.scope == "bin" else None
            rows.append({
                "series": r["series"], "bin_ms": b, "time": ms_to_iso(b) if b is not None else "window",
                "metric": m.label, "value": r[m.name], "evidence": ev, "limit": rule.limit,
                "n": r[m.n], "level": rule.level, "rule": rule.name or rule.describe(),
            })
    findings = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    status = worst(["ok", *findings["level"].tolist()])
    return Judgement(status, bins, findings, label)


def summary_table(
    window: pd.DataFrame,
    judgement: Judgement,
    metrics: Sequence[Metric],
    slice_name: str,
    extra_cols: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per series: window values, bins with data, bins not judged, bins warn/breach.

    The "not judged" column says how many bins had too few requests to decide a status.
    """
    b = judgement.bins
    rows = []
    for s in series_order(window):
        w = window[window["series"] == s].iloc[0]
        sb = b[b["series"] == s] if len(b) else b
        f = judgement.findings[judgement.findings["series"] == s]
        row: dict[str, Any] = {slice_name: s}
        for col in extra_cols:
            row[col] = w[col]
        for m in metrics:
            row[m.label] = m.format(w[m.name]) if m.name in w else "n/a"
        row["bins with data"] = int(len(sb))
        if "judged" in sb:
            row[judgement.not_judged_label] = int((~sb["judged"].astype(bool)).sum())
        row["bins warn"] = int((sb["status"] == "warn").sum()) if len(sb) else 0
        row["bins breach"] = int((sb["status"] == "breach").sum()) if len(sb) else 0
        row["status"] = worst(["ok", *f["level"].tolist()])
        rows.append(row)
    return pd.DataFrame(rows)


def bin_frame_times(df: pd.DataFrame, column: str = "bin_ms") -> pd.Series:
    """UTC timestamps of bin starts (for charts)."""
    return pd.to_datetime(df[column].astype("int64"), unit="ms", utc=True)


def thresholds_for(rules: Sequence[Rule], metric: Metric) -> list[tuple[str, float]]:
    """Threshold lines of ``metric``'s rules (label, value), without duplicates."""
    seen: dict[float, str] = {}
    for r in rules:
        if r.metric.name == metric.name and r.limit not in seen:
            kind = "alert" if r.scope == "bin" else "SLO"
            seen[r.limit] = f"{kind} {metric.format(r.limit)}"
    return [(label, value) for value, label in seen.items()]


@deferrable
def metric_chart(
    bins: pd.DataFrame,
    metric: Metric,
    rules: Sequence[Rule],
    title: str,
    extra_thresholds: Sequence[tuple[str, float]] = (),
    flag: bool = True,
) -> Any:
    """The metric per bin, a line per series, threshold lines, fired bins marked red (``flag``)."""
    df = bins[["bin_ms", "series", metric.name, "status"]].copy()
    df["time"] = bin_frame_times(df)
    df = df.rename(columns={metric.name: metric.label})
    df["flagged"] = df["status"].isin(["warn", "breach"]) if flag else False
    fmt = metric.fmt if metric.fmt.endswith("%") else ",.4~f"
    return series_chart(
        df.drop(columns=["bin_ms"]), x="time", y=metric.label, color="series",
        thresholds=[*thresholds_for(rules, metric), *extra_thresholds], title=title, value_format=fmt,
        flag="flagged" if flag else None, y_title=metric.label + metric.unit,
    )


@dataclass
class HealthTileResult(TileResult):
    """A health tile's result, with the per-bin numbers and the bins beyond thresholds.

    Attributes:
        bins: every bin of every series with its metrics and status (for deep dives).
        flagged: the findings (bins or the window beyond a threshold), shown under the table.
    """

    bins: pd.DataFrame = field(default_factory=pd.DataFrame)
    flagged: pd.DataFrame = field(default_factory=pd.DataFrame)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def outputs(self, svg: bool = True) -> list[dict[str, Any]]:
        """Headline, charts, table, further tables, then the bins beyond thresholds (or "none")."""
        from expkit.tiles.display import table_html

        out = super().outputs(svg=svg)
        out.extend({"text/html": table_html(t, title)} for title, t in self.tables.items() if not t.empty)
        if self.status in ("ok", "warn", "breach"):
            if self.flagged.empty:
                out.append({"text/html": "<p><b>Bins beyond thresholds:</b> none.</p>"})
            else:
                shown = self.flagged.drop(columns=["bin_ms"], errors="ignore").head(200)
                more = len(self.flagged) - len(shown)
                title = "Bins beyond thresholds" + (f" (first 200 of {len(self.flagged)})" if more > 0 else "") + ":"
                out.append({"text/html": table_html(shown, title)})
        return out


@dataclass(frozen=True)
class RuleShown:
    """A rule as the headline lists it.

    Attributes:
        rule: the alert rule or SLO it stands for; describe: what it checks (:meth:`Rule.describe`).
        limit, level, scope: its threshold, the status it sets, ``bin`` or ``window``.
    """

    rule: str
    describe: str
    limit: float
    level: Level
    scope: str

    @classmethod
    def of(cls, r: Rule) -> RuleShown:
        """The headline entry of rule ``r``."""
        return cls(r.name, r.describe(), r.limit, r.level, r.scope)


V = TypeVar("V")


@dataclass(frozen=True)
class Health(Generic[V]):
    """What a health tile computed: the window, the tile's own values, the rules and the bins
    beyond them (its headline, in this order, plus what its render step draws).

    Attributes:
        window: the tile's window; start, end: its bounds (ISO); slice: the slice column.
        values: the tile's own numbers (a dataclass per tile; its fields stand in the headline here).
        rules: the rules judged (:class:`RuleShown`).
        breach_bins, warn_bins: start times (ISO) of the bins where a rule of that level fired,
            at most :data:`MAX_LISTED_BINS`; breach_bin_count, warn_bin_count: how many.
        bins_judged, bins_not_judged: bins with enough (too few) requests to decide a status
            (``None``, no headline key, for a tile without bin rules).
        metric_status: the status each metric alone would give, for a tile judging two
            (coverage; ``None`` otherwise).
        status: ``ok``, ``warn`` or ``breach`` (:class:`Judgement`; the anomaly tile: ``no_data`` when no
            point could be scored).
        notes: caveats shown under the headline.
        judgement: the per-bin frame and the findings (deep dives, the bins table).
        judged_by: the rules as judged (threshold lines of the charts).
        frames: the other frames the render step draws, by name.
    """

    window: str
    start: str
    end: str
    slice: str
    values: V = field(metadata=INLINE)
    rules: list[RuleShown]
    breach_bins: list[str]
    breach_bin_count: int
    warn_bins: list[str]
    warn_bin_count: int
    bins_judged: int | None = field(metadata=OMIT_NONE)
    bins_not_judged: int | None = field(metadata=OMIT_NONE)
    metric_status: dict[str, Status] | None = field(metadata=OMIT_NONE)
    status: Status = field(metadata=SHOWN_ONLY)
    notes: list[str] = field(metadata=SHOWN_ONLY)
    judgement: Judgement = field(metadata=SHOWN_ONLY)
    judged_by: list[Rule] = field(metadata=SHOWN_ONLY)
    frames: dict[str, pd.DataFrame] = field(metadata=SHOWN_ONLY)


def health_result(
    ctx: HealthContext,
    judgement: Judgement,
    values: V,
    rules: Sequence[Rule],
    notes: Sequence[str] = (),
    frames: Mapping[str, pd.DataFrame] | None = None,
    metric_status: dict[str, Status] | None = None,
) -> Health[V]:
    """A health tile's typed result: ``values`` with the window, the rules and the fired bins."""
    listed = {level: judgement.bin_times(level) for level in ("breach", "warn")}  # type: ignore[arg-type]
    b = judgement.bins
    judged = b["judged"].astype(bool) if "judged" in b and len(b) else None
    return Health(
        window=ctx.p.window, start=ms_to_iso(ctx.start_ms), end=ms_to_iso(ctx.end_ms), slice=ctx.p.slice,
        values=values, rules=[RuleShown.of(r) for r in rules],
        breach_bins=[ms_to_iso(t) for t in listed["breach"][:MAX_LISTED_BINS]],
        breach_bin_count=len(listed["breach"]),
        warn_bins=[ms_to_iso(t) for t in listed["warn"][:MAX_LISTED_BINS]], warn_bin_count=len(listed["warn"]),
        bins_judged=int(judged.sum()) if judged is not None else None,
        bins_not_judged=int((~judged).sum()) if judged is not None else None,
        metric_status=metric_status, status=judgement.status, notes=list(notes), judgement=judgement,
        judged_by=list(rules), frames=dict(frames or {}),
    )


def render_health(
    p: TileParams,
    title: str,
    h: Health[Any],
    summary: str,
    table: pd.DataFrame,
    charts: list[Any],
    tables: Mapping[str, pd.DataFrame] | None = None,
) -> HealthTileResult:
    """The :class:`HealthTileResult` of a health tile's typed result: its headline is
    :func:`~expkit.tiles.base.headline_of` the result, which it keeps."""
    return HealthTileResult(
        tile=p.tile, section=SECTION, title=title, status=h.status, headline=headline_of(h), summary=summary,
        table=table, charts=charts, params=p.describe(), as_of=data_as_of(p),
        experiment_id=p.config.experiment_id, notes=list(h.notes), result=h,
        bins=h.judgement.bins, flagged=h.judgement.findings, tables=dict(tables or {}),
    )


def status_words(judgement: Judgement) -> str:
    """A short clause on what fired, for the summary line."""
    f = judgement.findings
    if f.empty:
        return "within thresholds"
    parts = []
    for level in ("breach", "warn"):
        g = f[f["level"] == level]
        if g.empty:
            continue
        nbins = g["bin_ms"].dropna().nunique()
        what = ", ".join(sorted(set(g["metric"])))
        parts.append(f"{level}: {what}" + (f" in {nbins} bin(s)" if nbins else " over the window"))
    return "; ".join(parts)


def day_start(ms: int) -> int:
    """Start (ms) of the UTC day holding ``ms``."""
    return ms - ms % DAY_MS


def same_time_baseline(
    df: pd.DataFrame, value: str, start_ms: int, period_ms: int = BIN_MS, days: int = 7, min_days: int = 2,
) -> pd.Series:
    """Median of ``value`` at the same time of day over the previous ``days`` days, per series.

    ``df`` has ``series``, ``bin_ms`` (multiples of ``period_ms``) and ``value``; missing bins
    count as no traffic only on days that have data. Returns the baseline aligned with the rows
    of ``df`` at or after ``start_ms`` (NaN with fewer than ``min_days`` days of history).
    """
    if df.empty:
        return pd.Series(dtype=float)
    days_present = sorted({day_start(int(b)) for b in df["bin_ms"]})
    per_day = DAY_MS // period_ms
    series = series_order(df)
    grid = pd.MultiIndex.from_product(
        [series, [d + i * period_ms for d in days_present for i in range(per_day)]], names=["series", "bin_ms"]
    )
    full = df.set_index(["series", "bin_ms"])[value].reindex(grid).fillna(0.0).unstack("bin_ms")
    mat = full.to_numpy(dtype=float).reshape(len(series), len(days_present), per_day)
    out = np.full(mat.shape, np.nan)
    for k in range(len(days_present)):
        lo = max(0, k - days)
        prev = [j for j in range(lo, k) if days_present[k] - days_present[j] <= days * DAY_MS]
        if len(prev) >= min_days:
            out[:, k, :] = np.median(mat[:, prev, :], axis=1)
    base = pd.Series(out.reshape(len(series), -1).ravel(), index=pd.MultiIndex.from_product(
        [series, full.columns], names=["series", "bin_ms"]))
    keys = pd.MultiIndex.from_arrays([df["series"], df["bin_ms"]])
    return pd.Series(base.reindex(keys).to_numpy(), index=df.index).where(df["bin_ms"] >= start_ms)


VOLUME_MIN_BASELINE = 1000
"""Only hours that usually carry this many requests are judged (halving a smaller hour is chance)."""


MIN_QUANTILE_REQUESTS = 100
"""A bin's p95 is judged only over at least 100 requests: below, it rests on one or two requests."""
