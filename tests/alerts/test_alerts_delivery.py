"""Delivery semantics (Alertmanager model) with the shipped rules and synthetic series:
deduplication, repeat interval, resolve notices, grouping, inhibition, silences with expiry,
acknowledgement stopping escalation, escalation deadlines per severity, webhook JSON shape."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from expkit.alerts import load_alerts
from expkit.alerts.delivery import Ack, Notification, Planner, Silence
from expkit.alerts.engine import RuleEngine
from expkit.alerts.promtest import series_samples
from expkit.alerts.rules import parse_matchers
from expkit.alerts.runner import ReplayResult, plan_times, replay
from expkit.warehouse import ms_to_iso

from .conftest import RULES

MIN, HOUR = 60_000, 3_600_000
CONFIG = load_alerts(RULES)


def run(series: dict[str, str], horizon_ms: int, silences: Sequence[Silence] = (),
        acks: Sequence[Ack] = ()) -> ReplayResult:
    planner = Planner(CONFIG, silences, acks)
    times = plan_times(CONFIG, {5 * MIN: (-1, horizon_ms)})
    return replay(RuleEngine(CONFIG), planner, series_samples(series), times)


def kinds(notes: Sequence[Notification], rule: str | None = None) -> list[tuple[str, int]]:
    return [(n.kind, n.at_ms // MIN) for n in notes
            if rule is None or any(a["labels"]["alertname"] == rule for a in n.alerts)]


def bad(minutes_before: int, minutes_bad: int, bad_value: float, good_value: float) -> str:
    """A 5-minute series: good, then bad, then good (values per bin)."""
    return f"{good_value}x{minutes_before // 5 - 1} {bad_value}x{minutes_bad // 5 - 1} {good_value}x3"


def test_one_incident_one_firing_notice_repeats_escalation_and_resolve() -> None:
    # P1 errors in the bins from 0:00 to 5:00: the condition held 10 min at 0:10.
    result = run({'error_rate{experiment="e1"}': bad(5, 300, 0.03, 0.0)}, 6 * HOUR)
    assert kinds(result.notifications) == [
        ("firing", 10), ("respond_overdue", 25), ("escalation", 40),   # P1: 15 min / 30 min
        ("repeat", 10 + 240),                                           # repeat_interval 4h
        ("resolved", 305),
    ]
    assert len(result.incidents) == 1
    resolved = result.notifications[-1]
    assert resolved.status == "resolved" and resolved.alerts[0]["endsAt"] == ms_to_iso(305 * MIN)
    assert len({n.id for n in result.notifications}) == len(result.notifications)
    again = run({'error_rate{experiment="e1"}': bad(5, 300, 0.03, 0.0)}, 6 * HOUR)
    assert [n.id for n in again.notifications] == [n.id for n in result.notifications]


def test_acknowledgement_stops_escalation() -> None:
    series = {'error_rate{experiment="e1"}': bad(5, 120, 0.03, 0.0)}
    fp = next(iter(run(series, 3 * HOUR).incidents.values())).fingerprint
    early = run(series, 3 * HOUR, acks=[Ack(fp, 20 * MIN, "alice")])
    assert kinds(early.notifications) == [("firing", 10), ("resolved", 125)]
    late = run(series, 3 * HOUR, acks=[Ack(fp, 35 * MIN, "alice")])
    assert kinds(late.notifications) == [("firing", 10), ("respond_overdue", 25), ("resolved", 125)]
    other = run(series, 3 * HOUR, acks=[Ack("0123456789abcdef", 0, "bob")])
    assert ("escalation", 40) in kinds(other.notifications)


def test_p3_deadlines() -> None:
    result = run({'cache_hit_rate{experiment="e1"}': bad(5, 26 * 60, 0.4, 0.93)}, 27 * HOUR)
    assert kinds(result.notifications)[:3] == [("firing", 10), ("repeat", 10 + 240), ("respond_overdue", 10 + 240)]
    assert ("escalation", 10 + 24 * 60) in kinds(result.notifications)


def test_p4_deadline_is_the_next_business_day() -> None:
    friday_noon = 1795176000000  # 2026-11-20T12:00Z
    assert ms_to_iso(CONFIG.deadline_ms("P4", friday_noon, "respond")) == "2026-11-23T09:00:00Z"
    assert ms_to_iso(CONFIG.deadline_ms("P2", friday_noon, "escalate")) == "2026-11-20T16:00:00Z"


def test_label_sets_of_a_rule_are_grouped_into_one_notification() -> None:
    result = run({
        'staleness_minutes{experiment="e1",table="impressions"}': "1 20x4 1x2",
        'staleness_minutes{experiment="e1",table="clicks"}': "1x2 20x4 1",
    }, HOUR)
    notes = [(n.kind, n.at_ms // MIN, sorted((a["labels"]["table"], a["status"]) for a in n.alerts))
             for n in result.notifications if n.kind in ("firing", "resolved")]
    assert notes == [
        ("firing", 5, [("impressions", "firing")]),
        ("firing", 15, [("clicks", "firing"), ("impressions", "firing")]),   # clicks joins the group
        ("resolved", 30, [("clicks", "firing"), ("impressions", "resolved")]),
        ("resolved", 40, [("clicks", "resolved")]),
    ]
    assert {n.group_key for n in result.notifications} == {'{}:{alertname="data_stale", experiment="e1"}'}


def test_a_firing_p1_inhibits_p3_of_the_same_experiment_only() -> None:
    result = run({
        'error_rate{experiment="e1"}': "0 0.03x5 0x3",            # P1 fires 0:10, resolves 0:35
        'topk_fill{experiment="e1"}': "1 0.9x8 1x2",              # P3 fires 0:10, resolves 0:50
        'topk_fill{experiment="e2"}': "1 0.9x8 1x2",
    }, HOUR)
    topk = [(n.kind, n.at_ms // MIN, [a["labels"]["experiment"] for a in n.alerts])
            for n in result.notifications if n.alerts[0]["labels"]["alertname"] == "topk_fill_low"]
    assert topk == [("firing", 10, ["e2"]), ("firing", 35, ["e1"]),  # e1 only once the P1 resolved
                    ("resolved", 50, ["e1"]), ("resolved", 50, ["e2"])]
    e1 = next(a for a in result.incidents.values() if a.rule == "topk_fill_low" and a.labels["experiment"] == "e1")
    assert e1.inhibited and e1.notified_at == 35 * MIN


def test_silence_mutes_until_it_expires() -> None:
    silence = Silence("s1", parse_matchers('alertname="coverage_low", experiment="e1"'), 0, 30 * MIN, "alice")
    result = run({'coverage{experiment="e1"}': "1 0.8x10 1"}, HOUR, silences=[silence])
    assert kinds(result.notifications) == [("firing", 30), ("resolved", 60)]
    assert next(iter(result.incidents.values())).silenced
    other = Silence("s2", parse_matchers('alertname="coverage_low", experiment="e2"'), 0, HOUR, "bob")
    assert kinds(run({'coverage{experiment="e1"}': "1 0.8x10 1"}, HOUR, silences=[other]).notifications)[0] == \
        ("firing", 10)


def test_kill_switch_requests_once_per_incident() -> None:
    result = run({'error_rate{experiment="e1"}': "0 0.03x3 0 0.03x3 0"}, HOUR)
    reqs = [(k.action, k.mode, k.fired_at_ms // MIN) for k in result.kill_switches]
    assert reqs == [("disable_experiment", "automatic", 10), ("disable_experiment", "automatic", 35)]
    assert len({k.incident for k in result.kill_switches}) == 2


def test_webhook_payload_is_alertmanager_version_4() -> None:
    result = run({'latency_p95_ms{experiment="e1"}': "40 300x3 40"}, HOUR)
    firing = result.notifications[0].webhook_payload("expkit", "http://reports.example")
    assert set(firing) == {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
                           "commonLabels", "commonAnnotations", "externalURL", "alerts"}
    assert firing["version"] == "4" and firing["status"] == "firing" and firing["receiver"] == "expkit"
    assert firing["groupLabels"] == {"alertname": "latency_p95_high", "experiment": "e1"}
    alert = firing["alerts"][0]
    assert set(alert) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert alert["labels"] == {"alertname": "latency_p95_high", "experiment": "e1", "severity": "P2",
                               "team": "recsys-serving"}
    assert alert["startsAt"] == "1970-01-01T00:10:00Z" and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["annotations"]["summary"] == "p95 latency 300 ms > 100 ms for 10m (e1)"
    assert alert["annotations"]["runbook"].startswith("Check the ranker")
    resolved = result.notifications[-1].webhook_payload()
    assert resolved["status"] == "resolved" and resolved["alerts"][0]["endsAt"] == "1970-01-01T00:25:00Z"


@pytest.mark.parametrize("policy", ["ok", "alerting", "keep_state"])
def test_no_data_policies(policy: str) -> None:
    rule = CONFIG.rule("latency_p95_high")
    cfg = CONFIG.model_copy(update={"rules": (rule.model_copy(update={"no_data": policy}),)})
    samples = series_samples({'latency_p95_ms{experiment="e1"}': "40 150 _x3 150 40"})
    engine = RuleEngine(cfg, {"experiment": "e1"})
    states: dict[int, str] = {}
    replay(engine, Planner(cfg), samples, plan_times(cfg, {5 * MIN: (-1, 40 * MIN)}),
           on_eval=lambda t, active: states.__setitem__(t // MIN, ",".join(a.state for a in active.values())))
    expected = {
        "ok": {5: "pending", 10: "", 25: "pending", 30: ""},
        "alerting": {5: "pending", 10: "firing", 20: "firing", 25: "firing", 30: ""},
        "keep_state": {5: "pending", 10: "pending", 20: "pending", 25: "firing", 30: ""},
    }[policy]
    assert {t: states[t] for t in expected} == expected
