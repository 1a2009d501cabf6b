"""What to notify, and when (Alertmanager semantics), as a pure planner.

At each evaluation time the planner looks at the firing alerts and the ones that just
resolved, and decides the notifications:

* **Silences** (matchers with a start and an expiry) and **inhibition** (a firing alert
  matching an inhibit rule's source mutes matching targets with equal labels: by default a
  firing P1 mutes the P3/P4 alerts of the same experiment) remove alerts from notifications.
* **Grouping**: alerts with equal ``routing.group_by`` labels share a notification. A group is
  notified when an alert joins it (``firing``) or a notified alert resolves (``resolved``, when
  ``send_resolved``), and again every ``repeat_interval`` while it has firing alerts
  (``repeat``). Each firing alert is one incident (deduplicated by fingerprint).
* **Escalation**: a firing, unmuted alert that nobody acknowledged gets a ``respond_overdue``
  notification at its severity's respond deadline and an ``escalation`` at its escalate
  deadline. An acknowledgement stops both.

Notification ids are derived from their content and time, so replaying the same data gives
the same ids: sinks and the state ledger use them to deliver each notification once.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from expkit.alerts.engine import Alert
from expkit.alerts.rules import AlertsConfig, Matcher, format_duration, parse_matchers
from expkit.warehouse import ms_to_iso

NotificationKind = Literal["firing", "resolved", "repeat", "respond_overdue", "escalation"]
ZERO_TIME = "0001-01-01T00:00:00Z"
"""Alertmanager's ``endsAt`` of an alert that has not ended."""


def match_labels(alert: Alert) -> dict[str, str]:
    """The labels matchers see: the alert's labels plus ``alertname``."""
    return {**alert.labels, "alertname": alert.rule}


@dataclass(frozen=True)
class Silence:
    """Mutes notifications of matching alerts from ``starts_at`` until ``ends_at`` (epoch ms)."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: int
    ends_at: int
    created_by: str
    comment: str = ""

    def mutes(self, alert: Alert, t_ms: int) -> bool:
        """Whether the silence is in effect at ``t_ms`` and matches ``alert``."""
        labels = match_labels(alert)
        return self.starts_at <= t_ms < self.ends_at and all(m.matches(labels) for m in self.matchers)

    def to_json(self) -> dict[str, Any]:
        """A JSON document (matchers as ``label="value"`` text)."""
        return {"id": self.id, "matchers": [f'{m.label}{m.op}"{m.value}"' for m in self.matchers],
                "starts_at": ms_to_iso(self.starts_at), "ends_at": ms_to_iso(self.ends_at),
                "starts_at_ms": self.starts_at, "ends_at_ms": self.ends_at,
                "created_by": self.created_by, "comment": self.comment}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Silence:
        """Inverse of :meth:`to_json`."""
        matchers = tuple(m for text in doc["matchers"] for m in parse_matchers(text))
        return cls(str(doc["id"]), matchers, int(doc["starts_at_ms"]), int(doc["ends_at_ms"]),
                   str(doc.get("created_by", "")), str(doc.get("comment", "")))


@dataclass(frozen=True)
class Ack:
    """An acknowledgement of an alert (by fingerprint): stops its escalation from ``at_ms`` on.

    With ``active_at`` it covers that incident only; without, every incident of the
    fingerprint that had started by ``at_ms``.
    """

    fingerprint: str
    at_ms: int
    by: str
    comment: str = ""
    active_at: int | None = None

    def covers(self, alert: Alert, t_ms: int) -> bool:
        """Whether this acknowledgement applies to ``alert`` at ``t_ms``."""
        if alert.fingerprint != self.fingerprint or t_ms < self.at_ms:
            return False
        return alert.active_at == self.active_at if self.active_at is not None else alert.active_at <= self.at_ms

    def to_json(self) -> dict[str, Any]:
        """A JSON document."""
        return {**asdict(self), "at": ms_to_iso(self.at_ms)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Ack:
        """Inverse of :meth:`to_json`."""
        return cls(str(doc["fingerprint"]), int(doc["at_ms"]), str(doc.get("by", "")), str(doc.get("comment", "")),
                   None if doc.get("active_at") is None else int(doc["active_at"]))


@dataclass
class GroupState:
    """What a group was last notified about."""

    last_sent_ms: int
    firing: list[str]


@dataclass
class DeliveryState:
    """The planner's memory between evaluations (persisted by the live monitor)."""

    groups: dict[str, GroupState] = field(default_factory=dict)
    escalations: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON document."""
        return {"groups": {k: asdict(g) for k, g in self.groups.items()}, "escalations": self.escalations}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> DeliveryState:
        """Inverse of :meth:`to_json`."""
        doc = doc or {}
        return cls({k: GroupState(int(g["last_sent_ms"]), list(g["firing"])) for k, g in doc.get("groups", {}).items()},
                   {k: list(v) for k, v in doc.get("escalations", {}).items()})


@dataclass
class Notification:
    """One message to the sinks: a group's alerts (Alertmanager alert objects) at ``at_ms``."""

    id: str
    kind: NotificationKind
    at_ms: int
    group_key: str
    group_labels: dict[str, str]
    alerts: list[dict[str, Any]]

    @property
    def status(self) -> str:
        """``firing`` if any alert in it fires, else ``resolved``."""
        return "firing" if any(a["status"] == "firing" for a in self.alerts) else "resolved"

    def webhook_payload(self, receiver: str = "expkit", external_url: str = "") -> dict[str, Any]:
        """Alertmanager's webhook JSON, version 4."""
        common_labels = _common(a["labels"] for a in self.alerts)
        common_ann = _common(a["annotations"] for a in self.alerts)
        return {
            "version": "4",
            "groupKey": self.group_key,
            "truncatedAlerts": 0,
            "status": self.status,
            "receiver": receiver,
            "groupLabels": self.group_labels,
            "commonLabels": common_labels,
            "commonAnnotations": common_ann,
            "externalURL": external_url,
            "alerts": self.alerts,
        }

    def log_record(self) -> dict[str, Any]:
        """The line written to the notification log."""
        return {"id": self.id, "kind": self.kind, "status": self.status, "at": ms_to_iso(self.at_ms),
                "at_ms": self.at_ms, "group_key": self.group_key, "alerts": self.alerts}

    def to_json(self) -> dict[str, Any]:
        """A JSON document."""
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Notification:
        """Inverse of :meth:`to_json`."""
        return cls(str(doc["id"]), doc["kind"], int(doc["at_ms"]), str(doc["group_key"]),
                   dict(doc["group_labels"]), list(doc["alerts"]))


def _common(dicts: Any) -> dict[str, str]:
    items = list(dicts)
    if not items:
        return {}
    first = items[0]
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in items[1:])}


def _notification_id(kind: str, group_key: str, at_ms: int, alerts: Sequence[dict[str, Any]]) -> str:
    content = json.dumps([kind, group_key, at_ms, sorted((a["fingerprint"], a["startsAt"], a["status"])
                                                         for a in alerts)])
    return hashlib.sha256(content.encode()).hexdigest()[:24]


@dataclass
class Planner:
    """Turns alert states into notifications (see the module docstring)."""

    config: AlertsConfig
    silences: Sequence[Silence] = ()
    acks: Sequence[Ack] = ()

    def annotations(self, alert: Alert) -> dict[str, str]:
        """The alert's annotations, rendered, plus deadlines and its kill switch."""
        rule = self.config.rule(alert.rule)
        value, metric = alert.value, alert.metric
        out = {
            "summary": rule.render(rule.annotations.summary, alert.labels, value, metric),
            "runbook": rule.render(rule.annotations.runbook, alert.labels, value, metric),
        }
        if rule.annotations.description:
            out["description"] = rule.render(rule.annotations.description, alert.labels, value, metric)
        out["value"] = f"{value:.6g}"
        if alert.fired_at is not None:
            out["respond_by"] = ms_to_iso(self.config.deadline_ms(rule.severity, alert.fired_at, "respond")) or ""
            out["escalate_at"] = ms_to_iso(self.config.deadline_ms(rule.severity, alert.fired_at, "escalate")) or ""
        if rule.kill_switch is not None:
            out["kill_switch"] = f"{rule.kill_switch.action} ({rule.kill_switch.mode}): {rule.kill_switch.description}"
        return out

    def alert_object(self, alert: Alert, status: str) -> dict[str, Any]:
        """The Alertmanager alert object of ``alert``."""
        ends = ms_to_iso(alert.resolved_at) if status == "resolved" and alert.resolved_at is not None else ZERO_TIME
        return {
            "status": status,
            "labels": match_labels(alert),
            "annotations": self.annotations(alert),
            "startsAt": ms_to_iso(alert.fired_at if alert.fired_at is not None else alert.active_at),
            "endsAt": ends,
            "generatorURL": f"{self.config.notify.external_url}#alert={alert.rule}" if self.config.notify.external_url
            else "",
            "fingerprint": alert.fingerprint,
        }

    def group_of(self, alert: Alert) -> tuple[str, dict[str, str]]:
        """The group key (Alertmanager's format) and group labels of ``alert``."""
        labels = match_labels(alert)
        group = {k: labels.get(k, "") for k in self.config.routing.group_by}
        inner = ", ".join(f'{k}="{v}"' for k, v in group.items())
        return "{}:{" + inner + "}", group

    def _inhibited(self, alert: Alert, firing: Sequence[Alert]) -> bool:
        target = match_labels(alert)
        for rule in self.config.inhibit_rules:
            if not all(m.matches(target) for m in rule.target_matchers):
                continue
            for src in firing:
                if src is alert:
                    continue
                source = match_labels(src)
                if all(m.matches(source) for m in rule.source_matchers) and all(
                        source.get(k, "") == target.get(k, "") for k in rule.equal):
                    return True
        return False

    def _repeat_ms(self, alerts: Sequence[Alert]) -> int:
        intervals = [self.config.rule(a.rule).repeat_interval for a in alerts]
        return min([i for i in intervals if i is not None] or [self.config.routing.repeat_interval])

    def plan(self, t_ms: int, active: Mapping[str, Alert], resolved: Sequence[Alert],
             state: DeliveryState) -> list[Notification]:
        """The notifications due at ``t_ms``; ``state`` and the alerts' delivery fields are updated."""
        firing = [a for a in active.values() if a.state == "firing"]
        visible: list[Alert] = []
        for a in firing:
            silenced = any(s.mutes(a, t_ms) for s in self.silences)
            inhibited = self._inhibited(a, firing)
            a.silenced |= silenced
            a.inhibited |= inhibited
            if not (silenced or inhibited):
                visible.append(a)
        grouped: dict[str, list[Alert]] = defaultdict(list)
        labels_of: dict[str, dict[str, str]] = {}
        for a in [*visible, *resolved]:
            key, labels = self.group_of(a)
            labels_of[key] = labels
            grouped.setdefault(key, [])
            if a.state == "firing":
                grouped[key].append(a)
        out: list[Notification] = []
        for key in sorted(set(grouped) | set(state.groups)):
            out += self._plan_group(t_ms, key, labels_of.get(key, {}), grouped.get(key, []), resolved, state)
        out += self._escalations(t_ms, visible, state)
        live = {a.incident_id for a in firing}
        for incident in [i for i in state.escalations if i not in live]:
            del state.escalations[incident]
        return out

    def _plan_group(self, t: int, key: str, labels: dict[str, str], now_firing: list[Alert],
                    resolved: Sequence[Alert], state: DeliveryState) -> list[Notification]:
        prev = state.groups.get(key)
        before = set(prev.firing) if prev else set()
        fps = sorted(a.fingerprint for a in now_firing)
        gone = [a for a in resolved if a.fingerprint in before]
        new = set(fps) - before
        kind: NotificationKind | None = None
        if new:
            kind = "firing"
        elif gone and self.config.routing.send_resolved:
            kind = "resolved"
        elif fps and prev is not None and t - prev.last_sent_ms >= self._repeat_ms(now_firing):
            kind = "repeat"
        if kind is None:
            if fps:
                state.groups[key] = GroupState(prev.last_sent_ms if prev else t, fps)
            else:
                state.groups.pop(key, None)
            return []
        alerts = [self.alert_object(a, "firing") for a in sorted(now_firing, key=lambda a: a.fingerprint)]
        if self.config.routing.send_resolved:
            alerts += [self.alert_object(a, "resolved") for a in sorted(gone, key=lambda a: a.fingerprint)]
        for a in now_firing:
            if a.notified_at is None:
                a.notified_at = t
        if fps:
            state.groups[key] = GroupState(t, fps)
        else:
            state.groups.pop(key, None)
        return [Notification(_notification_id(kind, key, t, alerts), kind, t, key, labels, alerts)]

    def _escalations(self, t: int, visible: Sequence[Alert], state: DeliveryState) -> list[Notification]:
        out = []
        for a in sorted(visible, key=lambda a: a.fingerprint):
            if a.fired_at is None or any(k.covers(a, t) for k in self.acks):
                continue
            rule = self.config.rule(a.rule)
            respond = self.config.deadline_ms(rule.severity, a.fired_at, "respond")
            escalate = self.config.deadline_ms(rule.severity, a.fired_at, "escalate")
            done = state.escalations.setdefault(a.incident_id, [])
            stages: list[tuple[NotificationKind, int]] = [("escalation", escalate)]
            if respond < escalate:
                stages.insert(0, ("respond_overdue", respond))
            for kind, deadline in stages:
                if t < deadline or kind in done:
                    continue
                done.append(kind)
                obj = self.alert_object(a, "firing")
                waited = format_duration(deadline - a.fired_at)
                obj["annotations"]["escalation"] = (
                    f"not acknowledged {waited} after firing; "
                    + ("respond now" if kind == "respond_overdue" else f"escalate beyond team {rule.labels['team']}")
                )
                key, labels = self.group_of(a)
                out.append(Notification(_notification_id(kind, key, t, [obj]), kind, t, key, labels, [obj]))
        return out
