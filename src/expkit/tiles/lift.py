"""Lift vs control tile (docs/statistics.md): every treatment arm × outcome metric (× slice value).

The outcome metrics are those the experiment names (``primary_metric``, ``secondary_metrics``,
ratio ``guardrail_metrics``; :attr:`expkit.config.ExperimentConfig.outcome_metrics`), from its
metric catalogue.

Per comparison: absolute difference with its interval, relative lift with delta-method and
Fieller intervals, the fixed-horizon p-value of the relative lift, its Benjamini–Hochberg
adjustment over every comparison the tile shows, and the always-valid (confidence-sequence)
interval and p-value of the relative lift, all from :func:`expkit.stats.compare_ratios` on
per-user sums. Each p-value is that of the interval shown beside it (``diff_pvalue`` is the
difference's).

The always-valid results use the mixture tuning ``N*`` of the experiment parameters
(``sequential_tuning_n`` of the parameters file).
It must be fixed before the experiment starts: tuning it on the data seen breaks the
any-time guarantee.

Outcome per arm and metric: ``win``, ``loss`` or ``inconclusive`` by where the always-valid
interval lies in the metric's good ``direction`` (catalogue), ``untrustworthy`` for an arm with
a sample ratio mismatch; the card shows the most severe over arms, never a bare "OK".

Segments whose effect differs (docs/readout.md, "Segments"): for every outcome metric, every
user-attribute slice the experiment lists (``slices``: cohort, region, client) and every value of
it with at least :data:`SEGMENT_MIN_USERS` users per arm, the value's relative lift is tested
against the lift of the rest of the population (:func:`expkit.stats.segment_interaction`), with
Benjamini–Hochberg over all these tests; the values with an adjusted p-value below 0.05 are
listed in ``headline["segments"]`` and get a note.

Status: ``breach`` when an arm has a sample ratio mismatch in the window (its lifts are
untrustworthy), ``warn`` when a metric is worse than control under the always-valid interval
(which stays valid however often the report is read), ``ok`` otherwise, ``no_data`` when no
comparison can be made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from expkit.charts import forest_chart
from expkit.errors import ExpkitError
from expkit.estimates import compare_frame
from expkit.names import Status
from expkit.readers import USER_ATTRIBUTES, ratio_stats_table
from expkit.stats import adjust_pvalues, srm_test
from expkit.tiles.arms import (
    ALL_SLICES,
    arm_level,
    lift_metrics,
    metrics_for,
    shown_treatments,
    tuning_n,
    with_all_arms,
)
from expkit.tiles.base import OMIT_NONE, SHOWN_ONLY, TileParams, TileResult
from expkit.tiles.common import MetricCap, capped_metrics, no_data_result, over_window, typed_result
from expkit.tiles.segments import (
    SEGMENT_ALPHA,
    SEGMENT_KEYS,
    SEGMENT_MIN_USERS,
    flagged_segments,
    segment_frame,
    segment_note,
    segment_scope,
    segment_slices,
    segment_stats,
)
from expkit.tiles.srm import SrmCheck, srm_check, srm_label

LIFT_SLICES = ALL_SLICES
TABLE_COLUMNS = [
    "bucket", "metric", "slice_value", "users_control", "users_treatment", "control", "treatment", "abs_diff",
    "diff_low", "diff_high", "rel_lift", "rel_low", "rel_high", "fieller_low", "fieller_high", "pvalue", "adj_pvalue",
    "seq_low", "seq_high", "seq_pvalue", "cuped", "variance_reduction", "untrustworthy", "reason",
]
"""The columns of the tile's table (:func:`lift_frame` has a few more)."""


def _slice_srm(frame: pd.DataFrame, p: TileParams) -> np.ndarray:
    """Per row of a user-attribute slice: SRM of the slice value's users (treatment vs control)."""
    cfg = p.config
    flags = np.zeros(len(frame), dtype=bool)
    rows = frame["slice_value"].ne("all").to_numpy() & (p.slice in USER_ATTRIBUTES)
    if rows.any():
        counts = frame.loc[rows, ["users_control", "users_treatment"]].to_numpy(float)
        shares = np.array([[cfg.buckets[cfg.control], cfg.buckets[a]] for a in frame.loc[rows, "bucket"]])
        flags[rows] = srm_test(counts, shares / shares.sum(axis=1, keepdims=True), cfg.srm_pvalue_threshold).flag
    return flags


def lift_frame(
    p: TileParams, check: SrmCheck | None = None, segment_stats: dict[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """Every comparison the tile shows: the overall rows (``slice_value == "all"``) and, when
    sliced, one row per slice value; with ``adj_pvalue`` (BH over all rows), ``srm`` (the arm's
    window SRM as in ``check``, or the slice value's own) and ``untrustworthy``.

    ``segment_stats`` (of :func:`segment_stats`) saves reading the tile's slice again when it
    is one of them."""
    control, treatments, n_star = p.config.control, shown_treatments(p), tuning_n(p)
    if not treatments:
        raise ExpkitError(
            f"the lift tile compares treatment arms with the control {control!r}; parameter buckets/filters "
            f"leave no treatment arm (experiment arms: {list(p.config.buckets)})"
        )
    metrics = lift_metrics(p)
    reads = [(arm_level(p), metrics)] + ([(p, metrics_for(p, p.slice))] if p.slice != "bucket" else [])
    known = segment_stats or {}

    def stats(q: TileParams, ms: list[str]) -> pd.DataFrame:
        if q.slice in known and ms == metrics and with_all_arms(q) == segment_scope(p, q.slice):
            return known[q.slice]
        return ratio_stats_table(with_all_arms(q), ms)

    parts = [compare_frame(stats(q, ms), control, treatments, n_star) for q, ms in reads]
    parts = [f for f in parts if not f.empty]
    if not parts:
        return pd.DataFrame()
    frame = pd.concat(parts, ignore_index=True)
    order = {m: i for i, m in enumerate(metrics)}
    frame = frame.assign(_o=frame["metric"].map(order), _all=frame["slice_value"].ne("all")).sort_values(
        ["bucket", "_o", "_all", "slice_value"]).drop(columns=["_o", "_all"]).reset_index(drop=True)
    frame["adj_pvalue"] = adjust_pvalues(frame["pvalue"].to_numpy(float), "bh")
    arm_srm = (check or srm_check(p)).flags
    frame["arm_srm"] = [bool(arm_srm.get(a, False)) for a in frame["bucket"]]
    frame["srm"] = frame["arm_srm"] | _slice_srm(frame, p)
    frame["untrustworthy"] = frame["srm"]
    return frame


def outcome(seq_low: float, seq_high: float, direction: str) -> str:
    """``win``, ``loss`` or ``inconclusive``: where the always-valid interval of the relative lift
    lies, read in the metric's good ``direction`` (it stays valid however often it is read).

    >>> outcome(0.01, 0.09, "increase"), outcome(0.01, 0.09, "decrease"), outcome(-0.02, 0.05, "increase")
    ('win', 'loss', 'inconclusive')
    """
    if not (np.isfinite(seq_low) and np.isfinite(seq_high)):
        return "inconclusive"
    sign = 1.0 if direction == "increase" else -1.0
    low, high = sorted((sign * seq_low, sign * seq_high))
    return "win" if low > 0 else "loss" if high < 0 else "inconclusive"


def lift_status(frame: pd.DataFrame, directions: Mapping[str, str]) -> Status:
    """``breach`` on SRM, ``warn`` on an always-valid significant loss in a metric's good
    direction (overall rows), else ``ok``."""
    overall = frame[frame["slice_value"] == "all"]
    if overall["pvalue"].isna().all():
        return "no_data"
    if overall["arm_srm"].any():
        return "breach"
    losses = [outcome(r["seq_low"], r["seq_high"], directions[r["metric"]]) == "loss"
              for r in overall.to_dict("records")]
    return "warn" if any(losses) else "ok"


@dataclass(frozen=True)
class MetricLift:
    """A treatment arm's comparison with the control on one metric over the window.

    Attributes:
        rel_lift, rel_low, rel_high: relative lift with its 95% delta-method interval.
        fieller_low, fieller_high: its Fieller interval.
        pvalue, adj_pvalue: fixed-horizon p-value of the relative lift, and adjusted
            (Benjamini–Hochberg over every comparison the tile shows).
        seq_low, seq_high, seq_pvalue: the always-valid interval and p-value.
        abs_diff, diff_low, diff_high: the absolute difference with its interval.
        control, treatment: the metric's value in each arm.
        reason: why a comparison is undefined (empty when it is not).
        cuped: whether the comparison is CUPED-adjusted; variance_reduction: by how much.
        outcome: ``win``, ``loss`` or ``inconclusive`` (:func:`outcome`).
        cap: how the metric was capped (``None``, no headline key: not capped).
    """

    rel_lift: float
    rel_low: float
    rel_high: float
    fieller_low: float
    fieller_high: float
    pvalue: float
    adj_pvalue: float
    seq_low: float
    seq_high: float
    seq_pvalue: float
    abs_diff: float
    diff_low: float
    diff_high: float
    control: float
    treatment: float
    reason: str
    cuped: bool
    variance_reduction: float
    outcome: str
    cap: MetricCap | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class ArmLift:
    """A treatment arm's card: the primary metric's lift, the arm's outcome, every metric.

    Attributes:
        metric: the primary metric (or the first compared one).
        estimate, low, high: its relative lift with the 95% interval (``None``: not compared).
        seq_low, seq_high: its always-valid interval.
        outcome: ``untrustworthy`` for an arm with a sample ratio mismatch, else the primary
            metric's :func:`outcome` (``inconclusive`` without one).
        untrustworthy: the arm has a sample ratio mismatch in the window.
        srm_pvalue: the arm's SRM p-value (against the control).
        metrics: metric → :class:`MetricLift`.
    """

    metric: str
    estimate: float | None
    low: float | None
    high: float | None
    seq_low: float | None
    seq_high: float | None
    outcome: str
    untrustworthy: bool
    srm_pvalue: float | None
    metrics: dict[str, MetricLift]


@dataclass(frozen=True)
class Segment:
    """A slice value whose lift differs from the rest's (``headline.segments``).

    Attributes:
        bucket, metric: the treatment arm and metric.
        slice, value: the user-attribute slice and its value.
        rel_lift, rest_rel_lift: the relative lift in the value and in the rest of the population.
        pvalue, adj_pvalue: of their difference, and adjusted (Benjamini–Hochberg over all tests).
    """

    bucket: str
    metric: str
    slice: str
    value: str
    rel_lift: float
    rest_rel_lift: float
    pvalue: float
    adj_pvalue: float


@dataclass(frozen=True)
class Lift:
    """What the lift tile computed (its headline, in this order, plus the frame it draws).

    Attributes:
        control: the control arm.
        window: the tile's window.
        arms: treatment arm → :class:`ArmLift`.
        tuning_n: users per arm the always-valid intervals are tuned for.
        adjustment, interval: how p-values are adjusted and intervals computed.
        srm_pvalue: the SRM test over all arms; srm: any shown arm is untrustworthy.
        outcome: the most severe outcome over the arms (:data:`OUTCOMES`).
        segments: the flagged segments (adjusted p < :data:`SEGMENT_ALPHA`), smallest p first.
        segment_tests, segment_adjustment: how many segment-vs-rest tests, and how adjusted.
        status: :func:`lift_status`.
        notes: caveats shown under the headline.
        frame: :func:`lift_frame` (the table and the forest chart).
    """

    control: str
    window: str
    arms: dict[str, ArmLift]
    tuning_n: int
    adjustment: str
    interval: str
    srm_pvalue: float
    srm: bool
    outcome: str
    segments: list[Segment]
    segment_tests: int
    segment_adjustment: str
    status: Status = field(metadata=SHOWN_ONLY)
    notes: list[str] = field(metadata=SHOWN_ONLY)
    frame: pd.DataFrame = field(metadata=SHOWN_ONLY)


TITLE = "Lift vs control"
METRIC_FIELDS = ("rel_lift", "rel_low", "rel_high", "fieller_low", "fieller_high", "pvalue", "adj_pvalue", "seq_low",
                 "seq_high", "seq_pvalue", "abs_diff", "diff_low", "diff_high", "control", "treatment", "reason")
"""The columns of :func:`lift_frame` a :class:`MetricLift` copies as they are."""


def compute_lift(p: TileParams) -> Lift | None:
    """Every treatment arm against the control on every outcome metric (and slice value), with
    the segments whose effect differs; ``None`` when no comparison can be made."""
    check = srm_check(p)
    seg_stats = segment_stats(p)
    frame = lift_frame(p, check, seg_stats)
    if frame.empty or frame["pvalue"].isna().all():
        return None
    cat = p.config.catalogue
    directions = {m: cat[m].direction for m in set(frame["metric"])}
    metrics = lift_metrics(p)
    primary = p.config.primary_metric if p.config.primary_metric in metrics else metrics[0]
    caps = capped_metrics(p, metrics)
    overall = frame[frame["slice_value"] == "all"]
    arms: dict[str, ArmLift] = {}
    for arm, rows in overall.groupby("bucket", sort=False):
        per_metric = {
            r["metric"]: MetricLift(**{k: r[k] for k in METRIC_FIELDS}, cuped=bool(r["cuped"]),
                                    variance_reduction=float(r["variance_reduction"]),
                                    outcome=outcome(r["seq_low"], r["seq_high"], directions[r["metric"]]),
                                    cap=caps.get(r["metric"]))
            for r in rows.to_dict("records")
        }
        head = per_metric.get(primary)
        untrustworthy = bool(check.flags.get(str(arm), False))
        arms[str(arm)] = ArmLift(
            metric=primary, estimate=head.rel_lift if head else None, low=head.rel_low if head else None,
            high=head.rel_high if head else None, seq_low=head.seq_low if head else None,
            seq_high=head.seq_high if head else None,
            outcome="untrustworthy" if untrustworthy else head.outcome if head else "inconclusive",
            untrustworthy=untrustworthy, srm_pvalue=check.arm_pvalue.get(str(arm)), metrics=per_metric,
        )
    segments = segment_frame(seg_stats, p.config.control, shown_treatments(p))
    flagged = flagged_segments(segments)
    tests = int(segments["pvalue"].notna().sum())
    notes = [n for n in [check.note()] if n]
    sliced_bad = frame[frame["srm"] & ~frame["arm_srm"]]
    if not sliced_bad.empty:
        values = sorted(set(sliced_bad["slice_value"]))
        notes.append(f"UNTRUSTWORTHY: sample ratio mismatch within {p.slice} = {', '.join(values)}")
    notes += [segment_note(r) for r in flagged.to_dict("records")]
    notes += [c.note() for c in caps.values()]
    missing = [m for m in metrics if m not in set(overall["metric"])]
    if missing:
        notes.append(f"no comparison of {', '.join(missing)} in the {p.window} window ending {p.event_date}: no "
                     "statistics of it in the rollups (a metric added to the catalogue after they were built has "
                     f"none until 'expkit rollup --date {p.event_date}' rebuilds them) or no user with its "
                     "denominator")
    return Lift(
        control=p.config.control, window=p.window, arms=arms, tuning_n=tuning_n(p),
        adjustment=f"Benjamini–Hochberg over the {len(frame)} comparisons shown",
        interval="relative lift, delta method 95%; always-valid: asymptotic confidence sequence 95%; "
                 "CUPED-adjusted (pre-period covariate) where the metric has pre-period data",
        srm_pvalue=check.pvalue,
        srm=any(a.untrustworthy for a in arms.values()),
        outcome=_worst_outcome([a.outcome for a in arms.values()]),
        segments=[Segment(**{k: r[k] for k in SEGMENT_KEYS}) for r in flagged.to_dict("records")],
        segment_tests=tests,
        segment_adjustment=f"Benjamini–Hochberg over the {tests} segment-vs-rest "
                           f"tests (slices {', '.join(segment_slices(p)) or 'none'}; values with at least "
                           f"{SEGMENT_MIN_USERS} users per arm); flagged when adjusted p < {SEGMENT_ALPHA}",
        status=lift_status(frame, directions), notes=notes, frame=frame,
    )


def render_lift(p: TileParams, lift: Lift) -> TileResult:
    """The lift tile's page: summary, the forest chart, the table."""
    summary = "; ".join(
        f"{srm_label(arm, a.untrustworthy)}: {a.outcome}, {a.metric} {_pct(a.estimate)} "
        f"[{_pct(a.low)}, {_pct(a.high)}], always-valid [{_pct(a.seq_low)}, {_pct(a.seq_high)}]"
        + _cuped_note(a.metrics.get(a.metric))
        for arm, a in lift.arms.items()
    ) + f"; {over_window(p.window)}"
    return typed_result(p, "outcomes", TITLE, lift, summary, lift.frame[TABLE_COLUMNS], [_forest(lift.frame, p)])


def lift_tile(p: TileParams) -> TileResult:
    """The lift tile: :func:`compute_lift`, then :func:`render_lift`."""
    lift = compute_lift(p)
    if lift is None:
        return no_data_result(p, "lift", "outcomes", TITLE,
                              f"no comparable arms in the {p.window} window ending {p.event_date}")
    return render_lift(p, lift)


OUTCOMES = ("untrustworthy", "loss", "win", "inconclusive")
"""A lift card's outcomes, most severe first (the card shows the most severe over arms)."""


def _worst_outcome(outcomes: list[str]) -> str:
    return min(outcomes, key=OUTCOMES.index) if outcomes else "inconclusive"


def _cuped_note(m: MetricLift | None) -> str:
    """`` (CUPED: variance −38%)`` when the metric's interval is CUPED-adjusted, else empty."""
    if m is None or not m.cuped or not np.isfinite(m.variance_reduction):
        return ""
    return f" (CUPED: variance {-m.variance_reduction:+.0%})"


def _pct(v: float | None) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:+.1%}"


def _forest(frame: pd.DataFrame, p: TileParams) -> object:
    titles = {m: p.config.catalogue[m].title for m in lift_metrics(p)}
    label = [titles[m] + ("" if v == "all" else f" · {v}") for m, v in zip(frame["metric"], frame["slice_value"],
                                                                          strict=True)]
    data = frame.assign(row=label, arm=[srm_label(a, f) for a, f in zip(frame["bucket"], frame["srm"], strict=True)])
    return forest_chart(
        data, label="row", estimate="rel_lift", low="rel_low", high="rel_high", outer_low="seq_low",
        outer_high="seq_high", color="arm", flag="untrustworthy",
        title=f"Relative lift vs {p.config.control} ({p.window}): thick 95% delta method, thin always-valid"
              + (" (CUPED-adjusted)" if frame["cuped"].any() else "") + "; red ring: untrustworthy (SRM)",
    )
