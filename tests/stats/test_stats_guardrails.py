"""Guardrails: the non-inferiority judge and the user-clustered quantile interval.

References: the judge against its definition on hand-made intervals (closed form);
``quantile_arm`` against gbstats 0.8.0's ``QuantileClusteredStatistic`` (and its
``TwoSidedTTest`` for the relative change of p95); calibration by simulation: A/A
experiments looked at daily for 14 days with the always-valid interval must not
fail a guardrail more often than the nominal 5%, for each guardrail statistic.
"""

from __future__ import annotations

import numpy as np
import pytest

import expkit.stats as st
from expkit.stats.guardrails import (
    judge_guardrail,
    judge_noninferiority,
    quantile_arm,
    quantile_sums,
)

# --- the judge -------------------------------------------------------------------------------


def test_judge_increase_is_harm():
    j = judge_noninferiority([-0.3, -0.05, 0.11, 0.1, np.nan], [0.09, 0.2, 0.4, 0.3, 0.2], 0.1)
    assert j.status.tolist() == ["pass", "inconclusive", "fail", "inconclusive", "inconclusive"]
    assert j.reason.tolist() == ["", "", "", "", "interval undefined"]
    assert j.margin.tolist() == [0.1] * 5


def test_judge_decrease_is_harm_mirrors_increase():
    low, high = np.array([-0.005, -0.03, -0.02, -0.015]), np.array([0.02, -0.011, 0.0, -0.005])
    down = judge_noninferiority(low, high, 0.01, harm="decrease")
    up = judge_noninferiority(-high, -low, 0.01, harm="increase")
    assert down.status.tolist() == ["pass", "fail", "inconclusive", "inconclusive"]
    assert down.status.tolist() == up.status.tolist()
    assert down.margin.tolist() == [-0.01] * 4


def test_judge_rejects_bad_arguments():
    with pytest.raises(ValueError, match="harm"):
        judge_noninferiority(0.0, 1.0, 0.1, harm="up")  # type: ignore[arg-type]
    assert judge_noninferiority(0.0, 1.0, -0.1).reason == "margin must be a number >= 0"


def test_judge_guardrail_reads_the_chosen_interval():
    c = st.ratio_sums([0, 1, 0, 2, 0, 1] * 50, [10, 12, 8, 20, 9, 15] * 50)
    t = st.ratio_sums([1, 1, 0, 2, 1, 1] * 50, [10, 12, 8, 20, 9, 15] * 50)
    r = st.compare_ratios(c, t, sequential=True)
    seq = judge_guardrail(r, 0.05, relative=True)
    assert (seq.low, seq.high) == (r.seq_rel_low, r.seq_rel_high)
    fixed = judge_guardrail(r, 0.001, sequential=False)
    assert (fixed.low, fixed.high) == (r.diff_low, r.diff_high)
    assert fixed.status == "fail" and seq.status == "fail"  # +38% CTR, far beyond both margins
    bad = judge_guardrail(st.compare_ratios(st.ratio_sums([0], [0]), t, sequential=True), 0.1)
    assert bad.status == "inconclusive" and "zero denominator" in bad.reason


# --- the clustered quantile against gbstats --------------------------------------------------



def _gbstats():
    """gbstats' statistics and frequentist tests (installed by `make venv`)."""
    stats = pytest.importorskip("gbstats.models.statistics", reason="gbstats not installed (make venv)")
    tests = pytest.importorskip("gbstats.frequentist.tests", reason="gbstats not installed (make venv)")
    return stats, tests


def latency(rng, reps, users, max_events=12, scale=1.0):
    """Per-event latencies (ms), NaN-padded, and each event's user: users have their own
    level (lognormal), so a user's events are correlated."""
    level = rng.normal(0.0, 0.5, size=(reps, users, 1))
    x = 100.0 * scale * np.exp(level + rng.normal(0.0, 0.7, size=(reps, users, max_events)))
    count = np.minimum(1 + rng.poisson(4.0, size=(reps, users, 1)), max_events)
    x = np.where(np.arange(max_events) < count, x, np.nan)
    ids = np.broadcast_to(np.arange(users)[None, :, None], x.shape)
    return x.reshape(reps, -1), ids.reshape(reps, -1)


def _gb_quantile(s):
    gb_stats = _gbstats()[0]
    return gb_stats.QuantileClusteredStatistic(
        n=int(s["n_events"]), n_star=int(s["n_events"]), nu=float(s["nu"]),
        quantile_hat=float(s["quantile"]), quantile_lower=float(s["quantile_lower"]),
        quantile_upper=float(s["quantile_upper"]), main_sum=float(s["sum_below"]),
        main_sum_squares=float(s["sum_below2"]), denominator_sum=float(s["sum_events"]),
        denominator_sum_squares=float(s["sum_events2"]),
        main_denominator_sum_product=float(s["sum_below_events"]), n_clusters=int(s["n"]))


@pytest.mark.parametrize("seed,nu", [(1, 0.95), (2, 0.5), (3, 0.9)])
def test_quantile_arm_matches_gbstats_quantile_clustered_statistic(seed, nu):
    gb_tests = _gbstats()[1]
    rng = np.random.default_rng(seed)
    xc, uc = latency(rng, 1, 400)
    xt, ut = latency(rng, 1, 380, scale=1.05)
    sc = {k: v[0] for k, v in quantile_sums(xc, uc, nu).items()}
    stt = {k: v[0] for k, v in quantile_sums(xt, ut, nu).items()}
    assert sc["quantile"] == pytest.approx(np.nanquantile(xc, nu), rel=1e-12)
    gc, gt = _gb_quantile(sc), _gb_quantile(stt)
    arm_c, arm_t = quantile_arm(sc), quantile_arm(stt)
    # gbstats' variance is per event: the estimate's variance is variance / n.
    np.testing.assert_allclose([arm_c.var, arm_t.var], [gc.variance / gc.n, gt.variance / gt.n],
                               rtol=1e-10)
    r = st.compare_arms(arm_c, arm_t)
    gb = gb_tests.TwoSidedTTest(gc, gt).compute_result()
    np.testing.assert_allclose([r.rel_lift, r.rel_se], [gb.expected, gb.uplift.stddev], rtol=1e-10)
    # gbstats uses Student's t with Welch df over events (~3,000): p-values agree to ~1e-3.
    assert r.rel_pvalue == pytest.approx(gb.p_value, rel=0.01, abs=1e-4)


def test_clustering_widens_the_quantile_interval():
    rng = np.random.default_rng(4)
    x, u = latency(rng, 1, 500)
    s = quantile_sums(x, u, 0.95)
    clustered = quantile_arm(s)
    iid = quantile_sums(x, np.arange(x.shape[1])[None, :], 0.95)  # every event its own user
    assert clustered.var[0] > 1.3 * quantile_arm(iid).var[0]


def test_quantile_arm_too_few_events():
    s = quantile_sums([[1.0, 2.0, 3.0]], [[0, 0, 1]], 0.95)
    arm = quantile_arm(s)
    assert np.isnan(arm.estimate[0]) and arm.reason[0] == "too few events for the quantile's interval"
    empty = quantile_sums(np.full((1, 4), np.nan), np.arange(4), 0.95)
    assert empty["n_events"][0] == 0 and np.isnan(quantile_arm(empty).var[0])


# --- A/A calibration, daily looks for 14 days ------------------------------------------------

DAYS, REPS, PER_DAY = 14, 400, 80


def _daily_ratio_sums(rng, p_mean, concentration):
    """Cumulative per-user ratio sums after each day: requests ~ 1 + Poisson(8) per user,
    per-user propensity ~ Beta (heterogeneous), outcomes Binomial."""
    req = 1 + rng.poisson(8.0, size=(REPS, DAYS * PER_DAY))
    p = rng.beta(p_mean * concentration, (1 - p_mean) * concentration, size=req.shape)
    hit = rng.binomial(req, p).astype(float)
    req = req.astype(float)
    per_day = [st.ratio_sums(hit[:, : (d + 1) * PER_DAY], req[:, : (d + 1) * PER_DAY], axis=1)
               for d in range(DAYS)]
    return {k: np.stack([s[k] for s in per_day], axis=1) for k in per_day[0]}


@pytest.mark.parametrize("metric,seed,p_mean,concentration,harm,margin", [
    ("error_rate", 17, 0.01, 20.0, "increase", 0.001),
    ("coverage", 18, 0.9, 30.0, "decrease", 0.01),
])
def test_aa_ratio_guardrails_do_not_fail_falsely(metric, seed, p_mean, concentration, harm, margin):
    rng = np.random.default_rng(seed)
    c, t = _daily_ratio_sums(rng, p_mean, concentration), _daily_ratio_sums(rng, p_mean, concentration)
    r = st.compare_ratios(c, t, sequential=True, tuning_n=2 * DAYS * PER_DAY)
    for m in (0.0, margin):  # margin 0, the strictest guardrail, and the default margin
        ever_fail = (judge_guardrail(r, m, harm).status == "fail").any(axis=1).mean()
        assert ever_fail <= 0.05, (metric, m, ever_fail)
    # The fixed-horizon test of the last day is calibrated too (two-sided 5%).
    last = judge_guardrail(r, 0.0, harm, sequential=False).status[:, -1]
    assert 0.01 <= np.mean(last == "fail") <= 0.045


def test_aa_latency_p95_guardrail_does_not_fail_falsely():
    rng = np.random.default_rng(95)
    looks = []
    x = [latency(rng, REPS, DAYS * PER_DAY, max_events=8) for _ in range(2)]
    for d in range(DAYS):
        cut = (d + 1) * PER_DAY * 8  # the first (d + 1) * PER_DAY users' events
        arms = [quantile_arm(quantile_sums(v[:, :cut], ids[:, :cut], 0.95)) for v, ids in x]
        looks.append(st.compare_arms(*arms, sequential=True, tuning_n=2 * DAYS * PER_DAY))
    for m in (0.0, 0.10):
        ever = np.any([judge_guardrail(r, m, "increase", relative=True).status == "fail"
                       for r in looks], axis=0)
        assert ever.mean() <= 0.05, (m, ever.mean())
    final = looks[-1]
    assert 0.02 <= np.mean(final.rel_pvalue < 0.05) <= 0.08  # fixed-horizon, two-sided
