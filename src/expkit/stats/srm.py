"""Sample ratio mismatch: are units split across arms as planned? (docs/statistics.md)

Pearson's χ² goodness-of-fit test of the observed units per arm against the
planned shares (``scipy.stats.chisquare``), any number of arms, vectorized over
rows (slices, days): ``observed_counts`` is ``(arms,)`` or ``(rows, arms)``.
A row is flagged when ``p < alpha`` (default 0.001) and, if
``max_deviation`` is given, also when an arm's relative deviation
``|observed share / planned share - 1|`` exceeds it (the seed's 10% alert).

>>> r = srm_test([5123, 4877], [0.5, 0.5])       # R: chisq.test(c(5123, 4877))
>>> round(float(r.statistic), 4), round(float(r.pvalue), 7), bool(r.flag)
(6.0516, 0.0138937, False)
>>> np.round(r.relative_deviation, 4)
array([0.0246, 0.0246])
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from expkit.shares import SHARE_SUM_TOLERANCE

from ._common import FloatArray, Reasons, Result, as_float, errstate

__all__ = ["SRMResult", "srm_test"]


@dataclasses.dataclass(frozen=True)
class SRMResult(Result):
    """Sample-ratio-mismatch test per row.

    Attributes:
        statistic: Pearson χ² statistic.
        df: degrees of freedom (arms - 1).
        pvalue: χ² upper-tail p-value.
        observed_share: per-arm share of units (same shape as the counts).
        expected: per-arm expected counts under the plan.
        relative_deviation: per-arm ``|observed / planned - 1|``.
        max_relative_deviation: the largest of those per row.
        flag: ``pvalue < alpha`` (or deviation above ``max_deviation``); False
            when the test is undefined.
        reason: "" or why the row's test is NaN.
    """

    statistic: FloatArray
    df: FloatArray
    pvalue: FloatArray
    observed_share: FloatArray
    expected: FloatArray
    relative_deviation: FloatArray
    max_relative_deviation: FloatArray
    flag: NDArray[np.bool_]
    reason: NDArray[np.object_]


def srm_test(
    observed_counts: ArrayLike,
    planned_shares: ArrayLike,
    alpha: float = 0.001,
    max_deviation: float | None = None,
) -> SRMResult:
    """χ² test of observed units per arm against planned shares (last axis = arms).

    ``planned_shares`` must be positive and sum to 1 along the arms axis within
    :data:`~expkit.shares.SHARE_SUM_TOLERANCE`, the tolerance of the parameters file (a
    ``ValueError`` otherwise: that is a configuration error, not a data state); they are
    normalized to sum to 1 exactly, so a split written as ``0.3333333`` three ways is tested
    as thirds.

    >>> r = srm_test([[3050, 2950, 4100], [0, 0, 0]], [0.3, 0.3, 0.4])
    >>> np.round(r.pvalue, 6), list(r.reason)
    (array([0.208533,      nan]), ['', 'no units'])
    """
    counts = np.atleast_1d(as_float(observed_counts))
    shares = np.atleast_1d(as_float(planned_shares))
    if np.any(~(shares > 0)) or np.any(np.abs(shares.sum(axis=-1) - 1) > SHARE_SUM_TOLERANCE):
        raise ValueError(f"planned shares must be positive and sum to 1, got {shares.tolist()}")
    shares = shares / shares.sum(axis=-1, keepdims=True)
    counts, shares = np.broadcast_arrays(counts, shares)
    row_shape = counts.shape[:-1]
    k = counts.shape[-1]
    reasons = Reasons(row_shape)
    reasons.add(np.isnan(counts).any(axis=-1), "missing input")
    reasons.add((counts < 0).any(axis=-1), "invalid counts (negative)")
    total = counts.sum(axis=-1)
    reasons.add(total == 0, "no units")
    reasons.add(np.full(row_shape, k < 2), "need at least 2 arms")
    ok = reasons.array == ""
    with errstate():
        expected = total[..., None] * shares
        observed_share = counts / total[..., None]
        deviation = np.abs(observed_share / shares - 1)
        stat = np.full(row_shape, np.nan)
        pvalue = np.full(row_shape, np.nan)
        if ok.any():
            res = stats.chisquare(counts[ok], expected[ok], axis=-1)
            stat[ok], pvalue[ok] = res.statistic, res.pvalue
    bad_rows = ~ok[..., None]
    deviation = np.where(bad_rows, np.nan, deviation)
    max_dev = np.where(ok, np.max(np.where(bad_rows, 0.0, deviation), axis=-1), np.nan)
    flag = ok & (pvalue < alpha)
    if max_deviation is not None:
        flag |= ok & (max_dev > max_deviation)
    return SRMResult.build(
        statistic=stat, df=np.full(row_shape, k - 1.0), pvalue=pvalue,
        observed_share=np.where(bad_rows, np.nan, observed_share),
        expected=expected, relative_deviation=deviation, max_relative_deviation=max_dev,
        flag=flag, reason=reasons.array,
    )
