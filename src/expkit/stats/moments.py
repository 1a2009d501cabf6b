"""Sufficient statistics: from raw sums to centred moments, stably.

The rollups return, per arm and slice, ``n`` (units, i.e. users) and the sums
``Σa, Σb, Σa², Σb², Σab`` of one or two per-user values (numerator and
denominator of a ratio metric, or an outcome and its pre-period covariate).
Everything in :mod:`expkit.stats` starts from the centred moments

    ``M_aa = Σ(a - ā)²``, ``M_bb = Σ(b - b̄)²``, ``M_ab = Σ(a - ā)(b - b̄)``

computed here. ``M_aa = Σa² - (Σa)²/n`` cancels catastrophically when the values
sit on a large offset (timestamps, 1e9 + small noise), so:

* integer sums (``int64``, Python ints, ``Decimal`` or ``Fraction`` in object
  arrays; DuckDB returns exact ``HUGEINT``/``DECIMAL`` sums) are centred in exact
  arithmetic wherever float64 would lose digits;
* float sums may be taken around a shift ``K`` close to the data (keys
  ``shift_num``, ``shift_den``, ``shift_y``, ``shift_x``: the sums are then of
  ``a - K``), the classic shifted-data algorithm (Chan, Golub & LeVeque 1983);
* partial aggregates are merged with :func:`combine_moments` (Chan et al.'s
  pairwise update), never by adding raw squares of large values;
* float sums whose centred moment cannot be resolved to ~6 digits become NaN with
  a reason instead of a silently wrong variance.

>>> y = np.array([1e9 + 0.5, 1e9 - 0.25, 1e9 + 1.0, 1e9])
>>> naive = (y**2).sum() - y.sum() ** 2 / 4   # float64 cancels to garbage
>>> m = moments_from_sums(mean_sums(y, shift_y=1e9), "y")
>>> float(m.m2_a), float(((y - y.mean()) ** 2).sum())
(0.921875, 0.921875)
>>> ints = [10**9 + 3, 10**9 - 2, 10**9 + 1]       # exact integer sums also work
>>> s = {"n": 3, "sum_y": sum(ints), "sum_y2": sum(v * v for v in ints)}
>>> float(moments_from_sums(s, "y").m2_a)
12.666666666666666
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._common import FloatArray, Reasons, Result, Sums, as_float, errstate

__all__ = ["Moments", "moments_from_sums", "combine_moments", "ratio_sums", "mean_sums"]

# A centred moment must exceed its float64 rounding bound by this factor (6 digits).
_RESOLUTION = 1e6
# Rounding bound of ``Σab - ΣaΣb/n`` relative to its terms; generous, so that sums
# accumulated in float64 by an engine (error ~ log n ulps) are covered too.
_ROUNDING = 64 * np.finfo(np.float64).eps
PRECISION_REASON = (
    "variance lost to float64 cancellation (large offset): pass exact integer sums "
    "or sums around a shift (shift_* keys)"
)


@dataclasses.dataclass(frozen=True)
class Moments(Result):
    """Centred moments of one or two per-unit variables, per slice.

    Attributes:
        n: number of units (users).
        mean_a, mean_b: means of the variables (``mean_b`` NaN when absent).
        m2_a, m2_b: centred sums of squares ``Σ(a - ā)²``, ``Σ(b - b̄)²``.
        c_ab: centred sum of cross-products ``Σ(a - ā)(b - b̄)``.
        reason: "" or why a moment is NaN.
    """

    n: FloatArray
    mean_a: FloatArray
    mean_b: FloatArray
    m2_a: FloatArray
    m2_b: FloatArray
    c_ab: FloatArray
    reason: NDArray[np.object_]


def _exact_scalar(v: Any) -> int | Fraction:
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, np.floating):
        # Exact for float32 and longdouble too, which Fraction() itself refuses.
        return Fraction(*v.as_integer_ratio())
    return Fraction(v)  # float, Decimal, str


def _is_exact(raw: NDArray[Any], count: bool = False) -> bool:
    """Integer/object sums are exact; a float count is too if it holds whole numbers."""
    if raw.dtype.kind in "iuO":
        return True
    if count and raw.dtype.kind == "f":
        with errstate():
            return bool(np.all((raw == np.round(raw)) & (np.abs(raw) < 2.0**53)))
    return False


def _centred(
    n_raw: NDArray[Any],
    a_raw: NDArray[Any],
    b_raw: NDArray[Any],
    ab_raw: NDArray[Any],
    scale: FloatArray | None = None,
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """``Σab - ΣaΣb/n`` and a mask of slices where float64 could not resolve it.

    ``scale`` is the size the result must be accurate against (``sqrt(M_aa M_bb)``
    for a cross moment); by default the result itself.
    """
    n, sa, sb, sab = (as_float(v) for v in (n_raw, a_raw, b_raw, ab_raw))
    with errstate():
        mean_term = sa * (sb / n)
        c = sab - mean_term
        bound = _ROUNDING * (np.abs(sab) + np.abs(mean_term))
        size = np.abs(c) if scale is None else scale
        unresolved = np.asarray((size < _RESOLUTION * bound) & (n > 0))
    if not (_is_exact(n_raw, count=True) and all(_is_exact(r) for r in (a_raw, b_raw, ab_raw))):
        # Float sums: an exact zero is taken as constant data, not as lost digits.
        return c, unresolved & (size != 0)
    if unresolved.any():
        shape = unresolved.shape
        picked = [np.broadcast_to(r, shape)[unresolved] for r in (n_raw, a_raw, b_raw, ab_raw)]
        exact = [
            float(
                (_exact_scalar(nn) * _exact_scalar(ab) - _exact_scalar(a) * _exact_scalar(b))
                / _exact_scalar(nn)
            )
            for nn, a, b, ab in zip(*picked, strict=True)
        ]
        c = np.array(np.broadcast_to(c, shape), dtype=float)
        c[unresolved] = exact
        unresolved = np.zeros(shape, dtype=bool)
    return c, unresolved


def moments_from_sums(sums: Sums, a: str, b: str | None = None, cross: str | None = None) -> Moments:
    """Centred moments of variable ``a`` (and ``b``) from a mapping of sums.

    Keys read: ``n``, ``sum_<a>``, ``sum_<a>2``, optional ``shift_<a>``, and for
    ``b`` also ``sum_<b>``, ``sum_<b>2``, ``shift_<b>`` and the cross sum ``cross``
    (default ``sum_<a><b>``, e.g. ``sum_numden``; pass ``"sum_xy"`` for CUPED).

    >>> m = moments_from_sums(ratio_sums([1, 0, 2], [4, 2, 5]), "num", "den")
    >>> [round(float(v), 6) for v in (m.mean_a, m.mean_b, m.m2_a, m.m2_b, m.c_ab)]
    [1.0, 3.666667, 2.0, 4.666667, 3.0]
    """
    raw = {k: np.asarray(v) for k, v in sums.items()}
    keys = ["n", f"sum_{a}", f"sum_{a}2"]
    cross_key = cross or f"sum_{a}{b}"
    if b is not None:
        keys += [f"sum_{b}", f"sum_{b}2", cross_key]
    missing = [k for k in keys if k not in raw]
    if missing:
        raise KeyError(f"sums mapping lacks {missing}; it has {sorted(raw)}")
    shape = np.broadcast_shapes(*(raw[k].shape for k in keys))
    n = as_float(raw["n"])
    reasons = Reasons(shape)
    with errstate():
        m2_a, bad_a = _centred(raw["n"], raw[f"sum_{a}"], raw[f"sum_{a}"], raw[f"sum_{a}2"])
        mean_a = as_float(raw.get(f"shift_{a}", 0.0)) + as_float(raw[f"sum_{a}"]) / n
        bad_b: NDArray[np.bool_] | bool
        bad_ab: NDArray[np.bool_] | bool
        if b is None:
            nan = np.full(shape, np.nan)
            mean_b, m2_b, c_ab, bad_b, bad_ab = nan, nan, nan, False, False
        else:
            m2_b, bad_b = _centred(raw["n"], raw[f"sum_{b}"], raw[f"sum_{b}"], raw[f"sum_{b}2"])
            limit = np.sqrt(np.maximum(m2_a, 0) * np.maximum(m2_b, 0))
            c_ab, bad_ab = _centred(
                raw["n"], raw[f"sum_{a}"], raw[f"sum_{b}"], raw[cross_key], scale=limit
            )
            mean_b = as_float(raw.get(f"shift_{b}", 0.0)) + as_float(raw[f"sum_{b}"]) / n
            # Cauchy-Schwarz: with a constant variable the cross moment is exactly 0.
            c_ab = np.clip(c_ab, -limit, limit)
        m2_a, m2_b = np.maximum(m2_a, 0.0), np.maximum(m2_b, 0.0)
    lost = np.asarray(bad_a) | bad_b | bad_ab
    reasons.add(lost, PRECISION_REASON)
    m2_a, m2_b, c_ab = (np.where(lost, np.nan, v) for v in (m2_a, m2_b, c_ab))
    return Moments.build(
        n=np.broadcast_to(n, shape).astype(float),
        mean_a=np.broadcast_to(mean_a, shape).astype(float),
        mean_b=np.broadcast_to(mean_b, shape).astype(float),
        m2_a=np.broadcast_to(m2_a, shape).astype(float),
        m2_b=np.broadcast_to(m2_b, shape).astype(float),
        c_ab=np.broadcast_to(c_ab, shape).astype(float),
        reason=reasons.array,
    )


def combine_moments(first: Moments, second: Moments) -> Moments:
    """Merge the moments of two disjoint groups (Chan, Golub & LeVeque's update).

    Use it to pool arms or to add up partial aggregates (days, partitions) without
    adding raw squares of large values.

    >>> x = np.array([3.0, 5.0, 1e9, 1e9 + 2])
    >>> parts = [moments_from_sums(mean_sums(x[:2]), "y"),
    ...          moments_from_sums(mean_sums(x[2:], shift_y=1e9), "y")]
    >>> both = combine_moments(*parts)
    >>> float(both.m2_a) == float(((x - x.mean()) ** 2).sum())
    True
    """
    with errstate():
        n = first.n + second.n
        w = first.n * second.n / n
        d_a = np.asarray(second.mean_a) - first.mean_a
        d_b = np.asarray(second.mean_b) - first.mean_b
        reasons = Reasons(np.shape(n))
        reasons.merge(np.asarray(first.reason, dtype=object))
        reasons.merge(np.asarray(second.reason, dtype=object))
        return Moments.build(
            n=np.asarray(n, dtype=float),
            mean_a=np.asarray(first.mean_a + d_a * second.n / n),
            mean_b=np.asarray(first.mean_b + d_b * second.n / n),
            m2_a=np.asarray(first.m2_a + second.m2_a + d_a * d_a * w),
            m2_b=np.asarray(first.m2_b + second.m2_b + d_b * d_b * w),
            c_ab=np.asarray(first.c_ab + second.c_ab + d_a * d_b * w),
            reason=reasons.array,
        )


def ratio_sums(
    num: ArrayLike,
    den: ArrayLike,
    axis: int = -1,
    pre_num: ArrayLike | None = None,
    pre_den: ArrayLike | None = None,
) -> dict[str, FloatArray]:
    """The ratio-metric sums of per-user ``num`` and ``den`` along ``axis``.

    With ``pre_num``/``pre_den`` (the same users' pre-period numerator and
    denominator; 0 for users without history) the CUPED covariate sums are added
    too (:data:`expkit.stats.cuped.RATIO_COVARIATE_KEYS`).
    Handy in notebooks and tests; the engines compute the same in SQL.

    >>> s = ratio_sums([1, 0, 2], [4, 2, 5])
    >>> {k: float(v) for k, v in s.items()}
    {'n': 3.0, 'sum_num': 3.0, 'sum_den': 11.0, 'sum_num2': 5.0, 'sum_den2': 45.0, 'sum_numden': 14.0}
    >>> sorted(ratio_sums([1, 0], [4, 2], pre_num=[1, 1], pre_den=[3, 2]))[:4]
    ['n', 'sum_den', 'sum_den2', 'sum_den_pre_den']
    """
    num, den = np.broadcast_arrays(as_float(num), as_float(den))
    sum_num = num.sum(axis=axis)
    out = {
        "n": np.full(np.shape(sum_num), float(num.shape[axis] if num.ndim else 1)),
        "sum_num": sum_num,
        "sum_den": den.sum(axis=axis),
        "sum_num2": (num * num).sum(axis=axis),
        "sum_den2": (den * den).sum(axis=axis),
        "sum_numden": (num * den).sum(axis=axis),
    }
    if pre_num is not None or pre_den is not None:
        p, q = (np.broadcast_to(as_float(0.0 if v is None else v), num.shape) for v in (pre_num, pre_den))
        out.update(
            sum_pre_num=p.sum(axis=axis), sum_pre_den=q.sum(axis=axis),
            sum_pre_num2=(p * p).sum(axis=axis), sum_pre_den2=(q * q).sum(axis=axis),
            sum_pre_numden=(p * q).sum(axis=axis), sum_num_pre_num=(num * p).sum(axis=axis),
            sum_num_pre_den=(num * q).sum(axis=axis), sum_den_pre_num=(den * p).sum(axis=axis),
            sum_den_pre_den=(den * q).sum(axis=axis),
        )
    return out


def mean_sums(
    y: ArrayLike,
    x: ArrayLike | None = None,
    axis: int = -1,
    shift_y: float | None = None,
    shift_x: float | None = None,
) -> dict[str, FloatArray]:
    """The mean-metric sums of per-user ``y`` (and covariate ``x``) along ``axis``.

    With ``shift_y``/``shift_x`` the sums are of ``y - shift_y``/``x - shift_x``
    and the shifts are recorded in the mapping (stable for large offsets).

    >>> {k: float(v) for k, v in mean_sums([1.0, 2.0, 4.0]).items()}
    {'n': 3.0, 'sum_y': 7.0, 'sum_y2': 21.0}
    """
    yv = as_float(y) - (shift_y or 0.0)
    sum_y = yv.sum(axis=axis)
    out: dict[str, FloatArray] = {
        "n": np.full(np.shape(sum_y), float(yv.shape[axis] if yv.ndim else 1)),
        "sum_y": sum_y,
        "sum_y2": (yv * yv).sum(axis=axis),
    }
    if shift_y is not None:
        out["shift_y"] = np.asarray(shift_y, dtype=float)
    if x is not None:
        xv = as_float(x) - (shift_x or 0.0)
        out.update(sum_x=xv.sum(axis=axis), sum_x2=(xv * xv).sum(axis=axis),
                   sum_xy=(xv * yv).sum(axis=axis))
        if shift_x is not None:
            out["shift_x"] = np.asarray(shift_x, dtype=float)
    return out
