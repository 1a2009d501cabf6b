"""Progress towards the required sample: required users per arm for a relative MDE at
power 0.8 from the observed per-user variance (CUPED-adjusted when given), fraction
reached and days remaining.

References: statsmodels' ``NormalIndPower().solve_power`` (two-sample normal test;
it also counts the far tail, negligible here, hence rtol 1e-5) and closed forms.
"""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower

import expkit.stats as st
from expkit.stats.progress import progress, required_users


@pytest.mark.parametrize("sd,baseline,mde,power,alpha", [
    (0.5, 2.0, 0.05, 0.8, 0.05), (0.04, 0.05, 0.03, 0.8, 0.05), (1.3, 10.0, 0.02, 0.9, 0.1),
])
def test_required_users_matches_statsmodels(sd, baseline, mde, power, alpha):
    expected = NormalIndPower().solve_power(effect_size=mde * baseline / sd, alpha=alpha,
                                            power=power, ratio=1.0)
    assert required_users(sd**2, baseline, mde, power, alpha) == pytest.approx(expected, rel=1e-5)


def test_progress_of_a_ratio_comparison_uses_the_observed_per_user_variance():
    rng = np.random.default_rng(3)
    imps = rng.poisson(rng.gamma(0.8, 25.0, size=(2, 3000))).astype(float)
    clicks = rng.binomial(imps.astype(np.int64), rng.beta(0.5, 15.0, size=imps.shape)).astype(float)
    c, t = st.ratio_sums(clicks[0], imps[0]), st.ratio_sums(clicks[1, :2800], imps[1, :2800])
    r = st.compare_ratios(c, t)
    p = progress(r, 3000, 2800, days_run=5, mde=0.05)
    # Per-user variance of the linearisation, averaged over the arms (closed form):
    var_c = float(st.ratio_unit_sd(c)) ** 2
    var_t = float(st.ratio_unit_sd(t)) ** 2
    sd = np.sqrt((var_c + var_t) / 2)
    expected = NormalIndPower().solve_power(effect_size=0.05 * float(r.control) / sd, alpha=0.05,
                                            power=0.8, ratio=1.0)
    assert p.required_per_arm == pytest.approx(expected, rel=1e-5)
    assert p.users_per_arm == 2800 and p.users_per_day == 560
    assert p.fraction == pytest.approx(2800 / expected, rel=1e-5)
    assert p.days_remaining == np.ceil((expected - 2800) / 560)
    assert p.reason == ""


def test_cuped_lowers_the_required_sample():
    rng = np.random.default_rng(8)
    act = rng.gamma(0.8, 25.0, size=(2, 2000))
    ctr = rng.beta(0.5, 15.0, size=act.shape)
    imps, pre = rng.poisson(act), rng.poisson(act)
    clicks, pre_clicks = rng.binomial(imps, ctr), rng.binomial(pre, ctr)
    arms = [st.ratio_sums(clicks[i], imps[i], pre_num=pre_clicks[i], pre_den=pre[i]) for i in (0, 1)]
    plain_cmp, adjusted_cmp = st.compare_ratios(*arms), st.compare_ratios(*arms, covariate=True)
    plain, adjusted = progress(plain_cmp, 2000, 2000, 7), progress(adjusted_cmp, 2000, 2000, 7)
    # n ∝ σ² / baseline²; with equal arms σ² ∝ se² of the difference, so the required
    # sample shrinks by (1 - variance reduction) times the squared ratio of baselines.
    expected = (1 - adjusted_cmp.variance_reduction) * (plain_cmp.control / adjusted_cmp.control) ** 2
    assert adjusted.required_per_arm / plain.required_per_arm == pytest.approx(expected, rel=1e-9)
    assert adjusted.required_per_arm < 0.85 * plain.required_per_arm


def test_progress_reached_and_undefined_rows():
    arm = st.compare_proportions([100, 0, 100], [1000, 1000, 1000], [110, 0, 100], [1000, 1000, 1000])
    p = progress(arm, np.array([1000, 1000, 1000]), np.array([1000, 1000, 1000]), days_run=[7, 7, 0],
                 mde=[0.5, 0.05, 0.05])
    assert p.days_remaining[0] == 0 and p.fraction[0] > 1
    assert np.isnan(p.days_remaining[1]) and p.reason[1] == "zero variance in both arms"
    assert np.isnan(p.days_remaining[2]) and p.reason[2] == "no new users per day observed"
