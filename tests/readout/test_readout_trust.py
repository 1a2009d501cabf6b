"""Trust gates (expkit.trust): each judged from its evidence, missing evidence never a pass."""

from __future__ import annotations

from expkit.trust import alerts_gate, bucket_gate, srm_gate, validation_gate

CHECKS_OK = [
    {"name": "join_integrity", "table": "clicks", "status": "pass"},
    {"name": "bucket_consistency", "table": "requests", "status": "pass"},
    {"name": "hourly_profile", "table": "requests", "status": "fail"},  # not a data-integrity check
]
P3 = {"rule": "cache_hit_low", "severity": "P3", "fired_at": "2026-11-05T09:00:00Z", "state": "firing",
      "kill_switch": None}


def test_a_clean_day_passes_every_gate() -> None:
    gates = [srm_gate(0.48, 0.001), validation_gate(CHECKS_OK), bucket_gate(CHECKS_OK), alerts_gate([P3])]
    assert [g.status for g in gates] == ["pass"] * 4


def test_each_failure_names_its_gate() -> None:
    assert srm_gate(0.2, 0.001, ["2026-11-03"]).detail == "sample ratio mismatch on 2026-11-03"
    checks = [{"name": "unique_ids", "table": "impressions", "status": "fail"},
              {"name": "bucket_consistency", "table": "requests", "status": "fail",
               "detail": "12 users in more than one bucket"}]
    assert validation_gate(checks).detail == "validation failed: unique_ids (impressions)"
    bucket = bucket_gate(checks)
    assert bucket.status == "fail" and "12 users" in bucket.detail
    # resolved before midnight, still a failed gate
    resolved_p1 = {"rule": "error_rate_high", "severity": "P1", "fired_at": "2026-11-05T08:10:00Z",
                   "resolved_at": "2026-11-05T08:40:00Z", "state": "resolved", "kill_switch": "disable_experiment"}
    assert alerts_gate([resolved_p1]).detail == "error_rate_high (P1) fired at 08:10 UTC and pulled disable_experiment"
    # an alert that was pending only (never fired) does not count
    assert alerts_gate([{**resolved_p1, "fired_at": None}]).status == "pass"


def test_missing_evidence_is_not_judged_never_a_pass() -> None:
    gates = [srm_gate(float("nan"), 0.001), validation_gate(None), bucket_gate(None), alerts_gate(None)]
    assert [g.status for g in gates] == ["not_judged"] * 4
    assert bucket_gate([{"name": "join_integrity", "table": "clicks", "status": "pass"}]).status == "not_judged"


def test_an_alert_carried_over_from_the_day_before_says_its_date() -> None:
    """Fired at 23:10 the day before and resolved at 10:00 on the report's day: "fired at 23:10 UTC"
    on the report of 2026-11-12 reads as a firing that evening, after its own resolution."""
    from expkit.report.index import kill_switches_pulled, serious_alerts

    carried = {"rule": "data_stale", "severity": "P2", "fired_at": "2026-11-11T23:10:00Z",
               "resolved_at": "2026-11-12T10:00:00Z", "state": "resolved", "kill_switch": "serve_cached",
               "kill_switch_mode": "automatic"}
    assert alerts_gate([carried], day="2026-11-12").detail == \
        "data_stale (P2) fired at 2026-11-11 23:10 UTC and pulled serve_cached"
    assert serious_alerts([carried], day="2026-11-12") == ["data_stale (P2) fired 2026-11-11 23:10, resolved 10:00 UTC"]
    assert kill_switches_pulled([carried], day="2026-11-12") == \
        ["serve_cached pulled by data_stale at 2026-11-11 23:10 UTC"]
    # the report's own day keeps the short clock
    assert alerts_gate([carried], day="2026-11-11").detail == \
        "data_stale (P2) fired at 23:10 UTC and pulled serve_cached"


def test_a_flapping_alert_is_one_phrase_not_one_per_firing() -> None:
    """An error burst on one arm fired error_rate_high 16 times in a day: the gate's detail (the
    verdict's reason, the digest's first lines) listed 16 phrases and pushed the guardrails and the
    progress out of the chat message (Slack's 3,000 characters)."""
    firings = [{"rule": "error_rate_high", "severity": "P1", "fired_at": f"2026-11-14T{h:02d}:15:00Z",
                "state": "resolved", "kill_switch": "disable_experiment"} for h in range(8, 18)]
    other = {"rule": "latency_p95_high", "severity": "P2", "fired_at": "2026-11-14T09:00:00Z", "state": "firing",
             "kill_switch": None}
    gate = alerts_gate([*reversed(firings), other], day="2026-11-14")
    assert gate.status == "fail"
    assert gate.detail == ("error_rate_high (P1) fired 10 times from 08:15 to 17:15 UTC and pulled "
                           "disable_experiment; latency_p95_high (P2) fired at 09:00 UTC")
