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

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from expkit.catalogue import Target
from expkit.charts import interval_chart
from expkit.config import ExperimentConfig
from expkit.estimates import estimate_frame
from expkit.names import Status
from expkit.readers import ratio_stats
from expkit.tiles.arms import ALL_SLICES, USER_SLICES, arm_level
from expkit.tiles.base import INLINE, OMIT_NONE, SHOWN_ONLY, TileParams, TileResult, status_vs_target, worst
from expkit.tiles.common import MetricCap, capped_metrics, no_data_result, over_window, typed_result
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


@dataclass(frozen=True)
class ArmRatio:
    """One arm's value of a ratio metric over the window.

    Attributes:
        estimate, low, high: the ratio with its 95% delta-method interval.
        se: its standard error.
        wilson_low, wilson_high: the Wilson interval at the effective sample size.
        design_effect: variance over that of independent denominators.
        users: the arm's users.
        sums: the numerator and denominator sums under their headline names
            (:attr:`RatioMetric.numerator`, :attr:`RatioMetric.denominator`: ``clicks``, ``impressions``;
            a per-user mean's denominator ``users`` takes the place of ``users`` in the headline).
        srm: the arm's results are untrustworthy (sample ratio mismatch in the window).
        reason: why the delta-method interval is undefined (e.g. a single user), else ``None``.
        status: against the metric's target (:func:`~expkit.tiles.base.status_vs_target`);
            ``None`` (no headline key) without a target.
    """

    estimate: float
    low: float
    high: float
    se: float
    wilson_low: float
    wilson_high: float
    design_effect: float
    users: int
    sums: dict[str, float] = field(metadata=INLINE)
    srm: bool
    reason: str | None
    status: Status | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class SecondaryRatio:
    """The first metric shown beside a ratio metric (``headline.secondary``).

    Attributes:
        metric: its id.
        arms: arm → its :class:`ArmRatio` (without status: its target is not judged here).
    """

    metric: str
    arms: dict[str, ArmRatio]


@dataclass(frozen=True)
class Ratio:
    """What a ratio-metric tile computed (its headline, in this order, plus the frames it draws).

    Attributes:
        metric: the metric id.
        window: the tile's window.
        target: the metric's target value (``None``: none set).
        arms: arm → :class:`ArmRatio`.
        interval: how the intervals are computed.
        srm_pvalue, srm: the SRM test over all arms and whether any arm is flagged.
        cap: how the metric was capped (``None``, no headline key: not capped).
        secondary: the first metric beside it (``None``, no headline key: none).
        status: the worst arm status (``ok`` without a target).
        notes: caveats shown under the headline.
        values: per arm (or slice value): the estimates (chart data).
        table: the rows of the metric and of every metric beside it.
        srm_flags: arm → flagged for sample ratio mismatch (chart labels).
    """

    metric: str
    window: str
    target: float | None
    arms: dict[str, ArmRatio]
    interval: str
    srm_pvalue: float
    srm: bool
    cap: MetricCap | None = field(metadata=OMIT_NONE)
    secondary: SecondaryRatio | None = field(metadata=OMIT_NONE)
    status: Status = field(metadata=SHOWN_ONLY)
    notes: list[str] = field(metadata=SHOWN_ONLY)
    values: pd.DataFrame = field(metadata=SHOWN_ONLY)
    table: pd.DataFrame = field(metadata=SHOWN_ONLY)
    srm_flags: dict[str, bool] = field(metadata=SHOWN_ONLY)


def arm_summaries(est: pd.DataFrame, m: RatioMetric, target: Target | None, srm: SrmCheck) -> dict[str, ArmRatio]:
    """Per arm: estimate, delta-method and Wilson (n_eff) bounds, sums, status, SRM mark."""
    return {
        r["bucket"]: ArmRatio(
            estimate=r["estimate"], low=r["low"], high=r["high"], se=r["se"],
            wilson_low=r["wilson_low"], wilson_high=r["wilson_high"],
            design_effect=r["design_effect"], users=int(r["n"]),
            sums={m.numerator: r["sum_num"], m.denominator: r["sum_den"]},
            srm=srm.flags.get(r["bucket"], False),
            # A metric that is not a proportion (session depth) has no Wilson view: that alone
            # is not worth a note, so only the delta-method interval's reason is kept.
            reason=(r["reason"] or None) if not np.isfinite(r["low"]) else None,
            status=status_vs_target(r["estimate"], target, r["low"], r["high"]) if target is not None else None,
        )
        for r in est.to_dict("records")
    }


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


def compute_ratio(p: TileParams, m: RatioMetric) -> Ratio | None:
    """Ratio metric ``m`` per arm (and slice value) over the window, against its target, with
    the metrics beside it; ``None`` when no arm has a denominator."""
    target = m.target
    arm_params = arm_level(p)
    per_arm = estimate_frame(ratio_stats(arm_params, m.metric))
    sliced = per_arm if p.slice == "bucket" else estimate_frame(ratio_stats(p, m.metric))
    per_arm = per_arm[per_arm["sum_den"] > 0]
    if per_arm.empty:
        return None
    srm = srm_check(p)
    arms = arm_summaries(per_arm, m, target, srm)
    caps = capped_metrics(p, [m.metric, *m.beside])
    tables = []
    secondary = None
    for beside in m.beside:
        sec = ratio_metric(p.config, beside)
        sec_est = estimate_frame(ratio_stats(arm_params, sec.metric))
        sec_est = sec_est[sec_est["sum_den"] > 0]
        # the first metric beside it is the headline's secondary (every one is a row of the table)
        if secondary is None:
            secondary = SecondaryRatio(sec.metric, arm_summaries(sec_est, sec, None, srm))
        tables.append(_table(sec_est, sec, None, srm))
    values = sliced[sliced["sum_den"] > 0]
    table = pd.concat([_table(values, m, None if p.slice == "bucket" else p.slice, srm), *tables],
                      ignore_index=True)
    return Ratio(
        metric=m.metric, window=p.window, target=target.value if target else None, arms=arms,
        interval="delta method (per-user sums), 95%", srm_pvalue=srm.pvalue, srm=srm.any,
        cap=caps.get(m.metric), secondary=secondary,
        status=worst([a.status or "ok" for a in arms.values()]),
        notes=[n for n in [srm.note()] if n] + [f"{arm}: {a.reason}" for arm, a in arms.items() if a.reason]
        + [c.note() for c in caps.values()],
        values=values, table=table, srm_flags=dict(srm.flags),
    )


def render_ratio(p: TileParams, m: RatioMetric, r: Ratio, section: str = "outcomes") -> TileResult:
    """The ratio tile's page: summary, the interval chart with the target line, the table."""
    summary = "; ".join(
        f"{srm_label(arm, a.srm)} {_fmt(a.estimate, m)} [{_fmt(a.low, m)}, {_fmt(a.high, m)}]"
        for arm, a in r.arms.items()
    ) + f" {over_window(p.window)}" + target_text(m.target, m)
    if r.cap is not None:
        summary += f"; {r.cap.text}"
    chart_df = r.values
    chart = interval_chart(
        chart_df.assign(arm=[srm_label(b, r.srm_flags.get(b, False)) for b in chart_df["bucket"]]),
        category="arm" if p.slice == "bucket" else "slice_value", estimate="estimate", low="low", high="high",
        color="arm", thresholds=[(f"target {_fmt(r.target, m)}", r.target)] if r.target is not None else [],
        title=f"{m.title} per {'arm' if p.slice == 'bucket' else p.slice}, 95% delta-method interval",
        value_format=m.value_format,
    )
    return typed_result(p, section, m.title, r, summary, r.table, [chart])


def ratio_tile(p: TileParams, m: RatioMetric, section: str = "outcomes") -> TileResult:
    """The tile of ratio metric ``m``: :func:`compute_ratio`, then :func:`render_ratio`."""
    r = compute_ratio(p, m)
    if r is None:
        return no_data_result(p, m.metric, section, m.title,
                              f"no {m.denominator} in the {p.window} window ending {p.event_date}")
    return render_ratio(p, m, r, section)
