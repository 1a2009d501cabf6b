"""Power, sample size and minimum detectable effect for the planned sample (docs/statistics.md).

Closed forms of the two-sided normal-approximation test, vectorized over slices.
As in R's ``power.prop.test`` (default ``strict = FALSE``), power counts only
rejections in the direction of the effect, so sample size and MDE are the exact
inverses of :func:`power_normal` / :func:`power_proportions`.
(``statsmodels.stats.power.NormalIndPower`` computes the same normal power, both
tails included, but solves for ``n`` one scalar at a time; it is used as the
cross-check in the tests.)

* Means and ratio metrics: the per-unit standard deviation ``sd`` of the metric
  (for a ratio, of its per-user linearisation; :func:`ratio_unit_sd` gets it
  from a control arm's sums), ``n`` units in control and ``ratio * n`` in
  treatment: ``power = Φ(|δ| / (sd sqrt(1/n + 1/(ratio n))) - z_{1-α/2})``.
* Proportions with ``n`` per arm (Fleiss' formula, as ``power.prop.test``):
  ``power = Φ((sqrt(n) |p2 - p1| - z_{1-α/2} sqrt(2 p̄ q̄)) / sqrt(p1 q1 + p2 q2))``.

>>> round(float(power_proportions(0.05, 0.06, 5000)), 6)   # R: power.prop.test(n=5000, p1=.05, p2=.06)
0.592222
>>> round(float(sample_size_normal(0.1, sd=1.3)), 3)     # 2 (z_.975 + z_.8)² 1.3² / 0.1²
2652.921
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from ._common import FloatArray, Sums, as_float, errstate
from .intervals import check_alpha, ratio_arm

__all__ = [
    "power_normal",
    "sample_size_normal",
    "mde_normal",
    "power_proportions",
    "sample_size_proportions",
    "mde_proportions",
    "ratio_unit_sd",
    "mde_ratio",
    "sample_size_ratio",
]


def _z(alpha: float, power: ArrayLike) -> FloatArray:
    check_alpha(alpha)
    return special.ndtri(1 - alpha / 2) + special.ndtri(as_float(power))


def _se_factor(n: ArrayLike, ratio: ArrayLike) -> FloatArray:
    n = as_float(n)
    return np.sqrt(1 / n + 1 / (as_float(ratio) * n))


def power_normal(
    delta: ArrayLike, sd: ArrayLike, n: ArrayLike, alpha: float = 0.05, ratio: ArrayLike = 1.0
) -> FloatArray:
    """Power to detect a difference ``delta`` with ``n`` control units.

    >>> round(float(power_normal(0.1, 1.3, 3000)), 6)   # R: pnorm(sqrt(3000/2)*0.1/1.3 - qnorm(.975))
    0.845959
    """
    check_alpha(alpha)
    with errstate():
        snr = np.abs(as_float(delta)) / (as_float(sd) * _se_factor(n, ratio))
        return special.ndtr(snr - special.ndtri(1 - alpha / 2))[()]


def sample_size_normal(
    delta: ArrayLike,
    sd: ArrayLike,
    power: ArrayLike = 0.8,
    alpha: float = 0.05,
    ratio: ArrayLike = 1.0,
) -> FloatArray:
    """Control units needed (treatment gets ``ratio`` times as many); not rounded up."""
    with errstate():
        z = _z(alpha, power)
        return ((z * as_float(sd) / as_float(delta)) ** 2 * (1 + 1 / as_float(ratio)))[()]


def mde_normal(
    sd: ArrayLike, n: ArrayLike, power: ArrayLike = 0.8, alpha: float = 0.05, ratio: ArrayLike = 1.0
) -> FloatArray:
    """Smallest absolute difference detected with the given power.

    >>> round(float(mde_normal(1.3, 3000)), 6)      # R: (qnorm(.975)+qnorm(.8))*1.3*sqrt(2/3000)
    0.094038
    """
    with errstate():
        return (_z(alpha, power) * as_float(sd) * _se_factor(n, ratio))[()]


def power_proportions(
    p_control: ArrayLike, p_treatment: ArrayLike, n: ArrayLike, alpha: float = 0.05
) -> FloatArray:
    """Power of the two-proportion test with ``n`` units per arm."""
    check_alpha(alpha)
    p1, p2, n = as_float(p_control), as_float(p_treatment), as_float(n)
    with errstate():
        pbar = (p1 + p2) / 2
        num = np.sqrt(n) * np.abs(p2 - p1) - special.ndtri(1 - alpha / 2) * np.sqrt(
            2 * pbar * (1 - pbar))
        power: FloatArray = special.ndtr(num / np.sqrt(p1 * (1 - p1) + p2 * (1 - p2)))[()]
        return power


def sample_size_proportions(
    p_control: ArrayLike, p_treatment: ArrayLike, power: ArrayLike = 0.8, alpha: float = 0.05
) -> FloatArray:
    """Units per arm to detect ``p_treatment`` vs ``p_control`` (inverse of the power).

    >>> round(float(sample_size_proportions(0.05, 0.055)), 4)   # R: power.prop.test(p1=.05, p2=.055, power=.8)
    31233.4379
    """
    check_alpha(alpha)
    p1, p2 = as_float(p_control), as_float(p_treatment)
    with errstate():
        pbar = (p1 + p2) / 2
        top = special.ndtri(1 - alpha / 2) * np.sqrt(2 * pbar * (1 - pbar)) + special.ndtri(
            as_float(power)) * np.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
        return ((top / (p2 - p1)) ** 2)[()]


def mde_proportions(
    p_control: ArrayLike,
    n: ArrayLike,
    power: ArrayLike = 0.8,
    alpha: float = 0.05,
    direction: str = "up",
) -> FloatArray:
    """Smallest absolute change of ``p_control`` (``up`` or ``down``) detected with
    the given power at ``n`` per arm (vectorized bisection of the power function).

    >>> round(float(mde_proportions(0.05, 20000)), 7)   # R: power.prop.test(n=20000, p1=.05, power=.8)$p2 - .05
    0.0062842
    """
    p1 = as_float(p_control)
    target = as_float(power)
    sign = {"up": 1.0, "down": -1.0}[direction]
    lo = np.zeros(np.broadcast_shapes(p1.shape, np.shape(n), target.shape))
    hi = np.where(sign > 0, 1 - p1, p1) + lo
    for _ in range(64):
        mid = (lo + hi) / 2
        short = power_proportions(p1, p1 + sign * mid, n, alpha) < target
        lo, hi = np.where(short, mid, lo), np.where(short, hi, mid)
    return ((lo + hi) / 2)[()]


def ratio_unit_sd(sums: Sums) -> FloatArray:
    """Per-user standard deviation of a ratio metric's linearisation, ``se sqrt(n)``.

    Feed it (from a control arm or a pre-period) to the ``*_normal`` functions.

    >>> from expkit.stats.moments import ratio_sums
    >>> round(float(ratio_unit_sd(ratio_sums([0, 1, 0, 3, 1], [10, 12, 8, 20, 9]))), 6)
    0.072625
    """
    arm = ratio_arm(sums)
    with errstate():
        return np.sqrt(arm.var * arm.n)[()]


def mde_ratio(
    sums: Sums,
    n: ArrayLike | None = None,
    power: ArrayLike = 0.8,
    alpha: float = 0.05,
    ratio: ArrayLike = 1.0,
    relative: bool = True,
) -> FloatArray:
    """MDE of a ratio metric with ``n`` control users (default: ``sums["n"]``),
    relative to the control value unless ``relative=False``."""
    arm = ratio_arm(sums)
    n = arm.n if n is None else n
    with errstate():
        mde = mde_normal(np.sqrt(arm.var * arm.n), n, power, alpha, ratio)
        return (mde / np.abs(arm.estimate) if relative else mde)[()]


def sample_size_ratio(
    sums: Sums,
    mde: ArrayLike,
    power: ArrayLike = 0.8,
    alpha: float = 0.05,
    ratio: ArrayLike = 1.0,
    relative: bool = True,
) -> FloatArray:
    """Control users needed to detect ``mde`` (relative lift by default) in a ratio metric."""
    arm = ratio_arm(sums)
    with errstate():
        delta = as_float(mde) * (np.abs(arm.estimate) if relative else 1.0)
        return sample_size_normal(delta, np.sqrt(arm.var * arm.n), power, alpha, ratio)
