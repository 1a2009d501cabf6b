"""Edge cases give NaN with an explicit reason: no exception, no warning, no misleading 0.

RuntimeWarnings are errors here, so any numpy 0/0 leaking out fails the test.
"""

from __future__ import annotations

import numpy as np
import pytest

import expkit.stats as st

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def ratio_arm(n, num, den, num2, den2, numden):
    return {"n": n, "sum_num": num, "sum_den": den, "sum_num2": num2, "sum_den2": den2,
            "sum_numden": numden}


GOOD = ratio_arm(1000, 300.0, 10000.0, 500.0, 150000.0, 4000.0)


def test_proportions_edge_rows():
    r = st.compare_proportions(
        x_control=[50, 0, 0, 5, np.nan, 12, 50],
        n_control=[1000, 0, 100, 100, 100, 10, 1000],
        x_treatment=[60, 5, 0, 0, 5, 3, 0],
        n_treatment=[1000, 100, 100, 100, 100, 10, 0],
        sequential=True,
    )
    assert list(r.reason) == [
        "",
        "control: no trials",
        "zero variance in both arms",
        "",
        "control: missing input",
        "control: invalid counts (need 0 <= successes <= trials)",
        "treatment: no trials",
    ]
    assert np.isfinite([r.diff[0], r.pvalue[0], r.seq_low[0]]).all()
    for i in (1, 2, 4, 5, 6):
        assert np.isnan([r.diff_low[i], r.diff_high[i], r.pvalue[i], r.seq_pvalue[i]]).all()
    # 0/100 vs 0/100: the difference is 0, but no interval or p-value pretends to know more.
    assert r.diff[2] == 0 and np.isnan(r.se[2])
    # 5/100 vs 0/100: the difference is fine, a lift of -100% has no delta interval.
    assert np.isfinite(r.diff_low[3]) and r.rel_lift[3] == -1


def test_zero_control_gives_nan_lift_with_reason():
    r = st.compare_proportions(0, 100, 5, 100)
    assert np.isfinite(r.diff_low) and np.isnan(r.rel_lift) and np.isnan(r.rel_low_fieller)
    assert r.reason == "relative lift undefined: control estimate is 0"
    assert isinstance(r.reason, str) and isinstance(r.diff, float)


def test_ratio_edge_rows():
    c = {k: np.array([v, 0, 1, v, v, np.nan], dtype=float) for k, v in GOOD.items()}
    c["sum_den"][3] = 0.0  # no impressions at all
    for k in ("sum_den", "sum_den2", "sum_numden", "sum_num", "sum_num2"):
        c[k][2] = {"sum_num": 1, "sum_num2": 1, "sum_den": 10, "sum_den2": 100,
                   "sum_numden": 10}[k]
    # row 4: every user has the same ratio (num = 0.1 den exactly): zero variance
    c["n"][4], c["sum_num"][4], c["sum_den"][4] = 4, 4.0, 40.0
    c["sum_num2"][4], c["sum_den2"][4], c["sum_numden"][4] = 4.0, 400.0, 40.0
    r = st.compare_ratios(c, GOOD, sequential=True)
    assert list(r.reason) == [
        "",
        "control: no units",
        "control: fewer than 2 units: no variance",
        "control: zero denominator",
        "",
        "control: missing input",
    ]
    assert np.isnan(r.pvalue[1:4]).all() and np.isnan(r.pvalue[5])
    assert r.control[2] == 0.1  # one user: the estimate exists, its variance does not
    assert r.control_se[4] == 0 and np.isfinite(r.pvalue[4])  # treatment still varies
    est = st.ratio_estimate(**c)
    assert est.reason[4] == "zero variance" and np.isnan(est.low[4]) and np.isnan(est.se[4])


def test_ratio_estimate_zero_clicks_is_not_a_zero_width_interval():
    r = st.ratio_estimate(n=50, sum_num=0, sum_den=400, sum_num2=0, sum_den2=4000,
                          sum_numden=0)
    assert r.estimate == 0 and np.isnan(r.se) and np.isnan(r.low) and np.isnan(r.wilson_low)
    assert r.reason == "zero variance"


def test_ratio_estimate_not_a_proportion():
    depth = st.ratio_estimate(**st.ratio_sums([5, 7, 3], [1, 2, 1]))
    assert depth.estimate > 1 and np.isfinite(depth.low)
    assert np.isnan(depth.wilson_low) and "outside (0, 1)" in depth.reason


def test_means_edge_rows():
    c = {"n": np.array([10, 1, 10, 0]), "sum_y": np.array([50.0, 5, 50, 0]),
         "sum_y2": np.array([260.0, 25, 250, 0])}
    t = {"n": 10, "sum_y": 60.0, "sum_y2": 380.0}
    r = st.compare_means(c, t)
    assert list(r.reason) == ["", "control: fewer than 2 units: no variance", "",
                              "control: no units"]
    assert r.control_se[2] == 0 and np.isfinite(r.pvalue[2]) and r.df[2] == 9
    both_constant = st.compare_means({"n": 5, "sum_y": 10.0, "sum_y2": 20.0},
                                     {"n": 5, "sum_y": 15.0, "sum_y2": 45.0})
    assert both_constant.reason == "zero variance in both arms"
    assert both_constant.diff == 1 and np.isnan(both_constant.pvalue)


def test_cuped_with_constant_covariate_is_plain_welch():
    c = st.mean_sums([3.0, 5.0, 4.0], x=[1.0, 1.0, 1.0])
    t = st.mean_sums([6.0, 7.0, 5.0], x=[1.0, 1.0, 1.0])
    a = st.compare_means(c, t, covariate=True)
    b = st.compare_means(c, t)
    assert a.pvalue == b.pvalue and st.cuped_theta(c, t).theta == 0


def test_cuped_missing_covariate_keys_raise_clearly():
    with pytest.raises(KeyError, match="sum_x"):
        st.compare_means(st.mean_sums([1.0, 2.0]), st.mean_sums([1.0, 3.0]), covariate=True)


def test_proportion_interval_invalid_rows():
    for method in st.PROPORTION_METHODS:
        low, high = st.proportion_interval([0, 5, -1, 3, np.nan], [0, 3, 10, 10, 10], method)
        assert np.isnan(low[:3]).all() and np.isnan(high[:3]).all() and np.isnan(low[4])
        assert 0 <= low[3] <= 0.3 <= high[3] <= 1


def test_srm_edge_rows():
    r = st.srm_test([[0, 0], [np.nan, 3], [-1, 5], [10, 12]], [0.5, 0.5])
    assert list(r.reason) == ["no units", "missing input", "invalid counts (negative)", ""]
    assert r.flag.tolist() == [False, False, False, False]
    one = st.srm_test([100], [1.0])
    assert np.isnan(one.pvalue) and one.reason == "need at least 2 arms"
    with pytest.raises(ValueError, match="sum to 1"):
        st.srm_test([10, 10], [0.5, 0.4])


def test_adjust_pvalues_nan_and_errors():
    assert np.isnan(st.adjust_pvalues([np.nan, np.nan], "bh")).all()
    assert st.adjust_pvalues(0.2, "holm") == 0.2
    with pytest.raises(ValueError, match="unknown method"):
        st.adjust_pvalues([0.1], "fdr")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        st.adjust_pvalues([1.5], "bh")


def test_anomaly_edge_points():
    base = [[10, 11, 9, 10, 12], [np.nan, 5, np.nan, np.nan, np.nan],
            [7, 7, 7, 7, 7], [7, 7, 7, 7, 7], [10, 11, 9, 10, 12]]
    r = st.anomaly_scores([10.5, 5.0, 7.0, 8.0, np.nan], base)
    assert list(r.state) == ["normal", "insufficient_history", "normal", "anomaly", "missing"]
    assert not r.flag[1] and np.isnan(r.z[1]) and "insufficient history" in r.reason[1]
    assert r.robust_z[2] == 0 and r.robust_z[3] == np.inf
    up = st.anomaly_scores([30.0, 0.0], [[10, 11, 9, 10, 12]] * 2, side="up")
    assert up.flag.tolist() == [True, False]
    with pytest.raises(ValueError):
        st.anomaly_scores([1.0], [[1.0]], side="left")


def test_mad_zero_falls_back_to_mean_absolute_deviation():
    base = [5, 5, 5, 5, 5, 9, 1]  # MAD = 0, mean |b - median| = 8/7
    r = st.anomaly_scores(7.0, base)
    np.testing.assert_allclose(r.mad, np.sqrt(np.pi / 2) * 8 / 7)
    assert np.isfinite(r.robust_z)


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="alpha"):
        st.compare_proportions(1, 10, 2, 10, alpha=1.5)
    with pytest.raises(ValueError, match="unknown method"):
        st.proportion_interval(1, 10, method="exact")


def test_results_convert_to_frames():
    r = st.compare_ratios({k: np.repeat(v, 3) for k, v in GOOD.items()}, GOOD)
    frame = r.to_frame()
    assert frame.shape[0] == 3 and {"diff", "pvalue", "reason", "test"} <= set(frame.columns)
    one = st.compare_proportions(1, 10, 2, 10).to_frame()
    assert one.shape[0] == 1
    srm = st.srm_test([[10, 12], [11, 11]], [0.5, 0.5]).to_frame()
    assert {"observed_share_0", "observed_share_1"} <= set(srm.columns)
