"""Alert state on disk: ``<warehouse>/state/alerts/``.

::

    state.json               live monitor: cursors, pending/firing alerts, group and escalation
                             memory, the outbox (notifications and kill switch requests not yet
                             carried out) and the ledger of ids already carried out
    notifications.jsonl      the append-only notification log (one JSON line per notification)
    silences.json            silences (matchers, start, expiry, author, comment)
    acks.json                acknowledgements (fingerprint, time, author, comment)
    killswitches.json        kill switch states (see expkit.alerts.killswitch)
    killswitch_audit.jsonl   every kill switch change
    .lock                    held (fcntl) by whoever reads-modifies-writes the files above
    .deliver.lock            held by the one process calling the outbox's webhooks

Every document is replaced atomically (write beside, fsync, rename), and every change happens
under the lock, so a process killed at any point leaves the previous or the next consistent
state and two evaluations at once serialize instead of interleaving.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from expkit.alerts.delivery import Ack, DeliveryState, Notification, Silence
from expkit.alerts.engine import Alert
from expkit.alerts.killswitch import KillSwitchRequest, KillSwitchStore
from expkit.atomic import FileLock, atomic_write_json
from expkit.errors import ExpkitError
from expkit.warehouse import Warehouse

STATE_VERSION = 1
LEDGER_KEEP = 20_000
"""Delivered ids remembered (older ones are forgotten first)."""


@dataclass
class OutboxItem:
    """Something decided but not yet carried out: a notification (with the sinks still to
    reach) or a kill switch request."""

    id: str
    notification: Notification | None = None
    kill_switch: KillSwitchRequest | None = None
    pending: list[str] = field(default_factory=list)
    attempts: int = 0
    first_try_ms: int | None = None
    last_error: str = ""

    @property
    def type(self) -> Literal["notification", "kill_switch"]:
        """What it is."""
        return "notification" if self.notification is not None else "kill_switch"

    def to_json(self) -> dict[str, Any]:
        """A JSON document."""
        return {"id": self.id, "type": self.type,
                "notification": self.notification.to_json() if self.notification else None,
                "kill_switch": self.kill_switch.to_json() if self.kill_switch else None,
                "pending": self.pending, "attempts": self.attempts, "first_try_ms": self.first_try_ms,
                "last_error": self.last_error}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> OutboxItem:
        """Inverse of :meth:`to_json`."""
        return cls(doc["id"],
                   Notification.from_json(doc["notification"]) if doc.get("notification") else None,
                   KillSwitchRequest.from_json(doc["kill_switch"]) if doc.get("kill_switch") else None,
                   list(doc.get("pending", [])), int(doc.get("attempts", 0)), doc.get("first_try_ms"),
                   str(doc.get("last_error", "")))


@dataclass
class LiveState:
    """The live monitor's memory (``state.json``)."""

    cursors: dict[str, int] = field(default_factory=dict)
    active: dict[str, Alert] = field(default_factory=dict)
    delivery: DeliveryState = field(default_factory=DeliveryState)
    outbox: list[OutboxItem] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)
    recent: list[Alert] = field(default_factory=list)

    def drop_removed_rules(self, rules: Iterable[str]) -> list[Alert]:
        """Forget the alerts of rules no longer in the rules file (an edited ``alerts.yaml``);
        returns the active ones dropped. No resolved notification can be rendered for them: the
        rule that held their annotations is gone."""
        names = set(rules)
        gone = [k for k, a in self.active.items() if a.rule not in names]
        dropped = [self.active.pop(k) for k in gone]
        self.recent = [a for a in self.recent if a.rule in names]
        return dropped

    def mark_done(self, item_id: str, at_ms: int) -> None:
        """Record ``item_id`` as carried out (the ledger is bounded)."""
        self.sent[item_id] = at_ms
        if len(self.sent) > LEDGER_KEEP:
            for k in sorted(self.sent, key=self.sent.__getitem__)[: len(self.sent) - LEDGER_KEEP]:
                del self.sent[k]

    def to_json(self) -> dict[str, Any]:
        """A JSON document."""
        return {"version": STATE_VERSION, "updated_at_ms": int(time.time() * 1000), "cursors": self.cursors,
                "active": {k: a.to_json() for k, a in self.active.items()},
                "delivery": self.delivery.to_json(), "outbox": [o.to_json() for o in self.outbox],
                "sent": self.sent, "recent": [a.to_json() for a in self.recent]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LiveState:
        """Inverse of :meth:`to_json`."""
        return cls({k: int(v) for k, v in doc.get("cursors", {}).items()},
                   {k: Alert.from_json(a) for k, a in doc.get("active", {}).items()},
                   DeliveryState.from_json(doc.get("delivery")),
                   [OutboxItem.from_json(o) for o in doc.get("outbox", [])],
                   {k: int(v) for k, v in doc.get("sent", {}).items()},
                   [Alert.from_json(a) for a in doc.get("recent", [])])


class AlertStore:
    """The files under ``<warehouse>/state/alerts/``."""

    def __init__(self, wh: Warehouse):
        self.wh = wh
        self.dir = wh.state / "alerts"
        self.state_path = self.dir / "state.json"
        self.silences_path = self.dir / "silences.json"
        self.acks_path = self.dir / "acks.json"
        self.log_path = self.dir / "notifications.jsonl"
        self.killswitches = KillSwitchStore(self.dir)

    def lock(self, timeout: float | None = None) -> FileLock:
        """The lock every read-modify-write of these files holds."""
        return FileLock(self.dir / ".lock", timeout=timeout, what=f"alert state of {self.wh.root}")

    def delivery_lock(self) -> FileLock:
        """Held (never waited for) by the process calling the outbox's webhooks, so that two
        processes do not send the same notification at once; the other one skips its pass."""
        return FileLock(self.dir / ".deliver.lock", timeout=0, what=f"alert delivery of {self.wh.root}")

    def _read(self, path: Path, default: Any) -> Any:
        if not path.is_file():
            return default
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ExpkitError(f"{path} is not valid JSON ({err}); fix or delete it") from None

    def load(self) -> LiveState:
        """The live state (empty when the monitor never ran)."""
        doc = self._read(self.state_path, None)
        if doc is None:
            return LiveState()
        if doc.get("version") != STATE_VERSION:
            raise ExpkitError(f"{self.state_path} has version {doc.get('version')}; this expkit reads "
                              f"version {STATE_VERSION}")
        return LiveState.from_json(doc)

    def save(self, state: LiveState) -> None:
        """Replace the live state atomically."""
        atomic_write_json(self.state_path, state.to_json())

    def day_path(self, day: dt.date, experiment_id: str) -> Path:
        """``days/<experiment_id>/<date>.json``: the alert timeline of ``day`` as last evaluated for
        that experiment (several experiments of one warehouse each keep their own)."""
        return self.dir / "days" / experiment_id / f"{day.isoformat()}.json"

    def record_day(self, day: dt.date, experiment_id: str, alerts: list[dict[str, Any]]) -> Path:
        """Store the alert records (``summary.json`` shape) of ``day``'s evaluation, atomically."""
        return atomic_write_json(self.day_path(day, experiment_id),
                                 {"date": day.isoformat(), "experiment_id": experiment_id, "alerts": alerts})

    def load_day(self, day: dt.date, experiment_id: str) -> list[dict[str, Any]] | None:
        """The alert records of ``day``'s last evaluation for the experiment; ``None`` when the
        day was never evaluated for it."""
        doc = self._read(self.day_path(day, experiment_id), None)
        return None if doc is None else list(doc.get("alerts") or [])

    def silences(self) -> list[Silence]:
        """Every silence (expired ones included until pruned)."""
        return [Silence.from_json(s) for s in self._read(self.silences_path, [])]

    def add_silence(self, silence: Silence) -> Silence:
        """Store a new silence; silences expired for over a week are pruned."""
        week_ago = int(time.time() * 1000) - 7 * 86_400_000
        kept = [s for s in self.silences() if s.ends_at >= week_ago]
        atomic_write_json(self.silences_path, [s.to_json() for s in [*kept, silence]])
        return silence

    def expire_silence(self, silence_id: str, now_ms: int) -> Silence:
        """End a silence now."""
        silences = self.silences()
        hit = [s for s in silences if s.id == silence_id]
        if not hit:
            raise ExpkitError(f"no silence {silence_id!r}; list them with 'expkit alerts silence --list'")
        out = [Silence(s.id, s.matchers, s.starts_at, min(s.ends_at, now_ms), s.created_by, s.comment)
               if s.id == silence_id else s for s in silences]
        atomic_write_json(self.silences_path, [s.to_json() for s in out])
        return out[silences.index(hit[0])]

    def acks(self) -> list[Ack]:
        """Every acknowledgement."""
        return [Ack.from_json(a) for a in self._read(self.acks_path, [])]

    def add_ack(self, ack: Ack) -> Ack:
        """Store an acknowledgement."""
        atomic_write_json(self.acks_path, [a.to_json() for a in [*self.acks(), ack]])
        return ack


def new_silence_id() -> str:
    """A fresh silence id."""
    return uuid.uuid4().hex[:12]
