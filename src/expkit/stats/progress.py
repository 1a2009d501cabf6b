"""Progress of an experiment towards the sample it needs (docs/statistics.md, "Progress").

The users per arm needed to detect a relative minimum detectable effect ``mde``
of the primary metric with the given power (two-sided normal test, as
:func:`expkit.stats.power.sample_size_normal`) follow from the **observed**
per-user variance of the metric:

    ``n = (z_{1-α/2} + z_{power})² · 2 σ² / (mde · |control|)²``,

where ``σ²`` is the per-user variance of the metric's estimate (for a ratio
metric, of its per-user linearisation; CUPED-adjusted when the comparison was),
averaged over the two arms: ``σ² = (v_c n_c + v_t n_t) / 2`` from the
comparison's per-arm standard errors. Progress is the smaller arm's users over
``n``, and the days remaining are what is left at the observed rate of new users
(users so far over days run, per arm).

>>> from expkit.stats.intervals import Arm
>>> import numpy as np
>>> arm = Arm(np.array(0.05), np.array(0.04**2 / 2000), np.array(2000.0), np.array(np.inf),
...           np.array("", dtype=object))
>>> from expkit.stats.compare import compare_arms
>>> p = progress(compare_arms(arm, arm), 2000, 2000, days_run=4, mde=0.03)
>>> round(float(p.required_per_arm), 1), round(float(p.fraction), 3), float(p.days_remaining)  # statsmodels: 11162.8
(11162.9, 0.179, 19.0)
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._common import FloatArray, Reasons, Result, as_float, errstate
from .compare import Comparison
from .power import sample_size_normal

__all__ = ["Progress", "progress", "required_users"]


@dataclasses.dataclass(frozen=True)
class Progress(Result):
    """Progress per slice.

    Attributes:
        required_per_arm: users per arm needed (not rounded).
        users_per_arm: users so far in the smaller arm.
        fraction: ``users_per_arm / required_per_arm`` (may exceed 1).
        users_per_day: observed rate of new users per arm (smaller arm).
        days_remaining: whole days until ``required_per_arm`` at that rate (0 when reached).
        reason: "" or why fields are NaN.
    """

    required_per_arm: FloatArray
    users_per_arm: FloatArray
    fraction: FloatArray
    users_per_day: FloatArray
    days_remaining: FloatArray
    reason: NDArray[np.object_]


def required_users(
    unit_var: ArrayLike,
    baseline: ArrayLike,
    mde: ArrayLike = 0.05,
    power: ArrayLike = 0.8,
    alpha: float = 0.05,
) -> FloatArray:
    """Users per arm to detect a relative change ``mde`` of ``baseline`` given the
    per-user variance ``unit_var`` of the metric (equal arms).

    >>> round(float(required_users(0.5**2, 2.0, mde=0.05)), 3)   # 2 (z_.975 + z_.8)² .25 / .1²
    392.444
    """
    with errstate():
        delta = as_float(mde) * np.abs(as_float(baseline))
        return sample_size_normal(delta, np.sqrt(as_float(unit_var)), power, alpha)


def progress(
    comparison: Comparison,
    n_control: ArrayLike,
    n_treatment: ArrayLike,
    days_run: ArrayLike,
    mde: ArrayLike = 0.05,
    power: ArrayLike = 0.8,
    alpha: float = 0.05,
    users_per_day: ArrayLike | None = None,
) -> Progress:
    """Required users per arm, fraction reached and days remaining for a comparison.

    ``n_control``/``n_treatment`` are the users so far, ``days_run`` the days of
    data behind them; ``users_per_day`` overrides the observed rate of new users
    per arm (default: the smaller arm's users over ``days_run``).
    """
    nc, nt, days = as_float(n_control), as_float(n_treatment), as_float(days_run)
    with errstate():
        unit_var = (np.asarray(comparison.control_se) ** 2 * nc
                    + np.asarray(comparison.treatment_se) ** 2 * nt) / 2
        required = required_users(unit_var, comparison.control, mde, power, alpha)
        users = np.minimum(nc, nt)
        rate = np.where(days > 0, users / days, np.nan) if users_per_day is None else as_float(users_per_day)
        shape = np.broadcast_shapes(np.shape(required), users.shape, np.shape(rate))
        reasons = Reasons(shape)
        reasons.merge(np.broadcast_to(np.asarray(comparison.reason, dtype=object), shape))
        reasons.add(~np.isfinite(required), "required sample undefined (no variance or zero baseline)")
        fraction = users / required
        left = np.maximum(required - users, 0.0)
        reasons.add((left > 0) & ~(rate > 0) & np.isfinite(required), "no new users per day observed")
        remaining = np.where(left > 0, np.ceil(left / rate), 0.0)
        remaining = np.where(np.isfinite(required) & ((left == 0) | (rate > 0)), remaining, np.nan)

    def full(x: ArrayLike) -> FloatArray:
        return np.array(np.broadcast_to(x, shape), dtype=float)

    return Progress.build(required_per_arm=full(required), users_per_arm=full(users),
                          fraction=full(fraction), users_per_day=full(rate),
                          days_remaining=full(remaining), reason=reasons.array)
