"""Mergeable log-scale histograms for latency and ingest delay (docs/metrics.md, "Health metrics").

Values are counted in buckets whose bounds grow geometrically by ``GAMMA = (1 + a)/(1 - a)``
with ``a = RELATIVE_ERROR`` (1%): bucket ``i`` holds values in ``(GAMMA**(i-1), GAMMA**i]``.
Reporting the bucket's midpoint ``2 GAMMA**i / (GAMMA + 1)`` is within ``a`` of any value in it
(the DDSketch construction), so a quantile read from a histogram is within 1% of the exact
order statistic it stands for. Histograms of bins, slices and days merge by adding counts.

>>> idx = bucket_index([10.0, 100.0])
>>> bool(abs(bucket_value(idx[0]) / 10.0 - 1) <= RELATIVE_ERROR)
True
>>> round(float(quantile_from_counts(idx, [1, 1], 0.5)), 2)  # the median's bucket midpoint
10.07
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

RELATIVE_ERROR = 0.01
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
LN_GAMMA = math.log(GAMMA)
MIN_VALUE = 0.01
"""Values below this (ms) share the lowest bucket."""


def bucket_index(values: ArrayLike) -> np.ndarray:
    """Bucket index of each value (the same formula as the rollup SQL)."""
    v = np.maximum(np.asarray(values, dtype=float), MIN_VALUE)
    return np.ceil(np.log(v) / LN_GAMMA).astype(np.int64)


def bucket_value(idx: ArrayLike) -> np.ndarray:
    """Representative value (midpoint) of buckets ``idx``: within 1% of every value they hold."""
    return 2.0 * GAMMA ** np.asarray(idx, dtype=float) / (GAMMA + 1.0)


def quantile_from_counts(idx: ArrayLike, counts: ArrayLike, q: float | ArrayLike) -> np.ndarray:
    """Quantile(s) ``q`` of a histogram given as bucket indexes and counts.

    Returns the value of the order statistic of rank ``ceil(q * N)`` (the "inverted CDF"
    definition, as numpy's ``method="inverted_cdf"``), NaN for an empty histogram.
    """
    idx = np.asarray(idx)
    counts = np.asarray(counts, dtype=float)
    qs = np.atleast_1d(np.asarray(q, dtype=float))
    total = counts.sum()
    if total <= 0:
        return np.full(qs.shape, np.nan) if np.ndim(q) else np.float64(np.nan)
    order = np.argsort(idx, kind="stable")
    idx, counts = idx[order], counts[order]
    cum = np.cumsum(counts)
    ranks = np.maximum(np.ceil(qs * total), 1)
    pos = np.searchsorted(cum, ranks, side="left")
    out = bucket_value(idx[np.minimum(pos, len(idx) - 1)])
    return out if np.ndim(q) else out[0]
