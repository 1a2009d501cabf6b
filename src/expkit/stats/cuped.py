"""CUPED: variance reduction with a pre-period covariate (Deng, Xu, Kohavi & Walker 2013).

Each user's outcome ``y`` is replaced by ``y - θ (x - x̄)`` where ``x`` is the same
user's pre-period value and ``θ = Cov(y, x) / Var(x)`` is estimated once from
both arms pooled into one sample (so both arms get the same θ and the
difference stays unbiased; pooling across arms costs nothing because ``x`` is
measured before exposure). θ is treated as fixed in the variance, the usual
large-sample approximation. :func:`expkit.stats.compare_means` with
``covariate=True`` uses it.

Ratio metrics (:func:`ratio_cuped`, used by :func:`expkit.stats.compare_ratios`
with ``covariate=True``): regression adjustment of the delta-method-linearized
ratio, as GrowthBook's regression-adjusted ratio statistic. Per user and arm the
outcome is the linearisation ``L = (num - R den) / d̄`` of the arm's ratio
``R = Σnum / Σden`` and the covariate the linearisation ``P = (pre_num - R_pre
pre_den) / pre_d̄`` of its pre-period ratio. θ is the within-arm slope of ``L`` on
``P`` pooled over both arms, ``θ = Σ_arms S_LP / Σ_arms S_PP`` (the coefficient of
``P`` in ``lm(L ~ arm + P)``; GrowthBook sums per-arm covariances instead, the
same θ when the arms have equal size), and each arm's estimate is
``R - θ (R_pre - R_pre_pooled)`` with variance ``(S_LL - 2θ S_LP + θ² S_PP) /
((n - 1) n)``. Users without pre-period history carry pre-period sums of 0, so
their ``P`` is 0, the arm's mean of ``P``: the adjustment is unbiased because the
pre-period values are fixed before assignment (docs/statistics.md, "CUPED").

>>> from expkit.stats.moments import mean_sums
>>> fit = cuped_theta(mean_sums([3.0, 5.0, 4.0], x=[2.0, 4.0, 4.0]),
...                   mean_sums([6.0, 7.0, 5.0], x=[3.0, 5.0, 2.0]))
>>> round(float(fit.theta), 6), round(float(fit.centre), 6)
(0.681818, 3.333333)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._common import FloatArray, Sums, errstate
from .intervals import Arm, ratio_arm
from .moments import Moments, combine_moments, moments_from_sums

__all__ = ["CupedFit", "cuped_theta", "RatioCupedFit", "ratio_cuped", "RATIO_COVARIATE_KEYS"]

# The per-arm sums a ratio metric's pre-period covariate adds to the ratio sums.
RATIO_COVARIATE_KEYS = (
    "sum_pre_num", "sum_pre_den", "sum_pre_num2", "sum_pre_den2", "sum_pre_numden",
    "sum_num_pre_num", "sum_num_pre_den", "sum_den_pre_num", "sum_den_pre_den",
)


class CupedFit(NamedTuple):
    """θ pooled over both arms, each arm's (y, x) moments and the pooled mean of x."""

    theta: FloatArray
    control: Moments
    treatment: Moments
    centre: FloatArray


def cuped_theta(control: Sums, treatment: Sums) -> CupedFit:
    """Pooled CUPED coefficient from each arm's ``n, sum_y, sum_y2, sum_x, sum_x2, sum_xy``.

    A constant covariate carries no information: θ = 0 (no adjustment).
    """
    c = moments_from_sums(control, "y", "x", cross="sum_xy")
    t = moments_from_sums(treatment, "y", "x", cross="sum_xy")
    pooled = combine_moments(c, t)
    with errstate():
        theta = np.where(pooled.m2_b == 0, 0.0, pooled.c_ab / pooled.m2_b)
    return CupedFit(theta[()], c, t, pooled.mean_b)


class RatioCupedFit(NamedTuple):
    """Regression-adjusted ratio metric: pooled θ, pooled pre-period ratio and the arms.

    ``control``/``treatment`` are the adjusted arms, ``*_unadjusted`` the plain
    delta-method arms (same reasons). θ is 0 (no adjustment) where the pre-period
    covariate has no variance or no arm has pre-period history. ``rel_lift`` is
    ``(treatment - control) / R_control`` (adjusted difference over the unadjusted
    control ratio, as GrowthBook) and ``rel_var`` its delta-method variance, which
    accounts for the control ratio in both numerator and denominator.
    """

    theta: FloatArray
    centre: FloatArray
    control: Arm
    treatment: Arm
    control_unadjusted: Arm
    treatment_unadjusted: Arm
    rel_lift: FloatArray
    rel_var: FloatArray


class _Linearised(NamedTuple):
    n: FloatArray
    ratio_pre: FloatArray
    s_ll: FloatArray
    s_pp: FloatArray
    s_lp: FloatArray
    mean_pre_num: FloatArray
    mean_pre_den: FloatArray


def _linearised(sums: Sums, arm: Arm) -> _Linearised:
    """Centred sums of squares and products of ``L`` and ``P`` from one arm's sums."""
    post = moments_from_sums(sums, "num", "den")
    pre = moments_from_sums(sums, "pre_num", "pre_den", cross="sum_pre_numden")

    def cross(a: str, b: str) -> FloatArray:
        return np.asarray(moments_from_sums(sums, a, b, cross=f"sum_{a}_{b}").c_ab)

    s_np, s_nq = cross("num", "pre_num"), cross("num", "pre_den")
    s_dp, s_dq = cross("den", "pre_num"), cross("den", "pre_den")
    r, d = arm.estimate, post.mean_b
    with errstate():
        rp = pre.mean_a / pre.mean_b
        q = pre.mean_b
        s_ll = (post.m2_a - 2 * r * post.c_ab + r * r * post.m2_b) / (d * d)
        s_pp = (pre.m2_a - 2 * rp * pre.c_ab + rp * rp * pre.m2_b) / (q * q)
        s_lp = (s_np - rp * s_nq - r * s_dp + r * rp * s_dq) / (d * q)
    return _Linearised(np.asarray(post.n), np.asarray(rp), np.asarray(s_ll), np.asarray(s_pp),
                       np.asarray(s_lp), np.asarray(pre.mean_a), np.asarray(pre.mean_b))


def ratio_cuped(control: Sums, treatment: Sums) -> RatioCupedFit:
    """Regression-adjusted arms of a ratio metric from each arm's ratio and covariate sums.

    Each arm maps the ratio sums (``n, sum_num, sum_den, sum_num2, sum_den2,
    sum_numden``) plus :data:`RATIO_COVARIATE_KEYS`: the same sums of the user's
    pre-period numerator and denominator (``pre_num``, ``pre_den``) and the four
    cross sums ``Σ num·pre_num, Σ num·pre_den, Σ den·pre_num, Σ den·pre_den``.

    >>> from expkit.stats.moments import ratio_sums
    >>> c = ratio_sums([1, 2, 0, 4], [10, 12, 8, 20], pre_num=[1, 3, 0, 3], pre_den=[9, 14, 7, 18])
    >>> fit = ratio_cuped(c, c)            # R: coef(lm(L ~ P)), L and P the linearisations
    >>> round(float(fit.theta), 6), bool(fit.control.var < fit.control_unadjusted.var)
    (0.884125, True)
    """
    c_arm, t_arm = ratio_arm(control), ratio_arm(treatment)
    c, t = _linearised(control, c_arm), _linearised(treatment, t_arm)
    with errstate():
        s_pp = c.s_pp + t.s_pp
        theta = (c.s_lp + t.s_lp) / s_pp
        theta = np.where(np.isfinite(theta) & (s_pp > 0), theta, 0.0)
        centre = (c.n * c.mean_pre_num + t.n * t.mean_pre_num) / (
            c.n * c.mean_pre_den + t.n * t.mean_pre_den)

        def adjusted(arm: Arm, lin: _Linearised) -> Arm:
            shift = np.where(theta != 0, theta * (lin.ratio_pre - centre), 0.0)
            ss = lin.s_ll - np.where(theta != 0, 2 * theta * lin.s_lp - theta * theta * lin.s_pp, 0.0)
            var = np.where(np.isnan(arm.var), np.nan, np.maximum(ss, 0.0) / (lin.n - 1) / lin.n)
            return arm._replace(estimate=np.asarray(arm.estimate - shift), var=np.asarray(var))

        c_adj, t_adj = adjusted(c_arm, c), adjusted(t_arm, t)
        # rel = (A_t - A_c) / R_c: the control's per-user influence is
        # -((1 + rel) L - θ P) / R_c, the treatment's (L - θ P) / R_c.
        rc = c_arm.estimate
        rel = (t_adj.estimate - c_adj.estimate) / rc
        k = 1 + rel
        ss_c = k * k * c.s_ll - np.where(theta != 0, 2 * k * theta * c.s_lp - theta * theta * c.s_pp, 0.0)
        rel_var = (t_adj.var + np.maximum(ss_c, 0.0) / (c.n - 1) / c.n) / (rc * rc)
        return RatioCupedFit(np.asarray(theta)[()], np.asarray(centre)[()], c_adj, t_adj,
                             c_arm, t_arm, np.asarray(rel)[()], np.asarray(rel_var)[()])
