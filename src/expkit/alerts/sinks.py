"""Notification sinks: the append-only JSONL log and HTTP webhooks (Alertmanager JSON, v4).

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
    """POSTs Alertmanager webhook JSON to a URL, with a timeout and retries."""

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
        body = json.dumps(note.webhook_payload(self.receiver, self.external_url)).encode()
        error = ""
        for attempt in range(1, self.hook.retries + 2):
            req = urllib.request.Request(url, data=body, method="POST", headers={
                "Content-Type": "application/json", "User-Agent": "expkit-alerts",
                "X-Expkit-Notification-Id": note.id})
            try:
                with urllib.request.urlopen(req, timeout=self.hook.timeout / 1000) as resp:
                    resp.read()
                return DeliveryResult(True, attempt)
            except urllib.error.HTTPError as err:
                error = f"HTTP {err.code} from {url}"
                if 400 <= err.code < 500 and err.code != 429:
                    return DeliveryResult(False, attempt, error + " (not retried: the receiver rejected it)")
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
                reason = getattr(err, "reason", err)
                error = f"{type(reason).__name__}: {reason} ({url})"
            if attempt <= self.hook.retries:
                self._sleep(self.hook.backoff / 1000 * 2 ** (attempt - 1))
        return DeliveryResult(False, self.hook.retries + 1, error)
