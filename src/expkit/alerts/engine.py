"""The rule state machine (Prometheus alerting-rule semantics), pure and deterministic.

Per rule and label set: ``inactive → pending → firing → resolved``.

* A sample covers a measurement window ``[start, end)`` and is evaluated at ``end``.
* The first true sample makes the alert *pending*, with ``active_at`` = its window start.
* It *fires* at the first evaluation ``t`` with ``t − active_at ≥ for`` while every sample
  since has been true (data time, so ``for: 10m`` on 5-minute bins fires at the end of the
  second bad bin, and ``for: 2d`` on daily samples at the end of the second bad day).
* One false sample resets a pending alert and resolves a firing one (``resolved_at`` = that
  evaluation time). A firing alert is one incident until it resolves.
* No sample for a known label set applies the rule's no-data policy: ``ok`` (counts as false),
  ``alerting`` (counts as true) or ``keep_state`` (nothing changes). With ``alerting``, a rule
  with no samples at all alerts for the base label set (the experiment).

>>> from expkit.alerts.rules import parse_alerts
>>> from expkit.alerts.metrics import make_sample
>>> cfg = parse_alerts({"severities": {p: {"respond": "1h", "escalate": "2h"} for p in ("P1", "P2", "P3", "P4")},
...     "rules": [{"name": "err", "metric": "error_rate", "condition": "> 0.01", "for": "10m",
...                "labels": {"severity": "P1", "team": "serving"},
...                "annotations": {"summary": "errors {value:.1%}", "runbook": "restart"}}]})
>>> engine, active = RuleEngine(cfg, {"experiment": "e"}), {}
>>> [t.kind for m in (5, 10) for t in engine.evaluate(m * 60_000,
...     [make_sample("error_rate", m * 60_000, 0.05, experiment="e")], active)]
['pending', 'firing']
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from expkit.alerts.metrics import LabelKey, Sample, label_key
from expkit.alerts.rules import AlertsConfig, Rule

State = Literal["pending", "firing", "resolved"]


def fingerprint(rule: str, labels: LabelKey) -> str:
    """Stable id of a rule's label set (Alertmanager's role for ``fingerprint``)."""
    text = rule + "\x00" + "\x00".join(f"{k}={v}" for k, v in labels)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Alert:
    """One incident of one rule and label set, from pending to resolved.

    ``labels`` are the series labels plus the rule's labels (severity, team …). The delivery
    fields are filled by :mod:`expkit.alerts.delivery`: ``notified_at`` (first notification
    that carried it), ``inhibited``/``silenced`` (muted at some evaluation while firing).
    """

    rule: str
    fingerprint: str
    labels: dict[str, str]
    state: State
    active_at: int
    fired_at: int | None = None
    resolved_at: int | None = None
    last_eval_ms: int = 0
    value: float = math.nan
    peak: float = math.nan
    metric: str = ""
    notified_at: int | None = None
    inhibited: bool = False
    silenced: bool = False

    @property
    def incident_id(self) -> str:
        """One firing period of one label set: fingerprint and start."""
        return f"{self.fingerprint}@{self.active_at}"

    def to_json(self) -> dict[str, Any]:
        """A JSON document (NaN as null)."""
        doc = asdict(self)
        for k in ("value", "peak"):
            doc[k] = None if not math.isfinite(doc[k]) else doc[k]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Alert:
        """Inverse of :meth:`to_json`."""
        fields = dict(doc)
        for k in ("value", "peak"):
            fields[k] = math.nan if fields.get(k) is None else float(fields[k])
        return cls(**fields)


@dataclass(frozen=True)
class Transition:
    """A state change: ``pending``, ``firing``, ``resolved`` or ``cleared`` (pending reset).

    ``alert`` is the live object (its later changes show through)."""

    kind: Literal["pending", "firing", "resolved", "cleared"]
    t_ms: int
    alert: Alert


@dataclass
class RuleEngine:
    """Evaluates every rule of ``config`` at one time against that time's samples.

    ``base_labels`` label a no-data alert when a rule has no samples at all.
    """

    config: AlertsConfig
    base_labels: dict[str, str] = field(default_factory=dict)

    @property
    def metrics(self) -> set[str]:
        """Every metric some rule reads."""
        return {c.metric.name for r in self.config.rules for c in r.conditions}

    def due(self, t_ms: int) -> list[Rule]:
        """Rules evaluated at ``t_ms`` (their step divides it)."""
        return [r for r in self.config.rules if t_ms % r.step_ms == 0]

    def evaluate(self, t_ms: int, samples: Sequence[Sample], active: dict[str, Alert],
                 rules: Iterable[Rule] | None = None) -> list[Transition]:
        """Apply the samples evaluated at ``t_ms``; ``active`` (fingerprint → pending or
        firing alert) is updated in place; returns the transitions, in rule order."""
        by_metric: dict[str, list[Sample]] = defaultdict(list)
        for s in samples:
            if s.end_ms == t_ms:
                by_metric[s.metric].append(s)
        out: list[Transition] = []
        for rule in self.due(t_ms) if rules is None else rules:
            out += self._evaluate_rule(rule, t_ms, by_metric, active)
        return out

    def _evaluate_rule(self, rule: Rule, t: int, by_metric: dict[str, list[Sample]],
                       active: dict[str, Alert]) -> list[Transition]:
        results: dict[LabelKey, list[bool]] = defaultdict(list)
        starts: dict[LabelKey, int] = {}
        values: dict[LabelKey, tuple[float, str]] = {}
        for cond in rule.conditions:
            for s in by_metric.get(cond.metric.name, ()):
                labels = s.label_dict
                if not cond.metric.matches(labels) or not math.isfinite(s.value):
                    continue
                hit = cond.condition.holds(s.value)
                results[s.labels].append(hit)
                starts[s.labels] = min(starts.get(s.labels, s.start_ms), s.start_ms)
                # The value shown is the one that made the rule true (else the main metric's).
                if hit or s.labels not in values:
                    values[s.labels] = (s.value, s.metric)
        mine = {a.fingerprint: a for a in active.values() if a.rule == rule.name}
        known = {label_key({k: v for k, v in a.labels.items() if k not in rule.labels}): a for a in mine.values()}
        keys = set(results) | set(known)
        if not results and rule.no_data == "alerting":
            keys.add(label_key(self.base_labels))
        out: list[Transition] = []
        for key in sorted(keys):
            if key in results:
                verdict: bool | None = any(results[key])
            else:
                verdict = {"ok": False, "alerting": True, "keep_state": None}[rule.no_data]
            if verdict is None:
                continue
            value, metric = values.get(key, (math.nan, ""))
            out += self._step(rule, key, verdict, t, starts.get(key, t), value, metric, active)
        return out

    def _step(self, rule: Rule, key: LabelKey, verdict: bool, t: int, start: int, value: float, metric: str,
              active: dict[str, Alert]) -> list[Transition]:
        fp = fingerprint(rule.name, key)
        alert = active.get(fp)
        out: list[Transition] = []
        if not verdict:
            if alert is None:
                return out
            del active[fp]
            alert.last_eval_ms = t
            if alert.state == "firing":
                alert.state, alert.resolved_at = "resolved", t
                out.append(Transition("resolved", t, alert))
            else:
                out.append(Transition("cleared", t, alert))
            return out
        if alert is None:
            alert = Alert(rule=rule.name, fingerprint=fp, labels={**dict(key), **rule.labels}, state="pending",
                          active_at=min(start, t))
            active[fp] = alert
            out.append(Transition("pending", t, alert))
        alert.last_eval_ms = t
        alert.value, alert.metric = value, metric or alert.metric
        if math.isfinite(value) and metric == rule.metric.name:  # peaks of one unit only
            worse = rule.condition.op in (">", ">=")
            alert.peak = value if not math.isfinite(alert.peak) else (
                max(alert.peak, value) if worse else min(alert.peak, value))
        if alert.state == "pending" and t - alert.active_at >= rule.for_:
            alert.state, alert.fired_at = "firing", t
            out.append(Transition("firing", t, alert))
        return out
