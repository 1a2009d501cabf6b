"""Always-valid inference: asymptotic confidence sequences with normal mixing (docs/statistics.md).

Stakeholders look at the lift every day; a fixed-horizon 95% interval checked
daily is wrong far more than 5% of the time. The asymptotic confidence sequence
of Waudby-Smith, Wu, Ramdas, Karampatziakis & Mineiro ("Time-uniform central
limit theory and asymptotic confidence sequences", arXiv:2103.06476, eq. 9 and
the optimal mixing of its appendix B, eq. 161), as GrowthBook implements it, is valid at
every look simultaneously (Howard et al. 2021 for the normal-mixture boundary).

With ``N`` observations in total (both arms), the estimate's variance ``v`` and
its per-observation variance ``s² = v N``, the half-width is

    ``sqrt(s² · 2(Nρ² + 1) / (N²ρ²) · log(sqrt(Nρ² + 1) / α))``,
    ``ρ² = (-2 log α + log(1 - 2 log α)) / N*``,

where the tuning parameter ``N*`` (``tuning_n``) is the sample size at which the
sequence is tightest. The always-valid p-value is the smallest ``α'`` (with ρ
fixed at its value for ``α``) at which the sequence excludes the null:

    ``p = min(1, sqrt(Nρ² + 1) · exp(-z² Nρ² / (2(Nρ² + 1))))``, ``z² = (θ̂ - θ0)² / v``.

>>> low, high = confidence_sequence(0.005, 4.97375e-06, 40000, alpha=0.05, tuning_n=5000)
>>> round(float(low), 7), round(float(high), 7)
(-0.0021637, 0.0121637)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._common import FloatArray, as_float, errstate

__all__ = ["mixing_rho2", "confidence_sequence", "sequential_pvalue"]


def mixing_rho2(alpha: float = 0.05, tuning_n: ArrayLike = 5000) -> FloatArray:
    """Variance ``ρ²`` of the normal mixture, tuned to be tightest at ``tuning_n``.

    >>> round(float(mixing_rho2(0.05, 5000)), 10)
    0.0015872309
    """
    la = np.log(alpha)
    rho2: FloatArray = (-2 * la + np.log(1 - 2 * la)) / as_float(tuning_n)
    return rho2


def confidence_sequence(
    estimate: ArrayLike,
    variance: ArrayLike,
    n: ArrayLike,
    alpha: float = 0.05,
    tuning_n: ArrayLike = 5000,
) -> tuple[FloatArray, FloatArray]:
    """``(low, high)`` of the always-valid ``1 - alpha`` confidence sequence.

    ``variance`` is the variance of ``estimate`` (e.g. ``se²`` of a difference)
    and ``n`` the number of observations behind it (users in both arms).
    """
    half = _half_width(as_float(variance), as_float(n), alpha, tuning_n)
    est = as_float(estimate)
    return est - half, est + half


def _half_width(variance: FloatArray, n: FloatArray, alpha: float, tuning_n: ArrayLike) -> FloatArray:
    with errstate():
        nr2 = n * mixing_rho2(alpha, tuning_n)
        return np.sqrt(variance * 2 * (nr2 + 1) / nr2 * np.log(np.sqrt(nr2 + 1) / alpha))


def sequential_pvalue(
    estimate: ArrayLike,
    variance: ArrayLike,
    n: ArrayLike,
    alpha: float = 0.05,
    tuning_n: ArrayLike = 5000,
    null: ArrayLike = 0.0,
) -> FloatArray:
    """Always-valid p-value for ``estimate == null``; ``p <= alpha`` exactly when
    :func:`confidence_sequence` excludes ``null``.

    >>> round(float(sequential_pvalue(0.005, 4.97375e-06, 40000)), 6)
    0.676398
    """
    with errstate():
        nr2 = as_float(n) * mixing_rho2(alpha, tuning_n)
        z2 = (as_float(estimate) - as_float(null)) ** 2 / as_float(variance)
        p: FloatArray = np.minimum(np.sqrt(nr2 + 1) * np.exp(-z2 * nr2 / (2 * (nr2 + 1))), 1.0)
        return p
