"""One statistic per claim: each relative interval has the p-value of its own test.

``rel_pvalue`` is the test behind ``rel_low, rel_high`` and ``seq_rel_pvalue`` the
always-valid test behind ``seq_rel_low, seq_rel_high``: over thousands of random
comparisons "the interval excludes 0" and "p < alpha" never disagree, while the
p-value of the absolute difference does disagree with the relative interval.
References: GrowthBook's gbstats 0.8.0 (``TwoSidedTTest`` and
``SequentialTwoSidedTTest`` with ``difference_type="relative"``, the relative
delta-method test).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

import expkit.stats as st


def _gbstats():
    """gbstats' statistics and frequentist tests (installed by `make venv`)."""
    stats = pytest.importorskip("gbstats.models.statistics", reason="gbstats not installed (make venv)")
    tests = pytest.importorskip("gbstats.frequentist.tests", reason="gbstats not installed (make venv)")
    return stats, tests

REPS = 2500


@pytest.fixture(scope="module")
def random_comparisons():
    """Random ratio comparisons spread around the significance boundary: per
    replication a random user count, baseline CTR and true lift (seeded)."""
    rng = np.random.default_rng(170)
    users = 60
    ctr = rng.uniform(0.02, 0.3, size=(REPS, 1))
    lift = rng.normal(0.0, 0.25, size=(REPS, 1))
    arms = []
    for factor in (1.0, 1.0 + lift):
        imps = rng.poisson(rng.gamma(1.0, 15.0, size=(REPS, users))).astype(float)
        p = np.clip(rng.beta(2.0, 2.0 / ctr - 2.0) * factor, 0.0, 1.0)
        clicks = rng.binomial(imps.astype(np.int64), p).astype(float)
        arms.append(st.ratio_sums(clicks, imps, axis=1))
    return arms


def _excludes_zero(low, high):
    return (low > 0) | (high < 0)


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_fixed_horizon_relative_interval_and_rel_pvalue_agree(random_comparisons, alpha):
    r = st.compare_ratios(*random_comparisons, alpha=alpha)
    ok = np.isfinite(r.rel_pvalue)
    assert ok.sum() >= 2000
    excluded = _excludes_zero(r.rel_low, r.rel_high)[ok]
    significant = (r.rel_pvalue < alpha)[ok]
    assert int(np.sum(excluded != significant)) == 0
    assert 0.1 < significant.mean() < 0.9  # both outcomes are well represented
    # The absolute difference's p-value, shown beside the relative interval, disagrees.
    assert int(np.sum(excluded != (r.pvalue < alpha)[ok])) > 0


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_always_valid_relative_interval_and_seq_rel_pvalue_agree(random_comparisons, alpha):
    r = st.compare_ratios(*random_comparisons, alpha=alpha, sequential=True, tuning_n=100)
    ok = np.isfinite(r.seq_rel_pvalue)
    assert ok.sum() >= 2000
    excluded = _excludes_zero(r.seq_rel_low, r.seq_rel_high)[ok]
    significant = (r.seq_rel_pvalue < alpha)[ok]
    assert int(np.sum(excluded != significant)) == 0
    assert 0.05 < significant.mean() < 0.95
    assert int(np.sum(excluded != (r.seq_pvalue < alpha)[ok])) > 0


def test_rel_pvalue_fields_are_nan_without_sequential():
    r = st.compare_ratios(st.ratio_sums([0, 1, 2], [5, 6, 7]), st.ratio_sums([1, 1, 2], [5, 5, 8]))
    assert np.isfinite(r.rel_pvalue) and np.isnan(r.seq_rel_pvalue)


# --- against gbstats ----------------------------------------------------------------------


def _gb_mean(y):
    gb_stats = _gbstats()[0]
    y = np.asarray(y, float)
    return gb_stats.SampleMeanStatistic(n=len(y), sum=float(y.sum()), sum_squares=float((y * y).sum()))


def _gb_ratio(num, den):
    gb_stats = _gbstats()[0]
    num, den = np.asarray(num, float), np.asarray(den, float)
    return gb_stats.RatioStatistic(n=len(num), m_statistic=_gb_mean(num), d_statistic=_gb_mean(den),
                                   m_d_sum_of_products=float((num * den).sum()))


CASES = [  # (control y, treatment y) per-user values
    ([3.0, 5.0, 4.0, 6.0, 2.0, 7.0], [6.0, 7.0, 5.0, 9.0, 4.0]),
    ([12.1, 9.8, 15.3, 11.0, 8.7, 13.4, 10.2, 14.8], [13.5, 12.2, 16.8, 11.9, 15.1, 12.7, 17.3]),
    (list(np.arange(40) % 7 + 1.0), list((np.arange(35) * 3) % 8 + 1.5)),
]


@pytest.mark.parametrize("yc,yt", CASES)
def test_rel_pvalue_matches_gbstats_welch_relative_test(yc, yt):
    """gbstats ``TwoSidedTTest(relative)`` on sample means is the relative delta-method
    Welch test; ``compare_means`` gives the same interval and p-value."""
    gb_tests = _gbstats()[1]
    r = st.compare_means(st.mean_sums(yc), st.mean_sums(yt))
    gb = gb_tests.TwoSidedTTest(_gb_mean(yc), _gb_mean(yt)).compute_result()
    np.testing.assert_allclose([r.rel_lift, r.rel_low, r.rel_high, r.rel_pvalue],
                               [gb.expected, gb.ci[0], gb.ci[1], gb.p_value], rtol=1e-9)


def _ratio_case(k):
    i = np.arange(300 + 50 * k)
    den = 2.0 + (i * 7) % 9
    num = ((i * 5 + k) % 4) * (den > 3)
    return num, den, num + (i % (9 + 3 * k) == 0), den + (i % 11 == 0)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_seq_rel_pvalue_matches_gbstats_sequential_relative_test(k):
    gb_tests = _gbstats()[1]
    nc, dc, nt, dt = _ratio_case(k)
    r = st.compare_ratios(st.ratio_sums(nc, dc), st.ratio_sums(nt, dt), sequential=True, tuning_n=5000)
    gb = gb_tests.SequentialTwoSidedTTest(_gb_ratio(nc, dc), _gb_ratio(nt, dt)).compute_result()
    np.testing.assert_allclose([r.rel_lift, r.seq_rel_low, r.seq_rel_high, r.seq_rel_pvalue],
                               [gb.expected, gb.ci[0], gb.ci[1], gb.p_value], rtol=1e-9)
    # gbstats' fixed-horizon relative test uses Student's t with Welch df (~2n here) where the
    # ratio comparison is a z test: same estimate and standard error, p-values within the
    # t-versus-normal difference, and equal to the normal p-value of gbstats' z statistic.
    fixed = gb_tests.TwoSidedTTest(_gb_ratio(nc, dc), _gb_ratio(nt, dt)).compute_result()
    assert r.rel_se == pytest.approx(fixed.uplift.stddev, rel=1e-9)
    assert 0.001 < fixed.p_value < 0.9
    assert r.rel_pvalue == pytest.approx(fixed.p_value, rel=0.02)
    assert r.rel_pvalue == pytest.approx(2 * norm.sf(abs(fixed.expected) / fixed.uplift.stddev),
                                         rel=1e-9)


def test_proportions_and_means_agree_too():
    rng = np.random.default_rng(171)
    n = rng.integers(50, 3000, size=(2, REPS))
    p = rng.uniform(0.02, 0.5, size=REPS)
    x = rng.binomial(n, [p, np.clip(p * rng.normal(1.0, 0.2, REPS), 0, 1)])
    r = st.compare_proportions(x[0], n[0], x[1], n[1], sequential=True, tuning_n=1000)
    y = rng.gamma(2.0, 3.0, size=(2, REPS, 12))
    y[1] *= rng.normal(1.0, 0.4, size=(REPS, 1))
    m = st.compare_means(st.mean_sums(y[0]), st.mean_sums(y[1]), sequential=True, tuning_n=100)
    for c in (r, m):
        ok = np.isfinite(c.rel_pvalue)
        assert ok.sum() >= 2000
        assert not np.any((_excludes_zero(c.rel_low, c.rel_high) != (c.rel_pvalue < 0.05))[ok])
        assert not np.any((_excludes_zero(c.seq_rel_low, c.seq_rel_high) != (c.seq_rel_pvalue < 0.05))[ok])
        assert 0.05 < np.mean((c.rel_pvalue < 0.05)[ok]) < 0.95
