"""Kill switches: a small state document the serving side reads, plus an audit log.

``<warehouse>/state/alerts/killswitches.json`` holds one entry per action and experiment
(``disable_experiment/rec_ranker_v2``) with its state (``engaged``, ``pending_approval`` or
``off``), the reason (the alert's summary), the alert (rule, fingerprint, labels, when it
fired) and when and by whom it last changed. Every change is appended to
``killswitch_audit.jsonl``. A firing alert whose rule has a kill switch engages it
(``automatic``) or asks for approval (``approval``); once per incident, so replaying a day
never re-engages a switch somebody has reset. Switches stay engaged until reset by a person; a request
for approval is withdrawn (``off``) when its alert resolves before anyone approved it.

Callers hold the alert-state lock (:meth:`expkit.alerts.state.AlertStore.lock`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from expkit.atomic import atomic_write_json
from expkit.errors import ExpkitError
from expkit.warehouse import ms_to_iso

HANDLED_KEEP = 5000
"""Incidents remembered as handled (older ones are forgotten first)."""


@dataclass(frozen=True)
class KillSwitchRequest:
    """A firing alert asking for its kill switch, or (``resolved_at_ms`` set) its incident resolved:
    a request still waiting for approval is then withdrawn."""

    action: str
    mode: Literal["automatic", "approval"]
    experiment: str
    rule: str
    fingerprint: str
    incident: str
    labels: dict[str, str]
    reason: str
    fired_at_ms: int
    resolved_at_ms: int | None = None

    @property
    def id(self) -> str:
        """One request per incident, and one for its resolution."""
        return f"ks-{self.incident}" if self.resolved_at_ms is None else f"ks-{self.incident}-resolved"

    def to_json(self) -> dict[str, Any]:
        """A JSON document."""
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> KillSwitchRequest:
        """Inverse of :meth:`to_json`."""
        return cls(**doc)


@dataclass
class KillSwitch:
    """The state of one action for one experiment."""

    key: str
    action: str
    experiment: str
    state: Literal["engaged", "pending_approval", "off"]
    mode: str
    reason: str
    rule: str
    fingerprint: str
    incident: str
    labels: dict[str, str] = field(default_factory=dict)
    alert_fired_at: str | None = None
    changed_at: str | None = None
    changed_by: str = ""


class KillSwitchStore:
    """Reads and changes ``killswitches.json``; appends to the audit log."""

    def __init__(self, folder: Path):
        self.path = folder / "killswitches.json"
        self.audit_path = folder / "killswitch_audit.jsonl"

    def _load(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"version": 1, "switches": {}, "handled": []}
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ExpkitError(f"kill switch document {self.path} is not valid JSON ({err}); "
                              "restore it from the audit log or delete it to start empty") from None

    def status(self) -> list[KillSwitch]:
        """Every switch ever set, engaged ones first."""
        doc = self._load()
        switches = [KillSwitch(**s) for s in doc["switches"].values()]
        order = {"engaged": 0, "pending_approval": 1, "off": 2}
        return sorted(switches, key=lambda s: (order[s.state], s.key))

    def _audit(self, event_id: str, record: dict[str, Any]) -> None:
        if self.audit_path.is_file() and f'"event_id": "{event_id}"'.encode() in self.audit_path.read_bytes():
            return
        self.audit_path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"event_id": event_id, "at": ms_to_iso(time.time() * 1000), **record})
        with open(self.audit_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def apply(self, req: KillSwitchRequest) -> bool:
        """Engage (or ask approval for) the switch of a firing alert, once per incident; for a resolved
        incident, withdraw its request if it still waits for approval (:meth:`withdraw`)."""
        if req.resolved_at_ms is not None:
            return self.withdraw(req)
        doc = self._load()
        if req.incident in doc["handled"]:
            return False
        key = f"{req.action}/{req.experiment}"
        current = doc["switches"].get(key)
        engaged = req.mode == "automatic" or (current and current["state"] == "engaged")
        state: Literal["engaged", "pending_approval"] = "engaged" if engaged else "pending_approval"
        event = {"engaged": "engage", "pending_approval": "request_approval"}[state]
        record = {"event": event, "key": key, "action": req.action, "experiment": req.experiment,
                  "rule": req.rule, "incident": req.incident, "reason": req.reason,
                  "alert_fired_at": ms_to_iso(req.fired_at_ms), "by": f"alert {req.rule}"}
        self._audit(f"{req.id}-{event}", record)
        doc["switches"][key] = asdict(KillSwitch(
            key=key, action=req.action, experiment=req.experiment, state=state, mode=req.mode,
            reason=req.reason, rule=req.rule, fingerprint=req.fingerprint, incident=req.incident,
            labels=req.labels, alert_fired_at=ms_to_iso(req.fired_at_ms),
            changed_at=ms_to_iso(time.time() * 1000), changed_by=f"alert {req.rule}"))
        doc["handled"] = (doc["handled"] + [req.incident])[-HANDLED_KEEP:]
        atomic_write_json(self.path, doc)
        return True

    def withdraw(self, req: KillSwitchRequest) -> bool:
        """Turn off the switch that the incident of ``req`` asked approval for, if nobody approved it
        before the alert resolved (an approval then would act on a problem that is gone); a switch
        engaged, reset, or asked for by another incident is left alone."""
        doc = self._load()
        key = f"{req.action}/{req.experiment}"
        current = doc["switches"].get(key)
        if not current or current["state"] != "pending_approval" or current["incident"] != req.incident:
            return False
        resolved = ms_to_iso(req.resolved_at_ms)
        by = f"alert {req.rule} resolved"
        self._audit(f"{req.id}-withdraw", {
            "event": "withdraw", "key": key, "action": req.action, "experiment": req.experiment,
            "rule": req.rule, "incident": req.incident, "reason": f"the alert resolved at {resolved} before approval",
            "by": by, "previous_state": current["state"]})
        current.update(state="off", changed_at=ms_to_iso(time.time() * 1000), changed_by=by,
                       reason=f"approval withdrawn: the alert resolved at {resolved} ({req.reason})")
        atomic_write_json(self.path, doc)
        return True

    def _change(self, name: str, experiment: str | None, by: str, reason: str,
                event: Literal["reset", "approve"]) -> list[KillSwitch]:
        doc = self._load()
        keys = [k for k, s in doc["switches"].items()
                if (name in (k, s["action"], "all")) and (experiment is None or s["experiment"] == experiment)]
        if not keys:
            known = ", ".join(doc["switches"]) or "none"
            raise ExpkitError(f"no kill switch {name!r}{f' for experiment {experiment}' if experiment else ''}; "
                              f"switches: {known} (see 'expkit killswitch status')")
        if event == "approve" and name != "all" and not any(
                doc["switches"][k]["state"] == "pending_approval" for k in keys):
            states = ", ".join(f"{k} is {doc['switches'][k]['state']}" for k in keys)
            raise ExpkitError(f"nothing to approve: {states}; only a switch in state pending_approval "
                              "can be approved (see 'expkit killswitch status')")
        changed = []
        now = ms_to_iso(time.time() * 1000)
        for k in keys:
            s = doc["switches"][k]
            if event == "approve" and s["state"] != "pending_approval":
                continue
            if event == "reset" and s["state"] == "off":
                continue
            self._audit(f"{k}-{event}-{time.time_ns()}", {
                "event": event, "key": k, "action": s["action"], "experiment": s["experiment"],
                "rule": s["rule"], "incident": s["incident"], "reason": reason, "by": by,
                "previous_state": s["state"]})
            s.update(state="engaged" if event == "approve" else "off", changed_at=now, changed_by=by)
            if reason:
                s["reason"] = f"{event} by {by}: {reason}"
            changed.append(KillSwitch(**s))
        atomic_write_json(self.path, doc)
        return changed

    def reset(self, name: str, experiment: str | None, by: str, reason: str = "") -> list[KillSwitch]:
        """Turn switches off (``name`` = key, action or ``all``)."""
        return self._change(name, experiment, by, reason, "reset")

    def approve(self, name: str, experiment: str | None, by: str, reason: str = "") -> list[KillSwitch]:
        """Engage switches waiting for approval."""
        return self._change(name, experiment, by, reason, "approve")

    def audit(self) -> list[dict[str, Any]]:
        """Every audit record, oldest first."""
        if not self.audit_path.is_file():
            return []
        return [json.loads(line) for line in self.audit_path.read_text(encoding="utf-8").splitlines() if line]
