"""Trust gates judged from a day's summary parts (expkit.report.trust)."""

from __future__ import annotations

from expkit.report.trust import trust_gates

ALLOCATION_OK = {"status": "ok", "headline": {"srm": False, "srm_pvalue": 0.48, "srm_days": [], "srm_slices": ["eu"],
                                             "srm_pvalue_threshold": 0.001}}
CHECKS_OK = [
    {"name": "join_integrity", "table": "clicks", "status": "pass"},
    {"name": "bucket_consistency", "table": "requests", "status": "pass"},
    {"name": "hourly_profile", "table": "requests", "status": "fail"},  # not a data-integrity check
]
P3 = {"rule": "cache_hit_low", "severity": "P3", "fired_at": "2026-11-05T09:00:00Z", "state": "firing",
      "kill_switch": None}


def _by_gate(gates):
    return {g.gate: g for g in gates}


def test_a_clean_day_passes_every_gate() -> None:
    gates = _by_gate(trust_gates({"allocation": ALLOCATION_OK}, CHECKS_OK, [P3], alerts_evaluated=True))
    assert {g: v.status for g, v in gates.items()} == {
        "srm": "pass", "validation": "pass", "bucket_consistency": "pass", "alerts": "pass"}


def test_each_failure_names_its_gate() -> None:
    allocation = {"status": "breach", "headline": {**ALLOCATION_OK["headline"], "srm_days": ["2026-11-03"]}}
    checks = [{"name": "unique_ids", "table": "impressions", "status": "fail"},
              {"name": "bucket_consistency", "table": "requests", "status": "fail",
               "detail": "12 users in more than one bucket"}]
    alerts = [{"rule": "error_rate_high", "severity": "P1", "fired_at": "2026-11-05T08:10:00Z",
               "resolved_at": "2026-11-05T08:40:00Z", "state": "resolved", "kill_switch": "disable_experiment"}]
    gates = _by_gate(trust_gates({"allocation": allocation}, checks, alerts, alerts_evaluated=True))
    assert gates["srm"].status == "fail" and "2026-11-03" in gates["srm"].detail
    assert gates["validation"].detail == "validation failed: unique_ids (impressions)"
    assert gates["bucket_consistency"].status == "fail" and "12 users" in gates["bucket_consistency"].detail
    # resolved before midnight, still a failed gate
    assert gates["alerts"].detail == "error_rate_high (P1) fired at 08:10 UTC and pulled disable_experiment"


def test_missing_evidence_is_not_judged_never_a_pass() -> None:
    gates = _by_gate(trust_gates({}, [], [], alerts_evaluated=False))
    assert {g.status for g in gates.values()} == {"not_judged"}
    failed_tile = {"status": "failed", "headline": {}}
    assert trust_gates({"allocation": failed_tile}, CHECKS_OK, [], True)[0].status == "not_judged"
