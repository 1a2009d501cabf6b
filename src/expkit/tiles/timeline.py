"""Experiment timeline tile (docs/metrics.md): every outcome metric per day and arm over the experiment's
life, and the cumulative lift with its fixed-horizon and always-valid bands.

Each day's point is the tile's window ending that day (``24h``: that day; ``7d``: the week to
that day, a rolling view), from the experiment's start date (at most the last
:data:`~expkit.tiles.allocation.MAX_DAYS` days) to the report date. The cumulative lift of a day
compares the arms over the experiment to that day (rollup window ``cum``), with the 95%
delta-method interval and the always-valid confidence sequence: only the latter may be read
every day without inflating false positives.

Status: that of the last day's values against the targets (docs/metrics.md, "SLOs and targets"; as the ratio tiles:
``breach`` below target, ``warn`` when the interval reaches below it), worst over metrics and
arms; arms with a sample ratio mismatch in the window are marked untrustworthy.
"""

from __future__ import annotations

import pandas as pd

from expkit.charts import DAY_AXIS, bands_chart
from expkit.estimates import compare_frame, estimate_frame
from expkit.readers import ratio_stats_table
from expkit.tiles.arms import arm_level, lift_metrics, shown_treatments, tuning_n, with_all_arms
from expkit.tiles.base import TileParams, TileResult, status_vs_target, worst
from expkit.tiles.common import capped_metrics, data_as_of, no_data_result
from expkit.tiles.srm import experiment_days, srm_check, srm_label

TIMELINE_SLICES = ("bucket",)
"""One line per arm and metric; narrow the population with filters instead of slicing."""


def daily_values(p: TileParams) -> pd.DataFrame:
    """Per day, metric and arm: estimate with its 95% delta-method interval (window ``p.window``)."""
    stats = ratio_stats_table(arm_level(p), lift_metrics(p), [p.window], experiment_days(p))
    est = estimate_frame(stats)
    return est[est["sum_den"] > 0].reset_index(drop=True)


def cumulative_lift(p: TileParams) -> pd.DataFrame:
    """Per day, treatment arm and metric: lift over the experiment to that day (window ``cum``)."""
    treatments = shown_treatments(p)
    if not treatments:
        return pd.DataFrame()
    stats = ratio_stats_table(with_all_arms(arm_level(p)), lift_metrics(p), ["cum"], experiment_days(p))
    key = ("day", "metric", "slice_value")
    return compare_frame(stats, p.config.control, treatments, tuning_n(p), key=key)


def last_day(values: pd.DataFrame, p: TileParams) -> dict[str, dict[str, dict]]:
    """Metric → arm → the last day's estimate, interval and status against the metric's target."""
    out: dict[str, dict[str, dict]] = {}
    for r in values[values["day"] == values["day"].max()].itertuples():
        target = p.config.target(r.metric)
        out.setdefault(r.metric, {})[r.bucket] = {
            "estimate": r.estimate, "low": r.low, "high": r.high, "target": target.value if target else None,
            "day": r.day, "status": status_vs_target(r.estimate, target, r.low, r.high),
        }
    return out


def last_cumulative_lift(lift: pd.DataFrame) -> dict[str, dict[str, dict]]:
    """Arm → metric → the cumulative lift of the last day with both intervals and p-values, and
    whether it is CUPED-adjusted (``cuped``, ``variance_reduction``)."""
    out: dict[str, dict[str, dict]] = {}
    if lift.empty:
        return out
    fields = ("rel_lift", "rel_low", "rel_high", "seq_low", "seq_high", "pvalue", "seq_pvalue")
    for r in lift[lift["day"] == lift["day"].max()].to_dict("records"):
        out.setdefault(r["bucket"], {})[r["metric"]] = {
            **{k: r[k] for k in fields}, "cuped": bool(r["cuped"]),
            "variance_reduction": float(r["variance_reduction"])}
    return out


def timeline_tile(p: TileParams) -> TileResult:
    """Build the timeline tile for parameters ``p``."""
    title = "Experiment timeline"
    values = daily_values(p)
    if values.empty or p.event_date not in set(values["day"]):
        return no_data_result(p, "timeline", "outcomes", title,
                              f"no outcome data for {p.event_date} (experiment start {p.config.start_date})")
    check = srm_check(p)
    per_metric = last_day(values, p)
    primary = p.config.primary_metric if p.config.primary_metric in per_metric else next(iter(per_metric))
    lift = cumulative_lift(p)
    cum = last_cumulative_lift(lift)
    arms = {a: dict(v, srm=check.flags.get(a, False)) for a, v in per_metric[primary].items()}
    headline = {
        "metric": primary, "window": p.window, "arms": arms, "metrics": per_metric, "cumulative_lift": cum,
        "first_day": min(values["day"]), "last_day": max(values["day"]), "days": int(values["day"].nunique()),
        "tuning_n": tuning_n(p), "interval": "delta method (per-user sums), 95%",
    }
    caps = capped_metrics(p, list(per_metric))  # the report day's thresholds
    if caps:
        headline["caps"] = {m: c.to_dict() for m, c in caps.items()}
    summary = f"{p.config.catalogue[primary].title} on {headline['last_day']}: " + "; ".join(
        f"{srm_label(a, v['srm'])} {v['estimate']:.4g} [{v['low']:.4g}, {v['high']:.4g}]" for a, v in arms.items())
    if cum:
        summary += "; cumulative lift " + "; ".join(
            f"{a} {m[primary]['rel_lift']:+.1%} (always-valid [{m[primary]['seq_low']:+.1%}, "
            f"{m[primary]['seq_high']:+.1%}])" for a, m in cum.items() if primary in m)
    charts = [_values_chart(values, p, check.flags)] + ([_lift_chart(lift, p, check.flags)] if not lift.empty else [])
    value_rows = values.assign(kind=f"value ({p.window})").rename(columns={"n": "users"})
    lift_rows = lift.assign(kind="cumulative lift").rename(
        columns={"users_treatment": "users", "rel_lift": "estimate", "rel_low": "low", "rel_high": "high"})
    columns = ["kind", "day", "metric", "bucket", "users", "estimate", "low", "high"]
    extra = ["seq_low", "seq_high", "pvalue", "seq_pvalue"]
    table = pd.concat([value_rows[columns]] + ([lift_rows[columns + extra]] if not lift.empty else []),
                      ignore_index=True)
    statuses = [a["status"] for arms_ in per_metric.values() for a in arms_.values()]
    return TileResult(
        tile=p.tile, section="outcomes", title=title, status=worst(statuses), headline=headline, summary=summary,
        table=table, charts=charts, params=p.describe(), as_of=data_as_of(p),
        experiment_id=p.config.experiment_id,
        notes=[n for n in [check.note()] if n] + [c.note() for c in caps.values()],
    )


def _target_value(p: TileParams, metric: str) -> float:
    target = p.config.target(metric)
    return target.value if target is not None else float("nan")


def _values_chart(values: pd.DataFrame, p: TileParams, flags: dict[str, bool]) -> object:
    data = values.assign(
        day=pd.to_datetime(values["day"]), arm=[srm_label(a, flags.get(a, False)) for a in values["bucket"]],
        metric=[p.config.catalogue[m].title for m in values["metric"]],
        target=[_target_value(p, m) for m in values["metric"]],
    )
    return bands_chart(data, x="day", y="estimate", bands=[("low", "high")], color="arm", reference="target",
                       facet="metric", value_format=".3~g", x_axis=DAY_AXIS,
                       title=f"Per day ({p.window} window ending each day), 95% band; dashed: target")


def _lift_chart(lift: pd.DataFrame, p: TileParams, flags: dict[str, bool]) -> object:
    data = lift.assign(
        day=pd.to_datetime(lift["day"]), arm=[srm_label(a, flags.get(a, False)) for a in lift["bucket"]],
        metric=[p.config.catalogue[m].title for m in lift["metric"]], zero=0.0,
    )
    return bands_chart(data, x="day", y="rel_lift", bands=[("seq_low", "seq_high"), ("rel_low", "rel_high")],
                       color="arm", reference="zero", facet="metric", value_format="+.1%", x_axis=DAY_AXIS,
                       title=f"Cumulative lift vs {p.config.control}: dark band 95% fixed-horizon, "
                             "light band always-valid")
