"""CUPED: variance reduction with a pre-period covariate (Deng, Xu, Kohavi & Walker 2013).

Each user's outcome ``y`` is replaced by ``y - θ (x - x̄)`` where ``x`` is the same
user's pre-period value and ``θ = Cov(y, x) / Var(x)`` is estimated once from
both arms pooled into one sample (so both arms get the same θ and the
difference stays unbiased; pooling across arms costs nothing because ``x`` is
measured before exposure). θ is treated as fixed in the variance, the usual
large-sample approximation. :func:`expkit.stats.compare_means` with
``covariate=True`` uses it.

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
from .moments import Moments, combine_moments, moments_from_sums

__all__ = ["CupedFit", "cuped_theta"]


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
