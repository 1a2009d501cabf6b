"""Property tests that extend tests/stats/test_stats_properties.py (proportion intervals, ratio
comparisons and both swaps live there) to the estimators it does not cover: per-user means
(with and without CUPED), proportion comparisons, the ratio estimate's own interval, and SRM."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as hs

import expkit.stats as st

SETTINGS = settings(max_examples=40, deadline=None)
TOL = 1e-9

alphas = hs.floats(min_value=0.001, max_value=0.4)
counts = hs.integers(min_value=1, max_value=100_000).flatmap(
    lambda n: hs.tuples(hs.integers(min_value=0, max_value=n), hs.just(n)))


@hs.composite
def mean_arm(draw: hs.DrawFn, covariate: bool = False) -> dict[str, float]:
    """Sums of a small explicit per-user dataset (values and, optionally, a covariate)."""
    users = draw(hs.integers(min_value=2, max_value=30))
    values = hs.lists(hs.floats(-100, 100, allow_subnormal=False), min_size=users, max_size=users)
    y = np.array(draw(values))
    x = np.array(draw(values)) if covariate else None
    return st.mean_sums(y, x)


@hs.composite
def ratio_arm(draw: hs.DrawFn) -> dict[str, float]:
    users = draw(hs.integers(min_value=2, max_value=30))
    den = np.array(draw(hs.lists(hs.integers(1, 50), min_size=users, max_size=users)), float)
    frac = np.array(draw(hs.lists(hs.floats(0, 1), min_size=users, max_size=users)))
    return st.ratio_sums(np.floor(den * frac), den)


def _contains_and_widens(narrow: object, wide: object, est: str, low: str, high: str) -> None:
    e, lo, hi = (float(getattr(narrow, k)) for k in (est, low, high))
    if not np.isfinite(lo):
        return
    scale = TOL * (1 + abs(e))
    assert lo - scale <= e <= hi + scale
    assert float(getattr(wide, low)) <= lo + scale and float(getattr(wide, high)) >= hi - scale


def _alphas(a1: float, a2: float) -> tuple[float, float]:
    """(wide alpha, narrow alpha): the smaller alpha gives the wider interval."""
    return min(a1, a2), max(a1, a2)


@SETTINGS
@given(mean_arm(), alphas, alphas)
def test_mean_interval_contains_estimate_and_widens(arm: dict[str, float], a1: float, a2: float) -> None:
    wide, narrow = _alphas(a1, a2)
    _contains_and_widens(st.mean_estimate(**arm, alpha=narrow), st.mean_estimate(**arm, alpha=wide),
                         "estimate", "low", "high")


@SETTINGS
@given(ratio_arm(), alphas, alphas)
def test_ratio_estimate_interval_widens(arm: dict[str, float], a1: float, a2: float) -> None:
    wide, narrow = _alphas(a1, a2)
    r, w = st.ratio_estimate(**arm, alpha=narrow), st.ratio_estimate(**arm, alpha=wide)
    _contains_and_widens(r, w, "estimate", "low", "high")
    _contains_and_widens(r, w, "estimate", "wilson_low", "wilson_high")


@SETTINGS
@given(counts, counts, alphas, alphas)
def test_proportion_comparison_contains_and_widens(xc: tuple[int, int], xt: tuple[int, int],
                                                   a1: float, a2: float) -> None:
    wide, narrow = _alphas(a1, a2)
    r, w = st.compare_proportions(*xc, *xt, alpha=narrow), st.compare_proportions(*xc, *xt, alpha=wide)
    _contains_and_widens(r, w, "diff", "diff_low", "diff_high")


@SETTINGS
@given(hs.booleans().flatmap(lambda cov: hs.tuples(mean_arm(cov), mean_arm(cov), hs.just(cov))), alphas, alphas)
def test_mean_comparison_contains_widens_and_mirrors(arms: tuple[dict, dict, bool], a1: float, a2: float) -> None:
    c, t, cov = arms
    wide, narrow = _alphas(a1, a2)
    r = st.compare_means(c, t, covariate=cov, alpha=narrow, sequential=True)
    _contains_and_widens(r, st.compare_means(c, t, covariate=cov, alpha=wide, sequential=True),
                         "diff", "diff_low", "diff_high")
    ba = st.compare_means(t, c, covariate=cov, alpha=narrow, sequential=True)
    scale = TOL * (1 + abs(float(r.diff)))
    np.testing.assert_allclose(ba.diff, -r.diff, atol=scale)
    np.testing.assert_allclose([ba.diff_low, ba.diff_high], [-r.diff_high, -r.diff_low], atol=scale)
    np.testing.assert_allclose([ba.seq_low, ba.seq_high], [-r.seq_high, -r.seq_low], atol=scale)
    np.testing.assert_allclose(ba.pvalue, r.pvalue, rtol=1e-7, atol=1e-12)


@SETTINGS
@given(hs.lists(hs.integers(0, 10_000), min_size=2, max_size=5), hs.randoms(use_true_random=False))
def test_srm_does_not_depend_on_the_order_of_arms(observed: list[int], rnd) -> None:
    shares = np.full(len(observed), 1 / len(observed))
    order = list(range(len(observed)))
    rnd.shuffle(order)
    a = st.srm_test(observed, shares)
    b = st.srm_test([observed[i] for i in order], shares)
    np.testing.assert_allclose(b.pvalue, a.pvalue, rtol=1e-9, equal_nan=True)
