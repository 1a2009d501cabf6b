"""expkit.stats against independent references, to <= 1e-6 relative.

Every expected number below was computed outside expkit: with R 4.2.2 (the call
is quoted next to the value; run with ``options(digits = 15)``), with
statsmodels, or taken from a publication. R is not needed to run these tests.

Variance conventions under test:
* one proportion / two proportions: binomial ``p(1 - p) / n`` per arm, unpooled
  (the interval ``prop.test(..., correct = FALSE)$conf.int`` reports);
* means: ``n - 1`` sample variance per arm, Welch–Satterthwaite df
  (``t.test(var.equal = FALSE)``);
* ratio metrics: delta method with ``n - 1`` per-user (co)variances, which equals
  the HC1 cluster-robust variance of the weighted per-user regression.
"""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower

import expkit.stats as st
from expkit.stats.intervals import Arm

REL = 1e-6


def close(actual, expected, rel=REL, abs=1e-12):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float),
                               rtol=rel, atol=abs)


# --- 4.1 one proportion -------------------------------------------------------------

# (x, n) -> R prop.test(x, n, correct = FALSE)$conf.int
# 81/263 is also Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3.
WILSON = {
    (81, 263): (0.255288519878274, 0.366209576982800),
    (0, 10): (0.0, 0.277532799862889),
    (10, 10): (0.722467200137111, 1.0),
    (5, 37): (0.0591329442573202, 0.2797741178400979),
    (1, 2): (0.0945312057342307, 0.9054687942657692),
}
# (x, n) -> R binom.test(x, n)$conf.int (Clopper–Pearson)
CLOPPER_PEARSON = {
    (81, 263): (0.252736745585271, 0.367621922601351),
    (0, 10): (0.0, 0.308497107818761),
    (10, 10): (0.691502892181239, 1.0),
    (5, 37): (0.045371992341994, 0.287747797310572),
}
# (x, n) -> R qbeta(c(.025, .975), x + .5, n - x + .5) (Jeffreys, interior x)
JEFFREYS = {
    (81, 263): (0.254521934991023, 0.365647499174082),
    (5, 37): (0.053490918199477, 0.271126402356555),
    (1, 2): (0.0608302759200974, 0.9391697240799026),
}
# R: ac <- function(x, n, a = .05) {z <- qnorm(1 - a/2); nt <- n + z^2;
#      pt <- (x + z^2/2)/nt; pt + c(-1, 1)*z*sqrt(pt*(1 - pt)/nt)}   (Agresti & Coull 1998)
AGRESTI_COULL = {
    (81, 263): (0.255220665189997, 0.366277431671078),
    (5, 37): (0.054398729551575, 0.284508332545843),
}
# R: wd <- function(x, n) {p <- x/n; p + c(-1, 1)*qnorm(.975)*sqrt(p*(1 - p)/n)}
WALD = {
    (81, 263): (0.252190126213107, 0.363779455535942),
    (5, 37): (0.0249798101105285, 0.2452904601597418),
}


@pytest.mark.parametrize(
    "method,table",
    [("wilson", WILSON), ("clopper_pearson", CLOPPER_PEARSON), ("jeffreys", JEFFREYS),
     ("agresti_coull", AGRESTI_COULL), ("wald", WALD)],
)
def test_proportion_interval_matches_r(method, table):
    x, n = np.array(list(table)).T
    low, high = st.proportion_interval(x, n, method=method)
    expected = np.array(list(table.values()))
    close(low, expected[:, 0])
    close(high, expected[:, 1])


def test_agresti_coull_other_alpha():
    # R: ac(81, 263, 0.1)
    low, high = st.proportion_interval(81, 263, "agresti_coull", alpha=0.1)
    close([low, high], [0.263273058511937, 0.356606908285033])


def test_jeffreys_boundary_rule():
    # Brown, Cai & DasGupta (2001), Statist. Sci. 16:101, §4.1.2: lower = 0 at x = 0,
    # upper = 1 at x = n; the other bound is R qbeta(.975, 0.5, 10.5) / qbeta(.025, 10.5, 0.5).
    low, high = st.proportion_interval([0, 10], [10, 10], "jeffreys")
    assert low[0] == 0 and high[1] == 1
    from scipy import stats
    close([high[0], low[1]], [stats.beta.ppf(0.975, 0.5, 10.5), stats.beta.ppf(0.025, 10.5, 0.5)])


# --- ratio metric: delta method ---------------------------------------------------------

# Per-user (clicks, impressions) of two arms; R code:
#   nc <- c(0,1,0,3,1,2); dc <- c(10,12,8,20,9,15)
#   nt <- c(1,2,0,4,2,1); dt <- c(11,10,9,18,12,14)
#   delta <- function(num, den) {n <- length(num); R <- sum(num)/sum(den)
#     v <- (var(num) - 2*R*cov(num, den) + R^2*var(den))/(n*mean(den)^2); c(R, sqrt(v))}
#   hc1 <- function(num, den) {fit <- lm(I(num/den) ~ 1, weights = den); e <- residuals(fit)
#     X <- model.matrix(fit); n <- length(num); B <- solve(t(X) %*% (den*X))
#     M <- t(X) %*% ((den*e)^2*X); c(coef(fit), sqrt(diag(B %*% M %*% B)*n/(n - 1)))}
# delta() and hc1() agree to all 15 digits:
NC, DC = [0, 1, 0, 3, 1, 2], [10, 12, 8, 20, 9, 15]
NT, DT = [1, 2, 0, 4, 2, 1], [11, 10, 9, 18, 12, 14]
RATIO_C = (0.0945945945945946, 0.0259519049284010)  # delta(nc, dc); hc1(nc, dc)
RATIO_T = (0.135135135135135, 0.034819283461271)  # delta(nt, dt); hc1(nt, dt)


def test_ratio_estimate_delta_method_matches_r_cluster_robust():
    r = st.ratio_estimate(**st.ratio_sums([NC, NT], [DC, DT]))
    close(r.estimate, [RATIO_C[0], RATIO_T[0]])
    close(r.se, [RATIO_C[1], RATIO_T[1]])
    z = 1.959963984540054  # R qnorm(.975)
    close(r.low, np.array([RATIO_C[0], RATIO_T[0]]) - z * np.array([RATIO_C[1], RATIO_T[1]]))


def test_ratio_estimate_effective_sample_size_wilson():
    # R: num <- c(0,1,0,3,1); den <- c(10,12,8,20,9); d <- delta(num, den); r0 <- 5/59
    #    deff <- d[2]^2/(r0*(1 - r0)/59)                        -> 0.802416823603265
    #    59/deff                                                -> 73.527870134950092
    #    prop.test(r0*59/deff, 59/deff, correct = FALSE)$conf.int
    #                                     -> 0.0399707660029598 0.1707562741704352
    r = st.ratio_estimate(**st.ratio_sums([0, 1, 0, 3, 1], [10, 12, 8, 20, 9]))
    close(r.se, 0.0324790918509239)  # delta(num, den)[2]
    close(r.design_effect, 0.802416823603265)
    close(r.n_eff, 73.527870134950092)
    close([r.wilson_low, r.wilson_high], [0.0399707660029598, 0.1707562741704352])


def test_compare_ratios_matches_r():
    r = st.compare_ratios(st.ratio_sums(NC, DC), st.ratio_sums(NT, DT))
    # R: a <- delta(nc, dc); b <- delta(nt, dt); d <- b[1] - a[1]; se <- sqrt(a[2]^2 + b[2]^2)
    #    c(d, se, d - qnorm(.975)*se, d + qnorm(.975)*se, 2*pnorm(-abs(d/se)))
    close([r.diff, r.se, r.diff_low, r.diff_high, r.pvalue],
          [0.0405405405405405, 0.0434267644450874, -0.0445743537369352,
           0.1256554348180163, 0.3505421920358973])
    # R: rl <- b[1]/a[1] - 1; rse <- sqrt(b[2]^2/a[1]^2 + b[1]^2*a[2]^2/a[1]^4)
    #    c(rl, rse, rl - qnorm(.975)*rse, rl + qnorm(.975)*rse)
    close([r.rel_lift, r.rel_se, r.rel_low, r.rel_high],
          [0.428571428571429, 0.537676938138185, -0.625256005497185, 1.482398862640042])
    # Fieller, by root-finding on the pivot rather than the closed form:
    # R: q <- qnorm(.975); piv <- function(r) (b[1] - r*a[1])^2/(b[2]^2 + r^2*a[2]^2) - q^2
    #    c(uniroot(piv, c(0, b[1]/a[1]), tol = 1e-14)$root - 1,
    #      uniroot(piv, c(b[1]/a[1], 50), tol = 1e-14)$root - 1)
    close([r.rel_low_fieller, r.rel_high_fieller], [-0.368735409638646, 2.387988701212545])
    assert r.test == "z" and r.reason == ""


def test_fieller_from_estimates_and_variances():
    # Control 1.0 (variance 0.04), treatment 2.0 (variance 0.09), independent; Fieller's
    # interval of treatment/control - 1 by root-finding on the pivot in R:
    #   a <- c(1.0, 0.04); b <- c(2.0, 0.09); q <- qnorm(.975)
    #   piv <- function(r) (b[1] - r*a[1])^2/(b[2] + r^2*a[2]) - q^2
    #   c(uniroot(piv, c(0, 2), tol = 1e-14)$root - 1, uniroot(piv, c(2, 100), tol = 1e-14)$root - 1)
    c = Arm(np.array(1.0), np.array(0.04), np.array(50.0), np.array(np.inf),
            np.array("", dtype=object))
    r = st.compare_arms(c, c._replace(estimate=np.array(2.0), var=np.array(0.09)))
    close([r.rel_low_fieller, r.rel_high_fieller], [0.237689798929911, 2.488533958774381])
    # Unbounded when the control is not significantly different from 0:
    u = st.compare_arms(c._replace(var=np.array(0.5)), c._replace(estimate=np.array(2.0)))
    assert np.isnan(u.rel_low_fieller) and "Fieller interval unbounded" in u.reason


# --- two proportions -----------------------------------------------------------------


def test_compare_proportions_matches_r_and_sequential_reference():
    r = st.compare_proportions(1000, 20000, 1100, 20000, sequential=True)
    # R: prop.test(c(1100, 1000), c(20000, 20000), correct = FALSE)$conf.int
    close([r.diff_low, r.diff_high], [0.000628906794699131, 0.009371093205300864])
    # R: d <- .055 - .05; se <- sqrt(.055*.945/20000 + .05*.95/20000); 2*pnorm(-abs(d/se))
    close([r.se, r.pvalue], [0.00223019057481642, 0.02496390143675564])
    # The reference (GrowthBook-style asymptotic CS, N* = 5000), and R:
    #   seqci <- function(d, v, N, a = .05, Ns = 5000) {r2 <- (-2*log(a) + log(-2*log(a) + 1))/Ns
    #     s2 <- v*N; w <- sqrt(s2)*sqrt(2*(N*r2 + 1)*log(sqrt(N*r2 + 1)/a)/(N^2*r2)); c(d - w, d + w)}
    #   seqci(0.005, .055*.945/20000 + .05*.95/20000, 40000)
    close([r.seq_low, r.seq_high], [-0.00216372411711981, 0.01216372411711981])
    assert round(float(r.seq_low), 7) == -0.0021637
    assert round(float(r.seq_high), 7) == 0.0121637
    # R: seqp <- function(d, v, N, a = .05, Ns = 5000) {r2 <- (-2*log(a) + log(-2*log(a) + 1))/Ns
    #      nr <- N*r2; min(1, sqrt(nr + 1)*exp(-d^2/v*nr/(2*(nr + 1))))}
    #    seqp(0.005, .055*.945/20000 + .05*.95/20000, 40000)
    close(r.seq_pvalue, 0.676397508666304)


def test_compare_proportions_second_case():
    r = st.compare_proportions(50, 1000, 65, 1000, alpha=0.05)
    # R: prop.test(c(65, 50), c(1000, 1000), correct = FALSE)$conf.int
    close([r.diff_low, r.diff_high], [-0.00539445889967802, 0.03539445889967802])
    # R: 2*pnorm(-abs(.015/sqrt(.065*.935/1000 + .05*.95/1000)))
    close(r.pvalue, 0.149431749475635)
    # R: seqci(0.015, .065*.935/1000 + .05*.95/1000, 2000, .1, 1000)
    s = st.compare_proportions(50, 1000, 65, 1000, alpha=0.1, sequential=True, tuning_n=1000)
    close([s.seq_low, s.seq_high], [-0.0140421167902623, 0.0440421167902623])


def test_mixing_rho2_matches_r():
    # R: (-2*log(.05) + log(-2*log(.05) + 1))/5000
    close(st.mixing_rho2(0.05, 5000), 0.00158723092034751)


# --- means: Welch and CUPED ---------------------------------------------------------------

YC = [12.1, 9.8, 15.3, 11.0, 8.7, 13.4, 10.2, 14.8]
YT = [13.5, 12.2, 16.8, 11.9, 15.1, 12.7, 17.3]
XC = [10.0, 9.1, 14.2, 10.5, 8.0, 12.9, 9.9, 13.6]
XT = [12.0, 10.8, 15.0, 10.1, 13.2, 11.5, 15.9]


def test_compare_means_welch_matches_r_t_test():
    r = st.compare_means(st.mean_sums(YC), st.mean_sums(YT))
    # R: tt <- t.test(yt, yc); tt$conf.int; c(tt$statistic, tt$parameter, tt$p.value)
    close([r.diff_low, r.diff_high], [-0.273959215832822, 4.877530644404249])
    close([r.statistic, r.df, r.pvalue],
          [1.9312087729655589, 12.9591088576459743, 0.0756259372753121])
    assert r.test == "welch"
    # R: t.test(yt, yc, conf.level = 0.9)$conf.int
    r90 = st.compare_means(st.mean_sums(YC), st.mean_sums(YT), alpha=0.1)
    close([r90.diff_low, r90.diff_high], [0.190520955700762, 4.413050472870665])
    # R: tt <- t.test(c(6,7,5,9), c(3,5,4,6)); tt$conf.int; tt$parameter; tt$p.value
    s = st.compare_means(st.mean_sums([3.0, 5, 4, 6]), st.mean_sums([6.0, 7, 5, 9]))
    close([s.diff_low, s.diff_high, s.df, s.pvalue],
          [-0.417220622474004, 4.917220622474003, 5.5846153846153843, 0.0837069647040257])


def test_mean_estimate_matches_r():
    # R: t.test(c(2, 4, 9))$conf.int
    m = st.mean_estimate(**st.mean_sums([2.0, 4.0, 9.0]))
    close([m.low, m.high], [-3.9566858950296, 13.9566858950296])


def test_cuped_matches_r_on_adjusted_values():
    # R: y <- c(yc, yt); x <- c(xc, xt); theta <- cov(y, x)/var(x); mx <- mean(x)
    #    c(theta, mx)                                 -> 1.0789344797562 11.78
    #    ac_ <- yc - theta*(xc - mx); at_ <- yt - theta*(xt - mx); tt <- t.test(at_, ac_)
    #    tt$conf.int; c(mean(ac_), mean(at_), tt$statistic, tt$parameter, tt$p.value)
    fit = st.cuped_theta(st.mean_sums(YC, XC), st.mean_sums(YT, XT))
    close([fit.theta, fit.centre], [1.0789344797562, 11.78])
    r = st.compare_means(st.mean_sums(YC, XC), st.mean_sums(YT, XT), covariate=True)
    close([r.diff_low, r.diff_high], [0.0406685169943354, 1.0717792020802310])
    close([r.control, r.treatment, r.statistic, r.df, r.pvalue],
          [12.727095532215934, 13.283319391753217, 2.382098039043350, 10.723460126292801,
           0.036907100044339])
    plain = st.compare_means(st.mean_sums(YC), st.mean_sums(YT))
    assert r.se < plain.se  # the covariate explains most of the spread


# --- multiple comparisons ------------------------------------------------------------------

P = [0.01, 0.04, np.nan, 0.03, 0.005, 0.2, 0.04, 0.5]
# R: p <- c(0.01, 0.04, NA, 0.03, 0.005, 0.2, 0.04, 0.5); p.adjust(p, m)  (NA excluded from n)
P_ADJUST = {
    "bonferroni": [0.070, 0.280, np.nan, 0.210, 0.035, 1.000, 0.280, 1.000],
    "holm": [0.060, 0.160, np.nan, 0.150, 0.035, 0.400, 0.160, 0.500],
    "hochberg": [0.060, 0.120, np.nan, 0.120, 0.035, 0.400, 0.120, 0.500],
    "bh": [0.035, 0.056, np.nan, 0.056, 0.035, 0.233333333333333, 0.056, 0.500],
    "by": [0.09075, 0.14520, np.nan, 0.14520, 0.09075, 0.60500, 0.14520, 1.00000],
}


@pytest.mark.parametrize("method", sorted(P_ADJUST))
def test_adjust_pvalues_matches_r_p_adjust(method):
    close(st.adjust_pvalues(P, method), P_ADJUST[method])  # BH 0.2333.. is printed to 15 digits


def test_adjust_pvalues_per_row_families():
    p = np.array([P, P[::-1]])
    out = st.adjust_pvalues(p, "holm", axis=1)
    close(out[0], P_ADJUST["holm"])
    close(out[1], P_ADJUST["holm"][::-1])


# --- SRM -----------------------------------------------------------------------------------


def test_srm_matches_r_chisq_test():
    # R: chisq.test(c(5123, 4877))                     -> X-squared = 6.0516, p 0.0138937015772487
    # R: chisq.test(c(3050, 2950, 4100), p = c(.3, .3, .4))
    #                                                  -> 3.135313531353135 0.208533252577268
    # R: chisq.test(c(500, 600), p = c(.5, .5))        -> 9.09090909090909172 0.00256883152702272
    two = st.srm_test([[5123, 4877], [500, 600]], [0.5, 0.5])
    close(two.statistic, [6.0516, 9.09090909090909172], rel=1e-4)  # R prints 5 digits
    close(two.statistic[0], (123**2 * 2) / 5000)  # the same statistic by hand, exactly
    close(two.pvalue, [0.0138937015772487, 0.00256883152702272])
    assert two.flag.tolist() == [False, False]
    three = st.srm_test([3050, 2950, 4100], [0.3, 0.3, 0.4])
    close([three.statistic, three.pvalue], [3.135313531353135, 0.208533252577268])
    close(three.relative_deviation,
          [abs(3050 / 10100 / 0.3 - 1), abs(2950 / 10100 / 0.3 - 1), abs(4100 / 10100 / 0.4 - 1)])


def test_srm_flags_at_alpha_and_deviation():
    r = st.srm_test([[10500, 9500], [5050, 4950]], [0.5, 0.5], max_deviation=0.04)
    assert r.pvalue[0] < 0.001 and r.flag.tolist() == [True, False]
    close(r.max_relative_deviation, [0.05, 0.01])


# --- power ---------------------------------------------------------------------------------


def test_power_proportions_matches_r_power_prop_test():
    # R: power.prop.test(n = 5000, p1 = .05, p2 = .06)$power
    close(st.power_proportions(0.05, 0.06, 5000), 0.592221964691476)
    # R: power.prop.test(p1 = .05, p2 = .055, power = .8, tol = 1e-12)$n
    # R: power.prop.test(p1 = .02, p2 = .022, power = .9, sig.level = .01, tol = 1e-12)$n
    close(st.sample_size_proportions([0.05, 0.02], [0.055, 0.022], [0.8, 0.9], alpha=0.05)[0],
          31233.43794013)
    close(st.sample_size_proportions(0.02, 0.022, 0.9, alpha=0.01), 152950.188669974)
    # R: power.prop.test(n = 20000, p1 = .05, power = .8, tol = 1e-12)$p2
    close(st.mde_proportions(0.05, 20000) + 0.05, 0.056284241654531)


def test_power_normal_matches_r_and_statsmodels():
    # R: pnorm(sqrt(3000/2)*0.1/1.3 - qnorm(0.975))
    close(st.power_normal(0.1, 1.3, 3000), 0.845958795735971)
    # R: 2*(qnorm(.975) + qnorm(.8))^2*1.3^2/0.1^2
    close(st.sample_size_normal(0.1, 1.3), 2652.92135020999)
    # R: (qnorm(.975) + qnorm(.8))*1.3*sqrt(2/3000)
    close(st.mde_normal(1.3, 3000), 0.0940376050703475)
    # R: (qnorm(.995) + qnorm(.9))*1.3*sqrt(1/3000 + 1/(2*3000))
    close(st.mde_normal(1.3, 3000, power=0.9, alpha=0.01, ratio=2), 0.112129755899204)
    # statsmodels NormalIndPower (counts both tails; the far tail is < 1e-7 here)
    sm = NormalIndPower().power(effect_size=0.1 / 1.3, nobs1=4000, alpha=0.05, ratio=1.5)
    close(st.power_normal(0.1, 1.3, 4000, ratio=1.5), sm, rel=1e-6)
    n_sm = NormalIndPower().solve_power(effect_size=0.12 / 1.3, power=0.9, alpha=0.05, ratio=1.0)
    close(st.sample_size_normal(0.12, 1.3, power=0.9), n_sm, rel=1e-5)


def test_ratio_power_uses_linearised_sd():
    sums = st.ratio_sums([0, 1, 0, 3, 1], [10, 12, 8, 20, 9])
    sd = 0.0324790918509239 * np.sqrt(5)  # R: delta(num, den)[2]*sqrt(5)
    close(st.ratio_unit_sd(sums), sd)
    close(st.mde_ratio(sums, n=10000, relative=False), st.mde_normal(sd, 10000))
    close(st.sample_size_ratio(sums, 0.05), st.sample_size_normal(0.05 * 5 / 59, sd))


# --- anomaly -------------------------------------------------------------------------------


def test_anomaly_scores_match_r():
    # R: b <- c(10, 12, 11, 13, 9, 30, 11); c(mean(b), sd(b), median(b), mad(b))
    #    -> 13.71428571428571 7.29644401322283 11 1.4826
    #    c((25 - mean(b))/sd(b), (25 - median(b))/mad(b)) -> 1.54674170942201 9.44287063267233
    b = [10, 12, 11, 13, 9, 30, 11]
    r = st.anomaly_scores(25.0, b)
    close([r.mean, r.sd, r.median, r.mad], [13.71428571428571, 7.29644401322283, 11, 1.4826])
    close([r.z, r.robust_z], [1.54674170942201, 9.44287063267233])
    assert r.flag and r.state == "anomaly"
    assert not st.anomaly_scores(25.0, b, score="classic").flag
