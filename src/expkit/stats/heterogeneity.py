"""Segments whose effect differs: a segment's relative lift against the rest's (docs/statistics.md).

For a ratio metric and a user-level segment (a value of a user attribute such as
``region = eu``; every user is in exactly one value), the *rest* of an arm is the
arm's totals minus the segment's sums. The segment's and the rest's relative lifts
``L = R_t / R_c - 1`` each come from :func:`expkit.stats.compare_ratios` (delta
method on the per-user sums); segment and rest are disjoint sets of users, hence
independent, so the interaction

    ``d = L_segment - L_rest``,  ``se² = se²_segment + se²_rest``

is tested with a two-sided z test. Subtracting sums is only valid when no user is
counted in both the segment and the rest (user attributes, not impression ones).

>>> seg = {"n": 1000, "sum_num": 120, "sum_den": 1000, "sum_num2": 150, "sum_den2": 1000, "sum_numden": 120}
>>> tot = {"n": 4000, "sum_num": 400, "sum_den": 4000, "sum_num2": 500, "sum_den2": 4000, "sum_numden": 400}
>>> r = segment_interaction(seg, tot, dict(seg, sum_num=180, sum_num2=230, sum_numden=180),
...                         dict(tot, sum_num=480, sum_num2=610, sum_numden=480))
>>> round(float(r.rel_lift), 3), round(float(r.rest_rel_lift), 3), r.reason
(0.5, 0.071, '')
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from numpy.typing import NDArray

from ._common import FloatArray, Reasons, Result, Sums, errstate, quantile, two_sided_pvalue
from .compare import compare_ratios
from .intervals import check_alpha
from .multiple import adjust_pvalues

__all__ = ["SegmentInteraction", "segment_interaction", "rest_sums"]

SUM_KEYS = ("n", "sum_num", "sum_den", "sum_num2", "sum_den2", "sum_numden")
"""The per-user sums of a ratio metric that :func:`rest_sums` subtracts."""


@dataclasses.dataclass(frozen=True)
class SegmentInteraction(Result):
    """A segment's relative lift against the rest of the population's, one element per test.

    Attributes:
        rel_lift: the segment's relative lift ``R_t / R_c - 1``.
        rel_se: its delta-method standard error.
        rest_rel_lift: the relative lift of the users outside the segment.
        rest_rel_se: its standard error.
        difference: ``rel_lift - rest_rel_lift``.
        se: standard error of ``difference`` (``sqrt(rel_se² + rest_rel_se²)``).
        low, high: ``1 - alpha`` interval of ``difference``.
        statistic: ``difference / se`` (z).
        pvalue: two-sided p-value for ``difference == 0``.
        adj_pvalue: Benjamini–Hochberg adjusted ``pvalue`` over every element
            (NaN p-values excluded from the family).
        reason: "" or why the fields are NaN.
    """

    rel_lift: FloatArray
    rel_se: FloatArray
    rest_rel_lift: FloatArray
    rest_rel_se: FloatArray
    difference: FloatArray
    se: FloatArray
    low: FloatArray
    high: FloatArray
    statistic: FloatArray
    pvalue: FloatArray
    adj_pvalue: FloatArray
    reason: NDArray[np.object_]


def rest_sums(segment: Sums, total: Sums) -> dict[str, np.ndarray]:
    """The sums of the users outside the segment: ``total - segment`` for each of :data:`SUM_KEYS`.

    Integer sums stay exact (no conversion to float before the subtraction).
    """
    return {k: np.asarray(total[k]) - np.asarray(segment[k]) for k in SUM_KEYS}


def segment_interaction(
    control_segment: Sums,
    control_total: Sums,
    treatment_segment: Sums,
    treatment_total: Sums,
    alpha: float = 0.05,
    min_users: float = 0,
) -> SegmentInteraction:
    """Test whether a segment's relative lift differs from the lift of the rest of the population.

    Each argument maps :data:`SUM_KEYS` (``n, sum_num, sum_den, sum_num2, sum_den2,
    sum_numden``) to scalars or arrays (one element per test): the segment's sums and
    the arm's totals (segment included) of control and treatment. The rest is
    ``total - segment`` (:func:`rest_sums`), valid for user-level segments only.
    ``adj_pvalue`` adjusts over the elements of this call (Benjamini–Hochberg).

    ``min_users``: tests where the segment or the rest has fewer users in an arm are left
    out (NaN with a reason). The delta method's normal approximation is poor in the tails for
    small groups of skewed per-user values: in the simulation of docs/statistics.md a segment
    of 100 users per arm rejects at nominal 1% about 3.5 times as often, one of 500 about
    1.3 times, one of 1000 at the nominal rate.
    """
    alpha = check_alpha(alpha)
    seg = compare_ratios(control_segment, treatment_segment, alpha)
    rest_c, rest_t = rest_sums(control_segment, control_total), rest_sums(treatment_segment, treatment_total)
    rest = compare_ratios(rest_c, rest_t, alpha)
    shape = np.shape(seg.rel_lift)
    reasons = Reasons(shape)
    bad_rest = (np.asarray(rest_c["n"], dtype=float) < 0) | (np.asarray(rest_t["n"], dtype=float) < 0)
    reasons.add(bad_rest, "segment has more users than the total: not a user-level segment")
    empty_rest = (np.asarray(rest_c["n"], dtype=float) == 0) | (np.asarray(rest_t["n"], dtype=float) == 0)
    reasons.add(empty_rest, "no users outside the segment")
    counts = (control_segment["n"], treatment_segment["n"], rest_c["n"], rest_t["n"])
    small = functools.reduce(np.minimum, [np.asarray(x, dtype=float) for x in counts]) < min_users
    reasons.add(small, f"fewer than {min_users:g} users per arm in the segment or the rest")
    reasons.merge(np.asarray(seg.reason, dtype=object), "segment: ")
    reasons.merge(np.asarray(rest.reason, dtype=object), "rest: ")
    with errstate():
        ok = reasons.array == ""
        rel = np.where(ok, seg.rel_lift, np.nan)
        rest_rel = np.where(ok, rest.rel_lift, np.nan)
        diff = rel - rest_rel
        se = np.sqrt(np.asarray(seg.rel_se, dtype=float) ** 2 + np.asarray(rest.rel_se, dtype=float) ** 2)
        se = np.where(ok & (se > 0), se, np.nan)
        reasons.add(ok & np.isnan(se), "zero variance of the lifts")
        stat = diff / se
        pvalue = two_sided_pvalue(stat)
    q = quantile(1 - alpha / 2)
    return SegmentInteraction.build(
        rel_lift=rel, rel_se=np.where(ok, seg.rel_se, np.nan), rest_rel_lift=rest_rel,
        rest_rel_se=np.where(ok, rest.rel_se, np.nan), difference=diff, se=se, low=diff - q * se,
        high=diff + q * se, statistic=stat, pvalue=pvalue, adj_pvalue=adjust_pvalues(pvalue, "bh"),
        reason=reasons.array,
    )
