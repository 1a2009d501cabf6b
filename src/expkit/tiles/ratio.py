"""Outcome ratio-metric tiles: one per catalogue metric asking for a tile page (docs/metrics.md):
CTR proxy, save/add rate, Recall@K, session depth, and any metric of ``params/metrics.yaml``.

One function serves all: per-user sufficient statistics from the rollups, the
delta-method interval per arm (and slice), Wilson at the effective sample size beside it,
status against the metric's target, an interval chart with the target line, and a table.

Status (per arm, the tile takes the worst): ``breach`` when the estimate is below the target
(docs/metrics.md, "SLOs and targets"; above it for a ``{max: x}`` target), ``warn`` when only the
interval's end is, ``ok`` otherwise (and without a target), ``no_data`` when the window has no
denominator. Arms with a sample ratio mismatch in the window are marked
untrustworthy (notes, headline, chart labels) whatever their status.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from expkit.catalogue import Target
from expkit.charts import interval_chart
from expkit.config import ExperimentConfig
from expkit.estimates import estimate_frame
from expkit.readers import ratio_stats
from expkit.tiles.arms import ALL_SLICES, USER_SLICES, arm_level
from expkit.tiles.base import TileParams, TileResult, status_vs_target, worst
from expkit.tiles.common import capped_metrics, data_as_of, no_data_result
from expkit.tiles.srm import SrmCheck, srm_check, srm_label


@dataclass(frozen=True)
class RatioMetric:
    """A ratio metric as its tile shows it (from its catalogue entry, :mod:`expkit.catalogue`).

    Attributes:
        metric: the metric id.
        title: its title.
        numerator: the name of its numerator sums in the headline (``clicks``; declarative
            metrics: ``numerator``).
        denominator: likewise (``impressions``, ``users``, ``denominator``).
        target: its target for this experiment (None: none).
        slices: the slices its tile offers.
        value_format: d3 format of its values.
        percent: whether values print as percentages.
        beside: metrics shown beside it (rows of its table and ``headline.secondary``).
    """

    metric: str
    title: str
    numerator: str
    denominator: str
    target: Target | None
    slices: tuple[str, ...]
    value_format: str = ".2%"
    percent: bool = True
    beside: tuple[str, ...] = ()


def ratio_metric(config: ExperimentConfig, metric: str) -> RatioMetric:
    """The :class:`RatioMetric` of catalogue metric ``metric`` for ``config``'s experiment."""
    from expkit.catalogue import BUILTINS

    m = config.catalogue[metric]
    if m.builtin:
        num, den = BUILTINS[m.builtin].numerator, BUILTINS[m.builtin].denominator
    else:
        num, den = "numerator", "users" if m.per_user_mean else "denominator"
    return RatioMetric(metric, m.title, num, den, config.target(metric), ALL_SLICES if m.event_slices else USER_SLICES,
                       m.value_format, m.format == "percent", tuple(m.beside))


def target_text(target: Target | None, m: RatioMetric) -> str:
    """`` (target ≥ 1.00%)`` / `` (target ≤ x)``, or nothing."""
    if target is None:
        return ""
    return f" (target {'≥' if target.min is not None else '≤'} {_fmt(target.value, m)})"


def _fmt(v: float, m: RatioMetric) -> str:
    if v is None or not np.isfinite(v):
        return "n/a"
    return f"{v:.2%}" if m.percent else f"{v:.3f}"


def arm_summaries(est: pd.DataFrame, m: RatioMetric, target: Target | None, srm: SrmCheck) -> dict[str, dict]:
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
            arms[row.bucket]["status"] = status_vs_target(row.estimate, target, row.low, row.high)
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
    target = m.target
    arm_params = arm_level(p)
    per_arm = estimate_frame(ratio_stats(arm_params, m.metric))
    sliced = per_arm if p.slice == "bucket" else estimate_frame(ratio_stats(p, m.metric))
    per_arm = per_arm[per_arm["sum_den"] > 0]
    if per_arm.empty:
        return no_data_result(p, m.metric, section, m.title,
                              f"no {m.denominator} in the {p.window} window ending {p.event_date}")
    srm = srm_check(p)
    arms = arm_summaries(per_arm, m, target, srm)
    status = worst([a.get("status", "ok") for a in arms.values()])
    summary = "; ".join(
        f"{srm_label(arm, a['srm'])} {_fmt(a['estimate'], m)} [{_fmt(a['low'], m)}, {_fmt(a['high'], m)}]"
        for arm, a in arms.items()
    ) + target_text(target, m)
    headline = {"metric": m.metric, "window": p.window, "target": target.value if target else None, "arms": arms,
                "interval": "delta method (per-user sums), 95%", "srm_pvalue": srm.pvalue, "srm": srm.any}
    caps = capped_metrics(p, [m.metric, *m.beside])
    if m.metric in caps:
        headline["cap"] = caps[m.metric].to_dict()
        summary += f"; {caps[m.metric].text}"
    tables = []
    for beside in m.beside:
        sec = ratio_metric(p.config, beside)
        sec_est = estimate_frame(ratio_stats(arm_params, sec.metric))
        sec_est = sec_est[sec_est["sum_den"] > 0]
        # the first metric beside it is the headline's secondary (every one is a row of the table)
        headline.setdefault("secondary", {"metric": sec.metric, "arms": arm_summaries(sec_est, sec, None, srm)})
        tables.append(_table(sec_est, sec, None, srm))
    category = "bucket" if p.slice == "bucket" else "slice_value"
    chart_df = sliced[sliced["sum_den"] > 0]
    chart = interval_chart(
        chart_df.assign(arm=[srm_label(b, srm.flags.get(b, False)) for b in chart_df["bucket"]]),
        category="arm" if p.slice == "bucket" else category, estimate="estimate", low="low", high="high",
        color="arm", thresholds=[(f"target {_fmt(target.value, m)}", target.value)] if target else [],
        title=f"{m.title} per {'arm' if p.slice == 'bucket' else p.slice}, 95% delta-method interval",
        value_format=m.value_format,
    )
    table = pd.concat([_table(chart_df, m, None if p.slice == "bucket" else p.slice, srm), *tables],
                      ignore_index=True)
    return TileResult(
        tile=p.tile, section=section, title=m.title, status=status, headline=headline, summary=summary,
        table=table, charts=[chart], params=p.describe(), as_of=data_as_of(p),
        experiment_id=p.config.experiment_id,
        notes=[n for n in [srm.note()] if n] + [f"{arm}: {a['reason']}" for arm, a in arms.items() if a["reason"]]
        + [c.note() for c in caps.values()],
    )
