"""A live update never waits on an alert webhook: a receiver that hangs leaves the minute's
update as fast as without webhooks; the notification waits in the outbox, the page says it is
not delivered yet, and it reaches the receiver once the receiver is back, once. Real HTTP
servers on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from webhook_support import WebhookReceiver, serve_webhook

from expkit.alerts.state import AlertStore
from expkit.live import LiveTick, run, tick
from expkit.synth.stream import stream
from expkit.warehouse import Warehouse

from .conftest import DAY, PARAMS, ROOT, SEED

AT = int(dt.datetime(DAY.year, DAY.month, DAY.day, tzinfo=dt.timezone.utc).timestamp() * 1000) + 25 * 3_600_000
"""01:00 the next day: the files stopped at 14:00, so data_stale fires."""


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A streamed day whose files stop landing at 14:00."""
    root = tmp_path_factory.mktemp("stopped")
    stream(root, f"{DAY}T13:00", speed=1e9, users=300, seed=SEED, until=f"{DAY}T14:00")
    return root


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    yield from serve_webhook("/alerts")


def rules_file(path: Path, url: str, timeout: str = "10s", retries: int = 3, backoff: str = "1s") -> Path:
    """params/alerts.yaml with one webhook ``webhook:oncall`` at ``url``."""
    doc = yaml.safe_load((ROOT / "params" / "alerts.yaml").read_text())
    doc["notify"]["webhooks"] = [{"name": "oncall", "url": url, "timeout": timeout, "retries": retries,
                                  "backoff": backoff}]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def notification_ids(wh: Warehouse) -> list[str]:
    return [o.id for o in AlertStore(wh).load().outbox if o.type == "notification"]


def test_a_hanging_webhook_does_not_slow_the_update(stopped: Path, receiver: WebhookReceiver,
                                                     tmp_path: Path) -> None:
    from expkit.alerts.rules import load_alerts

    wh = Warehouse.open(shutil.copytree(stopped, tmp_path / "wh"))
    rules = load_alerts(rules_file(tmp_path / "alerts.yaml", receiver.url))  # 10 s a try, 3 retries
    receiver.hold_at = 1  # a receiver that hangs
    t0 = time.monotonic()
    t = tick(wh, tmp_path / "page", PARAMS, rules, now_ms=AT, page=False)
    wall = time.monotonic() - t0
    assert t.seconds["alerts"] < 3 and wall < 10, (t.seconds, wall)
    assert any(a["rule"] == "data_stale" for a in t.monitor.firing)
    assert t.monitor.notifications >= 1 and not t.monitor.delivery.failed
    assert notification_ids(wh) and receiver.received == []  # queued for the delivery worker


def test_live_shows_a_failing_webhook_and_delivers_once_it_is_back(stopped: Path, receiver: WebhookReceiver,
                                                                     tmp_path: Path) -> None:
    wh = Warehouse.open(shutil.copytree(stopped, tmp_path / "wh"))
    rules = rules_file(tmp_path / "alerts.yaml", receiver.url, timeout="2s", retries=1, backoff="10ms")
    receiver.script.extend([500] * 4)  # two passes of a try and a retry
    out = tmp_path / "page"

    def once() -> LiveTick:
        return run(wh.root, out, PARAMS, 60, once=True, start_ms=AT, rules_file=rules)[0]

    first = once()
    ids = notification_ids(wh)
    assert ids and len(receiver.received) == 2
    assert "HTTP 500" in first.monitor.delivery.failed[ids[0]]  # in the 'expkit live' line
    once()  # still failing: the page of this update shows the failure
    page = (out / "index.html").read_text()
    assert 'id="delivery-error"' in page and "webhook:oncall: HTTP 500" in page
    assert len(receiver.received) == 4 and notification_ids(wh) == ids

    third = once()  # the receiver answers again
    assert third.monitor.delivery.done == ids and not third.monitor.delivery.failed
    assert receiver.ids() == [ids[0]] * 4 + ids and not AlertStore(wh).load().outbox
    once()
    assert len(receiver.received) == 4 + len(ids)  # nothing twice after it was delivered
    assert 'id="delivery-error"' not in (out / "index.html").read_text()


def test_live_keeps_its_minute_while_the_webhook_hangs(stopped: Path, receiver: WebhookReceiver,
                                                        tmp_path: Path) -> None:
    """``expkit live``'s loop: updates every second while its delivery thread waits on a
    receiver that hangs (30 s per try); the notification is still pending when it stops."""
    wh = Warehouse.open(shutil.copytree(stopped, tmp_path / "wh"))
    rules = rules_file(tmp_path / "alerts.yaml", receiver.url, timeout="30s")
    receiver.hold_at = 1
    stop = threading.Event()
    ticks: list[LiveTick] = []

    def report(t: LiveTick) -> None:
        ticks.append(t)
        if len(ticks) == 3:
            stop.set()

    t0 = time.monotonic()
    run(wh.root, tmp_path / "page", PARAMS, 1.0, once=False, start_ms=AT, report=report, stop=stop,
        rules_file=rules)
    assert time.monotonic() - t0 < 20 and len(ticks) == 3
    assert receiver.holding.is_set()  # the delivery thread was waiting on the receiver meanwhile
    assert all(t.seconds["alerts"] < 3 for t in ticks), [t.seconds for t in ticks]
    assert notification_ids(wh)  # not delivered: retried by the next process
