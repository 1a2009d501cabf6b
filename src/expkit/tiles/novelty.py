"""Novelty and primacy tile: the lift by days since first exposure (docs/statistics.md, "Novelty and primacy").

Over the experiment to date (``cum``), per outcome metric the experiment lists (per-day sums:
every ratio metric but Recall@K) and treatment arm: the relative lift with its 95% interval at
each exposure age (day 0, 1, …, the tail from :data:`expkit.rollup.EXPOSURE_TAIL_DAYS` days on
grouped) and the user-clustered test of a linear trend of the lift over the age
(:func:`expkit.stats.exposure_trend`). A significant trend that brings the lift towards 0 is
``decaying``: the early lift overstates the lasting one (novelty, or primacy when it starts
negative).

``headline["metrics"]``: one record per metric and arm with ``ages`` (labels), ``rel_lift``,
``low``, ``high`` (lists, one per age), ``slope``, ``slope_low``, ``slope_high``, ``pvalue``,
``adj_pvalue`` (Benjamini–Hochberg over the metrics and arms) and ``verdict`` (``decaying``,
``growing``, ``none``, judged on ``adj_pvalue``). :func:`novelty_tile` is the public entry
(``expkit.api.compute_tile("novelty", ...)``).

Status: ``warn`` when a metric's lift has a significant trend, ``ok`` otherwise, ``no_data``
before any user of the experiment or without the ``exposure_stats`` rollup.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from expkit.charts import forest_chart
from expkit.errors import ExpkitError
from expkit.names import Status
from expkit.rollup import EXPOSURE_TAIL_DAYS
from expkit.tiles.arms import shown_treatments
from expkit.tiles.base import SHOWN_ONLY, TileParams, TileResult
from expkit.tiles.common import no_data_result, typed_result
from expkit.tiles.exposure import NOVELTY_ALPHA, Novelty, novelty, novelty_note

TITLE = "Novelty and primacy"
WINDOW = "cum"
"""The lift by exposure age is read over the experiment to date."""


def check_novelty_params(p: TileParams) -> None:
    """The tile reads every user of the experiment: a filter other than on ``bucket`` is refused."""
    other = sorted(set(p.filters) - {"bucket"})
    if other:
        raise ExpkitError(f"parameter filters: the novelty tile reads every user of the experiment and cannot "
                          f"filter on {', '.join(other)}; choose the arms shown with -p buckets=... instead")


def _json(v: float) -> float | None:
    return None if not np.isfinite(v) else v


@dataclass(frozen=True)
class AgeTrend:
    """One metric and treatment arm: the lift at each exposure age and its trend over the age
    (``None`` where undefined).

    Attributes:
        metric, bucket: the metric and the treatment arm.
        ages: the age labels (``0``, ``1``, …, the tail).
        rel_lift, low, high: the relative lift at each age with its 95% interval.
        slope, slope_low, slope_high: the slope of the lift per day of age with its 95% interval.
        pvalue, adj_pvalue: of the slope, and adjusted (Benjamini–Hochberg over the metrics and arms).
        verdict: ``decaying``, ``growing`` or ``none`` (judged on ``adj_pvalue``).
        reason: why the trend test is undefined (empty when it is not).
    """

    metric: str
    bucket: str
    ages: list[str]
    rel_lift: list[float | None]
    low: list[float | None]
    high: list[float | None]
    slope: float | None
    slope_low: float | None
    slope_high: float | None
    pvalue: float | None
    adj_pvalue: float | None
    verdict: str
    reason: str


@dataclass(frozen=True)
class NoveltyTrends:
    """What the novelty tile computed (its headline, in this order, plus the frames it draws).

    Attributes:
        control: the control arm.
        window: :data:`WINDOW`.
        tail_days: ages from this many days on are grouped.
        alpha: the level a trend is judged at (on ``adj_pvalue``).
        metrics: every metric and arm's :class:`AgeTrend`.
        trends: those with a trend (verdict other than ``none``).
        method: how the lifts and trends are computed.
        status: ``warn`` with a trend, else ``ok``.
        notes: the trends found, then the undefined trend tests.
        novelty: the lift by age and the trends as frames (chart and table data).
    """

    control: str
    window: str
    tail_days: int
    alpha: float
    metrics: list[AgeTrend]
    trends: list[AgeTrend]
    method: str
    status: Status = field(metadata=SHOWN_ONLY)
    notes: list[str] = field(metadata=SHOWN_ONLY)
    novelty: Novelty = field(metadata=SHOWN_ONLY)


def compute_novelty(p: TileParams) -> NoveltyTrends | None:
    """The lift by exposure age of every metric and shown treatment arm, and its trend; ``None``
    without a lift at any age."""
    n = novelty(p, shown_treatments(p))
    if n.empty or n.ages["rel_lift"].isna().all():
        return None
    records = []
    for t in n.trends.to_dict("records"):
        ages = n.ages[(n.ages["metric"] == t["metric"]) & (n.ages["bucket"] == t["bucket"])]
        records.append(AgeTrend(
            metric=t["metric"], bucket=t["bucket"], ages=list(ages["label"]),
            rel_lift=[_json(float(v)) for v in ages["rel_lift"]],
            low=[_json(float(v)) for v in ages["rel_low"]], high=[_json(float(v)) for v in ages["rel_high"]],
            **{k: _json(float(t[k])) for k in ("slope", "slope_low", "slope_high", "pvalue", "adj_pvalue")},
            verdict=t["verdict"], reason=t["reason"],
        ))
    titles = {m: p.config.catalogue[m].title for m in set(n.trends["metric"])}
    found = n.trends[n.trends["verdict"] != "none"].sort_values("pvalue")
    notes = [novelty_note(r, titles[r["metric"]]) for r in found.to_dict("records")]
    undefined = n.trends[n.trends["reason"] != ""]
    notes += [f"{titles[r['metric']]} ({r['bucket']}): no trend test: {r['reason']}"
              for r in undefined.to_dict("records")]
    return NoveltyTrends(
        control=p.config.control, window=WINDOW, tail_days=EXPOSURE_TAIL_DAYS, alpha=NOVELTY_ALPHA,
        metrics=records, trends=[r for r in records if r.verdict != "none"],
        method="relative lift per days since first exposure (delta method 95%); trend: weighted least-squares "
               "slope of the lift over the age, user-clustered standard error, two-sided z test, "
               "Benjamini–Hochberg over the metrics and arms",
        status="warn" if len(found) else "ok", notes=notes, novelty=n,
    )


def _chart(n: Novelty, p: TileParams) -> object:
    titles = {m: p.config.catalogue[m].title for m in set(n.ages["metric"])}
    data = n.ages.assign(row=[f"{titles[m]} · day {lab}" for m, lab in zip(n.ages["metric"], n.ages["label"],
                                                                             strict=True)])
    return forest_chart(data, label="row", estimate="rel_lift", low="rel_low", high="rel_high", color="bucket",
                        title=f"Relative lift vs {p.config.control} by days since first exposure "
                              "(experiment to date; 95% delta method)")


def render_novelty(p: TileParams, r: NoveltyTrends) -> TileResult:
    """The novelty tile's page: summary, the forest chart of the lift by age, the table."""
    n, found = r.novelty, len(r.trends)
    summary = "; ".join(r.notes[:found]) if found else (
        "no trend of the lift over days since first exposure (adjusted p ≥ "
        f"{NOVELTY_ALPHA:g} for every metric)")
    table = n.ages.merge(n.trends[["metric", "bucket", "slope", "slope_low", "slope_high", "verdict"]].rename(
        columns={"verdict": "trend"}), on=["metric", "bucket"])
    return typed_result(p, "outcomes", TITLE, r, summary, pd.DataFrame(table), [_chart(n, p)])


def novelty_tile(p: TileParams) -> TileResult:
    """The novelty tile (the lift by exposure age and its trend): :func:`compute_novelty`, then
    :func:`render_novelty`."""
    r = compute_novelty(p)
    if r is None:
        return no_data_result(p, "novelty", "outcomes", TITLE,
                              f"no lift by exposure age from {p.config.start_date} to {p.event_date} "
                              "(no users in both arms, or no exposure_stats rollup for the day)")
    return render_novelty(p, r)
