"""The anomaly tile: every health series and the hourly outcome series against their own past.

Method (docs/statistics.md, "Anomaly scores"; scores from :func:`expkit.stats.anomaly_scores`):

* **Series.** Per 5-minute bin, for the overall traffic and each value of the tile's slice:
  latency p95 (all, warm, cold), coverage, Top-K fill, error rate, cache hit rate, the share
  of requests served by a fallback; per event table: the p95 ingest delay. Per hour: requests
  (overall and per slice value) and the outcome series, CTR proxy per arm (clicks /
  impressions from ``engagement_bins``). Hourly CTR against the same hour of earlier days was
  chosen over daily CTR against the same weekday: a weekday baseline needs four weeks of
  history before it says anything, an hourly one four days.
* **Baseline.** A point is compared with the points at the same time of day on each of the
  previous 7 days, widened to ±10 minutes for 5-minute bins (35 values: rates and latency are
  flat over minutes, and a 7-value baseline makes z-scores erratic) and ±1 hour for hourly
  CTR; requests use the same hour only (traffic follows the daily cycle). Points flagged
  earlier are left out. With fewer than 4 days' worth of values the point's state is
  "insufficient history" (never a flag). Hours that usually carry fewer than 1,000 requests
  are not flagged for volume (as on the volume tile). Points with fewer than 20 requests (rows,
  impressions; 100 for latency quantiles) are not scored and do not enter baselines.
* **Flag.** Classic z (mean, sd) and robust z (median, 1.4826·MAD) are both computed; a point
  is flagged when its robust |z| exceeds 3 on the metric's bad side (latency up, coverage
  down, volume both …) *and* it differs from the baseline median by more than the metric's
  practical floor (table :data:`SPECS`; for proportions the nearer end of the point's 95%
  Wilson interval must clear it, so one failed request among 40 is not an anomaly). The
  floor keeps week-long baselines of nearly constant series from flagging noise.
* **Status.** ``warn`` when some series stays anomalous for at least 10 minutes (two
  consecutive 5-minute bins, or one hourly point), like the ``for`` of an alert rule;
  isolated flags are listed but do not change the status (anomalies are P4, informational:
  never ``breach``). ``no_data`` when no point of the window could be scored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from expkit import series_cache
from expkit.charts import deferrable, series_chart
from expkit.errors import ExpkitError
from expkit.names import HOUR_MS, Status
from expkit.series import engagement_counts, health_counts, ingest_quantiles, latency_quantiles
from expkit.stats import anomaly_scores, proportion_interval
from expkit.tiles.base import TileParams, TileResult
from expkit.tiles.common import no_data_result
from expkit.tiles.health_core import (
    MAX_LISTED_BINS,
    MIN_BIN_REQUESTS,
    OVERALL,
    SECTION,
    VOLUME_MIN_BASELINE,
    Health,
    HealthContext,
    Judgement,
    bin_frame_times,
    health_result,
    render_health,
    series_order,
    with_series,
)
from expkit.warehouse import BIN_MS, DAY_MS, ms_to_iso

THRESHOLD = 3.0
BASELINE_DAYS = 7
MIN_HISTORY_DAYS = 4
SUSTAINED_MINUTES = 10
Z_CLIP = 15.0


@dataclass(frozen=True)
class SeriesSpec:
    """How one metric's series are scored.

    Attributes:
        metric: column in the long frame; label: human name.
        side: the bad direction (``up``, ``down``, ``both``).
        floor_abs, floor_rel: a flag needs a deviation from the baseline median of at least
            ``max(floor_abs, floor_rel · |median|)``.
        proportion: a share of ``n`` (the deviation is taken at the nearer Wilson end).
        period_ms: spacing of the points (5 minutes or 1 hour).
        neighbours: the baseline takes this many points either side of the same time of day.
        min_n: points with a smaller ``n`` are not scored.
        min_baseline: no flag where the baseline median is smaller (requests: an hour that
            usually carries few requests halves by chance).
        fmt: value format for tables.
    """

    metric: str
    label: str
    side: Literal["up", "down", "both"]
    floor_abs: float = 0.0
    floor_rel: float = 0.0
    proportion: bool = False
    period_ms: int = BIN_MS
    neighbours: int = 2
    min_n: int = MIN_BIN_REQUESTS
    min_baseline: float = 0.0
    fmt: str = ".4g"


SPECS: dict[str, SeriesSpec] = {s.metric: s for s in (
    SeriesSpec("requests", "requests per hour", "both", floor_rel=0.5, period_ms=HOUR_MS, neighbours=0, min_n=0,
               min_baseline=VOLUME_MIN_BASELINE, fmt=",.0f"),
    # p95 of all requests sits where warm and cold latencies meet: it jumps between the two
    # modes from bin to bin, so only a doubling counts
    SeriesSpec("p95_all", "latency p95 (ms)", "up", floor_abs=10.0, floor_rel=1.0, min_n=100, fmt=".1f"),
    SeriesSpec("p95_warm", "warm latency p95 (ms)", "up", floor_abs=10.0, floor_rel=0.5, min_n=100, fmt=".1f"),
    SeriesSpec("p95_cold", "cold latency p95 (ms)", "up", floor_abs=10.0, floor_rel=0.5, min_n=100, fmt=".1f"),
    SeriesSpec("coverage", "coverage", "down", floor_abs=0.01, proportion=True, fmt=".2%"),
    SeriesSpec("topk_fill", "Top-K fill", "down", floor_abs=0.01, proportion=True, fmt=".2%"),
    SeriesSpec("error_rate", "error rate", "up", floor_abs=0.005, proportion=True, fmt=".3%"),
    SeriesSpec("cache_hit_rate", "cache hit rate", "down", floor_abs=0.05, proportion=True, fmt=".2%"),
    SeriesSpec("fallback_share", "fallback share", "up", floor_abs=0.05, proportion=True, fmt=".2%"),
    SeriesSpec("ingest_p95_min", "p95 ingest delay (min)", "up", floor_abs=2.0, floor_rel=0.5, fmt=".2f"),
    # clicks cluster by user (few users at night): an hour's CTR wanders far beyond its
    # binomial noise, so only a halving or a 1.5-fold rise counts
    SeriesSpec("ctr", "CTR proxy (hourly)", "both", floor_rel=0.5, proportion=True, period_ms=HOUR_MS,
               neighbours=1, fmt=".2%"),
)}
"""Every scored metric with its bad side and practical floor."""


def _long(df: pd.DataFrame, metric: str, value: str, n: str) -> pd.DataFrame:
    return pd.DataFrame({"metric": metric, "series": df["series"].astype(str), "bin_ms": df["bin_ms"].astype("int64"),
                         "value": df[value].astype(float), "n": df[n].astype(float)})


def load_series(ctx: HealthContext, start_ms: int) -> tuple[pd.DataFrame, list[str]]:
    """Every series of :data:`SPECS` from ``start_ms`` to the window's end, long format.

    Columns ``metric, series, bin_ms, value, n``. Notes say what could not be read.
    """
    wh, notes = ctx.p.warehouse, []
    frames = []
    counts = with_series(health_counts, ctx, start_ms=start_ms)
    if not counts.empty:
        counts["fallback_share"] = 1 - counts["fallback_0_share"]
        hourly = counts.assign(bin_ms=counts["bin_ms"] - counts["bin_ms"] % HOUR_MS).groupby(
            ["series", "bin_ms"], as_index=False)["requests"].sum()
        frames.append(_long(hourly, "requests", "requests", "requests"))
        for m in ("coverage", "topk_fill", "error_rate", "cache_hit_rate", "fallback_share"):
            frames.append(_long(counts, m, m, "requests"))
    try:
        q = with_series(latency_quantiles, ctx, start_ms=start_ms)
    except ExpkitError as err:
        notes.append(f"Latency series not scored: {err}")
        q = pd.DataFrame()
    if not q.empty:
        for cache in ("all", "warm", "cold"):
            part = q[q["cache"] == cache]
            frames.append(_long(part, f"p95_{cache}", "p95", "n"))
    ing = ingest_quantiles(wh, start_ms, ctx.end_ms)
    if not ing.empty:
        ing = ing.assign(series=ing["event_table"], ingest_p95_min=ing["p95"] / 60_000)
        frames.append(_long(ing, "ingest_p95_min", "ingest_p95_min", "n"))
    other = sorted(set(ctx.filters) - {"bucket"})
    if other:
        notes.append(f"Hourly CTR not scored: engagement_bins is kept per arm, filters on {other} "
                     "cannot apply.")
    else:
        eng = engagement_counts(wh, start_ms, ctx.end_ms, ctx.filters.get("bucket"), ctx.experiment_id,
                                bin_ms=HOUR_MS)
        if not eng.empty:
            per_arm = eng.groupby(["bin_ms", "bucket"], as_index=False)[["impressions", "clicks", "saves"]].sum()
            overall = per_arm.groupby("bin_ms", as_index=False)[["impressions", "clicks", "saves"]].sum()
            both = pd.concat([overall.assign(series=OVERALL), per_arm.rename(columns={"bucket": "series"})])
            imp = both["impressions"].where(both["impressions"] > 0)
            frames.append(_long(both.assign(ctr=both["clicks"] / imp), "ctr", "ctr", "impressions"))
    if not frames:
        return pd.DataFrame(columns=["metric", "series", "bin_ms", "value", "n"]), notes
    return pd.concat(frames, ignore_index=True), notes


def _deviation(spec: SeriesSpec, value: np.ndarray, n: np.ndarray, median: np.ndarray) -> np.ndarray:
    """Deviation from the median in the bad direction (conservative for proportions)."""
    if spec.proportion:
        low, high = proportion_interval(np.nan_to_num(value) * n, n, method="wilson")
        up, down = np.asarray(low) - median, median - np.asarray(high)
    else:
        up, down = value - median, median - value
    if spec.side == "up":
        return up
    if spec.side == "down":
        return down
    return np.fmax(up, down)


def score_same_time(
    values: np.ndarray,
    n: np.ndarray,
    spec: SeriesSpec,
    threshold: float = THRESHOLD,
    days: int = BASELINE_DAYS,
    min_days: int = MIN_HISTORY_DAYS,
) -> dict[str, np.ndarray]:
    """Score ``values`` (series × days × points of a day; NaN = not scored) day by day.

    A point's baseline is the points at the same time of day, ``spec.neighbours`` either side,
    on each of the previous ``days`` days, without points flagged before. Returns arrays of
    the input's shape: ``median``, ``scale`` (1.4826·MAD or its fallback), ``z``,
    ``robust_z``, ``state`` and ``flag``.
    """
    s, d, t = values.shape
    flat, nflat = values.reshape(s, d * t), n.reshape(s, d * t)
    w = spec.neighbours
    lags = np.array([j * t - o for j in range(1, days + 1) for o in range(-w, w + 1)])
    out = {k: np.full((s, d * t), np.nan) for k in ("median", "scale", "z", "robust_z")}
    state = np.full((s, d * t), "missing", dtype=object)
    flag = np.zeros((s, d * t), bool)
    first = 0
    cache = series_cache.current()
    if cache is not None and d > 1:
        # A day's scores depend on the values of that day and the days before only: the live
        # page's earlier days are scored once per process, then only the last day per update.
        past = (d - 1) * t
        key = ("anomaly_days", spec, threshold, days, min_days, s, d, t,
               hashlib.sha256(flat[:, :past].tobytes() + nflat[:, :past].tobytes()).hexdigest())
        kept = cache.keep(key, lambda: _score_days(flat[:, :past], nflat[:, :past], spec, threshold, days, min_days,
                                                   lags, d - 1, t))
        for k, v in kept.items():
            {**out, "state": state, "flag": flag}[k][:, :past] = v
        first = d - 1
    done = _score_days(flat, nflat, spec, threshold, days, min_days, lags, d, t, first, out, state, flag)
    shape = values.shape
    return {k: v.reshape(shape) for k, v in done.items()}


def _score_days(
    flat: np.ndarray, nflat: np.ndarray, spec: SeriesSpec, threshold: float, days: int, min_days: int,
    lags: np.ndarray, d: int, t: int, first: int = 0, out: dict[str, np.ndarray] | None = None,
    state: np.ndarray | None = None, flag: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The loop of :func:`score_same_time` over days ``first`` to ``d − 1`` (arrays series × points,
    filled in place; those of earlier days already hold their scores)."""
    s = flat.shape[0]
    w = spec.neighbours
    if out is None:
        out = {k: np.full((s, d * t), np.nan) for k in ("median", "scale", "z", "robust_z")}
    if state is None:
        state = np.full((s, d * t), "missing", dtype=object)
    if flag is None:
        flag = np.zeros((s, d * t), bool)
    for k in range(first, d):
        idx = np.arange(k * t, (k + 1) * t)
        if np.isnan(flat[:, idx]).all():
            continue  # a day without data (before the warehouse's first day): all "missing"
        src = idx[:, None] - lags[None, :]
        ok = src >= 0
        safe = np.where(ok, src, 0)
        base = np.where(ok[None] & ~flag[:, safe], flat[:, safe], np.nan)
        r = anomaly_scores(flat[:, idx], base, threshold=threshold, side="both", min_history=min_days * (2 * w + 1))
        rz = np.asarray(r.robust_z, dtype=float)
        med = np.asarray(r.median, dtype=float)
        with np.errstate(invalid="ignore"):
            beyond = {"up": rz > threshold, "down": rz < -threshold, "both": np.abs(rz) > threshold}[spec.side]
            dev = _deviation(spec, flat[:, idx], nflat[:, idx], med)
            floor = np.maximum(spec.floor_abs, spec.floor_rel * np.abs(med))
            f = (beyond & (dev >= floor) & (med >= spec.min_baseline)
                 & (np.asarray(r.state) != "insufficient_history"))
        flag[:, idx] = f
        out["median"][:, idx], out["scale"][:, idx] = med, r.mad
        out["z"][:, idx], out["robust_z"][:, idx] = r.z, rz
        st = np.asarray(r.state, dtype=object).copy()
        st[st == "anomaly"] = "normal"
        st[f] = "anomaly"
        state[:, idx] = st
    return {**out, "state": state, "flag": flag}


def _grid(df: pd.DataFrame, spec: SeriesSpec, day0: int, days: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Series names and (series × days × points) arrays of values and counts."""
    names = series_order(df)
    t = DAY_MS // spec.period_ms
    slots = day0 + np.arange(days * t, dtype=np.int64) * spec.period_ms
    idx = pd.MultiIndex.from_product([names, slots], names=["series", "bin_ms"])
    g = df.set_index(["series", "bin_ms"])[["value", "n"]]
    g = g[~g.index.duplicated()].reindex(idx)
    if spec.metric == "requests":
        # No rows in a bin of a day with data means no requests, not a missing value.
        has_day = {int(b) - int(b) % DAY_MS for b in df["bin_ms"]}
        day_of = np.repeat(day0 + np.arange(days, dtype=np.int64) * DAY_MS, t)
        on_day = np.tile(np.isin(day_of, list(has_day)), len(names))
        g.loc[on_day & g["value"].isna().to_numpy(), ["value", "n"]] = 0.0
    value = g["value"].to_numpy(float)
    n = g["n"].fillna(0).to_numpy(float)
    value = np.where(n >= spec.min_n, value, np.nan) if spec.min_n else value
    shape = (len(names), days, t)
    return names, value.reshape(shape), n.reshape(shape)


def _runs(flags: np.ndarray, need: int) -> np.ndarray:
    """Mark flags that belong to a run of at least ``need`` consecutive flags (last axis)."""
    s, m = flags.shape
    padded = np.zeros((s, m + 2), bool)  # a False either side of each row: runs end within their row
    padded[:, 1:-1] = flags
    step = np.diff(padded.ravel().astype(np.int8))
    starts, ends = np.flatnonzero(step == 1) + 1, np.flatnonzero(step == -1) + 1
    out = np.zeros(padded.size, bool)
    for a, b in zip(starts, ends, strict=True):
        if b - a >= need:
            out[a:b] = True
    return out.reshape(s, m + 2)[:, 1:-1]


def score_all(long: pd.DataFrame, start_ms: int, end_ms: int, lookback_ms: int) -> pd.DataFrame:
    """Scores of every point of the window: one row per metric, series and point."""
    day0 = lookback_ms - lookback_ms % DAY_MS
    days = -(-(end_ms - day0) // DAY_MS)
    frames = []
    for metric, df in long.groupby("metric", sort=False):
        spec = SPECS[str(metric)]
        names, values, n = _grid(df, spec, day0, days)
        r = score_same_time(values, n, spec)
        s, d, t = values.shape
        need = max(1, -(-SUSTAINED_MINUTES * 60_000 // spec.period_ms))
        sustained = _runs(r["flag"].reshape(s, d * t), need).reshape(s, d, t)
        slots = np.tile(day0 + np.arange(d * t, dtype=np.int64) * spec.period_ms, s)
        # only whole points of the window: an hour still running would read as a drop
        keep = (slots >= start_ms) & (slots + spec.period_ms <= end_ms) & ~np.isnan(values.ravel())
        out = pd.DataFrame({
            "metric": spec.metric, "label": spec.label, "series": np.repeat(names, d * t)[keep],
            "bin_ms": slots[keep], "value": values.ravel()[keep], "n": n.ravel()[keep],
            **{k: r[k].ravel()[keep] for k in ("median", "scale", "z", "robust_z", "state", "flag")},
            "sustained": sustained.ravel()[keep],
        })
        frames.append(out)
    if not frames:
        return pd.DataFrame()
    pts = pd.concat(frames, ignore_index=True)
    pts["low"] = pts["median"] - THRESHOLD * pts["scale"]
    pts["high"] = pts["median"] + THRESHOLD * pts["scale"]
    return pts


@dataclass(frozen=True)
class Episode:
    """A sustained anomaly: one series anomalous over consecutive points.

    Attributes:
        metric: the metric's label; series: ``all``, a slice value or an event table.
        start, end: its bounds (ISO); minutes: its length.
    """

    metric: str
    series: str
    start: str
    end: str
    minutes: int


@dataclass(frozen=True)
class AnomalyValues:
    """The anomaly tile's own numbers over the window.

    Attributes:
        points_scored, points_flagged: points with a baseline, and those flagged; flag_rate: their ratio.
        points_insufficient_history: points without enough history to be scored.
        series_scored: metric × series with a scored point.
        sustained: the sustained anomalies (:class:`Episode`, at most 100).
        flagged_bins: start times (ISO) of the flagged points; flagged_metrics: their metrics.
        threshold, score, baseline: how points are flagged.
        min_history_days: days of history a baseline needs; sustained_minutes: how long an anomaly
            must last to set the status.
    """

    points_scored: int
    points_flagged: int
    flag_rate: float
    points_insufficient_history: int
    series_scored: int
    sustained: list[Episode]
    flagged_bins: list[str]
    flagged_metrics: list[str]
    threshold: float
    score: str
    baseline: str
    min_history_days: int
    sustained_minutes: int


def compute_anomaly(ctx: HealthContext) -> Health[AnomalyValues] | None:
    """Scores of every series over the window; ``None`` without requests."""
    p = ctx.p
    window = health_counts(p.warehouse, ctx.start_ms, ctx.end_ms, None, ctx.filters, ctx.experiment_id,
                           per_bin=False)
    if window.empty or window["requests"].sum() == 0:
        return None
    lookback = ctx.start_ms - BASELINE_DAYS * DAY_MS
    long, notes = load_series(ctx, lookback)
    pts = score_all(long, ctx.start_ms, ctx.end_ms, lookback)
    scored = pts[pts["state"].isin(["normal", "anomaly"])]
    flagged = pts[pts["flag"]]
    sustained = pts[pts["sustained"]]
    status: Status = "warn" if len(sustained) else "ok"
    if scored.empty:
        status = "no_data"
        notes.append(f"Insufficient history: a baseline needs {MIN_HISTORY_DAYS} earlier days with data.")
    findings = pd.DataFrame({
        "series": flagged["series"], "bin_ms": flagged["bin_ms"], "time": flagged["bin_ms"].map(ms_to_iso),
        "metric": flagged["label"], "value": flagged["value"], "baseline median": flagged["median"],
        "robust z": flagged["robust_z"], "z": flagged["z"], "n": flagged["n"],
        "level": np.where(flagged["sustained"], "warn", "flag"),
        "rule": np.where(flagged["sustained"], f"anomalous ≥ {SUSTAINED_MINUTES} min", "isolated flag"),
    }).sort_values(["bin_ms", "metric", "series"]).reset_index(drop=True)
    values = AnomalyValues(
        points_scored=int(len(scored)), points_flagged=int(len(flagged)),
        flag_rate=len(flagged) / len(scored) if len(scored) else float("nan"),
        points_insufficient_history=int((pts["state"] == "insufficient_history").sum()),
        series_scored=int(scored.groupby(["metric", "series"]).ngroups) if len(scored) else 0,
        sustained=_episodes(sustained)[:100],
        flagged_bins=[ms_to_iso(int(b)) for b in sorted(set(flagged["bin_ms"]))][:MAX_LISTED_BINS],
        flagged_metrics=sorted(set(flagged["metric"])),
        threshold=THRESHOLD, score="robust z (median, 1.4826 MAD); classic z shown",
        baseline=f"same clock hour, previous {BASELINE_DAYS} days, flagged points left out",
        min_history_days=MIN_HISTORY_DAYS, sustained_minutes=SUSTAINED_MINUTES,
    )
    return health_result(ctx, Judgement(status, pts, findings), values, [], notes)


def render_anomaly(p: TileParams, h: Health[AnomalyValues]) -> TileResult:
    """The anomaly tile's page: summary, robust z over time, the most flagged series; table per series."""
    pts, v = h.judgement.bins, h.values
    episodes = _episodes(pts[pts["sustained"]])
    if not v.points_scored:  # nothing scored: no claim about anomalies either way
        summary = "insufficient history to score any point; anomalies not evaluated"
    else:
        summary = f"{v.points_flagged} of {v.points_scored:,} points flagged ({v.flag_rate:.2%})"
        summary += (f"; {len(episodes)} sustained anomal{'y' if len(episodes) == 1 else 'ies'}: "
                    + ", ".join(f"{e.metric} [{e.series}] from {e.start[11:16]}" for e in episodes[:4])
                    if episodes else "; no sustained anomaly")
    charts = [_z_chart(pts), *_band_charts(pts, pts[pts["flag"]])]
    return render_health(p, "Anomaly detection", h, summary, _per_series(pts), charts)


def anomaly_tile(p: TileParams) -> TileResult:
    """Anomaly scores of every health series and the hourly outcome series (see the module doc):
    :func:`compute_anomaly`, then :func:`render_anomaly`."""
    ctx = HealthContext.of(p)
    h = compute_anomaly(ctx)
    if h is None:
        return no_data_result(p, p.tile, SECTION, "Anomaly detection",
                              f"no requests in the {p.window} window {ctx.span()}")
    return render_anomaly(p, h)


def _per_series(pts: pd.DataFrame) -> pd.DataFrame:
    """One row per metric and series: points scored, insufficient history, flags, status."""
    rows = []
    for (metric, series), g in pts.groupby(["metric", "series"], sort=False):
        spec = SPECS[str(metric)]
        scored = g["state"].isin(["normal", "anomaly"])
        rows.append({
            "metric": spec.label, "series": series, "bad side": spec.side, "points scored": int(scored.sum()),
            "insufficient history": int((g["state"] == "insufficient_history").sum()),
            "flagged": int(g["flag"].sum()), "sustained (≥ 10 min)": int(g["sustained"].sum()),
            "max |robust z|": float(np.nanmax(np.abs(g["robust_z"]))) if scored.any() else np.nan,
            "status": "warn" if g["sustained"].any() else ("ok" if scored.any() else "insufficient history"),
        })
    return pd.DataFrame(rows)


def _episodes(sustained: pd.DataFrame) -> list[Episode]:
    """Sustained anomalies as (metric, series, start, end) episodes."""
    out: list[Episode] = []
    for (metric, series), g in sustained.groupby(["metric", "series"], sort=False):
        spec = SPECS[str(metric)]
        b = np.sort(g["bin_ms"].to_numpy())
        starts = np.r_[0, np.flatnonzero(np.diff(b) > spec.period_ms) + 1]
        ends = np.r_[starts[1:], len(b)]
        for i, k in zip(starts, ends, strict=True):
            out.append(Episode(metric=spec.label, series=str(series), start=ms_to_iso(int(b[i])),
                               end=ms_to_iso(int(b[k - 1]) + spec.period_ms),
                               minutes=int((b[k - 1] + spec.period_ms - b[i]) // 60_000)))
    return sorted(out, key=lambda e: (e.start, e.metric))


@deferrable
def _z_chart(pts: pd.DataFrame) -> Any:
    """Robust z of every overall series (and each event table) over time, with the ±3 lines."""
    df = pts[(pts["series"] == OVERALL) | (pts["metric"] == "ingest_p95_min")]
    df = df[df["state"].isin(["normal", "anomaly"])]
    df = df.assign(series_name=np.where(df["metric"] == "ingest_p95_min", df["label"] + " · " + df["series"],
                                        df["label"]),
                   rz=np.clip(df["robust_z"], -Z_CLIP, Z_CLIP))
    df = df.assign(time=bin_frame_times(df))[["time", "series_name", "rz", "flag"]].rename(
        columns={"series_name": "series", "rz": "robust z"})
    return series_chart(df, "time", "robust z", color="series",
                        thresholds=[(f"+{THRESHOLD:g}", THRESHOLD), (f"−{THRESHOLD:g}", -THRESHOLD)],
                        title=f"Robust z of the overall series (clipped at ±{Z_CLIP:g}); flagged points in red",
                        value_format=".1f", flag="flag", y_title="robust z")


def _band_charts(pts: pd.DataFrame, flagged: pd.DataFrame, limit: int = 4) -> list[Any]:
    """Value, baseline band (median ± 3 scale) and flags of the most flagged series."""
    if len(flagged):
        top = flagged.groupby(["metric", "series"]).size().sort_values(ascending=False).head(limit).index.tolist()
    else:
        top = [("p95_all", OVERALL)]
    charts = []
    for metric, series in top:
        g = pts[(pts["metric"] == metric) & (pts["series"] == series)]
        if g.empty:
            continue
        spec = SPECS[metric]
        df = g.assign(time=bin_frame_times(g))[["time", "value", "low", "high", "flag"]]
        df["series"] = series
        fmt = spec.fmt if spec.fmt.endswith("%") else ",.4~f"
        charts.append(series_chart(
            df, "time", "value", color="series", low="low", high="high", value_format=fmt, flag="flag",
            y_title=spec.label,
            title=f"{spec.label} [{series}]: value and baseline band (median ± {THRESHOLD:g} robust scale)"))
    return charts
