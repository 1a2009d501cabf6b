"""The lift by exposure age and its trend (docs/statistics.md, "Novelty and primacy").

Reference: statsmodels. The per-age ratios and their user-clustered covariance are the
coefficients and the cluster-robust covariance (``cov_type="cluster"``, groups = user, no
small-sample correction) of ``WLS(num / den ~ one indicator per arm and age, weights = den)``
fitted on the simulated per-user, per-age values; the lifts' covariance follows from the
Jacobian of ``R_t / R_c - 1``, and the slope is the coefficient of a second statsmodels ``WLS``
of the lifts on the age with weights ``1 / (1/n_c + 1/n_t)`` (users per arm at each age), its
variance ``A Σ_L A'`` with ``A`` the rows of ``(X'WX)⁻¹X'W`` (closed form of that fit).
Calibration: simulated experiments with a constant lift (and A/A) flag a trend at the nominal
5% rate.
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as sps

import expkit.stats as st

DAYS = 14
TAIL = 7


def _simulate(rng: np.random.Generator, users: int, lift_by_age: np.ndarray, reps: int = 1) -> dict[str, np.ndarray]:
    """Per replication, arm and user: impressions and clicks per age bucket (``(reps, 2, users, TAIL + 1)``).

    Users arrive uniformly over the days, are active on each later day with their own probability,
    have a Gamma activity and a Beta click propensity (clicks cluster by user), and the treatment
    multiplies the propensity by ``1 + lift_by_age[age]`` (``age``: days since arrival).
    """
    shape = (reps, 2, users)
    first = rng.integers(0, DAYS, size=shape)
    active_p = rng.beta(2.0, 2.0, size=shape)
    activity = rng.gamma(0.8, 50.0, size=shape)
    ctr = rng.beta(0.6, 15.0, size=shape)
    day = np.arange(DAYS)
    age = day - first[..., None]
    active = (age >= 0) & ((age == 0) | (rng.random((*shape, DAYS)) < active_p[..., None]))
    age_c = np.clip(age, 0, None)
    lift = np.where(np.arange(2)[None, :, None, None] == 1, np.asarray(lift_by_age)[np.minimum(age_c, DAYS - 1)], 0.0)
    imp = rng.poisson(activity[..., None] * active)
    clk = rng.binomial(imp, np.minimum(ctr[..., None] * (1 + lift), 1.0))
    bucket = np.minimum(age_c, TAIL)
    onehot = (bucket[..., None] == np.arange(TAIL + 1)) & active[..., None]
    return {"num": np.einsum("...dk,...d->...k", onehot, clk.astype(float)),
            "den": np.einsum("...dk,...d->...k", onehot, imp.astype(float)),
            "seen": onehot.any(axis=-2)}


def _arm_sums(num: np.ndarray, den: np.ndarray, seen: np.ndarray) -> dict[str, np.ndarray]:
    """The sufficient statistics of one arm (users on the second-to-last axis)."""
    return {"n": seen.sum(axis=-2).astype(float), "sum_num": num.sum(axis=-2), "sum_den": den.sum(axis=-2),
            "cross_nn": np.einsum("...ua,...ub->...ab", num, num),
            "cross_nd": np.einsum("...ua,...ub->...ab", num, den),
            "cross_dd": np.einsum("...ua,...ub->...ab", den, den)}


def test_matches_statsmodels_cluster_robust_wls() -> None:
    rng = np.random.default_rng(20261205)
    truth = 0.05 + 0.25 * 2.0 ** (-np.arange(DAYS) / 2.0)
    d = _simulate(rng, 1500, truth)
    num, den, seen = d["num"][0], d["den"][0], d["seen"][0]
    ages = np.arange(TAIL + 1, dtype=float)
    r = st.exposure_trend(_arm_sums(num[0], den[0], seen[0]), _arm_sums(num[1], den[1], seen[1]), ages)
    assert r.reason == ""

    # per user and age with impressions: y = num / den, weight den, one indicator per (arm, age) cell
    arm_i, user_i, age_i = np.nonzero(den > 0)
    cell = arm_i * (TAIL + 1) + age_i
    x = np.eye(2 * (TAIL + 1))[cell]
    fit = sm.WLS(num[arm_i, user_i, age_i] / den[arm_i, user_i, age_i], x, weights=den[arm_i, user_i, age_i]).fit(
        cov_type="cluster", cov_kwds={"groups": arm_i * 10**6 + user_i, "use_correction": False})
    ratio, cov = np.asarray(fit.params), np.asarray(fit.cov_params())
    rc, rt = ratio[: TAIL + 1], ratio[TAIL + 1:]
    jac = np.hstack([np.diag(-rt / rc**2), np.diag(1 / rc)])  # ∂(R_t / R_c - 1) / ∂(R_c, R_t)
    lift, cov_lift = rt / rc - 1, jac @ cov @ jac.T
    np.testing.assert_allclose(r.rel_lift, lift, rtol=1e-10)

    users = seen.sum(axis=1)  # per arm and age
    w = 1 / (1 / users[0] + 1 / users[1])
    design = sm.add_constant(ages)
    second = sm.WLS(lift, design, weights=w).fit()
    a = np.linalg.solve(design.T @ (w[:, None] * design), design.T * w)  # (X'WX)^-1 X'W
    se = float(np.sqrt(a[1] @ cov_lift @ a[1]))
    assert float(r.slope) == pytest.approx(float(second.params[1]), rel=1e-9)
    assert float(r.se) == pytest.approx(se, rel=1e-8)
    assert float(r.pvalue) == pytest.approx(2 * sps.norm.sf(abs(second.params[1]) / se), rel=1e-8)
    assert float(r.start) == pytest.approx(float(second.params[0]), rel=1e-9)
    assert float(r.end) == pytest.approx(float(second.params[0] + TAIL * second.params[1]), rel=1e-9)
    assert float(r.low) == pytest.approx(float(second.params[1]) - sps.norm.ppf(0.975) * se, rel=1e-8)


def test_vectorized_over_leading_axes_and_undefined_cases() -> None:
    rng = np.random.default_rng(7)
    d = _simulate(rng, 300, np.full(DAYS, 0.1), reps=3)
    c = _arm_sums(d["num"][:, 0], d["den"][:, 0], d["seen"][:, 0])
    t = _arm_sums(d["num"][:, 1], d["den"][:, 1], d["seen"][:, 1])
    ages = np.arange(TAIL + 1, dtype=float)
    batch = st.exposure_trend(c, t, ages)
    assert np.shape(batch.slope) == (3,) and np.shape(batch.rel_lift) == (3, TAIL + 1)
    for i in range(3):
        one = st.exposure_trend({k: v[i] for k, v in c.items()}, {k: v[i] for k, v in t.items()}, ages)
        assert float(one.slope) == pytest.approx(float(batch.slope[i]), rel=1e-12)
        assert float(one.se) == pytest.approx(float(batch.se[i]), rel=1e-12)
    # a single age: no trend, NaN with the reason; an empty arm: the same
    single = st.exposure_trend({k: v[0][..., :1] if v.ndim == 2 else v[0][:1, :1] for k, v in c.items()},
                               {k: v[0][..., :1] if v.ndim == 2 else v[0][:1, :1] for k, v in t.items()}, [0.0])
    assert np.isnan(single.slope) and "fewer than 2 exposure ages" in single.reason and single.verdict == "none"
    empty = {k: np.zeros_like(v[0]) for k, v in c.items()}
    r = st.exposure_trend(empty, {k: v[0] for k, v in t.items()}, ages)
    assert np.isnan(r.slope) and r.reason != "" and np.isnan(r.rel_lift).all()


@pytest.mark.slow
@pytest.mark.parametrize("lift", [0.0, 0.10], ids=["aa", "constant_lift"])
def test_no_trend_flagged_beyond_the_nominal_rate(lift: float) -> None:
    """1000 simulated experiments (2 × 800 users over 14 days, heterogeneous users seen at several
    ages) with a lift constant over exposure age: the share with p < 0.05 is 5% ± sampling error."""
    rng = np.random.default_rng(11 if lift else 12)
    reps, flagged, covered = 0, 0, 0
    for _ in range(10):
        d = _simulate(rng, 800, np.full(DAYS, lift), reps=100)
        c = _arm_sums(d["num"][:, 0], d["den"][:, 0], d["seen"][:, 0])
        t = _arm_sums(d["num"][:, 1], d["den"][:, 1], d["seen"][:, 1])
        r = st.exposure_trend(c, t, np.arange(TAIL + 1, dtype=float))
        assert (r.reason == "").all()
        reps += 100
        flagged += int((r.pvalue < 0.05).sum())
        covered += int(((r.low <= 0) & (0 <= r.high)).sum())
    rate = flagged / reps
    print(f"lift {lift}: {flagged}/{reps} = {rate:.1%} flag a trend; slope interval covers 0 in {covered / reps:.1%}")
    assert 0.03 <= rate <= 0.07


@pytest.mark.slow
def test_planted_novelty_is_detected() -> None:
    """+30% on day 0 decaying with a half-life of 2 days to +5%: found in most of 200 runs of 2 × 4000 users."""
    rng = np.random.default_rng(13)
    truth = 0.05 + 0.25 * 2.0 ** (-np.arange(DAYS) / 2.0)
    verdicts = []
    for _ in range(8):
        d = _simulate(rng, 4000, truth, reps=25)
        c = _arm_sums(d["num"][:, 0], d["den"][:, 0], d["seen"][:, 0])
        t = _arm_sums(d["num"][:, 1], d["den"][:, 1], d["seen"][:, 1])
        verdicts.append(st.exposure_trend(c, t, np.arange(TAIL + 1, dtype=float)).verdict)
    power = float((np.concatenate(verdicts) == "decaying").mean())
    print(f"planted novelty found as decaying in {power:.1%} of 200 runs")
    assert power >= 0.8
