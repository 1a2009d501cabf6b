"""Guardrails: non-inferiority judgments and user-clustered quantiles (docs/statistics.md).

A guardrail metric (error rate, latency p95, coverage) must not get worse in a
treatment arm by more than a margin. :func:`judge_noninferiority` reads an
interval of the change (treatment versus control, absolute or relative, usually
the always-valid one so that a daily look never inflates errors) against the
margin on the harmful side:

* **pass**: the whole interval is on the safe side of the margin (the one-sided
  non-inferiority test at level ``alpha / 2`` of a two-sided ``1 - alpha``
  interval rejects "worse by at least the margin");
* **fail**: the whole interval is beyond the margin (worse by more than the
  margin, at the same level);
* **inconclusive**: otherwise, or when the interval is undefined (``reason``).

:func:`judge_guardrail` takes the interval from a
:class:`~expkit.stats.compare.Comparison`. Latency p95 per arm needs a
user-clustered interval for a quantile: :func:`quantile_arm` follows gbstats'
``QuantileClusteredStatistic`` (the i.i.d. order-statistic interval of the
quantile, widened by the design effect of the share of events at or below it,
a per-user ratio), and :func:`quantile_sums` computes its sufficient statistics
from per-event values.

>>> judge_noninferiority([-0.2, 0.03, 0.12], [0.05, 0.15, 0.3], margin=0.1,
...                      harm="increase").status.tolist()
['pass', 'inconclusive', 'fail']
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._common import FloatArray, Reasons, Result, Sums, as_float, errstate, quantile
from .compare import Comparison
from .intervals import Arm, ratio_arm

__all__ = [
    "GUARDRAIL_STATUSES",
    "GuardrailJudgment",
    "judge_noninferiority",
    "judge_guardrail",
    "quantile_arm",
    "quantile_sums",
    "QUANTILE_KEYS",
]

GUARDRAIL_STATUSES = ("pass", "fail", "inconclusive")
Harm = Literal["increase", "decrease"]

# Per arm: events, users, the sample quantile, its i.i.d. order-statistic bounds, and
# per-user sums of (events at or below the quantile, events): what a rollup carries.
QUANTILE_KEYS = (
    "n_events", "n", "nu", "quantile", "quantile_lower", "quantile_upper",
    "sum_below", "sum_below2", "sum_events", "sum_events2", "sum_below_events",
)


@dataclasses.dataclass(frozen=True)
class GuardrailJudgment(Result):
    """A non-inferiority judgment per slice.

    Attributes:
        status: ``"pass"``, ``"fail"`` or ``"inconclusive"``.
        low, high: the interval judged.
        margin: the tolerated change on the harmful side, signed as a change
            (``+m`` for ``harm="increase"``, ``-m`` for ``"decrease"``).
        reason: "" or why the interval is undefined (status ``inconclusive``).
    """

    status: NDArray[np.object_]
    low: FloatArray
    high: FloatArray
    margin: FloatArray
    reason: NDArray[np.object_]


def _check_harm(harm: str) -> None:
    if harm not in ("increase", "decrease"):
        raise ValueError(f"harm must be 'increase' or 'decrease', got {harm!r}")


def judge_noninferiority(
    low: ArrayLike,
    high: ArrayLike,
    margin: ArrayLike,
    harm: Harm = "increase",
) -> GuardrailJudgment:
    """Judge intervals of a change against a non-inferiority margin.

    ``low, high`` bound the change (treatment - control, or the relative lift);
    ``margin`` (>= 0) is the largest tolerated change in the harmful direction
    ``harm``: ``"increase"`` for error rate and latency, ``"decrease"`` for
    coverage. Vectorized over slices.

    >>> j = judge_noninferiority([0.001, -0.02], [0.004, -0.015], 0.01, harm="decrease")
    >>> j.status.tolist(), j.margin.tolist()
    (['pass', 'fail'], [-0.01, -0.01])
    """
    _check_harm(harm)
    lo, hi, m = np.broadcast_arrays(as_float(low), as_float(high), as_float(margin))
    reasons = Reasons(lo.shape)
    reasons.add(np.isnan(lo) | np.isnan(hi), "interval undefined")
    reasons.add(~(m >= 0), "margin must be a number >= 0")
    sign = 1.0 if harm == "increase" else -1.0
    # On the "increase is harm" scale: safe below +m, harmful above.
    worst, best = (hi, lo) if harm == "increase" else (-lo, -hi)
    with errstate():
        status = np.where(worst < m, "pass", np.where(best > m, "fail", "inconclusive"))
    status = np.where(reasons.array != "", "inconclusive", status).astype(object)
    return GuardrailJudgment.build(status=status, low=lo.copy(), high=hi.copy(), margin=sign * m,
                                   reason=reasons.array)


def judge_guardrail(
    comparison: Comparison,
    margin: ArrayLike,
    harm: Harm = "increase",
    relative: bool = False,
    sequential: bool = True,
) -> GuardrailJudgment:
    """Judge a comparison's interval: always-valid (``sequential``, the default; run
    the comparison with ``sequential=True``) or fixed-horizon, of the difference or
    (``relative=True``, margins like "at most +10%") of the relative lift."""
    if sequential:
        low, high = (comparison.seq_rel_low, comparison.seq_rel_high) if relative else (
            comparison.seq_low, comparison.seq_high)
    else:
        low, high = (comparison.rel_low, comparison.rel_high) if relative else (
            comparison.diff_low, comparison.diff_high)
    j = judge_noninferiority(low, high, margin, harm)
    reasons = Reasons(np.shape(j.status))
    reasons.merge(np.asarray(comparison.reason, dtype=object))
    reasons.merge(np.asarray(j.reason, dtype=object))
    return dataclasses.replace(j, reason=reasons.array[()] if reasons.array.ndim == 0 else reasons.array)


def quantile_arm(sums: Sums) -> Arm:
    """One arm's sample quantile with a user-clustered variance (gbstats' method).

    ``sums`` maps :data:`QUANTILE_KEYS`. With ``n_events`` events the i.i.d.
    variance of the quantile comes from the width of its order-statistic
    interval ``[quantile_lower, quantile_upper]`` (the sample quantiles at ranks
    ``nu ∓ z sqrt(nu (1 - nu) / n_events)``, ``z = z_{0.975}``):
    ``v_iid = ((upper - lower) / (2 z))² (n_events - 1) / n_events``. Events of
    one user are correlated, so it is multiplied by the design effect of the
    share of events at or below the quantile, ``Σbelow / Σevents`` over users:
    its delta-method variance over ``nu (1 - nu) / n_events``. The bounds are
    always the 95% ones (as gbstats); a comparison's ``alpha`` applies to the
    resulting variance.

    The arm's ``n`` is the number of users (the units of the always-valid
    sequence).
    """
    n_ev, nu = as_float(sums["n_events"]), as_float(sums["nu"])
    ratio = ratio_arm({"n": sums["n"], "sum_num": sums["sum_below"], "sum_den": sums["sum_events"],
                       "sum_num2": sums["sum_below2"], "sum_den2": sums["sum_events2"],
                       "sum_numden": sums["sum_below_events"]})
    q, lo, hi = (as_float(sums[k]) for k in ("quantile", "quantile_lower", "quantile_upper"))
    shape = np.broadcast_shapes(n_ev.shape, q.shape, np.shape(ratio.var))
    reasons = Reasons(shape)
    z = quantile(0.975)
    with errstate():
        reasons.add(~(n_ev > z * z * np.maximum(nu / (1 - nu), (1 - nu) / nu)),
                    "too few events for the quantile's interval")
        reasons.merge(np.asarray(ratio.reason, dtype=object), "share below quantile: ")
        reasons.add(~(hi > lo), "quantile interval has zero width")
        v_iid = ((hi - lo) / (2 * z)) ** 2 * (n_ev - 1) / n_ev
        deff = ratio.var / (nu * (1 - nu) / n_ev)
        var = np.where(reasons.array != "", np.nan, v_iid * deff)
        est = np.where(reasons.array != "", np.nan, q)
    return Arm(np.broadcast_to(est, shape).astype(float), np.broadcast_to(var, shape).astype(float),
               np.broadcast_to(as_float(sums["n"]), shape).astype(float), np.full(shape, np.inf),
               reasons.array)


def quantile_sums(
    values: ArrayLike, users: ArrayLike, nu: float = 0.95, axis: int = -1
) -> dict[str, FloatArray]:
    """The sufficient statistics of :func:`quantile_arm` from per-event values.

    ``values`` are events (e.g. request latencies) along ``axis``, NaN for padding;
    ``users`` the same (or a broadcastable) shape, the integer id of each event's
    user (0..U-1 within a slice). Quantiles are numpy's default (linear) sample quantiles.

    >>> s = quantile_sums([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10], [0, 0, 1, 1, 2, 2, 3, 3, 4, 4], nu=0.5)
    >>> float(s["quantile"]), float(s["sum_below"]), float(s["n"])
    (5.5, 5.0, 5.0)
    """
    x = np.moveaxis(as_float(values), axis, -1)
    u = np.broadcast_to(np.moveaxis(np.asarray(users), axis, -1), x.shape)
    valid = ~np.isnan(x)
    n_ev = valid.sum(axis=-1).astype(float)
    ordered = np.sort(x, axis=-1)  # NaN padding sorts last
    z = float(quantile(0.975))
    with errstate():
        half = z * np.sqrt(nu * (1 - nu) / n_ev)
        q = _sorted_quantile(ordered, n_ev, np.full(n_ev.shape, nu))
        lo = _sorted_quantile(ordered, n_ev, np.clip(nu - half, 0, 1))
        hi = _sorted_quantile(ordered, n_ev, np.clip(nu + half, 0, 1))
    below = valid & (x <= q[..., None])
    n_users = int(u[valid].max()) + 1 if valid.any() else 0
    flat = x.reshape(-1, x.shape[-1])
    ids = u.reshape(flat.shape)
    ok = valid.reshape(flat.shape)
    bel = below.reshape(flat.shape)
    rows = np.repeat(np.arange(flat.shape[0]), flat.shape[1]).reshape(flat.shape)
    ev = np.zeros((flat.shape[0], n_users))
    bw = np.zeros((flat.shape[0], n_users))
    np.add.at(ev, (rows[ok], ids[ok]), 1.0)
    np.add.at(bw, (rows[ok], ids[ok]), bel[ok].astype(float))
    has = ev > 0
    shape = x.shape[:-1]

    def total(v: FloatArray) -> FloatArray:
        return np.asarray(v.sum(axis=1).reshape(shape), dtype=float)

    return {
        "n_events": n_ev, "n": np.asarray(has.sum(axis=1).reshape(shape), dtype=float),
        "nu": np.full(shape, float(nu)), "quantile": np.asarray(q, dtype=float),
        "quantile_lower": lo, "quantile_upper": hi,
        "sum_below": total(bw), "sum_below2": total(bw * bw), "sum_events": total(ev),
        "sum_events2": total(ev * ev), "sum_below_events": total(bw * ev),
    }


def _sorted_quantile(ordered: FloatArray, n: FloatArray, p: FloatArray) -> FloatArray:
    """Row-wise linear-interpolation quantile (numpy's default) of the first ``n``
    values of each sorted row; NaN for empty rows."""
    h = np.where(n > 0, (n - 1) * p, 0.0)
    i = np.floor(h).astype(np.intp)
    j = np.minimum(i + 1, np.maximum(n.astype(np.intp) - 1, 0))
    a = np.take_along_axis(ordered, i[..., None], axis=-1)[..., 0]
    b = np.take_along_axis(ordered, j[..., None], axis=-1)[..., 0]
    out: FloatArray = np.where(n > 0, a + (h - i) * (b - a), np.nan)
    return out
