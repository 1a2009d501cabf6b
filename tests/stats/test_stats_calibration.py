"""Calibration by simulation (docs/statistics.md, "Calibration"): the CTR ratio metric on user-randomized arms.

Users are heterogeneous: activity λ_u ~ Gamma(0.8, scale 25) (impressions ~
Poisson(λ_u)), and click propensity CTR_u ~ Beta(0.5, 15), independent of
activity, so the true CTR (E[clicks] / E[impressions]) is 0.5 / 15.5 exactly
and a treatment that multiplies every CTR_u by 1.2 has a true lift of exactly
20%. All replications are simulated at once and each replication is one
"slice" of a single vectorized call. Seeds are fixed: the test is deterministic.

With 2000 replications the Monte Carlo s.e. of a 95% coverage is 0.5 points,
so the 93–97% band is about ±4 s.e.
"""

from __future__ import annotations

import numpy as np
import pytest

import expkit.stats as st

REPS = 2000
USERS = 1000
CTR_A, CTR_B = 0.5, 15.0
TRUE_CTR = CTR_A / (CTR_A + CTR_B)
LIFT = 1.2


def simulate_arm(rng: np.random.Generator, reps: int, users: int, lift: float = 1.0):
    """Per-replication ratio sums of clicks / impressions over heterogeneous users."""
    activity = rng.gamma(0.8, 25.0, size=(reps, users))
    impressions = rng.poisson(activity).astype(float)
    ctr = np.minimum(rng.beta(CTR_A, CTR_B, size=(reps, users)) * lift, 1.0)
    clicks = rng.binomial(impressions.astype(np.int64), ctr).astype(float)
    return st.ratio_sums(clicks, impressions, axis=1)


@pytest.fixture(scope="module")
def arms():
    rng = np.random.default_rng(20261126)
    return {
        "control": simulate_arm(rng, REPS, USERS),
        "null": simulate_arm(rng, REPS, USERS),
        "lift": simulate_arm(rng, REPS, USERS, LIFT),
    }


def covers(low, high, truth) -> float:
    return float(np.mean((low <= truth) & (truth <= high)))


def test_ratio_interval_coverage(arms):
    est = st.ratio_estimate(**arms["control"])
    assert (est.reason == "").all()
    delta = covers(est.low, est.high, TRUE_CTR)
    wilson_eff = covers(est.wilson_low, est.wilson_high, TRUE_CTR)
    assert 0.93 <= delta <= 0.97, delta
    assert 0.93 <= wilson_eff <= 0.97, wilson_eff
    assert np.median(est.design_effect) > 2  # clustering matters in this population


def test_naive_pooled_impression_interval_fails(arms):
    s = arms["control"]
    low, high = st.proportion_interval(s["sum_num"], s["sum_den"], "wilson")
    naive = covers(low, high, TRUE_CTR)
    assert naive < 0.85, naive  # impressions are not independent trials


def test_aa_false_positive_rate(arms):
    r = st.compare_ratios(arms["control"], arms["null"])
    fpr = float(np.mean(r.pvalue < 0.05))
    assert 0.03 <= fpr <= 0.07, fpr
    assert 0.93 <= covers(r.diff_low, r.diff_high, 0.0) <= 0.97
    # The naive two-proportion test on pooled impressions rejects far too often.
    c, t = arms["control"], arms["null"]
    naive = st.compare_proportions(c["sum_num"], c["sum_den"], t["sum_num"], t["sum_den"])
    assert float(np.mean(naive.pvalue < 0.05)) > 0.15


def test_ab_coverage_with_known_lift(arms):
    r = st.compare_ratios(arms["control"], arms["lift"])
    true_diff = TRUE_CTR * (LIFT - 1)
    assert 0.93 <= covers(r.diff_low, r.diff_high, true_diff) <= 0.97
    assert 0.93 <= covers(r.rel_low, r.rel_high, LIFT - 1) <= 0.97
    assert 0.93 <= covers(r.rel_low_fieller, r.rel_high_fieller, LIFT - 1) <= 0.97
    assert float(np.mean(r.pvalue < 0.05)) > 0.3  # and the test has some power (~40%)


def test_always_valid_under_daily_peeking():
    """A/A with a look after each of 10 days: the confidence sequence stays valid at every
    look simultaneously, while re-testing the fixed-horizon interval daily does not."""
    rng = np.random.default_rng(7)
    days, reps, per_day = 10, 1000, 300
    daily = [simulate_arm(rng, reps * days, per_day) for _ in range(2)]
    # Each day brings new users; a look at day d uses all users so far.
    cum = [{k: np.cumsum(v.reshape(reps, days), axis=1) for k, v in arm.items()}
           for arm in daily]
    r = st.compare_ratios(cum[0], cum[1], sequential=True, tuning_n=5000)
    seq_any = float(np.mean((r.seq_pvalue < 0.05).any(axis=1)))
    fixed_any = float(np.mean((r.pvalue < 0.05).any(axis=1)))
    assert seq_any <= 0.05, seq_any
    assert fixed_any > 0.1, fixed_any
    # p <= alpha exactly when the sequence excludes 0.
    excluded = (r.seq_low > 0) | (r.seq_high < 0)
    assert np.array_equal(excluded, r.seq_pvalue <= 0.05)
