"""Segment-vs-rest interaction test (docs/statistics.md, "Segments whose effect differs").

Reference: the delta method computed directly on simulated per-user values (Deng, Knoblich & Lu
2018, "Applying the Delta Method in Metric Analytics", the variance of a ratio of means through
the per-user linearization ``(num - R den) / mean(den)``), with numpy on the raw values of each
group instead of the sufficient statistics. Calibration: 2400 simulated A/A experiments.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

import expkit.stats as st

SHARES = (0.4, 0.3, 0.2, 0.1)
"""Shares of the users in each value of the simulated user attribute (e.g. four regions)."""


def _users(rng: np.random.Generator, shape: tuple[int, ...], lift: np.ndarray | float = 0.0):
    """Per-user impressions (Poisson of Gamma activity) and clicks (Beta propensities times 1 + lift)."""
    impressions = rng.poisson(rng.gamma(0.8, 25.0, size=shape)).astype(float)
    ctr = np.minimum(rng.beta(0.5, 15.0, size=shape) * (1.0 + np.asarray(lift)), 1.0)
    return rng.binomial(impressions.astype(np.int64), ctr).astype(float), impressions


def _bounds(users: int) -> list[int]:
    return [0, *np.round(np.cumsum(SHARES) * users).astype(int).tolist()]


def _ratio_and_var(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """Closed-form delta method on raw per-user values (the reference)."""
    r = num.sum() / den.sum()
    u = (num - r * den) / den.mean()
    return float(r), float(u.var(ddof=1) / len(u))


def test_matches_delta_method_on_raw_values() -> None:
    rng = np.random.default_rng(20261205)
    users = 5000
    edges = _bounds(users)
    lift = np.zeros(users)
    lift[edges[1]:edges[2]] = 0.5  # segment 1 has a +50% effect
    c_num, c_den = _users(rng, (users,))
    t_num, t_den = _users(rng, (users,), lift)
    seg_c = [st.ratio_sums(c_num[a:b], c_den[a:b]) for a, b in zip(edges, edges[1:], strict=False)]
    seg_t = [st.ratio_sums(t_num[a:b], t_den[a:b]) for a, b in zip(edges, edges[1:], strict=False)]
    stack = {k: np.array([s[k] for s in seg_c]) for k in seg_c[0]}
    stack_t = {k: np.array([s[k] for s in seg_t]) for k in seg_t[0]}
    r = st.segment_interaction(stack, st.ratio_sums(c_num, c_den), stack_t, st.ratio_sums(t_num, t_den))
    assert (r.reason == "").all()
    for i, (a, b) in enumerate(zip(edges, edges[1:], strict=False)):
        inside = np.zeros(users, dtype=bool)
        inside[a:b] = True
        lifts, variances = [], []
        for mask in (inside, ~inside):
            rc, vc = _ratio_and_var(c_num[mask], c_den[mask])
            rt, vt = _ratio_and_var(t_num[mask], t_den[mask])
            lifts.append(rt / rc - 1)
            variances.append(vt / rc**2 + rt**2 * vc / rc**4)
        se = np.sqrt(sum(variances))
        z = (lifts[0] - lifts[1]) / se
        assert r.rel_lift[i] == pytest.approx(lifts[0], rel=1e-9)
        assert r.rest_rel_lift[i] == pytest.approx(lifts[1], rel=1e-9)
        assert r.difference[i] == pytest.approx(lifts[0] - lifts[1], rel=1e-9)
        assert r.se[i] == pytest.approx(se, rel=1e-9)
        assert r.pvalue[i] == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-9)
    assert r.pvalue[1] < 1e-3 and r.pvalue[1] == r.pvalue.min()  # the planted segment stands out
    # BH over the four tests: statsmodels' multipletests is the reference of adjust_pvalues.
    from statsmodels.stats.multitest import multipletests

    assert np.allclose(r.adj_pvalue, multipletests(r.pvalue, method="fdr_bh")[1])


def test_rest_sums_stay_exact_for_integers() -> None:
    total = {"n": 10**12 + 5, "sum_num": 3, "sum_den": 7, "sum_num2": 9, "sum_den2": 49, "sum_numden": 21}
    seg = {"n": 10**12, "sum_num": 1, "sum_den": 2, "sum_num2": 1, "sum_den2": 4, "sum_numden": 2}
    assert st.rest_sums(seg, total)["n"] == 5


def test_degenerate_segments_give_nan_with_reason() -> None:
    s = st.ratio_sums([1.0, 0.0, 2.0, 1.0], [5.0, 4.0, 6.0, 5.0])
    whole = st.segment_interaction(s, s, s, s)  # the segment is everyone: no rest
    assert np.isnan(whole.pvalue) and whole.reason == "no users outside the segment"
    bigger = st.segment_interaction(dict(s, n=10.0), s, s, s)
    assert np.isnan(bigger.pvalue) and "not a user-level segment" in bigger.reason


def test_small_segments_are_left_out() -> None:
    s = st.ratio_sums([1.0, 0.0, 2.0, 1.0], [5.0, 4.0, 6.0, 5.0])
    total = {k: 3 * v for k, v in s.items()}
    r = st.segment_interaction(s, total, s, total, min_users=5)
    assert np.isnan(r.pvalue) and r.reason == "fewer than 5 users per arm in the segment or the rest"
    assert st.segment_interaction(s, total, s, total, min_users=4).reason == ""


def test_aa_calibration_over_simulated_experiments() -> None:
    """2400 A/A experiments (four batches of 600), 2 × 5000 users, two user attributes (four and
    three values, each at least 1000 users per arm as the lift tile requires): per-test false
    positives near 5%, and the share of experiments flagging any segment after Benjamini–Hochberg
    over the seven tests at most 5% (Monte Carlo s.e. 0.45 points)."""
    reps, users = 600, 5000
    edges = [0, 1750, 3000, 4000, 5000]  # shares 0.35, 0.25, 0.2, 0.2 of the first attribute
    pvalues = []
    for seed in (7, 8, 9, 10):
        rng = np.random.default_rng(seed)
        sums = []
        for num, den in [_users(rng, (reps, users)) for _ in range(2)]:
            parts = [st.ratio_sums(num[:, a:b], den[:, a:b], axis=1)
                     for a, b in zip(edges, edges[1:], strict=False)]
            # The second attribute cuts across the first: every third user (users are exchangeable).
            parts += [st.ratio_sums(num[:, v::3], den[:, v::3], axis=1) for v in range(3)]
            segment = {k: np.stack([p[k] for p in parts], axis=1) for k in parts[0]}
            total = {k: v[:, None] for k, v in st.ratio_sums(num, den, axis=1).items()}
            sums.append((segment, total))
        r = st.segment_interaction(sums[0][0], sums[0][1], sums[1][0], sums[1][1], min_users=1000)
        assert r.pvalue.shape == (reps, 7) and (r.reason == "").all()
        pvalues.append(r.pvalue)
    p = np.concatenate(pvalues)
    per_test = float(np.mean(p < 0.05))
    assert 0.04 <= per_test <= 0.06, per_test
    any_flag = float(np.mean((st.adjust_pvalues(p, "bh", axis=1) < 0.05).any(axis=1)))
    assert any_flag <= 0.05, any_flag


def test_power_for_a_planted_segment() -> None:
    """A +50% effect in a 30% segment (2 × 5000 users) is found in most of 200 experiments."""
    reps, users = 200, 5000
    rng = np.random.default_rng(11)
    edges = _bounds(users)
    lift = np.zeros(users)
    lift[edges[1]:edges[2]] = 0.5
    sums = []
    for effect in (0.0, lift):
        num, den = _users(rng, (reps, users), effect)
        seg = st.ratio_sums(num[:, edges[1]:edges[2]], den[:, edges[1]:edges[2]], axis=1)
        sums.append((seg, st.ratio_sums(num, den, axis=1)))
    r = st.segment_interaction(sums[0][0], sums[0][1], sums[1][0], sums[1][1])
    assert float(np.mean(r.pvalue < 0.05)) > 0.8
    assert np.median(r.rel_lift) == pytest.approx(0.5, abs=0.05)
    assert abs(np.median(r.rest_rel_lift)) < 0.03
