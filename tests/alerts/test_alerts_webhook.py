"""The webhook sink against a real HTTP server on 127.0.0.1: Alertmanager JSON, retries on
5xx, time-outs, no retry on 4xx, and end to end from a replayed incident day."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from expkit.alerts import AlertStore, evaluate_day, load_alerts
from expkit.alerts.delivery import Notification
from expkit.alerts.rules import Webhook
from expkit.alerts.runner import build_sinks, deliver_outbox, enqueue, replay_day
from expkit.alerts.sinks import WebhookSink
from expkit.config import ExperimentConfig
from expkit.warehouse import Warehouse

from .conftest import END, PARAMS, Receiver, write_rules


def note() -> Notification:
    alert = {"status": "firing", "labels": {"alertname": "coverage_low", "experiment": "e1", "severity": "P2"},
             "annotations": {"summary": "coverage 90%"}, "startsAt": "2026-11-14T15:10:00Z",
             "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "abc"}
    return Notification("n1", "firing", 0, '{}:{alertname="coverage_low"}', {"alertname": "coverage_low"}, [alert])


def sink(url: str, timeout: str = "2s", retries: int = 2) -> WebhookSink:
    return WebhookSink(Webhook(name="t", url=url, timeout=timeout, retries=retries, backoff="10ms"))


def test_posts_alertmanager_json(receiver: Receiver) -> None:
    res = sink(receiver.url).deliver(note())
    assert res.ok and res.attempts == 1
    body = receiver.received[0]
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "expkit"
    assert body["alerts"][0]["labels"]["alertname"] == "coverage_low"
    assert receiver.headers[0]["Content-Type"] == "application/json"


def test_retries_on_500_then_succeeds(receiver: Receiver) -> None:
    receiver.script.extend([500, 503])
    res = sink(receiver.url).deliver(note())
    assert res.ok and res.attempts == 3
    assert len(receiver.received) == 3 and receiver.received[0] == receiver.received[2]


def test_gives_up_after_the_retries(receiver: Receiver) -> None:
    receiver.script.extend([500, 500, 500, 500])
    res = sink(receiver.url, retries=2).deliver(note())
    assert not res.ok and res.attempts == 3 and "HTTP 500" in res.error
    assert len(receiver.received) == 3


def test_client_errors_are_not_retried(receiver: Receiver) -> None:
    receiver.script.append(400)
    res = sink(receiver.url).deliver(note())
    assert not res.ok and res.attempts == 1 and "HTTP 400" in res.error


def test_timeout_then_retry(receiver: Receiver) -> None:
    receiver.script.append(("sleep", 1.5))
    t0 = time.monotonic()
    res = sink(receiver.url, timeout="300ms", retries=1).deliver(note())
    assert res.ok and res.attempts == 2
    assert time.monotonic() - t0 < 1.4  # did not wait for the slow answer


def test_timeout_every_time_fails(receiver: Receiver) -> None:
    receiver.script.extend([("sleep", 0.8), ("sleep", 0.8)])
    res = sink(receiver.url, timeout="200ms", retries=1).deliver(note())
    assert not res.ok and res.attempts == 2 and "timed out" in res.error.lower()


def test_unreachable_receiver_stays_in_the_outbox(fresh_wh: Path, config: ExperimentConfig, receiver: Receiver,
                                                  tmp_path: Path) -> None:
    dead = write_rules(tmp_path / "dead.yaml", "http://127.0.0.1:9/closed")
    rules = load_alerts(dead)
    evaluation, _ = replay_day(fresh_wh, END, config, PARAMS, rules=rules)
    store = AlertStore(Warehouse.open(fresh_wh))
    with store.lock():
        state = store.load()
        sinks = build_sinks(rules, store)
        enqueue(state, evaluation.result, sinks)
        report = deliver_outbox(store, state, sinks, rules.notify.give_up_after)
    notes = [o for o in store.load().outbox if o.type == "notification"]
    assert report.failed and len(notes) == len(evaluation.result.notifications)
    assert all(o.pending == ["webhook:test"] for o in notes)  # the log got them; the webhook did not
    live = load_alerts(write_rules(tmp_path / "live.yaml", receiver.url))
    with store.lock():
        state = store.load()
        deliver_outbox(store, state, build_sinks(live, store) | {"webhook:test": sink(receiver.url)},
                       live.notify.give_up_after)
    assert not store.load().outbox
    assert Counter(receiver.ids()) == Counter(o.id for o in notes)


def test_incident_day_end_to_end(fresh_wh: Path, config: ExperimentConfig, receiver: Receiver,
                                 tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "alerts.yaml", receiver.url)
    timeline = evaluate_day(fresh_wh, END, config, PARAMS, rules_file=rules, notify=True)
    firing = Counter((a["fingerprint"], a["startsAt"]) for body in receiver.received for a in body["alerts"]
                     if a["status"] == "firing" and body["status"] == "firing")
    notified = [a for a in timeline if a["notified_at"]]
    assert len(notified) == len([a for a in timeline if a["fired_at"] and not a["inhibited"]])
    for a in notified:  # every notified incident reached the receiver
        assert firing[(a["fingerprint"], a["fired_at"])] >= 1
    resolved = {(a["fingerprint"], a["endsAt"]) for body in receiver.received for a in body["alerts"]
                if a["status"] == "resolved"}
    assert resolved == {(a["fingerprint"], a["resolved_at"]) for a in notified if a["state"] == "resolved"}
    log_path = fresh_wh / "state" / "alerts" / "notifications.jsonl"
    log = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [r["id"] for r in log] == receiver.ids()
    # Replaying again delivers nothing new.
    evaluate_day(fresh_wh, END, config, PARAMS, rules_file=rules, notify=True)
    assert len(receiver.received) == len(log)
    assert len((fresh_wh / "state" / "alerts" / "notifications.jsonl").read_text().splitlines()) == len(log)
