"""Webhooks are called off the evaluation path: a receiver that hangs, fails or refuses never
delays an evaluation; what it missed waits in the outbox, is shown there, and is delivered once
the receiver is back, once. Real HTTP servers on 127.0.0.1, no mocks."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from expkit.alerts import AlertStore, load_alerts, monitor_once
from expkit.alerts.rules import AlertsConfig
from expkit.alerts.runner import DeliveryWorker, FlushReport
from expkit.cli import main
from expkit.config import ExperimentConfig
from expkit.warehouse import Warehouse, day_bounds_ms

from .conftest import END, PARAMS, Receiver, write_rules

START, STOP = day_bounds_ms(END)
NOW = STOP + 10 * 60_000          # 00:10 the next day
SINCE = START - 3_600_000
REFUSED = "http://127.0.0.1:9/closed"  # nothing listens on the discard port


def hook_rules(path: Path, url: str, timeout: str = "10s", retries: int = 3, backoff: str = "1s") -> Path:
    """params/alerts.yaml with one webhook ``webhook:test`` at ``url``."""
    doc = yaml.safe_load(write_rules(path, url).read_text())
    doc["notify"]["webhooks"][0].update(timeout=timeout, retries=retries, backoff=backoff)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def timed(fn: Callable[[], Any], limit_s: float) -> tuple[Any, float]:
    """``fn()`` and its wall time, from a thread given at most ``limit_s`` (a call stuck on a
    receiver fails the test then, instead of holding it for minutes)."""
    out: dict[str, Any] = {}

    def run() -> None:
        t0 = time.monotonic()
        try:
            out["value"] = fn()
        except BaseException as err:  # re-raised in the test's thread
            out["error"] = err
        out["seconds"] = time.monotonic() - t0

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit_s)
    assert not thread.is_alive(), f"still running after {limit_s} s (waiting on the webhook?)"
    if "error" in out:
        raise out["error"]
    return out["value"], out["seconds"]


def log_ids(wh: Path) -> list[str]:
    path = wh / "state" / "alerts" / "notifications.jsonl"
    return [json.loads(x)["id"] for x in path.read_text().splitlines()] if path.exists() else []


def queued(store: AlertStore) -> list[str]:
    return [o.id for o in store.load().outbox if o.type == "notification"]


def test_an_evaluation_never_waits_on_a_hanging_webhook(fresh_wh: Path, config: ExperimentConfig,
                                                         receiver: Receiver, tmp_path: Path) -> None:
    rules: AlertsConfig = load_alerts(hook_rules(tmp_path / "alerts.yaml", receiver.url))  # 10 s a try, 3 retries
    receiver.hold_at = 1  # the first call hangs until released
    store = AlertStore(Warehouse.open(fresh_wh))
    worker = DeliveryWorker(store, rules).start()
    try:
        first, _ = timed(lambda: monitor_once(fresh_wh, config, PARAMS, rules, STOP - 30 * 60_000,
                                              since_ms=SINCE), 120)
        assert first.notifications > 5 and receiver.received == []  # queued and logged, nothing called yet
        worker.wake()
        assert receiver.holding.wait(30), "the worker did not call the webhook"
        # the next minute's evaluation while the receiver hangs
        report, seconds = timed(lambda: monitor_once(fresh_wh, config, PARAMS, rules, NOW), 20)
        assert seconds < 3, seconds
        assert report.evaluated["5m"] == ("2026-11-14T23:25:00Z", "2026-11-15T00:05:00Z")
        assert not report.delivery.failed and not report.delivery.dropped
        assert len(receiver.received) == 1  # only the worker's call, still in flight
        pending = queued(store)
        assert pending == log_ids(fresh_wh)  # every notification logged, waiting for the webhook
        assert all(o.pending == ["webhook:test"] for o in store.load().outbox if o.type == "notification")
    finally:
        receiver.release.set()  # the receiver answers again
        worker.close(drain=True)
    assert not store.load().outbox
    sent = Counter(receiver.ids())
    assert set(sent) == set(pending)
    assert all(n == 1 for i, n in sent.items() if i != pending[0])  # at most the hanging one twice
    # delivered: a new pass and a new evaluation of the same time send nothing again
    before = len(receiver.received)
    assert DeliveryWorker(AlertStore(Warehouse.open(fresh_wh)), rules).deliver() == FlushReport()
    monitor_once(fresh_wh, config, PARAMS, rules, NOW)
    assert len(receiver.received) == before


def test_a_failing_webhook_is_shown_and_retried_until_delivered_once(
        fresh_wh: Path, config: ExperimentConfig, receiver: Receiver, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = hook_rules(tmp_path / "alerts.yaml", receiver.url, timeout="2s", retries=1, backoff="10ms")
    rules = load_alerts(path)
    monitor_once(fresh_wh, config, PARAMS, rules, NOW, since_ms=SINCE)
    store = AlertStore(Warehouse.open(fresh_wh))
    ids = queued(store)
    assert len(ids) > 10 and ids == log_ids(fresh_wh) and receiver.received == []

    receiver.script.extend([500, 500])  # the first notification's try and its retry
    failing = DeliveryWorker(store, rules).deliver()
    assert list(failing.failed) == [ids[0]] and "HTTP 500" in failing.failed[ids[0]]
    assert len(receiver.received) == 2  # a failing receiver is not called again in the same pass
    # recorded where delivery status is shown: the outbox of 'expkit alerts status'
    capsys.readouterr()
    assert main(["alerts", "status", "--warehouse", str(fresh_wh), "--rules", str(path)]) == 0
    outbox = json.loads(capsys.readouterr().out)["outbox"]
    assert [o["id"] for o in outbox if o["type"] == "notification"] == ids
    assert outbox[0]["pending"] == ["webhook:test"] and outbox[0]["attempts"] == 1
    assert "webhook:test: HTTP 500" in outbox[0]["last_error"]

    # the receiver is back; a restarted process delivers what is pending, in order, once
    done = DeliveryWorker(AlertStore(Warehouse.open(fresh_wh)), rules).deliver()
    assert done.done == ids and not done.failed and not store.load().outbox
    assert receiver.ids() == [ids[0], ids[0], *ids]
    assert DeliveryWorker(store, rules).deliver() == FlushReport()
    monitor_once(fresh_wh, config, PARAMS, rules, NOW)
    assert len(receiver.received) == 2 + len(ids)


def test_monitor_once_reports_a_refused_webhook_then_delivers_it(
        fresh_wh: Path, receiver: Receiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(rules: Path) -> tuple[int, dict[str, Any]]:
        capsys.readouterr()
        code = main(["monitor", "--warehouse", str(fresh_wh), "--params", str(PARAMS), "--rules", str(rules),
                     "--now", "2026-11-15T00:10:00Z", "--since", "2026-11-13T23:00:00Z", "--once"])
        return code, json.loads(capsys.readouterr().out)

    refused = hook_rules(tmp_path / "refused.yaml", REFUSED, timeout="2s", retries=1, backoff="10ms")
    code, line = run(refused)
    assert code == 1 and line["notifications"] > 10
    assert len(line["failed"]) == 1 and "Connection refused" in next(iter(line["failed"].values()))
    store = AlertStore(Warehouse.open(fresh_wh))
    ids = queued(store)
    assert len(ids) == line["notifications"] and store.load().outbox[-1].attempts == 0  # not tried: down

    back = hook_rules(tmp_path / "back.yaml", receiver.url, timeout="2s", retries=1, backoff="10ms")
    code, line = run(back)
    assert code == 0 and line["delivered"] == len(ids) and line["failed"] == {}
    assert receiver.ids() == ids and not store.load().outbox
