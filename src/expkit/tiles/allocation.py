"""Traffic allocation tile, and the sample-ratio-mismatch marks every outcome tile shows.

Definitions: docs/metrics.md, "Outcome metrics"; the test: docs/statistics.md, "Sample ratio mismatch".

Users per arm (each user once, in the arm of her first exposure in the window) against the
planned shares: the relative deviation ``|observed share / planned share - 1|`` and Pearson's
χ² test (:func:`expkit.stats.srm_test`), overall, per day and per slice value.

Status of the allocation tile (window of the tile): ``breach`` when the SRM test flags
(``p < srm_pvalue_threshold``) or an arm deviates by more than :data:`BREACH_DEVIATION`
(alert rule ``traffic_imbalance``, docs/alerts.md), ``warn`` when an arm deviates by more than
``targets.allocation_tolerance`` (±5%), ``ok`` otherwise.

:func:`srm_check` / :func:`srm_flags` give the other tiles the arms whose results are
untrustworthy: a treatment arm is flagged when its users against the control's mismatch the
planned ratio of the two (pairwise χ²), the control when the test over all arms flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from expkit.charts import DAY_AXIS, bands_chart, interval_chart
from expkit.names import Status
from expkit.readers import USER_ATTRIBUTES, arm_users
from expkit.stats import proportion_interval, srm_test
from expkit.tiles.base import SHOWN_ONLY, TileParams, TileResult
from expkit.tiles.common import no_data_result, typed_result
from expkit.tiles.srm import experiment_days, srm_check, srm_population

ALLOCATION_SLICES = ("bucket", *USER_ATTRIBUTES)
"""Users are counted once per window; impression attributes (surface, genre, provider) would count
a user in several values, so allocation is sliced by user attributes only."""
TITLE = "Traffic allocation"
BREACH_DEVIATION = 0.10
"""Relative deviation of an arm's share above which allocation breaches (alert rule traffic_imbalance)."""


def allocation_frame(users: pd.DataFrame, p: TileParams, keys: list[str]) -> pd.DataFrame:
    """Per group of ``keys`` and arm: users, planned and observed share with its Wilson interval,
    relative deviation, SRM p-value of the group and its flag.

    ``users`` has ``keys``, ``bucket`` and ``users`` (as from :func:`expkit.readers.arm_users`);
    arms without users in a group count 0.
    """
    cfg = p.config
    arms = list(cfg.buckets)
    shares = np.array([cfg.buckets[a] for a in arms])
    wide = users.pivot_table(index=keys, columns="bucket", values="users", aggfunc="sum", fill_value=0)
    wide = wide.reindex(columns=arms, fill_value=0)
    counts = wide.to_numpy(float)
    res = srm_test(counts, shares, cfg.srm_pvalue_threshold)
    total = counts.sum(axis=1, keepdims=True)
    low, high = proportion_interval(counts, np.broadcast_to(total, counts.shape))
    out = []
    for j, arm in enumerate(arms):
        part = wide.index.to_frame(index=False)
        part["bucket"] = arm
        part["users"] = counts[:, j].astype(int)
        part["planned_share"] = shares[j]
        part["share"] = res.observed_share[:, j]
        part["share_low"], part["share_high"] = low[:, j], high[:, j]
        part["deviation"] = res.relative_deviation[:, j]
        part["srm_pvalue"] = res.pvalue
        part["srm"] = res.flag
        out.append(part)
    return pd.concat(out, ignore_index=True).sort_values([*keys, "bucket"]).reset_index(drop=True)


def allocation_status(max_deviation: float, srm: bool, tolerance: float) -> Status:
    """``breach`` on SRM or deviation > 10%, ``warn`` above the tolerance, else ``ok``.

    >>> allocation_status(0.02, False, 0.05), allocation_status(0.07, False, 0.05)
    ('ok', 'warn')
    >>> allocation_status(0.12, False, 0.05), allocation_status(0.01, True, 0.05)
    ('breach', 'breach')
    """
    if srm or max_deviation > BREACH_DEVIATION:
        return "breach"
    if max_deviation > tolerance:
        return "warn"
    return "ok"


@dataclass(frozen=True)
class ArmShare:
    """One arm's share of the window's users.

    Attributes:
        estimate, low, high: observed share with its Wilson 95% interval.
        users: the arm's users.
        planned_share: its share in ``experiment.yaml``.
        deviation: ``|share / planned_share - 1|``.
        srm: the arm's results are untrustworthy (:func:`~expkit.tiles.srm.srm_check`).
        srm_pvalue: the arm's SRM p-value (pairwise against the control; the control: over all arms).
    """

    estimate: float
    low: float
    high: float
    users: int
    planned_share: float
    deviation: float
    srm: bool
    srm_pvalue: float


@dataclass(frozen=True)
class Allocation:
    """What the allocation tile computed (its headline, in this order, plus the frames it draws).

    Attributes:
        window: the tile's window.
        arms: arm → :class:`ArmShare` (the arms shown).
        srm_pvalue, srm: the test over all arms and whether any arm is flagged.
        max_deviation: the largest relative deviation of an arm's share.
        tolerance, breach_deviation: the warn and breach limits of the deviation.
        srm_pvalue_threshold: the SRM test's threshold (``experiment.yaml``).
        srm_days, srm_slices: the experiment's days and the slice values with a mismatch.
        interval: how the share intervals are computed.
        status: ``ok`` | ``warn`` | ``breach`` (:func:`allocation_status`).
        notes: caveats shown under the headline.
        window_rows, daily_rows, slice_rows: :func:`allocation_frame` of the window, of each day
            and of each slice value (empty unless sliced): the chart and table data.
    """

    window: str
    arms: dict[str, ArmShare]
    srm_pvalue: float
    srm: bool
    max_deviation: float
    tolerance: float
    breach_deviation: float
    srm_pvalue_threshold: float
    srm_days: list[str]
    srm_slices: list[str]
    interval: str
    status: Status = field(metadata=SHOWN_ONLY)
    notes: list[str] = field(metadata=SHOWN_ONLY)
    window_rows: pd.DataFrame = field(metadata=SHOWN_ONLY)
    daily_rows: pd.DataFrame = field(metadata=SHOWN_ONLY)
    slice_rows: pd.DataFrame = field(metadata=SHOWN_ONLY)


def compute_allocation(p: TileParams) -> Allocation | None:
    """Users per arm vs plan over the window, per day of the experiment and per slice value;
    ``None`` when the window has no exposed users."""
    pop = srm_population(p)
    tol = p.config.targets.allocation_tolerance
    users = arm_users(pop, [p.window])
    if users["users"].sum() == 0:
        return None
    window = allocation_frame(users.assign(scope="window"), p, ["scope"])
    check = srm_check(p)
    max_dev = float(window["deviation"].max())
    daily = allocation_frame(arm_users(pop, ["24h"], experiment_days(p)), p, ["day"])
    sliced = pd.DataFrame(columns=["slice_value", "bucket", "srm"])
    if p.slice != "bucket":
        sliced = allocation_frame(arm_users(replace(pop, slice=p.slice), [p.window]), p, ["slice_value"])
    # Shares and tests are over every arm; the parameter buckets only narrows what is shown.
    window, daily, sliced = (f[f["bucket"].isin(p.buckets)] for f in (window, daily, sliced))
    arms = {
        r.bucket: ArmShare(estimate=r.share, low=r.share_low, high=r.share_high, users=r.users,
                           planned_share=r.planned_share, deviation=r.deviation, srm=check.flags[r.bucket],
                           srm_pvalue=check.arm_pvalue[r.bucket])
        for r in window.itertuples()
    }
    srm_days = sorted({str(d) for d in daily.loc[daily["srm"], "day"]})
    srm_slices = sorted(set(sliced.loc[sliced["srm"].astype(bool), "slice_value"]))
    notes = [n for n in [check.note()] if n]
    if srm_days:
        notes.append("Days with sample ratio mismatch: " + ", ".join(srm_days))
    if srm_slices:
        notes.append(f"{p.slice} values with sample ratio mismatch: " + ", ".join(srm_slices))
    return Allocation(
        window=p.window, arms=arms, srm_pvalue=check.pvalue, srm=check.any, max_deviation=max_dev,
        tolerance=tol, breach_deviation=BREACH_DEVIATION, srm_pvalue_threshold=check.threshold,
        srm_days=srm_days, srm_slices=srm_slices, interval="Wilson 95% of the share of users",
        status=allocation_status(max_dev, check.any, tol), notes=notes,
        window_rows=window, daily_rows=daily, slice_rows=sliced,
    )


def render_allocation(p: TileParams, a: Allocation) -> TileResult:
    """The allocation tile's page: summary, daily and per-slice charts, table."""
    summary = "; ".join(f"{arm} {v.estimate:.1%} (plan {v.planned_share:.0%}, dev {v.deviation:.1%})"
                        for arm, v in a.arms.items()) + f"; SRM p = {a.srm_pvalue:.2g}"
    window, daily, sliced = a.window_rows, a.daily_rows, a.slice_rows
    charts = [_daily_chart(daily, a.tolerance)]
    if not sliced.empty:
        labelled = sliced.assign(slice_value=[f"{v} ⚠ SRM" if f else v
                                              for v, f in zip(sliced["slice_value"], sliced["srm"], strict=True)])
        charts.append(interval_chart(
            labelled, category="slice_value", estimate="share", low="share_low", high="share_high", color="bucket",
            thresholds=[(f"planned {s:.0%}", s) for s in sorted(set(sliced["planned_share"]))],
            title=f"Share of users per arm by {p.slice} ({p.window} window), Wilson 95%", value_format=".1%",
        ))
    table = pd.concat([
        window.assign(scope=f"{p.window} window"),
        daily.assign(scope="day " + daily["day"].astype(str)).drop(columns="day"),
        *([sliced.assign(scope=f"{p.slice}=" + sliced["slice_value"]).drop(columns="slice_value")]
          if not sliced.empty else []),
    ], ignore_index=True)
    return typed_result(p, "outcomes", TITLE, a, summary, table, charts)


def allocation_tile(p: TileParams) -> TileResult:
    """The allocation tile: :func:`compute_allocation`, then :func:`render_allocation`."""
    a = compute_allocation(p)
    if a is None:
        return no_data_result(p, "allocation", "outcomes", TITLE,
                              f"no exposed users in the {p.window} window ending {p.event_date}")
    return render_allocation(p, a)


def _daily_chart(daily: pd.DataFrame, tol: float) -> object:
    """Observed share per arm and day with the planned ±tolerance band and the planned share lines."""
    data = daily.assign(day=pd.to_datetime(daily["day"]), plan_low=daily["planned_share"] * (1 - tol),
                        plan_high=daily["planned_share"] * (1 + tol))
    return bands_chart(
        data, x="day", y="share", bands=[("plan_low", "plan_high")], color="bucket", flag="srm",
        thresholds=[(f"planned {s:.0%}", s) for s in sorted(set(daily["planned_share"]))],
        value_format=".1%", x_axis=DAY_AXIS,
        title=f"Share of users per arm per day vs plan (band: planned ±{tol:.0%}; red ring: SRM that day)",
    )
