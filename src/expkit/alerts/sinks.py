"""Notification sinks: the append-only JSONL log and HTTP webhooks (Alertmanager JSON, v4),
and the retrying delivery they share with the daily digests (:func:`with_retries`, :func:`post_json`).

The log is written exactly once per notification id (a line already present is not written
again, so a run killed between writing and recording is harmless). Webhooks are delivered at
least once, with a timeout per attempt and retries with exponential backoff on connection
errors, time-outs, HTTP 5xx and 429; other 4xx fail at once (the receiver rejected the
payload). Receivers deduplicate by ``groupKey`` and the alerts' ``fingerprint``, as with
Alertmanager.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expkit.alerts.delivery import Notification
from expkit.alerts.rules import Webhook
from expkit.warehouse import ms_to_iso

TAIL_BYTES = 1 << 20
"""How much of the log's end is searched for an id already written."""


@dataclass(frozen=True)
class DeliveryResult:
    """How a delivery went."""

    ok: bool
    attempts: int
    error: str = ""


class JsonlSink:
    """Appends one JSON line per notification to ``path`` (never rewrites earlier lines)."""

    name = "log"
    remote = False

    def __init__(self, path: Path):
        self.path = path

    def _written(self, note_id: str) -> bool:
        if not self.path.is_file():
            return False
        with open(self.path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - TAIL_BYTES))
            tail = fh.read()
        return f'"id": "{note_id}"'.encode() in tail

    def deliver(self, note: Notification) -> DeliveryResult:
        """Append ``note`` unless a line with its id is already there."""
        if self._written(note.id):
            return DeliveryResult(True, 0)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({**note.log_record(), "logged_at": ms_to_iso(time.time() * 1000)}, sort_keys=False)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return DeliveryResult(True, 1)


class WebhookSink:
    """POSTs Alertmanager webhook JSON to a URL, with a timeout and retries. ``remote``: the live
    update leaves it to the delivery worker (:class:`expkit.alerts.runner.DeliveryWorker`)."""

    remote = True

    def __init__(self, hook: Webhook, receiver: str = "expkit", external_url: str = "",
                 sleep: Callable[[float], None] = time.sleep):
        self.hook = hook
        self.name = f"webhook:{hook.name}"
        self.receiver = receiver
        self.external_url = external_url
        self._sleep = sleep

    def deliver(self, note: Notification) -> DeliveryResult:
        """Send ``note``; retry transient failures up to ``retries`` times."""
        url = self.hook.resolved_url()
        if not url:
            return DeliveryResult(False, 0, f"environment variable {self.hook.url_env} is not set")
        if note.status == "resolved" and not self.hook.send_resolved:
            return DeliveryResult(True, 0)
        return post_json(url, note.webhook_payload(self.receiver, self.external_url),
                         timeout_s=self.hook.timeout / 1000, retries=self.hook.retries,
                         backoff_s=self.hook.backoff / 1000, headers={"X-Expkit-Notification-Id": note.id},
                         sleep=self._sleep)


class PermanentError(Exception):
    """A failure that retrying cannot fix (the receiver rejected the message)."""


def with_retries(attempt: Callable[[], None], *, retries: int, backoff_s: float,
                 sleep: Callable[[float], None] = time.sleep) -> DeliveryResult:
    """Call ``attempt`` until it returns, at most ``retries + 1`` times, waiting ``backoff_s``,
    then twice as long, and so on between tries. ``attempt`` raises :class:`PermanentError` for
    a failure not worth retrying, any other exception for a transient one (its text is the error)."""
    error = ""
    for n in range(1, retries + 2):
        try:
            attempt()
            return DeliveryResult(True, n)
        except PermanentError as err:
            return DeliveryResult(False, n, str(err))
        except Exception as err:  # transient: the caller's attempt says what it raises
            error = str(err) or type(err).__name__
        if n <= retries:
            sleep(backoff_s * 2 ** (n - 1))
    return DeliveryResult(False, retries + 1, error)


def post_json(url: str, payload: Any, *, timeout_s: float, retries: int, backoff_s: float,
              headers: Mapping[str, str] | None = None, name: str | None = None,
              sleep: Callable[[float], None] = time.sleep) -> DeliveryResult:
    """POST ``payload`` as JSON to ``url`` with a ``timeout_s`` per try, retrying connection
    errors, time-outs, HTTP 5xx and 429 (:func:`with_retries`); other 4xx fail at once.
    Errors name the receiver as ``name`` (default: the URL; a URL that carries a token must not
    end up in logs)."""
    body = json.dumps(payload).encode()
    where = name or url

    def attempt() -> None:
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "expkit-alerts", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                resp.read()
        except urllib.error.HTTPError as err:
            error = f"HTTP {err.code} from {where}"
            if 400 <= err.code < 500 and err.code != 429:
                raise PermanentError(error + " (not retried: the receiver rejected it)") from None
            raise RuntimeError(error) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise RuntimeError(f"{type(reason).__name__}: {reason} ({where})") from None

    return with_retries(attempt, retries=retries, backoff_s=backoff_s, sleep=sleep)
