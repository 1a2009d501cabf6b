"""Numerical stability: large offsets keep their true variance (docs/statistics.md).

Per-user values around 1e9 (or epoch-millisecond timestamps ~1.7e12) with a small
spread: ``Σy² - (Σy)²/n`` in float64 cancels to garbage. expkit must either get
the variance right (exact integer/decimal sums, sums around a shift, merged
centred moments) or say it cannot, never return a silently wrong variance.
References are two-pass computations on the centred data (``np.var``) or exact
rational arithmetic (``fractions``).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

import expkit.stats as st
from expkit.stats.moments import PRECISION_REASON

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

N = 1000


@pytest.fixture(scope="module")
def noisy():
    rng = np.random.default_rng(11)
    return 1e9 + rng.normal(0.0, 1.0, N)


def exact_m2(values) -> float:
    vals = [Fraction(int(v)) if isinstance(v, int) else Fraction(v) for v in values]
    mean = sum(vals) / len(vals)
    return float(sum((v - mean) ** 2 for v in vals))


def test_naive_float_sums_lose_the_variance_and_say_so(noisy):
    sums = st.mean_sums(noisy)
    naive = sums["sum_y2"] - sums["sum_y"] ** 2 / N
    true = exact_m2(noisy)
    assert abs(naive - true) > 10 * true  # the textbook formula is garbage here
    m = st.moments_from_sums(sums, "y")
    assert np.isnan(m.m2_a) and m.reason == PRECISION_REASON
    r = st.mean_estimate(**sums)
    assert np.isnan(r.se) and "cancellation" in r.reason


def test_shifted_float_sums_keep_the_variance(noisy):
    m = st.moments_from_sums(st.mean_sums(noisy, shift_y=1e9), "y")
    np.testing.assert_allclose(m.m2_a, exact_m2(noisy), rtol=1e-9)
    np.testing.assert_allclose(m.mean_a, np.mean(noisy), rtol=1e-15)
    est = st.mean_estimate(**st.mean_sums(noisy, shift_y=1e9))
    np.testing.assert_allclose(est.se, np.std(noisy, ddof=1) / np.sqrt(N), rtol=1e-9)


def test_exact_integer_sums_keep_the_variance():
    rng = np.random.default_rng(12)
    ts = [1_700_000_000_000 + int(v) for v in rng.integers(-3_600_000, 3_600_000, N)]
    sums = {"n": N, "sum_y": sum(ts), "sum_y2": sum(t * t for t in ts)}  # DuckDB HUGEINT
    m = st.moments_from_sums(sums, "y")
    assert m.m2_a == exact_m2(ts)
    as_decimal = {k: Decimal(v) for k, v in sums.items()}  # DuckDB DECIMAL(38, 0)
    assert st.moments_from_sums(as_decimal, "y").m2_a == exact_m2(ts)


def test_exact_sums_held_as_numpy_scalars_of_any_float_width():
    # An object array of numpy scalars (e.g. a row of a mixed-dtype DataFrame) is
    # summed exactly; a float32 or long-double count is as whole as a float64 one.
    rng = np.random.default_rng(17)
    ts = [1_700_000_000_000 + int(v) for v in rng.integers(-3_600_000, 3_600_000, N)]
    for width in (np.float32, np.longdouble):
        sums = {"n": np.array([width(N)], dtype=object),
                "sum_y": np.array([sum(ts)], dtype=object),
                "sum_y2": np.array([sum(t * t for t in ts)], dtype=object)}
        assert st.moments_from_sums(sums, "y").m2_a[0] == exact_m2(ts)


def test_int64_sums_are_exact_and_vectorized():
    rng = np.random.default_rng(13)
    y = 1_000_000 + rng.integers(-3, 4, size=(5, N))  # Σy² ≈ 1e15 fits in int64
    sums = {"n": np.full(5, N), "sum_y": y.sum(axis=1), "sum_y2": (y * y).sum(axis=1)}
    assert sums["sum_y2"].dtype == np.int64
    m = st.moments_from_sums(sums, "y")
    np.testing.assert_array_equal(m.m2_a, [exact_m2(row.tolist()) for row in y])
    # float64 copies of the same sums cannot resolve it: NaN with the reason
    m_float = st.moments_from_sums({k: v.astype(float) for k, v in sums.items()}, "y")
    assert np.isnan(m_float.m2_a).all() and (m_float.reason == PRECISION_REASON).all()


def test_comparison_is_offset_invariant(noisy):
    rng = np.random.default_rng(14)
    treat = 1e9 + 0.2 + rng.normal(0.0, 1.0, N)
    big = st.compare_means(st.mean_sums(noisy, shift_y=1e9), st.mean_sums(treat, shift_y=1e9))
    small = st.compare_means(st.mean_sums(noisy - 1e9), st.mean_sums(treat - 1e9))
    for field in ("se", "df", "control_se", "treatment_se"):  # the spread: exact to ~1e-9
        np.testing.assert_allclose(getattr(big, field), getattr(small, field), rtol=1e-9)
    # The means themselves are float64 numbers near 1e9 (ulp 1.2e-7), so their
    # difference carries ~1e-7 absolute rounding, nothing more.
    for field in ("diff", "diff_low", "diff_high"):
        np.testing.assert_allclose(getattr(big, field), getattr(small, field), atol=3e-7)


def test_ratio_with_shifted_numerator(noisy):
    # num around 1e9 per user and den = 1: the ratio is the mean of num, and its
    # delta-method se must equal s / sqrt(n) of the noise.
    sums = st.ratio_sums(noisy - 1e9, np.ones(N))
    got = st.ratio_estimate(**sums, shift_num=1e9)
    np.testing.assert_allclose(got.se, np.std(noisy, ddof=1) / np.sqrt(N), rtol=1e-9)
    np.testing.assert_allclose(got.estimate, np.mean(noisy), rtol=1e-15)
    unshifted = st.ratio_estimate(**st.ratio_sums(noisy, np.ones(N)))
    assert np.isnan(unshifted.se) and "cancellation" in unshifted.reason


def test_combine_moments_of_daily_partials(noisy):
    parts = np.array_split(noisy, 7)
    merged = st.moments_from_sums(st.mean_sums(parts[0], shift_y=float(parts[0][0])), "y")
    for p in parts[1:]:
        merged = st.combine_moments(
            merged, st.moments_from_sums(st.mean_sums(p, shift_y=float(p[0])), "y"))
    assert merged.n == N
    # Within float64 rounding of the partial means (~1e-7 each near 1e9).
    np.testing.assert_allclose(merged.m2_a, exact_m2(noisy), rtol=1e-7)
    np.testing.assert_allclose(merged.mean_a, np.mean(noisy), rtol=1e-15)


def test_integer_sums_with_a_float_count_and_ordinary_data():
    rng = np.random.default_rng(16)
    clicks = rng.integers(0, 5, size=(50, 200))
    imps = clicks + rng.integers(0, 40, size=(50, 200))
    float_sums = st.ratio_sums(clicks, imps, axis=1)
    int_sums = {k: (v if k == "n" else v.astype(np.int64)) for k, v in float_sums.items()}
    assert int_sums["n"].dtype == float and int_sums["sum_num"].dtype == np.int64
    a, b = st.ratio_estimate(**float_sums), st.ratio_estimate(**int_sums)
    np.testing.assert_allclose(a.se, b.se, rtol=1e-12)
    big = [10**9 + k for k in (3, -2, 1, 0)]
    exact = {"n": 4.0, "sum_y": sum(big), "sum_y2": sum(v * v for v in big)}
    assert st.moments_from_sums(exact, "y").m2_a == exact_m2(big)
