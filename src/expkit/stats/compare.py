"""Two-arm comparisons: difference, relative lift, p-values, always-valid intervals.

Methods and references: docs/statistics.md, "Two-arm comparisons".

All three entry points reduce each arm to an estimate and the variance of that
estimate, then share one comparison core:

* :func:`compare_proportions`: counts; binomial variance ``p(1 - p) / n`` per
  arm (unpooled), **z** test.
* :func:`compare_ratios`: ratio metrics from per-user sums; delta-method
  variance per arm, **z** test (the per-arm delta method is asymptotic).
* :func:`compare_means`: per-user means; ``s² / n`` per arm with the ``n - 1``
  sample variance, **Welch** t test with Welch–Satterthwaite degrees of freedom
  (as R's ``t.test(var.equal = FALSE)``). With ``covariate=True``, CUPED with one
  θ pooled over both arms (:mod:`expkit.stats.cuped`); ratio metrics take
  ``covariate=True`` too (regression adjustment of the linearized ratio).

The difference is ``treatment - control``; its interval is ``diff ± q se`` with
``se² = v_c + v_t``. The relative lift ``treatment / control - 1`` gets a
delta-method interval (``Var ≈ v_t / c² + t² v_c / c⁴``) and Fieller's interval
(exact for a ratio of independent normal estimates; unbounded, hence NaN, when
the control is not significantly different from 0). With ``sequential=True`` the
always-valid confidence sequence (:mod:`expkit.stats.sequential`) of the
difference and of the relative lift, and their always-valid p-values, are filled
in (they stay NaN otherwise). Every interval has the p-value of its own test
(``pvalue``, ``rel_pvalue``, ``seq_pvalue``, ``seq_rel_pvalue``): a p-value is
below ``alpha`` exactly when its interval excludes 0.

>>> r = compare_proportions(1000, 20000, 1100, 20000, sequential=True)
>>> round(float(r.diff), 4), round(float(r.seq_low), 7), round(float(r.seq_high), 7)
(0.005, -0.0021637, 0.0121637)
>>> r.test, r.reason
('z', '')
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._common import (
    FloatArray,
    Reasons,
    Result,
    Sums,
    as_float,
    errstate,
    quantile,
    two_sided_pvalue,
)
from .cuped import cuped_theta, ratio_cuped
from .intervals import Arm, check_alpha, mean_arm, proportion_arm, ratio_arm
from .moments import moments_from_sums
from .sequential import confidence_sequence, sequential_pvalue

__all__ = [
    "Comparison",
    "compare_arms",
    "compare_proportions",
    "compare_ratios",
    "compare_means",
    "pre_period_balance",
]


@dataclasses.dataclass(frozen=True)
class Comparison(Result):
    """Treatment vs control, one element per slice.

    Attributes:
        control, treatment: per-arm estimates.
        control_se, treatment_se: their standard errors.
        diff: ``treatment - control``.
        se: standard error of ``diff`` (``sqrt(v_c + v_t)``, unpooled).
        diff_low, diff_high: fixed-horizon ``1 - alpha`` interval of ``diff``.
        statistic: ``diff / se`` (z or Welch t).
        df: degrees of freedom (``inf`` for z).
        pvalue: two-sided fixed-horizon p-value for ``diff == 0``; below ``alpha``
            exactly when ``diff_low, diff_high`` excludes 0.
        rel_lift: ``treatment / control - 1``.
        rel_se: its delta-method standard error.
        rel_low, rel_high: delta-method interval of ``rel_lift``.
        rel_pvalue: two-sided p-value for ``rel_lift == 0`` of the test behind
            ``rel_low, rel_high`` (``rel_lift / rel_se``); below ``alpha`` exactly
            when that interval excludes 0.
        rel_low_fieller, rel_high_fieller: Fieller interval of ``rel_lift``.
        seq_low, seq_high: always-valid interval of ``diff`` (NaN unless sequential).
        seq_pvalue: always-valid p-value of ``diff`` (NaN unless sequential); at
            most ``alpha`` exactly when ``seq_low, seq_high`` excludes 0.
        seq_rel_low, seq_rel_high: always-valid interval of ``rel_lift``.
        seq_rel_pvalue: always-valid p-value of ``rel_lift``; at most ``alpha``
            exactly when ``seq_rel_low, seq_rel_high`` excludes 0.
        theta: CUPED coefficient pooled over both arms (NaN without a covariate).
        variance_reduction: ``1 - var_adjusted / var_unadjusted`` of ``diff``
            (NaN without a covariate).
        test: ``"z"`` or ``"welch"``.
        reason: "" or why some fields are NaN.
    """

    control: FloatArray
    treatment: FloatArray
    control_se: FloatArray
    treatment_se: FloatArray
    diff: FloatArray
    se: FloatArray
    diff_low: FloatArray
    diff_high: FloatArray
    statistic: FloatArray
    df: FloatArray
    pvalue: FloatArray
    rel_lift: FloatArray
    rel_se: FloatArray
    rel_low: FloatArray
    rel_high: FloatArray
    rel_pvalue: FloatArray
    rel_low_fieller: FloatArray
    rel_high_fieller: FloatArray
    seq_low: FloatArray
    seq_high: FloatArray
    seq_pvalue: FloatArray
    seq_rel_low: FloatArray
    seq_rel_high: FloatArray
    seq_rel_pvalue: FloatArray
    theta: FloatArray
    variance_reduction: FloatArray
    test: str
    reason: NDArray[np.object_]


def _fieller(
    c: FloatArray, t: FloatArray, vc: FloatArray, vt: FloatArray, q: FloatArray
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
    """Fieller bounds of ``t / c`` for independent estimates: roots of
    ``(t - ρc)² = q² (v_t + ρ² v_c)``; NaN when the set is unbounded."""
    a = c * c - q * q * vc
    root = np.sqrt(q * q * (vt * a + t * t * vc))
    bounded = a > 0
    low = np.where(bounded, (t * c - root) / a, np.nan)
    high = np.where(bounded, (t * c + root) / a, np.nan)
    return low, high, bounded


def compare_arms(
    control: Arm,
    treatment: Arm,
    alpha: float = 0.05,
    sequential: bool = False,
    tuning_n: ArrayLike = 5000,
    test: Literal["z", "welch"] = "z",
    *,
    relative: tuple[ArrayLike, ArrayLike] | None = None,
) -> Comparison:
    """The comparison core: two arms given as estimate and variance of the estimate.

    Public so that other estimators (any asymptotically normal per-arm estimate)
    get the same difference, lift, Fieller, sequential and reason handling.
    ``relative`` = ``(rel_lift, its variance)`` replaces the independent-arms
    delta method where the arms' estimates are not independent (CUPED of a ratio).
    """
    alpha = check_alpha(alpha)
    c, t, vc, vt = control.estimate, treatment.estimate, control.var, treatment.var
    shape = np.broadcast_shapes(np.shape(c), np.shape(t))
    reasons = Reasons(shape)
    reasons.merge(control.reason, "control: ")
    reasons.merge(treatment.reason, "treatment: ")
    nan = np.full(shape, np.nan)
    with errstate():
        diff = t - c
        var = vc + vt
        reasons.add(var == 0, "zero variance in both arms")
        var = np.where(var > 0, var, np.nan)
        se = np.sqrt(var)
        if test == "welch":
            df = var * var / (vc * vc / control.df + vt * vt / treatment.df)
        else:
            df = np.full(shape, np.inf)
        q = quantile(1 - alpha / 2, df)
        stat = diff / se
        pvalue = two_sided_pvalue(stat, df)

        reasons.add(np.isfinite(c) & (c == 0), "relative lift undefined: control estimate is 0")
        c_nz = np.where(c == 0, np.nan, c)
        rel = t / c_nz - 1
        rel_var = vt / c_nz**2 + t * t * vc / c_nz**4
        if relative is not None:
            rel = np.where(np.isnan(c_nz), np.nan, as_float(relative[0]))
            rel_var = as_float(relative[1])
        rel_se = np.sqrt(np.where(np.isfinite(se), rel_var, np.nan))
        f_low, f_high, bounded = _fieller(c_nz, t, vc, vt, q)
        reasons.add(np.isfinite(se) & np.isfinite(c_nz) & ~bounded,
                    "Fieller interval unbounded: control not significantly different from 0")

        rel_pvalue = two_sided_pvalue(rel / rel_se, df)
        seq = dict(seq_low=nan, seq_high=nan, seq_pvalue=nan, seq_rel_low=nan, seq_rel_high=nan,
                   seq_rel_pvalue=nan)
        if sequential:
            n_total = control.n + treatment.n
            seq["seq_low"], seq["seq_high"] = confidence_sequence(diff, var, n_total, alpha,
                                                                  tuning_n)
            seq["seq_pvalue"] = sequential_pvalue(diff, var, n_total, alpha, tuning_n)
            seq["seq_rel_low"], seq["seq_rel_high"] = confidence_sequence(
                rel, rel_se**2, n_total, alpha, tuning_n)
            seq["seq_rel_pvalue"] = sequential_pvalue(rel, rel_se**2, n_total, alpha, tuning_n)

    def full(x: ArrayLike) -> FloatArray:
        return np.array(np.broadcast_to(x, shape), dtype=float)

    return Comparison.build(
        control=full(c), treatment=full(t), control_se=full(np.sqrt(vc)),
        treatment_se=full(np.sqrt(vt)), diff=diff, se=se, diff_low=diff - q * se,
        diff_high=diff + q * se, statistic=stat, df=full(df), pvalue=pvalue, rel_lift=rel,
        rel_se=rel_se, rel_low=rel - q * rel_se, rel_high=rel + q * rel_se, rel_pvalue=rel_pvalue,
        rel_low_fieller=f_low - 1, rel_high_fieller=f_high - 1, **seq, theta=nan,
        variance_reduction=nan, test=test, reason=reasons.array,
    )


def compare_proportions(
    x_control: ArrayLike,
    n_control: ArrayLike,
    x_treatment: ArrayLike,
    n_treatment: ArrayLike,
    alpha: float = 0.05,
    sequential: bool = False,
    tuning_n: ArrayLike = 5000,
) -> Comparison:
    """Compare two binomial proportions (unpooled z test), per slice.

    Use it for request-level health metrics whose unit is the randomization unit;
    for per-impression metrics of user-randomized arms use :func:`compare_ratios`.

    >>> r = compare_proportions([50, 0], [1000, 0], [65, 3], [1000, 100])
    >>> np.round(r.pvalue, 6), list(r.reason)
    (array([0.149432,      nan]), ['', 'control: no trials'])
    """
    return compare_arms(proportion_arm(x_control, n_control),
                        proportion_arm(x_treatment, n_treatment),
                        alpha, sequential, tuning_n, "z")


def compare_ratios(
    control: Sums,
    treatment: Sums,
    alpha: float = 0.05,
    sequential: bool = False,
    tuning_n: ArrayLike = 5000,
    covariate: bool = False,
) -> Comparison:
    """Compare a ratio metric (e.g. CTR = Σclicks / Σimpressions) between arms.

    ``control``/``treatment`` map ``n, sum_num, sum_den, sum_num2, sum_den2,
    sum_numden`` (optionally ``shift_num``, ``shift_den``) to scalars or arrays.
    Delta-method variance per arm from per-user sums; z test.

    With ``covariate=True`` each arm also maps the pre-period sums of
    :data:`expkit.stats.cuped.RATIO_COVARIATE_KEYS` and every estimate, interval
    and p-value is regression-adjusted (:func:`expkit.stats.cuped.ratio_cuped`);
    ``theta`` and ``variance_reduction`` are filled in.

    >>> from expkit.stats.moments import ratio_sums
    >>> c = ratio_sums([0, 1, 0, 3, 1, 2], [10, 12, 8, 20, 9, 15])
    >>> t = ratio_sums([1, 2, 0, 4, 2, 1], [11, 10, 9, 18, 12, 14])
    >>> r = compare_ratios(c, t)
    >>> round(float(r.rel_lift), 6), round(float(r.pvalue), 6)
    (0.428571, 0.350542)
    """
    if not covariate:
        return compare_arms(ratio_arm(control), ratio_arm(treatment), alpha, sequential,
                            tuning_n, "z")
    fit = ratio_cuped(control, treatment)
    r = compare_arms(fit.control, fit.treatment, alpha, sequential, tuning_n, "z",
                     relative=(fit.rel_lift, fit.rel_var))
    return _with_covariate(r, fit.theta, fit.control_unadjusted, fit.treatment_unadjusted)


def _with_covariate(r: Comparison, theta: ArrayLike, control: Arm, treatment: Arm) -> Comparison:
    """Add θ and the variance reduction (against the unadjusted arms) to a comparison."""
    shape = np.shape(r.diff)
    with errstate():
        reduction = 1 - np.asarray(r.se) ** 2 / (control.var + treatment.var)
    return dataclasses.replace(
        r, theta=np.array(np.broadcast_to(theta, shape), dtype=float)[()],
        variance_reduction=np.array(np.broadcast_to(reduction, shape), dtype=float)[()])


def compare_means(
    control: Sums,
    treatment: Sums,
    covariate: bool = False,
    alpha: float = 0.05,
    sequential: bool = False,
    tuning_n: ArrayLike = 5000,
) -> Comparison:
    """Compare per-user means (Welch), optionally CUPED-adjusted.

    ``control``/``treatment`` map ``n, sum_y, sum_y2`` (and, for
    ``covariate=True``, ``sum_x, sum_x2, sum_xy`` of the pre-period covariate;
    optionally ``shift_y``, ``shift_x``). With CUPED each arm's estimate is
    ``ȳ - θ (x̄ - x̄_pooled)`` with θ from both arms pooled, and the Welch test runs
    on the adjusted per-user values ``y - θ (x - x̄_pooled)``.

    >>> from expkit.stats.moments import mean_sums
    >>> r = compare_means(mean_sums([3.0, 5.0, 4.0, 6.0]), mean_sums([6.0, 7.0, 5.0, 9.0]))
    >>> round(float(r.diff), 3), round(float(r.df), 4), round(float(r.pvalue), 6)
    (2.25, 5.5846, 0.083707)
    """
    if covariate:
        theta, c_m, t_m, centre = cuped_theta(control, treatment)
        c_arm, t_arm = mean_arm(c_m, theta, centre), mean_arm(t_m, theta, centre)
        r = compare_arms(c_arm, t_arm, alpha, sequential, tuning_n, "welch")
        return _with_covariate(r, theta, mean_arm(c_m), mean_arm(t_m))
    else:
        c_arm = mean_arm(moments_from_sums(control, "y"))
        t_arm = mean_arm(moments_from_sums(treatment, "y"))
    return compare_arms(c_arm, t_arm, alpha, sequential, tuning_n, "welch")


_PRE_KEYS = {"n": "n", "sum_pre_num": "sum_num", "sum_pre_den": "sum_den",
             "sum_pre_num2": "sum_num2", "sum_pre_den2": "sum_den2", "sum_pre_numden": "sum_numden"}


def pre_period_balance(control: Sums, treatment: Sums, alpha: float = 0.05) -> Comparison:
    """Compare the arms' **pre-period** ratio (the CUPED covariate of a ratio metric).

    Assignment cannot change what users did before the experiment, so a
    significant difference (``pvalue`` below a strict level, e.g. 0.001 as for
    sample ratio mismatch) points at broken randomization or a biased user set.
    Takes the same arm mappings as ``compare_ratios(..., covariate=True)``.

    >>> from expkit.stats.moments import ratio_sums
    >>> c = ratio_sums([1, 2], [5, 6], pre_num=[1, 0], pre_den=[4, 5])
    >>> t = ratio_sums([1, 2], [5, 6], pre_num=[1, 1], pre_den=[4, 5])
    >>> round(float(pre_period_balance(c, t).rel_lift), 6)
    1.0
    """
    def pre(sums: Sums) -> dict[str, object]:
        return {new: sums[old] for old, new in _PRE_KEYS.items()}

    return compare_ratios(pre(control), pre(treatment), alpha)
