"""Intervals for one proportion, one ratio metric or one mean (docs/statistics.md).

* :func:`proportion_interval`: Wilson (default), Wald, Agresti–Coull,
  Clopper–Pearson and Jeffreys intervals, delegated to statsmodels'
  ``proportion_confint`` (vectorized), with invalid rows turned into NaN.
* :func:`ratio_estimate`: a ratio metric ``Σnum / Σden`` over users (e.g. CTR =
  clicks / impressions) with its delta-method standard error from per-user sums,
  and the Wilson interval at the effective sample size ``Σden / design effect``.
* :func:`mean_estimate`: a per-user mean with its Student-t interval.

Variance conventions: a proportion of independent trials has ``p(1 - p) / n``;
per-user (co)variances use the unbiased ``n - 1`` divisor, so the ratio's delta
variance equals the HC1 cluster-robust variance of a per-user regression.

>>> low, high = proportion_interval(81, 263)          # Wilson, R prop.test(81, 263, correct=FALSE)
>>> round(float(low), 7), round(float(high), 7)
(0.2552885, 0.3662096)
>>> est = ratio_estimate(n=3, sum_num=3, sum_den=11, sum_num2=5, sum_den2=45, sum_numden=14)
>>> round(float(est.estimate), 6), round(float(est.se), 6)
(0.272727, 0.093866)
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from statsmodels.stats.proportion import proportion_confint

from ._common import FloatArray, Reasons, Result, Sums, as_float, errstate, quantile
from .moments import Moments, moments_from_sums

__all__ = [
    "PROPORTION_METHODS",
    "proportion_interval",
    "RatioEstimate",
    "ratio_estimate",
    "MeanEstimate",
    "mean_estimate",
]

# Our method names -> statsmodels' names.
PROPORTION_METHODS = {
    "wilson": "wilson",
    "wald": "normal",
    "agresti_coull": "agresti_coull",
    "clopper_pearson": "beta",
    "jeffreys": "jeffreys",
}


def check_alpha(alpha: float) -> float:
    """Validate a significance level (a user error, so a plain ``ValueError``)."""
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return float(alpha)


class Arm(NamedTuple):
    """One arm's estimate, the variance of that estimate, units and degrees of freedom."""

    estimate: FloatArray
    var: FloatArray
    n: FloatArray
    df: FloatArray
    reason: NDArray[np.object_]


def _count_reasons(x: FloatArray, n: FloatArray) -> Reasons:
    reasons = Reasons(np.broadcast_shapes(x.shape, n.shape))
    reasons.add(np.isnan(x) | np.isnan(n), "missing input")
    reasons.add((n < 0) | (x < 0) | (x > n), "invalid counts (need 0 <= successes <= trials)")
    reasons.add(n == 0, "no trials")
    return reasons


def proportion_arm(successes: ArrayLike, trials: ArrayLike) -> Arm:
    """Binomial proportion ``x / n`` with variance ``p(1 - p) / n``."""
    x, n = as_float(successes), as_float(trials)
    reasons = _count_reasons(x, n)
    bad = reasons.array != ""
    with errstate():
        p = np.where(bad, np.nan, x / n)
        trials = np.where(bad, np.nan, np.broadcast_to(n, p.shape))
        return Arm(p, p * (1 - p) / n, trials, np.full(p.shape, np.inf), reasons.array)


def _unit_reasons(m: Moments) -> Reasons:
    reasons = Reasons(np.shape(m.n))
    reasons.merge(np.asarray(m.reason, dtype=object))
    reasons.add(np.isnan(m.n), "missing input")
    reasons.add(m.n <= 0, "no units")
    return reasons


def ratio_arm(sums: Sums) -> Arm:
    """Ratio ``Σnum / Σden`` with its delta-method variance from per-user sums.

    ``Var(R) = (S_nn - 2 R S_nd + R² S_dd) / (n - 1) / (n d̄²)``, the variance of
    the per-user linearisation ``(num - R den) / d̄`` divided by ``n``.
    """
    m = moments_from_sums(sums, "num", "den")
    reasons = _unit_reasons(m)
    with errstate():
        reasons.add(m.mean_b == 0, "zero denominator")
        r = np.where(reasons.array != "", np.nan, m.mean_a / m.mean_b)
        reasons.add(m.n < 2, "fewer than 2 units: no variance")
        lin = m.m2_a - 2 * r * m.c_ab + r * r * m.m2_b
        var = np.maximum(lin, 0.0) / (m.n - 1) / (m.n * m.mean_b**2)
        var = np.where(m.n < 2, np.nan, var)
    return Arm(r, var, np.asarray(m.n), np.full(np.shape(r), np.inf), reasons.array)


def mean_arm(m: Moments, theta: ArrayLike = 0.0, centre_b: ArrayLike = 0.0) -> Arm:
    """Mean of ``a``, optionally CUPED-adjusted: ``ā - θ (b̄ - centre_b)``.

    Variance ``(S_aa - 2θ S_ab + θ² S_bb) / (n - 1) / n`` (θ treated as fixed), the
    Welch variance of the adjusted per-user values; ``df = n - 1``.
    """
    reasons = _unit_reasons(m)
    theta = as_float(theta)
    adjusted = theta != 0
    with errstate():
        est = m.mean_a - np.where(adjusted, theta * (m.mean_b - as_float(centre_b)), 0.0)
        est = np.where(reasons.array != "", np.nan, est)
        reasons.add(m.n < 2, "fewer than 2 units: no variance")
        ss = m.m2_a - np.where(adjusted, 2 * theta * m.c_ab - theta * theta * m.m2_b, 0.0)
        var = np.where(m.n < 2, np.nan, np.maximum(ss, 0.0) / (m.n - 1) / m.n)
    return Arm(est, var, np.asarray(m.n), np.asarray(m.n) - 1.0, reasons.array)


def proportion_interval(
    successes: ArrayLike,
    trials: ArrayLike,
    method: str = "wilson",
    alpha: float = 0.05,
) -> tuple[FloatArray, FloatArray]:
    """Two-sided ``1 - alpha`` interval for a binomial proportion, per slice.

    Methods: ``wilson`` (score; default), ``wald`` (clipped to [0, 1]),
    ``agresti_coull``, ``clopper_pearson`` (exact) and ``jeffreys`` (equal-tailed
    Beta(x + ½, n - x + ½) quantiles, with Brown, Cai & DasGupta's boundary rule:
    lower = 0 at x = 0, upper = 1 at x = n). Non-integer ``successes`` are allowed
    (effective counts). Rows with missing, negative or impossible counts, or no
    trials, give NaN; use :func:`proportion_arm`'s reasons or the comparison
    functions for the why.

    Returns ``(low, high)``, each with the broadcast shape of the inputs.

    >>> low, high = proportion_interval([81, 0], [263, 0], method="clopper_pearson")
    >>> np.round(low, 7), np.round(high, 7)
    (array([0.2527367,       nan]), array([0.3676219,       nan]))
    """
    check_alpha(alpha)
    if method not in PROPORTION_METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {sorted(PROPORTION_METHODS)}")
    x, n = np.broadcast_arrays(as_float(successes), as_float(trials))
    bad = _count_reasons(x, n).array != ""
    xs, ns = np.where(bad, 0.0, x), np.where(bad, 1.0, n)
    with errstate(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        low, high = proportion_confint(xs, ns, alpha=alpha, method=PROPORTION_METHODS[method])
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    if method == "jeffreys":
        low = np.where(xs <= 0, 0.0, low)
        high = np.where(xs >= ns, 1.0, high)
    low, high = np.where(bad, np.nan, low), np.where(bad, np.nan, high)
    return low[()], high[()]


@dataclasses.dataclass(frozen=True)
class RatioEstimate(Result):
    """A ratio metric per slice.

    Attributes:
        estimate: ``Σnum / Σden``.
        se: delta-method standard error (per-user sums, ``n - 1`` divisor).
        low, high: normal ``1 - alpha`` interval ``estimate ± z se``.
        design_effect: ``se² / (R(1 - R) / Σden)``, the variance relative to
            treating every denominator unit (impression) as an independent trial.
        n_eff: effective number of trials ``Σden / design_effect``.
        wilson_low, wilson_high: Wilson interval with ``R n_eff`` successes in
            ``n_eff`` trials (only for 0 < R < 1).
        reason: "" or why some fields are NaN.
    """

    estimate: FloatArray
    se: FloatArray
    low: FloatArray
    high: FloatArray
    design_effect: FloatArray
    n_eff: FloatArray
    wilson_low: FloatArray
    wilson_high: FloatArray
    reason: NDArray[np.object_]


def ratio_estimate(
    n: ArrayLike,
    sum_num: ArrayLike,
    sum_den: ArrayLike,
    sum_num2: ArrayLike,
    sum_den2: ArrayLike,
    sum_numden: ArrayLike,
    alpha: float = 0.05,
    *,
    shift_num: ArrayLike = 0.0,
    shift_den: ArrayLike = 0.0,
) -> RatioEstimate:
    """Ratio metric with delta-method and effective-sample-size Wilson intervals.

    ``n`` is the number of users; the other arguments are per-user sums (a rollup
    row, so ``ratio_estimate(**row)`` works). With ``shift_num``/``shift_den`` the
    sums are of ``num - shift_num`` and ``den - shift_den``
    (see :mod:`expkit.stats.moments`).

    >>> from expkit.stats.moments import ratio_sums
    >>> r = ratio_estimate(**ratio_sums([0, 1, 0, 3, 1], [10, 12, 8, 20, 9]))
    >>> round(float(r.estimate), 6), round(float(r.se), 6), round(float(r.design_effect), 4)
    (0.084746, 0.032479, 0.8024)
    """
    alpha = check_alpha(alpha)
    sums = {"n": n, "sum_num": sum_num, "sum_den": sum_den, "sum_num2": sum_num2,
            "sum_den2": sum_den2, "sum_numden": sum_numden,
            "shift_num": shift_num, "shift_den": shift_den}
    arm = ratio_arm(sums)
    reasons = Reasons(np.shape(arm.estimate))
    reasons.merge(arm.reason)
    with errstate():
        se = np.sqrt(arm.var)
        reasons.add(se == 0, "zero variance")
        se = np.where(se == 0, np.nan, se)
        z = quantile(1 - alpha / 2)
        r = arm.estimate
        trials = as_float(n) * (as_float(sum_den) / as_float(n) + as_float(shift_den))
        deff = arm.var / (r * (1 - r) / trials)
        is_prop = (r > 0) & (r < 1)
        reasons.add(np.isfinite(r) & ~is_prop,
                    "estimate outside (0, 1): design effect and Wilson view undefined")
        deff = np.where(is_prop & np.isfinite(se), deff, np.nan)
        n_eff = trials / deff
        w_low, w_high = proportion_interval(np.nan_to_num(r * n_eff, nan=-1.0),
                                            np.nan_to_num(n_eff, nan=-1.0), "wilson", alpha)
    return RatioEstimate.build(
        estimate=r, se=se, low=r - z * se, high=r + z * se, design_effect=deff,
        n_eff=n_eff, wilson_low=np.where(np.isnan(deff), np.nan, w_low),
        wilson_high=np.where(np.isnan(deff), np.nan, w_high), reason=reasons.array,
    )


@dataclasses.dataclass(frozen=True)
class MeanEstimate(Result):
    """A per-user mean per slice.

    Attributes:
        estimate: ``Σy / n``.
        se: ``s / sqrt(n)`` with the ``n - 1`` sample variance.
        low, high: Student-t ``1 - alpha`` interval (``df = n - 1``), as R's
            ``t.test(y)``.
        reason: "" or why some fields are NaN.
    """

    estimate: FloatArray
    se: FloatArray
    low: FloatArray
    high: FloatArray
    reason: NDArray[np.object_]


def mean_estimate(
    n: ArrayLike,
    sum_y: ArrayLike,
    sum_y2: ArrayLike,
    alpha: float = 0.05,
    *,
    shift_y: ArrayLike = 0.0,
) -> MeanEstimate:
    """Mean of a per-user value with its t interval, from ``n, Σy, Σy²``.

    >>> from expkit.stats.moments import mean_sums
    >>> m = mean_estimate(**mean_sums([2.0, 4.0, 9.0]))   # R: t.test(c(2, 4, 9))
    >>> round(float(m.low), 5), round(float(m.high), 5)
    (-3.95669, 13.95669)
    """
    alpha = check_alpha(alpha)
    arm = mean_arm(moments_from_sums({"n": n, "sum_y": sum_y, "sum_y2": sum_y2,
                                      "shift_y": shift_y}, "y"))
    reasons = Reasons(np.shape(arm.estimate))
    reasons.merge(arm.reason)
    with errstate():
        se = np.sqrt(arm.var)
        reasons.add(se == 0, "zero variance")
        se = np.where(se == 0, np.nan, se)
        half = quantile(1 - alpha / 2, arm.df) * se
    return MeanEstimate.build(estimate=arm.estimate, se=se, low=arm.estimate - half,
                              high=arm.estimate + half, reason=reasons.array)
