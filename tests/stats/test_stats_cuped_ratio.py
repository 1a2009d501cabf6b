"""CUPED for ratio metrics: ``compare_ratios(control, treatment, covariate=True)``.

References:
* R (``lm`` on the per-user linearized values, computed in R from per-user data the
  test writes; run with ``Rscript``; skipped when R is absent unless
  ``EXPKIT_REQUIRE_R=1``, as in CI);
* GrowthBook's regression-adjusted ratio statistic (``RegressionAdjustedRatioStatistic``
  and ``TwoSidedTTest`` of gbstats, packages/stats/gbstats in growthbook/growthbook at
  commit 8f1db4456915a8e7b7faf23d5632ca7219d2f469; not on PyPI yet, so its numbers are
  quoted below);
* coverage by simulation with a known truth (users without pre-period history included).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
from scipy import special

import expkit.stats as st


def simulate(rng, reps, users, lift=1.0, no_history=0.3):
    """Per-user clicks/impressions in the experiment and in the pre-period.

    Activity λ_u ~ Gamma(0.8, 25) and click propensity CTR_u ~ Beta(0.5, 15) belong to
    the user and drive both periods (impressions Poisson(λ_u), clicks Binomial); the
    treatment multiplies CTR_u by ``lift`` (capped at 1) in the experiment only. A share
    ``no_history`` of users has no pre-period (sums 0).
    """
    activity = rng.gamma(0.8, 25.0, size=(reps, users))
    ctr = rng.beta(0.5, 15.0, size=(reps, users))
    imps = rng.poisson(activity)
    clicks = rng.binomial(imps, np.minimum(ctr * lift, 1.0))
    pre_imps = rng.poisson(activity) * (rng.random((reps, users)) >= no_history)
    pre_clicks = rng.binomial(pre_imps, ctr)
    return [np.asarray(v, float) for v in (clicks, imps, pre_clicks, pre_imps)]


def true_ctr(lift):
    """E[min(lift·X, 1)] for X ~ Beta(0.5, 15), independent of activity (closed form:
    E[X; X < t] = a/(a+b) I_t(a+1, b) with t = 1/lift)."""
    a, b = 0.5, 15.0
    if lift <= 1:
        return lift * a / (a + b)
    t = 1 / lift
    return lift * a / (a + b) * special.betainc(a + 1, b, t) + special.betaincc(a, b, t)


def arm_sums(data, axis=-1):
    clicks, imps, pre_clicks, pre_imps = data
    return st.ratio_sums(clicks, imps, axis=axis, pre_num=pre_clicks, pre_den=pre_imps)


# --- R: lm on the per-user linearized values ------------------------------------------------

R_SCRIPT = r"""
options(digits = 17)
d <- read.csv(commandArgs(TRUE)[1])
lin <- function(num, den) {r <- sum(num)/sum(den); r + (num - r*den)/mean(den)}
d$L <- ave(seq_len(nrow(d)), d$arm, FUN = function(i) lin(d$num[i], d$den[i]))
d$P <- ave(seq_len(nrow(d)), d$arm, FUN = function(i) lin(d$pnum[i], d$pden[i]))
fit <- lm(L ~ arm + P, data = d)
theta <- unname(coef(fit)["P"]); diff <- unname(coef(fit)["arm"])
c <- d[d$arm == 0, ]; t <- d[d$arm == 1, ]; nc <- nrow(c); nt <- nrow(t)
se <- sqrt(var(t$L - theta*t$P)/nt + var(c$L - theta*c$P)/nc)
se0 <- sqrt(var(t$L)/nt + var(c$L)/nc)
rc <- sum(c$num)/sum(c$den); rel <- diff/rc
rel_se <- sqrt(var(t$L - theta*t$P)/nt + var((1 + rel)*c$L - theta*c$P)/nc)/abs(rc)
q <- qnorm(.975); N <- nc + nt; r2 <- (-2*log(.05) + log(-2*log(.05) + 1))/5000; nr <- N*r2
half <- function(v) sqrt(v*2*(nr + 1)/nr*log(sqrt(nr + 1)/.05))
seqp <- function(e, v) min(1, sqrt(nr + 1)*exp(-e^2/v*nr/(2*(nr + 1))))
cat(theta, diff, se, diff - q*se, diff + q*se, 2*pnorm(-abs(diff/se)), 1 - se^2/se0^2,
    rel, rel_se, rel - q*rel_se, rel + q*rel_se, 2*pnorm(-abs(rel/rel_se)),
    diff - half(se^2), diff + half(se^2), seqp(diff, se^2),
    rel - half(rel_se^2), rel + half(rel_se^2), seqp(rel, rel_se^2), sep = "\n")
"""


def rscript():
    path = shutil.which("Rscript")
    if path is None:
        if os.environ.get("EXPKIT_REQUIRE_R") == "1":
            pytest.fail("EXPKIT_REQUIRE_R=1 but Rscript is not on PATH (apt-get install r-base-core)")
        pytest.skip("Rscript not found (apt-get install r-base-core); set EXPKIT_REQUIRE_R=1 to fail instead")
    return path


@pytest.mark.parametrize("seed,users", [(1, (800, 800)), (2, (1200, 700))])
def test_matches_r_lm_on_linearized_values(tmp_path, seed, users):
    rs = rscript()
    rng = np.random.default_rng(seed)
    c = [v[0] for v in simulate(rng, 1, users[0])]
    t = [v[0] for v in simulate(rng, 1, users[1], lift=1.1)]
    rows = ["arm,num,den,pnum,pden"]
    for arm, data in ((0, c), (1, t)):
        rows += [f"{arm},{a:.0f},{b:.0f},{p:.0f},{q:.0f}" for a, b, p, q in zip(*data, strict=True)]
    csv = tmp_path / "users.csv"
    csv.write_text("\n".join(rows) + "\n")
    script = tmp_path / "ref.R"
    script.write_text(R_SCRIPT)
    out = subprocess.run([rs, str(script), str(csv)], capture_output=True, text=True, check=True)
    ref = [float(v) for v in out.stdout.split()]
    r = st.compare_ratios(arm_sums(c), arm_sums(t), covariate=True, sequential=True, tuning_n=5000)
    ours = [r.theta, r.diff, r.se, r.diff_low, r.diff_high, r.pvalue, r.variance_reduction,
            r.rel_lift, r.rel_se, r.rel_low, r.rel_high, r.rel_pvalue, r.seq_low, r.seq_high,
            r.seq_pvalue, r.seq_rel_low, r.seq_rel_high, r.seq_rel_pvalue]
    np.testing.assert_allclose(ours, ref, rtol=1e-8)
    assert r.reason == "" and r.variance_reduction > 0.2


# --- GrowthBook's regression-adjusted ratio statistic ---------------------------------------


def _gb_case(arm, n=400):
    i = np.arange(n) + arm * n
    pre_den = 2 + (i * 11) % 7 + i % 3
    pre_num = (i * 7) % 5 + i % 2
    den = pre_den + (i * 5) % 3
    num = pre_num + (i * 13) % 3 + arm * (i % 9 == 0)
    return [np.asarray(v, float) for v in (num, den, pre_num, pre_den)]


def test_matches_gbstats_regression_adjusted_ratio():
    """Equal arms (where GrowthBook's θ, a sum of per-arm covariances, equals ours).
    gbstats at the commit above: ``compute_theta_regression_adjusted_ratio(a, b)`` and
    ``TwoSidedTTest([(a, b)], FrequentistConfig(difference_type=...)).moments_result``
    (point_estimate, standard_error) and ``.compute_result()`` (ci, pValue; Student t
    with Welch df 797.892088541301)."""
    r = st.compare_ratios(arm_sums(_gb_case(0)), arm_sums(_gb_case(1)), covariate=True)
    np.testing.assert_allclose(
        [r.theta, r.diff, r.se, r.rel_lift, r.rel_se],
        [0.8555435070989742, 0.015553097966735985, 0.006820819994986899,
         0.031072844043621924, 0.013838987445994278], rtol=1e-10)
    # gbstats' intervals use t(797.9) where ours use the normal: equal to ~1e-3.
    np.testing.assert_allclose([r.diff_low, r.diff_high, r.pvalue],
                               [0.0021642266791879715, 0.028941969254283998, 0.022856534860036914],
                               rtol=0.02)
    np.testing.assert_allclose([r.rel_low, r.rel_high, r.rel_pvalue],
                               [0.00390771993822232, 0.05823796814902153, 0.025021190767716694],
                               rtol=0.02)


# --- edge rows -------------------------------------------------------------------------------


def test_without_pre_period_history_nothing_is_adjusted():
    rng = np.random.default_rng(5)
    c, t = simulate(rng, 1, 300, no_history=1.0), simulate(rng, 1, 300, no_history=1.0)
    adj = st.compare_ratios(arm_sums(c, axis=1), arm_sums(t, axis=1), covariate=True)
    plain = st.compare_ratios(arm_sums(c, axis=1), arm_sums(t, axis=1))
    assert adj.theta == 0 and abs(adj.variance_reduction) < 1e-12
    np.testing.assert_allclose([adj.diff, adj.se, adj.rel_lift, adj.rel_se],
                               [plain.diff, plain.se, plain.rel_lift, plain.rel_se], rtol=1e-12)
    assert (adj.reason == "").all()


def test_missing_covariate_keys_raise_clearly():
    s = st.ratio_sums([1, 2], [3, 4])
    with pytest.raises(KeyError, match="sum_pre_num"):
        st.compare_ratios(s, s, covariate=True)


# --- coverage with a known truth --------------------------------------------------------------

REPS, USERS, LIFT = 1200, 1000, 1.1


@pytest.fixture(scope="module")
def coverage_runs():
    rng = np.random.default_rng(20261205)
    c, t = simulate(rng, REPS, USERS), simulate(rng, REPS, USERS, lift=LIFT)
    adj = st.compare_ratios(arm_sums(c), arm_sums(t), covariate=True, sequential=True)
    plain = st.compare_ratios(arm_sums(c), arm_sums(t), sequential=True)
    return adj, plain


def covers(low, high, truth):
    return float(np.mean((low <= truth) & (truth <= high)))


def test_adjusted_intervals_cover_the_truth(coverage_runs):
    adj, plain = coverage_runs
    assert (adj.reason == "").all()
    diff, rel = true_ctr(LIFT) - true_ctr(1.0), true_ctr(LIFT) / true_ctr(1.0) - 1
    assert 0.93 <= covers(adj.diff_low, adj.diff_high, diff) <= 0.97
    assert 0.93 <= covers(adj.rel_low, adj.rel_high, rel) <= 0.97
    assert covers(adj.seq_low, adj.seq_high, diff) >= 0.95
    assert covers(adj.seq_rel_low, adj.seq_rel_high, rel) >= 0.95
    # Unbiased: the mean estimate is within 3 Monte Carlo standard errors of the truth.
    assert abs(np.mean(adj.rel_lift) - rel) < 3 * np.std(adj.rel_lift) / np.sqrt(REPS)
    # ... and narrower than without the covariate.
    assert np.median(adj.variance_reduction) > 0.15
    assert np.mean(adj.rel_high - adj.rel_low) < np.mean(plain.rel_high - plain.rel_low)
    assert np.mean(adj.rel_pvalue < 0.05) > np.mean(plain.rel_pvalue < 0.05)


def test_aa_false_positive_rate_with_covariate():
    rng = np.random.default_rng(11)
    c, t = simulate(rng, REPS, USERS), simulate(rng, REPS, USERS)
    r = st.compare_ratios(arm_sums(c), arm_sums(t), covariate=True)
    assert 0.03 <= np.mean(r.rel_pvalue < 0.05) <= 0.07
    assert 0.03 <= np.mean(r.pvalue < 0.05) <= 0.07


def test_pre_period_balance_is_calibrated_and_catches_a_biased_user_set():
    rng = np.random.default_rng(13)
    c, t = simulate(rng, REPS, USERS), simulate(rng, REPS, USERS, lift=LIFT)
    aa = st.pre_period_balance(arm_sums(c), arm_sums(t))
    assert 0.03 <= np.mean(aa.pvalue < 0.05) <= 0.07  # pre-period ratios equal in truth
    # A user set skewed towards heavy clickers in treatment (e.g. a leaky assignment):
    # their pre-period CTR is 30% higher, which the check flags at the strict level.
    base, post = simulate(rng, 300, 5000), simulate(rng, 300, 5000)
    heavy = simulate(rng, 300, 5000, lift=1.3)
    biased = st.pre_period_balance(arm_sums(base), arm_sums([post[0], post[1], heavy[0], heavy[1]]))
    assert np.mean(biased.pvalue < 0.001) > 0.5, np.mean(biased.pvalue < 0.001)
