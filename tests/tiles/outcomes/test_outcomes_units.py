"""The outcome tiles' building blocks on hand-made sums: more than two arms, status rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from expkit.estimates import compare_frame
from expkit.readers import STAT_COLUMNS
from expkit.stats import compare_ratios, srm_test
from expkit.stats.moments import ratio_sums
from expkit.tiles.allocation import allocation_status
from expkit.tiles.lift import lift_status
from expkit.tiles.srm import arm_srm_pvalues

RNG = np.random.default_rng(5)


def _arm(users: int, rate: float) -> dict:
    imps = RNG.poisson(40, users)
    return ratio_sums(RNG.binomial(imps, rate), imps)


def test_compare_frame_three_arms_matches_stats() -> None:
    """Each treatment against the control, one vectorized call: the same numbers as compare_ratios."""
    sums = {"control": _arm(900, 0.03), "t1": _arm(450, 0.033), "t2": _arm(430, 0.03)}
    stats = pd.DataFrame([{"metric": "ctr", "bucket": a, "slice_value": "all", **s} for a, s in sums.items()])
    stats[STAT_COLUMNS] = stats[STAT_COLUMNS].astype(float)
    frame = compare_frame(stats, "control", ["t1", "t2"], n_star=2000)
    assert list(frame["bucket"]) == ["t1", "t2"]
    for row in frame.itertuples():
        ref = compare_ratios(sums["control"], sums[row.bucket], sequential=True, tuning_n=2000)
        assert row.rel_lift == pytest.approx(float(ref.rel_lift), rel=1e-12)
        assert (row.seq_low, row.seq_high) == pytest.approx((float(ref.seq_rel_low), float(ref.seq_rel_high)))
        assert row.fieller_low == pytest.approx(float(ref.rel_low_fieller))
        assert row.users_control == 900


def test_arm_srm_three_arms() -> None:
    """Only the arm that lost users is flagged against the control; the control carries the overall test."""
    users, shares = np.array([5000.0, 2480.0, 2150.0]), np.array([0.5, 0.25, 0.25])
    p = arm_srm_pvalues(users, shares, control=0)
    assert p[0] == pytest.approx(float(srm_test(users, shares).pvalue))
    assert p[1] > 0.5 and p[2] < 1e-6


@pytest.mark.parametrize(("deviation", "srm", "status"),
                         [(0.0, False, "ok"), (0.05, False, "ok"), (0.051, False, "warn"), (0.10, False, "warn"),
                          (0.101, False, "breach"), (0.0, True, "breach")])
def test_allocation_status(deviation: float, srm: bool, status: str) -> None:
    assert allocation_status(deviation, srm, 0.05) == status


def test_lift_status() -> None:
    row = {"slice_value": "all", "metric": "ctr", "pvalue": 0.2, "arm_srm": False, "seq_low": -0.05, "seq_high": 0.1}
    frame = pd.DataFrame([row, dict(row, slice_value="eu", seq_low=-0.3, seq_high=-0.2)])
    up, down = {"ctr": "increase"}, {"ctr": "decrease"}
    assert lift_status(frame, up) == "ok"  # a sliced loss alone does not set the tile's status
    assert lift_status(frame.assign(seq_low=-0.05, seq_high=-0.01), up) == "warn"
    # a metric where lower is better (an error rate): the same interval is a win
    assert lift_status(frame.assign(seq_low=-0.05, seq_high=-0.01), down) == "ok"
    assert lift_status(frame.assign(seq_low=0.01, seq_high=0.05), down) == "warn"
    assert lift_status(frame.assign(arm_srm=True), up) == "breach"
    assert lift_status(frame.assign(pvalue=np.nan), up) == "no_data"
