"""Outcome ratio-metric tiles: CTR proxy, save/add rate, Recall@K, session depth (docs/metrics.md).

One function serves all four: per-user sufficient statistics from the rollups, the
delta-method interval per arm (and slice), Wilson at the effective sample size beside it,
status against the metric's target, an interval chart with the target line, and a table.

Status (per arm, the tile takes the worst): ``breach`` when the estimate is below the target
(docs/metrics.md, "SLOs and targets"), ``warn`` when only the interval's low end is, ``ok`` otherwise, ``no_data`` when
the window has no denominator. Arms with a sample ratio mismatch in the window are marked
untrustworthy (notes, headline, chart labels) whatever their status.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from expkit.charts import interval_chart
from expkit.readers import EVENT_ATTRIBUTES, USER_ATTRIBUTES, ratio_stats
from expkit.stats import ratio_estimate
from expkit.tiles.allocation import SrmCheck, srm_check, srm_label
from expkit.tiles.base import TileParams, TileResult, status_vs_floor, worst
from expkit.tiles.common import data_as_of, no_data_result

ALL_SLICES = ("bucket", "cohort", "region", "surface", "client", "genre", "provider")
USER_SLICES = ("bucket", *USER_ATTRIBUTES)


@dataclass(frozen=True)
class RatioMetric:
    """A ratio metric tile: which statistic, how it reads, its target."""

    metric: str
    title: str
    numerator: str
    denominator: str
    target_key: str | None
    slices: tuple[str, ...]
    value_format: str = ".2%"
    percent: bool = True
    secondary: str | None = None


RATIO_METRICS = {
    "ctr": RatioMetric("ctr", "CTR proxy", "clicks", "impressions", "ctr_min", ALL_SLICES),
    "save_rate": RatioMetric(
        "save_rate", "Save/Add rate", "saves", "impressions", "save_rate_min", ALL_SLICES, ".3%",
        secondary="saves_per_click",
    ),
    "recall": RatioMetric("recall", "Recall@K proxy", "hits", "plays", "recall_min", USER_SLICES, ".3f", False),
    "session_depth": RatioMetric(
        "session_depth", "Session depth", "depth", "sessions", "session_depth_min", USER_SLICES, ".2f", False
    ),
}
SECONDARY_METRICS = {
    "saves_per_click": RatioMetric("saves_per_click", "Saves per click", "saves", "clicks", None, ALL_SLICES),
}
"""Metrics shown beside a tile's own (docs/metrics.md: saves per click beside the save rate); no target."""


def estimate_frame(stats: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Add estimate, delta-method interval and effective-size Wilson interval to a stats frame."""
    out = stats.copy()
    if out.empty:
        for col in ("estimate", "se", "low", "high", "wilson_low", "wilson_high", "design_effect", "reason"):
            out[col] = []
        return out
    est = ratio_estimate(
        out["n"].to_numpy(float), out["sum_num"].to_numpy(float), out["sum_den"].to_numpy(float),
        out["sum_num2"].to_numpy(float), out["sum_den2"].to_numpy(float), out["sum_numden"].to_numpy(float),
        alpha=alpha,
    )
    for col in ("estimate", "se", "low", "high", "wilson_low", "wilson_high", "design_effect"):
        out[col] = np.atleast_1d(getattr(est, col))
    out["reason"] = np.atleast_1d(est.reason)
    return out


def _fmt(v: float, m: RatioMetric) -> str:
    if v is None or not np.isfinite(v):
        return "n/a"
    return f"{v:.2%}" if m.percent else f"{v:.3f}"


def arm_level(p: TileParams) -> TileParams:
    """Parameters of the per-arm headline: the whole (user-attribute filtered) population.

    Impression attributes only narrow a sliced table, since a user spans several of their values.
    """
    return replace(p, slice="bucket", filters={k: v for k, v in p.filters.items() if k not in EVENT_ATTRIBUTES})


def arm_summaries(est: pd.DataFrame, m: RatioMetric, target: float | None, srm: SrmCheck) -> dict[str, dict]:
    """Headline entry per arm: estimate, delta-method and Wilson (n_eff) bounds, sums, status, SRM mark."""
    arms = {}
    for row in est.itertuples():
        arms[row.bucket] = {
            "estimate": row.estimate, "low": row.low, "high": row.high, "se": row.se,
            "wilson_low": row.wilson_low, "wilson_high": row.wilson_high,
            "design_effect": row.design_effect, "users": int(row.n),
            m.numerator: row.sum_num, m.denominator: row.sum_den,
            "srm": srm.flags.get(row.bucket, False),
            # Why the delta-method interval is undefined (e.g. a single user). A metric that is not
            # a proportion (session depth) has no Wilson view: that alone is not worth a note.
            "reason": (row.reason or None) if not np.isfinite(row.low) else None,
        }
        if target is not None:
            arms[row.bucket]["status"] = status_vs_floor(row.estimate, target, row.low)
    return arms


def _table(est: pd.DataFrame, m: RatioMetric, slice_col: str | None, srm: SrmCheck) -> pd.DataFrame:
    cols = ["bucket"] + ([slice_col] if slice_col else [])
    out = est.rename(columns={"slice_value": slice_col} if slice_col else {}).assign(
        metric=f"{m.metric} ({m.numerator} / {m.denominator})",
        srm=[srm.flags.get(b, False) for b in est["bucket"]],
    )
    return out[["metric", *cols, "n", "sum_num", "sum_den", "estimate", "low", "high", "wilson_low", "wilson_high",
                "design_effect", "srm", "reason"]].rename(columns={
        "n": "users", "sum_num": "numerator", "sum_den": "denominator",
        "wilson_low": "wilson_low (n_eff)", "wilson_high": "wilson_high (n_eff)"})


def ratio_tile(p: TileParams, m: RatioMetric, section: str = "outcomes") -> TileResult:
    """Build the tile of ratio metric ``m`` for parameters ``p``."""
    target = float(getattr(p.config.targets, m.target_key))
    arm_params = arm_level(p)
    per_arm = estimate_frame(ratio_stats(arm_params, m.metric))
    sliced = per_arm if p.slice == "bucket" else estimate_frame(ratio_stats(p, m.metric))
    per_arm = per_arm[per_arm["sum_den"] > 0]
    if per_arm.empty:
        return no_data_result(p, m.metric, section, m.title,
                              f"no {m.denominator} in the {p.window} window ending {p.event_date}")
    srm = srm_check(p)
    arms = arm_summaries(per_arm, m, target, srm)
    status = worst([a["status"] for a in arms.values()])
    summary = "; ".join(
        f"{srm_label(arm, a['srm'])} {_fmt(a['estimate'], m)} [{_fmt(a['low'], m)}, {_fmt(a['high'], m)}]"
        for arm, a in arms.items()
    ) + f" (target ≥ {_fmt(target, m)})"
    headline = {"metric": m.metric, "window": p.window, "target": target, "arms": arms,
                "interval": "delta method (per-user sums), 95%", "srm_pvalue": srm.pvalue, "srm": srm.any}
    tables = []
    if m.secondary:
        sec = SECONDARY_METRICS[m.secondary]
        sec_est = estimate_frame(ratio_stats(arm_params, sec.metric))
        sec_est = sec_est[sec_est["sum_den"] > 0]
        headline["secondary"] = {"metric": sec.metric, "arms": arm_summaries(sec_est, sec, None, srm)}
        tables.append(_table(sec_est, sec, None, srm))
    category = "bucket" if p.slice == "bucket" else "slice_value"
    chart_df = sliced[sliced["sum_den"] > 0]
    chart = interval_chart(
        chart_df.assign(arm=[srm_label(b, srm.flags.get(b, False)) for b in chart_df["bucket"]]),
        category="arm" if p.slice == "bucket" else category, estimate="estimate", low="low", high="high",
        color="arm", thresholds=[(f"target {_fmt(target, m)}", target)],
        title=f"{m.title} per {'arm' if p.slice == 'bucket' else p.slice}, 95% delta-method interval",
        value_format=m.value_format,
    )
    table = pd.concat([_table(chart_df, m, None if p.slice == "bucket" else p.slice, srm), *tables],
                      ignore_index=True)
    return TileResult(
        tile=p.tile, section=section, title=m.title, status=status, headline=headline, summary=summary,
        table=table, charts=[chart], params=p.describe(), as_of=data_as_of(p),
        experiment_id=p.config.experiment_id,
        notes=[n for n in [srm.note()] if n] + [f"{arm}: {a['reason']}" for arm, a in arms.items() if a["reason"]],
    )
