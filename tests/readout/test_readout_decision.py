"""The verdict (expkit.decision): rules, reasons, and calibration by simulation.

Calibration at the statistics level: A/A experiments (no true effect) looked at every
day for 14 days, with CUPED on the primary CTR, an error-rate guardrail and progress,
must show ``ship`` or ``roll_back`` at some look in at most 5% of runs (the always-valid
interval's guarantee, Waudby-Smith et al. 2023); an experiment with a large true lift
reaches ``ship``, never before ``min_days``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import expkit.stats as st
from expkit.decision import (
    ArmEvidence,
    GuardrailResult,
    PrimaryResult,
    ProgressResult,
    TrustGate,
    decide,
    decide_arm,
)
from expkit.stats.guardrails import judge_guardrail
from expkit.stats.progress import progress

REACHED = ProgressResult(users=20000, required_per_arm=12000.0, fraction=20000 / 12000, days_run=10,
                         days_remaining=0.0)
EARLY = ProgressResult(users=7192, required_per_arm=12387.0, fraction=7192 / 12387, days_run=4,
                       days_remaining=6.0)
OK_GUARD = GuardrailResult("error rate", "pass", 0.0001, -0.0004, 0.0006, 0.001)


def primary(lift, low, high, seq_low, seq_high):
    return PrimaryResult("CTR", lift, low, high, seq_low, seq_high)


def test_reason_sentence_of_the_issue():
    d = decide_arm(ArmEvidence(primary(0.07, -0.01, 0.15, -0.048, 0.188), EARLY))
    assert d.verdict == "keep_running"
    assert d.reasons == ("CTR +7.0% (always-valid \u22124.8% to +18.8%) not yet conclusive; 58% of the "
                         "12,400 users per arm needed; about 6 more days",)


@pytest.mark.parametrize("direction,seq,expected", [
    ("increase", (0.02, 0.12), "ship"), ("increase", (-0.12, -0.02), "roll_back"),
    ("decrease", (-0.12, -0.02), "ship"), ("decrease", (0.02, 0.12), "roll_back"),
])
def test_direction_decides_good_and_bad(direction, seq, expected):
    ev = ArmEvidence(primary(sum(seq) / 2, *seq, *seq), REACHED, [OK_GUARD])
    d = decide_arm(ev, direction=direction)
    assert d.verdict == expected
    assert ("significantly better" if expected == "ship" else "significantly worse") in d.reasons[0]


def test_ship_waits_for_min_days_and_passing_guardrails():
    p = primary(0.07, 0.03, 0.11, 0.02, 0.12)
    early = ProgressResult(30000, 12000.0, 2.5, 4, 0.0)
    d = decide_arm(ArmEvidence(p, early, [OK_GUARD]), min_days=7)
    assert d.verdict == "keep_running" and "day 4 of the minimum 7; 3 more days" in d.reasons
    unsure = GuardrailResult("latency p95", "inconclusive", 0.04, -0.02, 0.13, 0.10, relative=True)
    d = decide_arm(ArmEvidence(p, REACHED, [OK_GUARD, unsure]))
    assert d.verdict == "keep_running"
    assert d.reasons[1] == ("guardrail latency p95 not yet shown within its margin: +4.0% "
                            "(always-valid \u22122.0% to +13.0%), margin +10.0%")
    assert decide_arm(ArmEvidence(p, REACHED, [OK_GUARD])).verdict == "ship"


def test_failing_guardrail_rolls_back_even_a_winner():
    bad = GuardrailResult("error rate", "fail", 0.004, 0.0025, 0.0055, 0.001)
    d = decide_arm(ArmEvidence(primary(0.07, 0.03, 0.11, 0.02, 0.12), REACHED, [bad]))
    assert d.verdict == "roll_back"
    assert d.reasons == ("guardrail error rate fails: +0.004 (always-valid +0.0025 to +0.0055), "
                         "margin +0.001",)


def test_no_effect_needs_the_sample_and_a_narrow_interval():
    narrow = primary(0.004, -0.019, 0.027, -0.03, 0.04)
    d = decide_arm(ArmEvidence(narrow, REACHED, [OK_GUARD]), mde=0.05)
    assert d.verdict == "no_effect"
    assert d.reasons[0] == ("CTR +0.4% (\u22121.9% to +2.7%) rules out a change of 5.0% either way; "
                            "required sample of 12,000 users per arm reached")
    assert decide_arm(ArmEvidence(narrow, EARLY, [OK_GUARD])).verdict == "keep_running"
    assert decide_arm(ArmEvidence(narrow, REACHED, [OK_GUARD]), mde=0.02).verdict == "keep_running"


def test_failed_gate_makes_it_untrustworthy_whatever_the_numbers():
    srm = TrustGate("SRM", "fail", "p = 1e-09 overall")
    d = decide({"treatment": ArmEvidence(primary(0.07, 0.03, 0.11, 0.02, 0.12), REACHED, [OK_GUARD])},
               trust=[srm, TrustGate("duplicates", "pass")])
    assert d.verdict == "untrustworthy" and d.reasons == ("SRM check failed: p = 1e-09 overall",)


def test_a_failing_guardrail_rolls_back_even_when_a_gate_failed():
    """An error burst the treatment causes fails its guardrail and fires the P1 alert behind the
    alerts gate: the verdict acts on the harm and names the gate too."""
    bad = GuardrailResult("error rate", "fail", 0.004, 0.0025, 0.0055, 0.001)
    alert = TrustGate("alerts", "fail", "error_rate_high (P1) fired at 08:10 UTC")
    d = decide_arm(ArmEvidence(primary(0.01, -0.05, 0.07, -0.1, 0.12), REACHED, [bad]), trust=[alert])
    assert d.verdict == "roll_back"
    assert d.reasons == ("guardrail error rate fails: +0.004 (always-valid +0.0025 to +0.0055), margin +0.001",
                         "alerts check failed: error_rate_high (P1) fired at 08:10 UTC")
    # without a failing guardrail the failed gate wins over a significantly worse primary
    worse = ArmEvidence(primary(-0.07, -0.11, -0.03, -0.12, -0.02), REACHED, [OK_GUARD])
    assert decide_arm(worse, trust=[alert]).verdict == "untrustworthy"


def test_an_unjudged_gate_keeps_a_winner_from_shipping_but_not_from_rolling_back():
    unjudged = TrustGate("validation", "not_judged", "validation did not run for this day")
    winner = ArmEvidence(primary(0.07, 0.03, 0.11, 0.02, 0.12), REACHED, [OK_GUARD])
    d = decide_arm(winner, trust=[unjudged])
    assert d.verdict == "keep_running"
    assert "validation not judged: validation did not run for this day" in d.reasons
    loser = ArmEvidence(primary(-0.07, -0.11, -0.03, -0.12, -0.02), REACHED, [OK_GUARD])
    assert decide_arm(loser, trust=[unjudged]).verdict == "roll_back"


def test_overall_verdict_is_the_most_severe_and_serializes():
    arms = {
        "b": ArmEvidence(primary(0.07, 0.03, 0.11, 0.02, 0.12), REACHED, [OK_GUARD]),  # ship
        "c": ArmEvidence(primary(0.07, -0.01, 0.15, -0.048, 0.188), EARLY),  # keep_running
        "d": ArmEvidence(primary(0.004, -0.019, 0.027, -0.03, 0.04), REACHED),  # no_effect
    }
    d = decide(arms)
    assert {k: a.verdict for k, a in d.arms.items()} == {"b": "ship", "c": "keep_running",
                                                         "d": "no_effect"}
    assert d.verdict == "ship" and d.reasons[0].startswith("b: CTR +7.0%")
    bad = dict(arms, e=ArmEvidence(primary(-0.07, -0.11, -0.03, -0.12, -0.02), REACHED))
    assert decide(bad).verdict == "roll_back"
    out = json.loads(json.dumps(decide(arms).to_dict()))
    assert out["verdict"] == "ship" and out["arms"]["c"]["verdict"] == "keep_running"
    assert out["arms"]["b"]["primary"]["variance_reduction"] is None
    assert out["progress"]["users"] == {"b": 20000, "c": 7192, "d": 20000}
    assert out["progress"]["min_days"] == 7
    assert decide({}).verdict == "keep_running"


def test_undefined_primary_keeps_running():
    nan = math.nan
    d = decide_arm(ArmEvidence(primary(nan, nan, nan, nan, nan), EARLY))
    assert d.verdict == "keep_running" and "no estimate yet" in d.reasons[0]


# --- calibration at the statistics level ---------------------------------------------------

DAYS, MIN_DAYS = 14, 7


def simulate(rng, reps, per_day, lift=1.0):
    """Cumulative per-day sums of one arm: CTR with a pre-period covariate (users'
    activity and propensity shared by both periods) and a request error rate."""
    users = DAYS * per_day
    act = rng.gamma(0.8, 25.0, size=(reps, users))
    ctr = rng.beta(0.5, 15.0, size=(reps, users))
    imps, pre = rng.poisson(act), rng.poisson(act) * (rng.random((reps, users)) > 0.3)
    clicks = rng.binomial(imps, np.minimum(ctr * lift, 1.0))
    pre_clicks = rng.binomial(pre, ctr)
    req = 1 + rng.poisson(20.0, size=(reps, users))
    err = rng.binomial(req, rng.beta(1.0, 199.0, size=(reps, users)))

    def daily(x):
        return np.asarray(x, float).reshape(reps, DAYS, per_day)

    ctr_sums = st.ratio_sums(daily(clicks), daily(imps), pre_num=daily(pre_clicks), pre_den=daily(pre))
    err_sums = st.ratio_sums(daily(err), daily(req))
    return [{k: np.cumsum(v, axis=1) for k, v in s.items()} for s in (ctr_sums, err_sums)]


def verdicts(control, treatment, per_day):
    """Verdict of every replication at every daily look: array (reps, days)."""
    n_star = 2 * DAYS * per_day
    r = st.compare_ratios(control[0], treatment[0], sequential=True, tuning_n=n_star, covariate=True)
    e = st.compare_ratios(control[1], treatment[1], sequential=True, tuning_n=n_star)
    guard = judge_guardrail(e, 0.001, "increase")
    days = np.arange(1, DAYS + 1)
    prog = progress(r, control[0]["n"], treatment[0]["n"], days_run=days, mde=0.05)
    out = np.empty(r.diff.shape, dtype=object)
    for i, j in np.ndindex(out.shape):
        ev = ArmEvidence(PrimaryResult.from_comparison("CTR", r, (i, j)),
                         ProgressResult.from_progress(prog, int(days[j]), (i, j)),
                         [GuardrailResult.from_judgment("error rate", guard, e.diff, index=(i, j))])
        out[i, j] = decide_arm(ev, min_days=MIN_DAYS, mde=0.05).verdict
    return out


def test_aa_experiments_peeked_daily_rarely_ship_or_roll_back():
    rng = np.random.default_rng(1717)
    reps, per_day = 600, 150
    v = verdicts(simulate(rng, reps, per_day), simulate(rng, reps, per_day), per_day)
    ever = np.isin(v, ["ship", "roll_back"]).any(axis=1)
    assert ever.mean() <= 0.05, ever.mean()
    assert set(np.unique(v)) <= {"keep_running", "no_effect", "ship", "roll_back"}


def test_large_true_lift_reaches_ship_after_min_days():
    rng = np.random.default_rng(2026)
    reps, per_day = 150, 900
    v = verdicts(simulate(rng, reps, per_day), simulate(rng, reps, per_day, lift=1.3), per_day)
    assert not (v[:, : MIN_DAYS - 1] == "ship").any()
    assert (v[:, -1] == "ship").mean() >= 0.8, (v[:, -1] == "ship").mean()
    assert not (v == "roll_back").any()
