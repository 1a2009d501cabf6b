"""The lift by days since first exposure and its trend (shared by the novelty tile and the readout).

Per outcome metric the experiment lists that is a per-day sum (every ratio metric of the
catalogue but Recall@K: :func:`expkit.metrics_sql.exposure_ids`) and per treatment arm: the
relative lift at each exposure age (day 0, 1, …, the tail from
:data:`expkit.rollup.EXPOSURE_TAIL_DAYS` on grouped) and the user-clustered test of its linear
trend (:func:`expkit.stats.exposure_trend`), from the experiment-to-date rollup
``exposure_stats`` of the report date (docs/statistics.md, "Novelty and primacy").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from expkit.metrics_sql import exposure_ids
from expkit.readers import exposure_stats
from expkit.rollup import EXPOSURE_TAIL_DAYS
from expkit.stats import adjust_pvalues, exposure_trend, trend_verdict
from expkit.tiles.arms import lift_metrics
from expkit.tiles.base import TileParams

NOVELTY_ALPHA = 0.05
"""Level of the trend tests: a trend is flagged when its Benjamini–Hochberg adjusted p-value (over
every metric and arm shown) is below it."""

AGE_COLUMNS = ["metric", "bucket", "age", "label", "users_control", "users_treatment", "rel_lift", "rel_low",
               "rel_high", "pvalue"]
"""The columns of :attr:`Novelty.ages`."""
TREND_COLUMNS = ["metric", "bucket", "slope", "slope_low", "slope_high", "pvalue", "adj_pvalue", "start", "end",
                 "first_label", "first_lift", "last_label", "last_lift", "verdict", "reason"]
"""The columns of :attr:`Novelty.trends`."""


@dataclass(frozen=True)
class Novelty:
    """The lift by exposure age of every metric and treatment arm, and its trend.

    Attributes:
        ages: one row per metric, arm and age bucket (:data:`AGE_COLUMNS`): the users of each
            arm seen at that age, the relative lift with its 95% interval and p-value.
        trends: one row per metric and arm (:data:`TREND_COLUMNS`): the slope of the lift per
            day of age with its 95% interval and p-value, ``adj_pvalue`` (Benjamini–Hochberg over
            every metric and arm), the fitted lift at the first and last age (``start``, ``end``),
            the observed lift at the first and last age, ``verdict`` (``decaying``, ``growing``,
            ``none``, judged on ``adj_pvalue``: :func:`expkit.stats.trend_verdict`) and ``reason``
            when undefined.
    """

    ages: pd.DataFrame
    trends: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.ages.empty


def age_label(age: int, tail: int = EXPOSURE_TAIL_DAYS) -> str:
    """``"3"``, or ``"7+"`` for the grouped tail.

    >>> age_label(3), age_label(7)
    ('3', '7+')
    """
    return f"{age}+" if age >= tail else str(age)


def novelty_metrics(p: TileParams) -> list[str]:
    """The experiment's outcome metrics that have a lift by exposure age (per-day sums)."""
    have = set(exposure_ids(p.config.catalogue))
    return [m for m in lift_metrics(p) if m in have]


def _arm_sums(rows: pd.DataFrame, ages: list[int]) -> dict[str, np.ndarray]:
    """One arm's per-age sums and cross-sum matrices (:data:`expkit.stats.EXPOSURE_KEYS`)."""
    k = len(ages)
    index = {a: i for i, a in enumerate(ages)}
    out = {"n": np.zeros(k), "sum_num": np.zeros(k), "sum_den": np.zeros(k),
           "cross_nn": np.zeros((k, k)), "cross_nd": np.zeros((k, k)), "cross_dd": np.zeros((k, k))}
    cols = {c: rows[c].to_numpy(float) for c in ("n", "sum_num", "sum_den", "sum_nn", "sum_nd", "sum_dn", "sum_dd")}
    for i, (age, age2) in enumerate(zip(rows["age"].to_numpy(int), rows["age2"].to_numpy(int), strict=True)):
        a, b = index[int(age)], index[int(age2)]
        if a == b:
            out["n"][a], out["sum_num"][a], out["sum_den"][a] = cols["n"][i], cols["sum_num"][i], cols["sum_den"][i]
        out["cross_nn"][a, b] = out["cross_nn"][b, a] = cols["sum_nn"][i]
        out["cross_dd"][a, b] = out["cross_dd"][b, a] = cols["sum_dd"][i]
        out["cross_nd"][a, b], out["cross_nd"][b, a] = cols["sum_nd"][i], cols["sum_dn"][i]
    return out


def novelty(p: TileParams, treatments: list[str] | None = None) -> Novelty:
    """The lift by exposure age and its trend for ``treatments`` (default: every treatment arm)
    against the control, experiment to date on ``p.event_date``."""
    control = p.config.control
    arms = treatments if treatments is not None else list(p.config.treatments)
    stats = exposure_stats(p, novelty_metrics(p))
    age_rows: list[dict[str, Any]] = []
    trend_rows: list[dict[str, Any]] = []
    for metric in novelty_metrics(p):
        rows = stats[stats["metric"] == metric]
        ctl = rows[rows["bucket"] == control]
        for arm in arms:
            trt = rows[rows["bucket"] == arm]
            if ctl.empty or trt.empty:
                continue
            ages = sorted(set(ctl["age"].astype(int)) | set(trt["age"].astype(int)))
            c, t = _arm_sums(ctl, ages), _arm_sums(trt, ages)
            r = exposure_trend(c, t, np.asarray(ages, float), alpha=NOVELTY_ALPHA)
            lift = np.atleast_1d(r.rel_lift)
            for i, age in enumerate(ages):
                age_rows.append({
                    "metric": metric, "bucket": arm, "age": age, "label": age_label(age),
                    "users_control": int(c["n"][i]), "users_treatment": int(t["n"][i]), "rel_lift": float(lift[i]),
                    "rel_low": float(np.atleast_1d(r.rel_low)[i]), "rel_high": float(np.atleast_1d(r.rel_high)[i]),
                    "pvalue": float(np.atleast_1d(r.rel_pvalue)[i]),
                })
            seen = [i for i in range(len(ages)) if np.isfinite(lift[i])]
            first, last = (seen[0], seen[-1]) if seen else (0, 0)
            trend_rows.append({
                "metric": metric, "bucket": arm, "slope": float(r.slope), "slope_low": float(r.low),
                "slope_high": float(r.high), "pvalue": float(r.pvalue), "adj_pvalue": np.nan,
                "start": float(r.start), "end": float(r.end),
                "first_label": age_label(ages[first]), "first_lift": float(lift[first]) if seen else np.nan,
                "last_label": age_label(ages[last]), "last_lift": float(lift[last]) if seen else np.nan,
                "verdict": str(r.verdict), "reason": str(r.reason),
            })
    trends = pd.DataFrame(trend_rows, columns=TREND_COLUMNS)
    if not trends.empty:
        trends["adj_pvalue"] = adjust_pvalues(trends["pvalue"].to_numpy(float), "bh")
        trends["verdict"] = trend_verdict(trends["slope"].to_numpy(float), trends["start"].to_numpy(float),
                                          trends["adj_pvalue"].to_numpy(float), NOVELTY_ALPHA)
    return Novelty(pd.DataFrame(age_rows, columns=AGE_COLUMNS), trends)


def _pct(v: float) -> str:
    return "n/a" if not np.isfinite(v) else f"{v:+.1%}"


def _day(label: str) -> str:
    return f"after day {label[:-1]}" if label.endswith("+") else f"on day {label}"


def novelty_note(row: Mapping[Any, Any], title: str | None = None) -> str:
    """The sentence for a metric's trend over exposure age (its observed first and last lifts).

    >>> novelty_note({"metric": "ctr", "bucket": "treatment", "first_label": "0", "first_lift": 0.12,
    ...               "last_label": "7+", "last_lift": 0.03, "slope": -0.011, "adj_pvalue": 0.0004,
    ...               "verdict": "decaying"}, "CTR")[:65]
    'CTR lift falls from +12.0% on day 0 to +3.0% after day 7: novelty'
    """
    name = title or row["metric"]
    falls = row["slope"] < 0
    kind = {"decaying": "novelty" if row["first_lift"] > 0 else "primacy",
            "growing": "a growing effect"}.get(row["verdict"], "no trend")
    pv = row["adj_pvalue"]
    pv_text = f"{pv:.3f}" if pv >= 0.001 else f"{pv:.1e}"
    slope = f"{row['slope'] * 100:+.1f}".replace("-", "\u2212")
    first = f"{_pct(row['first_lift'])} {_day(row['first_label'])}"
    last = f"{_pct(row['last_lift'])} {_day(row['last_label'])}"
    if (row["last_lift"] < row["first_lift"]) == falls:
        change = f"{'falls' if falls else 'rises'} from {first} to {last}"
    else:  # the fitted slope goes the other way than the two end ages (the ages between weigh more)
        change = f"trends {'down' if falls else 'up'} over exposure age ({first}, {last})"
    return (f"{name} lift {change}: {kind} (slope {slope} points/day, "
            f"adjusted p = {pv_text}; {row['bucket']})")
