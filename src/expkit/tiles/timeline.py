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

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from expkit.charts import DAY_AXIS, bands_chart
from expkit.estimates import compare_frame, estimate_frame
from expkit.names import Status
from expkit.readers import ratio_stats_table
from expkit.tiles.arms import arm_level, lift_metrics, shown_treatments, tuning_n, with_all_arms
from expkit.tiles.base import SHOWN_ONLY, TileParams, TileResult, status_vs_target, worst
from expkit.tiles.common import capped_metrics, no_data_result, typed_result
from expkit.tiles.srm import experiment_days, srm_check, srm_label

TITLE = "Experiment timeline"
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


@dataclass(frozen=True)
class DayValue:
    """A metric's value for one arm on the last day (its window ending that day).

    Attributes:
        estimate, low, high: the estimate with its 95% delta-method interval.
        target: the metric's target (``None``: none set).
        day: the day.
        status: against the target (:func:`~expkit.tiles.base.status_vs_target`).
    """

    estimate: float
    low: float
    high: float
    target: float | None
    day: dt.date
    status: Status


@dataclass(frozen=True)
class ArmDay(DayValue):
    """A :class:`DayValue` of the primary metric, with the arm's sample-ratio-mismatch flag."""

    srm: bool


@dataclass(frozen=True)
class CumulativeLift:
    """A treatment arm's lift over the experiment to the last day (window ``cum``).

    Attributes:
        rel_lift, rel_low, rel_high: relative lift with its 95% fixed-horizon interval.
        seq_low, seq_high: the always-valid confidence sequence.
        pvalue, seq_pvalue: fixed-horizon and always-valid p-values of the relative lift.
        cuped: whether the comparison is CUPED-adjusted; variance_reduction: by how much.
    """

    rel_lift: float
    rel_low: float
    rel_high: float
    seq_low: float
    seq_high: float
    pvalue: float
    seq_pvalue: float
    cuped: bool
    variance_reduction: float


@dataclass(frozen=True)
class Timeline:
    """What the timeline tile computed (its headline, in this order, plus the frames it draws).

    Attributes:
        metric: the primary metric (or the first one with data).
        window: the window of each day's point.
        arms: arm → the primary metric's :class:`ArmDay`.
        metrics: metric → arm → :class:`DayValue`.
        cumulative_lift: treatment arm → metric → :class:`CumulativeLift` (empty without one).
        first_day, last_day, days: the days shown.
        tuning_n: users per arm the always-valid sequence is tuned for.
        interval: how the intervals are computed.
        values, lift: per day, metric and arm: the values and the cumulative lifts (chart data).
        srm_flags: arm → flagged for sample ratio mismatch; notes: caveats.
    """

    metric: str
    window: str
    arms: dict[str, ArmDay]
    metrics: dict[str, dict[str, DayValue]]
    cumulative_lift: dict[str, dict[str, CumulativeLift]]
    first_day: dt.date
    last_day: dt.date
    days: int
    tuning_n: float
    interval: str
    values: pd.DataFrame = field(metadata=SHOWN_ONLY)
    lift: pd.DataFrame = field(metadata=SHOWN_ONLY)
    srm_flags: dict[str, bool] = field(metadata=SHOWN_ONLY)
    notes: list[str] = field(metadata=SHOWN_ONLY)

    @property
    def status(self) -> Status:
        """The worst status over metrics and arms of the last day."""
        return worst([v.status for arms in self.metrics.values() for v in arms.values()])


def last_day(values: pd.DataFrame, p: TileParams) -> dict[str, dict[str, DayValue]]:
    """Metric → arm → the last day's estimate, interval and status against the metric's target."""
    out: dict[str, dict[str, DayValue]] = {}
    for r in values[values["day"] == values["day"].max()].itertuples():
        target = p.config.target(r.metric)
        out.setdefault(r.metric, {})[r.bucket] = DayValue(
            estimate=r.estimate, low=r.low, high=r.high, target=target.value if target else None,
            day=r.day, status=status_vs_target(r.estimate, target, r.low, r.high),
        )
    return out


def last_cumulative_lift(lift: pd.DataFrame) -> dict[str, dict[str, CumulativeLift]]:
    """Arm → metric → the cumulative lift of the last day with both intervals and p-values, and
    whether it is CUPED-adjusted."""
    out: dict[str, dict[str, CumulativeLift]] = {}
    if lift.empty:
        return out
    fields = ("rel_lift", "rel_low", "rel_high", "seq_low", "seq_high", "pvalue", "seq_pvalue")
    for r in lift[lift["day"] == lift["day"].max()].to_dict("records"):
        out.setdefault(r["bucket"], {})[r["metric"]] = CumulativeLift(
            **{k: r[k] for k in fields}, cuped=bool(r["cuped"]),
            variance_reduction=float(r["variance_reduction"]))
    return out


def compute_timeline(p: TileParams) -> Timeline | None:
    """Every listed metric per day and arm, and the cumulative lift; ``None`` without data for
    the report date."""
    values = daily_values(p)
    if values.empty or p.event_date not in set(values["day"]):
        return None
    check = srm_check(p)
    per_metric = last_day(values, p)
    primary = p.config.primary_metric if p.config.primary_metric in per_metric else next(iter(per_metric))
    lift = cumulative_lift(p)
    arms = {a: ArmDay(**dataclasses.asdict(v), srm=check.flags.get(a, False)) for a, v in per_metric[primary].items()}
    return Timeline(
        metric=primary, window=p.window, arms=arms, metrics=per_metric, cumulative_lift=last_cumulative_lift(lift),
        first_day=min(values["day"]), last_day=max(values["day"]), days=int(values["day"].nunique()),
        tuning_n=tuning_n(p), interval="delta method (per-user sums), 95%",
        values=values, lift=lift, srm_flags=dict(check.flags),
        notes=[n for n in [check.note()] if n] + [c.note() for c in capped_metrics(p, sorted(per_metric)).values()],
    )


def render_timeline(p: TileParams, t: Timeline) -> TileResult:
    """The timeline tile's page: summary, the values and cumulative-lift charts, the table."""
    primary, values, lift = t.metric, t.values, t.lift
    summary = f"{p.config.catalogue[primary].title} on {t.last_day}: " + "; ".join(
        f"{srm_label(a, v.srm)} {v.estimate:.4g} [{v.low:.4g}, {v.high:.4g}]" for a, v in t.arms.items())
    if t.cumulative_lift:
        summary += "; cumulative lift " + "; ".join(
            f"{a} {m[primary].rel_lift:+.1%} (always-valid [{m[primary].seq_low:+.1%}, "
            f"{m[primary].seq_high:+.1%}])" for a, m in t.cumulative_lift.items() if primary in m)
    charts = [_values_chart(values, p, t.srm_flags)]
    if not lift.empty:
        charts.append(_lift_chart(lift, p, t.srm_flags))
    value_rows = values.assign(kind=f"value ({p.window})").rename(columns={"n": "users"})
    lift_rows = lift.assign(kind="cumulative lift").rename(
        columns={"users_treatment": "users", "rel_lift": "estimate", "rel_low": "low", "rel_high": "high"})
    columns = ["kind", "day", "metric", "bucket", "users", "estimate", "low", "high"]
    extra = ["seq_low", "seq_high", "pvalue", "seq_pvalue"]
    table = pd.concat([value_rows[columns]] + ([lift_rows[columns + extra]] if not lift.empty else []),
                      ignore_index=True)
    return typed_result(p, "outcomes", TITLE, t, summary, table, charts)


def timeline_tile(p: TileParams) -> TileResult:
    """The timeline tile: :func:`compute_timeline`, then :func:`render_timeline`."""
    t = compute_timeline(p)
    if t is None:
        return no_data_result(p, "timeline", "outcomes", TITLE,
                              f"no outcome data for {p.event_date} (experiment start {p.config.start_date})")
    return render_timeline(p, t)


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
