"""Log-scale histograms: bucket midpoints within 1% of every value; merged quantiles within 1%."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from expkit.histogram import RELATIVE_ERROR, bucket_index, bucket_value, quantile_from_counts


@given(st.floats(min_value=0.01, max_value=1e7, allow_nan=False))
@settings(max_examples=300, deadline=None)
def test_midpoint_within_relative_error(x: float) -> None:
    v = float(bucket_value(bucket_index([x])[0]))
    assert abs(v / x - 1) <= RELATIVE_ERROR + 1e-12


def test_quantiles_of_merged_histograms_match_exact_quantiles() -> None:
    rng = np.random.default_rng(7)
    parts = [rng.lognormal(3, 0.8, 20_000) for _ in range(12)]  # e.g. 12 bins of one hour
    values = np.concatenate(parts)
    idx, counts = np.unique(np.concatenate([bucket_index(p) for p in parts]), return_counts=True)
    for q in (0.5, 0.95, 0.99):
        exact = np.quantile(values, q, method="inverted_cdf")  # the order statistic of rank ceil(qN)
        approx = float(quantile_from_counts(idx, counts, q))
        assert abs(approx / exact - 1) <= RELATIVE_ERROR


def test_empty_histogram_is_nan_not_zero() -> None:
    assert np.isnan(quantile_from_counts([], [], 0.95))
