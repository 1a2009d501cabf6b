"""Property tests: intervals contain their estimate, widen as alpha falls, and swapping
the arms mirrors the difference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as hs

import expkit.stats as st

SETTINGS = settings(max_examples=60, deadline=None)
TOL = 1e-12

counts = hs.integers(min_value=1, max_value=100_000).flatmap(
    lambda n: hs.tuples(hs.integers(min_value=0, max_value=n), hs.just(n)))
alphas = hs.floats(min_value=0.001, max_value=0.4)
methods = hs.sampled_from(sorted(st.PROPORTION_METHODS))


@hs.composite
def ratio_arm(draw):
    """Sums of a small explicit per-user dataset, so they are always consistent."""
    users = draw(hs.integers(min_value=2, max_value=30))
    den = np.array(draw(hs.lists(hs.integers(1, 50), min_size=users, max_size=users)), float)
    frac = np.array(draw(hs.lists(hs.floats(0, 1), min_size=users, max_size=users)))
    return st.ratio_sums(np.floor(den * frac), den)


@SETTINGS
@given(counts, methods, alphas, alphas)
def test_proportion_interval_contains_estimate_and_widens(xn, method, a1, a2):
    x, n = xn
    wide_alpha, narrow_alpha = min(a1, a2), max(a1, a2)
    low, high = st.proportion_interval(x, n, method, narrow_alpha)
    assert low - TOL <= x / n <= high + TOL
    wlow, whigh = st.proportion_interval(x, n, method, wide_alpha)
    assert wlow <= low + TOL and whigh >= high - TOL


@SETTINGS
@given(ratio_arm(), ratio_arm(), alphas, alphas)
def test_ratio_comparison_intervals_contain_and_widen(c, t, a1, a2):
    wide_alpha, narrow_alpha = min(a1, a2), max(a1, a2)
    r = st.compare_ratios(c, t, alpha=narrow_alpha, sequential=True)
    w = st.compare_ratios(c, t, alpha=wide_alpha, sequential=True)
    if r.reason == "" or np.isfinite(r.se):
        for lo, est, hi in [("diff_low", "diff", "diff_high"), ("seq_low", "diff", "seq_high"),
                            ("rel_low", "rel_lift", "rel_high"),
                            ("rel_low_fieller", "rel_lift", "rel_high_fieller")]:
            if np.isfinite(getattr(r, lo)):
                scale = TOL * (1 + abs(getattr(r, est)))
                assert getattr(r, lo) - scale <= getattr(r, est) <= getattr(r, hi) + scale
                if np.isfinite(getattr(w, lo)):
                    assert getattr(w, lo) <= getattr(r, lo) + scale
                    assert getattr(w, hi) >= getattr(r, hi) - scale
        # The always-valid interval is wider than the fixed-horizon one.
        assert r.seq_low <= r.diff_low + TOL and r.seq_high >= r.diff_high - TOL
        est = st.ratio_estimate(**c, alpha=narrow_alpha)
        if np.isfinite(est.low):
            assert est.low <= est.estimate <= est.high


@SETTINGS
@given(ratio_arm(), ratio_arm())
def test_swapping_ratio_arms_mirrors_the_difference(c, t):
    ab = st.compare_ratios(c, t, sequential=True)
    ba = st.compare_ratios(t, c, sequential=True)
    np.testing.assert_allclose(ba.diff, -ab.diff, atol=TOL)
    np.testing.assert_allclose([ba.diff_low, ba.diff_high], [-ab.diff_high, -ab.diff_low],
                               atol=1e-12)
    np.testing.assert_allclose([ba.seq_low, ba.seq_high], [-ab.seq_high, -ab.seq_low],
                               atol=1e-12)
    np.testing.assert_allclose([ba.pvalue, ba.seq_pvalue], [ab.pvalue, ab.seq_pvalue],
                               rtol=1e-9, atol=1e-15)


@SETTINGS
@given(counts, counts, alphas)
def test_swapping_proportion_arms_mirrors_the_difference(xc, xt, alpha):
    ab = st.compare_proportions(*xc, *xt, alpha=alpha)
    ba = st.compare_proportions(*xt, *xc, alpha=alpha)
    np.testing.assert_allclose(ba.diff, -ab.diff, atol=TOL)
    np.testing.assert_allclose([ba.diff_low, ba.diff_high], [-ab.diff_high, -ab.diff_low],
                               atol=1e-12)
    np.testing.assert_allclose(ba.pvalue, ab.pvalue, rtol=1e-9, atol=1e-15)


@SETTINGS
@given(hs.lists(hs.floats(0, 1), min_size=1, max_size=40),
       hs.sampled_from(sorted(st.ADJUST_METHODS)))
def test_adjusted_pvalues_are_valid_and_not_smaller(p, method):
    adj = st.adjust_pvalues(p, method)
    assert np.all(adj >= np.asarray(p) - TOL) and np.all(adj <= 1)


@SETTINGS
@given(
    rows=hs.lists(
        hs.lists(hs.one_of(hs.floats(-1e6, 1e6, allow_nan=False), hs.just(float("nan"))), min_size=1, max_size=30),
        min_size=1, max_size=8,
    ).filter(lambda r: len({len(x) for x in r}) == 1)
)
def test_anomaly_median_equals_numpy_nanmedian(rows) -> None:
    """The anomaly scores' sort-based median equals numpy's nanmedian exactly (NaN: missing)."""
    import warnings

    from expkit.stats.anomaly import _nanmedian_last

    a = np.array(rows, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns on an all-NaN row
        expected = np.nanmedian(a, axis=-1)
    np.testing.assert_array_equal(_nanmedian_last(a), expected)
