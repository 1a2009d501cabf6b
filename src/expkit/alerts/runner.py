"""Running the rules: batch replay of a day, the live monitor, and carrying out effects.

Both ways share :func:`replay`: samples in, evaluations in time order, each followed by the
delivery planner; out come the incidents, the notifications and the kill switch requests.

* **Batch** (:func:`evaluate_day`): replays the day's 5-minute bins (after a warm-up, so an
  alert pending at midnight carries in) and the daily outcome checks (after enough earlier
  days for their ``for``), with the replayed time as "now": freshness is judged as of each
  bin's end. It returns the day's alert timeline; with ``notify=True`` it also delivers the
  notifications and kill switch requests that were not delivered before.
* **Live** (:func:`monitor_once`, :func:`monitor`): under the state lock, evaluates every time
  since the saved cursor whose rollups are ready, persists the new state together with an
  outbox of what to deliver, then carries out the kill switches and the log. The webhooks are
  called off the update path by a :class:`DeliveryWorker` thread, which holds the state lock
  only to read the outbox and record each result. A process killed at any point redoes only
  what was not recorded: the log is written once per notification id, kill switches once
  per incident, webhooks at least once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from expkit.alerts.delivery import DeliveryState, Notification, Planner
from expkit.alerts.engine import Alert, RuleEngine
from expkit.alerts.killswitch import KillSwitchRequest
from expkit.alerts.metrics import METRICS, Sample
from expkit.alerts.rules import AlertsConfig, Rule, default_rules_file, load_alerts
from expkit.alerts.sinks import DeliveryResult, JsonlSink, WebhookSink
from expkit.alerts.sources import CheckRow, WarehouseSource, eval_times
from expkit.alerts.state import AlertStore, LiveState, OutboxItem
from expkit.config import ExperimentConfig, default_params_file
from expkit.errors import ExpkitError, NoDataError
from expkit.readers import platform_health_id
from expkit.warehouse import BIN_MS, DAY_MS, Warehouse, day_bounds_ms, ms_to_iso, parse_date

log = logging.getLogger(__name__)

RECENT_KEEP = 200
"""Resolved alerts kept in the live state for ``expkit alerts status``."""


class Sink(Protocol):
    """Where notifications go; a ``remote`` one (a webhook) is called off the update path."""

    name: str
    remote: bool

    def deliver(self, note: Notification) -> DeliveryResult:
        """Deliver one notification."""
        ...


@dataclass
class ReplayResult:
    """What a replay produced."""

    incidents: dict[str, Alert] = field(default_factory=dict)
    notifications: list[Notification] = field(default_factory=list)
    kill_switches: list[KillSwitchRequest] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)


def plan_times(config: AlertsConfig, ranges: Mapping[int, tuple[int, int]]) -> list[tuple[int, list[Rule]]]:
    """Evaluation times in order with the rules due then; ``ranges`` maps a step (ms) to the
    ``(start, end]`` over which rules of that step are evaluated."""
    due: dict[int, list[Rule]] = {}
    for step, (start, end) in ranges.items():
        rules = [r for r in config.rules if r.step_ms == step]
        for t in eval_times(start, end, step) if rules else ():
            due.setdefault(t, []).extend(rules)
    order = {r.name: i for i, r in enumerate(config.rules)}
    return [(t, sorted(due[t], key=lambda r: order[r.name])) for t in sorted(due)]


def replay(
    engine: RuleEngine,
    planner: Planner,
    samples: Iterable[Sample],
    times: Sequence[tuple[int, list[Rule]]],
    active: dict[str, Alert] | None = None,
    delivery: DeliveryState | None = None,
    on_eval: Callable[[int, dict[str, Alert]], None] | None = None,
) -> ReplayResult:
    """Evaluate ``times`` in order against ``samples``; ``active`` and ``delivery`` (the state
    carried between evaluations) are updated in place."""
    active = {} if active is None else active
    delivery = DeliveryState() if delivery is None else delivery
    by_time: dict[int, list[Sample]] = {}
    for s in samples:
        by_time.setdefault(s.end_ms, []).append(s)
    result = ReplayResult()
    for a in active.values():
        result.incidents[a.incident_id] = a
    for t, rules in times:
        transitions = engine.evaluate(t, by_time.get(t, []), active, rules)
        for tr in transitions:
            result.incidents[tr.alert.incident_id] = tr.alert
        resolved = [tr.alert for tr in transitions if tr.kind == "resolved"]
        result.resolved += resolved
        result.notifications += planner.plan(t, active, resolved, delivery)
        for tr in transitions:
            rule = engine.config.rule(tr.alert.rule)
            ks = rule.kill_switch
            if ks is not None and (tr.kind == "firing" or (tr.kind == "resolved" and ks.mode == "approval")):
                a = tr.alert
                result.kill_switches.append(KillSwitchRequest(
                    action=ks.action, mode=ks.mode,
                    experiment=a.labels.get("experiment", ""), rule=a.rule, fingerprint=a.fingerprint,
                    incident=a.incident_id, labels=dict(a.labels), reason=planner.annotations(a)["summary"],
                    fired_at_ms=t if tr.kind == "firing" else (a.fired_at or t),
                    resolved_at_ms=t if tr.kind == "resolved" else None))
        if on_eval is not None:
            on_eval(t, active)
    return result


def alert_record(alert: Alert, planner: Planner) -> dict[str, Any]:
    """The summary.json alert dict (plus extras) of an incident."""
    rule = planner.config.rule(alert.rule)
    ann = planner.annotations(alert)
    series = {k: v for k, v in alert.labels.items() if k not in rule.labels}
    return {
        "rule": alert.rule,
        "severity": rule.severity,
        "labels": series,
        "state": alert.state,
        "active_at": ms_to_iso(alert.active_at),
        "fired_at": ms_to_iso(alert.fired_at),
        "resolved_at": ms_to_iso(alert.resolved_at),
        "kill_switch": rule.kill_switch.action if rule.kill_switch else None,
        "kill_switch_mode": rule.kill_switch.mode if rule.kill_switch else None,
        "team": rule.labels["team"],
        "summary": ann["summary"],
        "runbook": ann["runbook"],
        "value": _finite(alert.peak if math.isfinite(alert.peak) else alert.value),
        "metric": rule.metric.name if math.isfinite(alert.peak) else alert.metric,
        "respond_by": ann.get("respond_by"),
        "escalate_at": ann.get("escalate_at"),
        "fingerprint": alert.fingerprint,
        "notified_at": ms_to_iso(alert.notified_at),
        "inhibited": alert.inhibited,
        "silenced": alert.silenced,
    }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def timeline(incidents: Iterable[Alert], planner: Planner, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    """Alerts that fired and were firing at some point in ``(start_ms, end_ms]``, plus those
    pending at ``end_ms``; ordered by time."""
    keep = []
    for a in incidents:
        if a.fired_at is None:
            if a.state == "pending" and a.last_eval_ms == end_ms:
                keep.append(a)
        elif a.fired_at <= end_ms and (a.resolved_at is None or a.resolved_at > start_ms):
            keep.append(a)
    keep.sort(key=lambda a: (a.fired_at if a.fired_at is not None else a.active_at, a.rule, a.fingerprint))
    return [alert_record(a, planner) for a in keep]


def _day_warm_up(config: AlertsConfig) -> int:
    longest = max((r.for_ for r in config.rules if r.step_ms == DAY_MS), default=0)
    return longest + DAY_MS


def samples_for(source: WarehouseSource, engine: RuleEngine, ranges: Mapping[int, tuple[int, int]]) -> list[Sample]:
    """The samples every rule of each step needs over its range."""
    out: list[Sample] = []
    for step, (start, end) in ranges.items():
        metrics = {m for m in engine.metrics if METRICS[m].step_ms == step}
        if metrics and end > start:
            out += source.samples(metrics, start, end)
    return out


@dataclass
class DayEvaluation:
    """A replayed day: its timeline and what the replay decided to deliver."""

    alerts: list[dict[str, Any]]
    result: ReplayResult
    delivered: list[str] = field(default_factory=list)


def replay_day(
    warehouse: str | Path | Warehouse,
    day: dt.date | str,
    config: ExperimentConfig,
    params_file: str | Path | None = None,
    *,
    rules: AlertsConfig | None = None,
    rules_file: str | Path | None = None,
    checks: Sequence[Mapping[str, Any]] | None = None,
    platform_health: bool = False,
) -> tuple[DayEvaluation, Planner]:
    """Replay ``day`` (see :func:`evaluate_day`) without side effects."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse.open(warehouse)
    day = parse_date(day)
    params_path = Path(params_file) if params_file else default_params_file()
    rules = rules or load_alerts(rules_file or default_rules_file(params_path))
    start, end = day_bounds_ms(day)
    if not wh.rollup_files("health_bins", [day]):
        raise NoDataError(f"no rollups for {day} in {wh.root}; build them with "
                          f"'expkit rollup --warehouse {wh.root} --date {day}'")
    health_id = platform_health_id(wh, day, config.experiment_id) if platform_health else None
    source = WarehouseSource(wh, config, params_path, [CheckRow.from_mapping(c) for c in checks or ()], end,
                             health_experiment_id=health_id)
    engine = RuleEngine(rules, {"experiment": config.experiment_id})
    store = AlertStore(wh)
    planner = Planner(rules, store.silences(), store.acks())
    ranges = {BIN_MS: (start - rules.evaluation.warm_up, end), DAY_MS: (start - _day_warm_up(rules), end)}
    result = replay(engine, planner, samples_for(source, engine, ranges), plan_times(rules, ranges))
    return DayEvaluation(timeline(result.incidents.values(), planner, start, end), result), planner


def evaluate_day(
    warehouse: str | Path | Warehouse,
    day: dt.date | str,
    config: ExperimentConfig,
    params_file: str | Path | None = None,
    *,
    rules_file: str | Path | None = None,
    notify: bool = False,
    checks: Sequence[Mapping[str, Any]] | None = None,
    record: bool = True,
    platform_health: bool = False,
) -> list[dict[str, Any]]:
    """The alert timeline of ``day`` by batch replay (``alerts`` dicts of summary.json).

    ``params_file`` is the experiment's parameters file; the rules are ``alerts.yaml``
    beside it unless ``rules_file`` is given. ``checks`` (validation check rows, as in summary.json) feed
    the ``validation_failed`` metric at the day's end. With ``notify``, notifications and kill
    switch requests not delivered before are delivered (deduplicated against the state). With
    ``record``, the timeline is stored for the experiment (:meth:`AlertStore.record_day`): the
    readout's trust gate reads it there.
    With ``platform_health`` (a day of several experiments) the 5-minute health rules read
    the platform's requests (:func:`expkit.readers.platform_health_id`) when the day's requests do
    not carry the experiment's id.
    """
    evaluation, _ = replay_day(warehouse, day, config, params_file, rules_file=rules_file, checks=checks,
                               platform_health=platform_health)
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse.open(warehouse)
    if record:
        AlertStore(wh).record_day(parse_date(day) if isinstance(day, str) else day, config.experiment_id,
                                  evaluation.alerts)
    if notify:
        rules = load_alerts(rules_file or default_rules_file(params_file or default_params_file()))
        deliver_new(AlertStore(wh), rules, evaluation.result)
    return evaluation.alerts


# --- effects -----------------------------------------------------------------------------------


def build_sinks(rules: AlertsConfig, store: AlertStore) -> dict[str, Sink]:
    """The configured sinks: the log (unless turned off) and each webhook whose URL is set (one
    whose ``url_env`` variable is unset is skipped)."""
    sinks: dict[str, Sink] = {}
    if rules.notify.log:
        sinks["log"] = JsonlSink(store.log_path)
    for hook in rules.notify.webhooks:
        if not hook.resolved_url():
            continue
        sink = WebhookSink(hook, rules.routing.receiver, rules.notify.external_url)
        sinks[sink.name] = sink
    return sinks


def enqueue(state: LiveState, result: ReplayResult, sinks: Mapping[str, Sink]) -> int:
    """Add the replay's notifications and kill switch requests not yet carried out or queued."""
    queued = {o.id for o in state.outbox}
    added = 0
    for ks in result.kill_switches:
        if ks.id not in state.sent and ks.id not in queued:
            state.outbox.append(OutboxItem(ks.id, kill_switch=ks))
            added += 1
    for note in result.notifications:
        if note.id not in state.sent and note.id not in queued:
            state.outbox.append(OutboxItem(note.id, notification=note, pending=list(sinks)))
            added += 1
    return added


@dataclass
class FlushReport:
    """What one pass over the outbox did."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    def merge(self, other: FlushReport) -> FlushReport:
        """Add what ``other`` did (a later pass) to this report."""
        self.done += other.done
        self.failed.update(other.failed)
        for item_id in other.done + other.dropped:
            self.failed.pop(item_id, None)
        self.dropped += other.dropped
        return self


def _remote(sink: Sink | None) -> bool:
    return bool(getattr(sink, "remote", False))


def _try_sinks(item: OutboxItem, names: Sequence[str], sinks: Mapping[str, Sink], now: int,
               results: Mapping[str, DeliveryResult] | None = None, count: bool = True) -> None:
    """Deliver ``item`` to the sinks ``names`` (or record their ``results``, got outside the lock),
    updating what is still pending; ``count``: an attempt (the live update's log write is not).
    A sink no longer configured counts as delivered."""
    assert item.notification is not None
    item.first_try_ms = item.first_try_ms or now
    item.attempts += count
    for name in names:
        sink = sinks.get(name)
        if results is not None:
            res = results[name]
        else:
            res = sink.deliver(item.notification) if sink else DeliveryResult(True, 0)
        if res.ok:
            item.pending.remove(name)
        else:
            item.last_error = f"{name}: {res.error}"


def _settle(store: AlertStore, state: LiveState, item: OutboxItem, now: int, give_up_ms: int,
            report: FlushReport) -> None:
    """After a try: an item with nothing pending is done; one still failing stays queued until
    ``give_up_ms`` after its first try, then is dropped. Saves the state."""
    if item.pending and now - (item.first_try_ms or now) < give_up_ms:
        report.failed[item.id] = item.last_error
    else:
        if item.pending:
            log.warning("alert notification %s dropped after %d attempts: %s", item.id, item.attempts,
                        item.last_error)
            report.dropped.append(item.id)
        else:
            report.done.append(item.id)
        state.outbox.remove(item)
        state.mark_done(item.id, now)
    store.save(state)


def deliver_outbox(store: AlertStore, state: LiveState, sinks: Mapping[str, Sink], give_up_ms: int,
                   webhooks: bool = True) -> FlushReport:
    """Carry out the outbox in order, saving the state after each item (caller holds the lock).

    With ``webhooks=False`` (the live update) only what is local and quick is carried out: the
    kill switches and the log. The webhooks stay pending for :func:`deliver_webhooks`.
    """
    report = FlushReport()
    for item in list(state.outbox):
        now = int(time.time() * 1000)
        if item.kill_switch is not None:
            store.killswitches.apply(item.kill_switch)
            state.outbox.remove(item)
            state.mark_done(item.id, now)
            report.done.append(item.id)
            store.save(state)
            continue
        names = [n for n in item.pending if webhooks or not _remote(sinks.get(n))]
        if names:
            _try_sinks(item, names, sinks, now, count=webhooks)
        if not webhooks and item.pending and all(_remote(sinks.get(n)) for n in item.pending):
            if names:
                store.save(state)
            continue  # only webhooks left: the delivery worker's
        _settle(store, state, item, now, give_up_ms, report)
    return report


def deliver_webhooks(store: AlertStore, sinks: Mapping[str, Sink], give_up_ms: int) -> FlushReport:
    """One pass over the webhooks pending in the outbox, off the update path.

    The state lock is held only to read the outbox and to record each result, never while a
    receiver is called, so an update never waits on a webhook. A receiver that fails is not
    called again in the same pass (its other notifications wait for the next pass, in order).
    Another process already delivering makes this pass a no-op (:meth:`AlertStore.delivery_lock`).
    A process killed mid-call leaves the notification pending: it is sent again (at least once).
    """
    report = FlushReport()
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(store.delivery_lock())
        except ExpkitError:
            return report  # another process is delivering
        with store.lock():
            due = [(o.id, o.notification, [n for n in o.pending if _remote(sinks.get(n))])
                   for o in store.load().outbox if o.notification is not None]
        down: set[str] = set()
        for item_id, note, names in due:
            results: dict[str, DeliveryResult] = {}
            for name in names:
                if name not in down:
                    results[name] = sinks[name].deliver(note)
                    if not results[name].ok:
                        down.add(name)
                        log.warning("alert webhook %s failed (notification %s): %s", name, item_id,
                                    results[name].error)
            if not results:
                continue
            with store.lock():
                state = store.load()
                item = next((o for o in state.outbox if o.id == item_id), None)
                if item is None:
                    continue  # carried out meanwhile
                now = int(time.time() * 1000)
                _try_sinks(item, [n for n in results if n in item.pending], sinks, now, results)
                _settle(store, state, item, now, give_up_ms, report)
    return report


class DeliveryWorker:
    """Calls the outbox's webhooks from a thread of its own, so that an update (``expkit live``,
    ``expkit monitor``) never waits on a receiver.

    A pass (:func:`deliver_webhooks`) runs when the thread starts (what a restart left pending),
    when :meth:`wake` is called (after each update) and at least every ``every_s`` seconds, so a
    notification that failed is retried at the next pass until ``notify.give_up_after``. Each
    webhook keeps its own timeout, retries and backoff from the rules file.
    """

    def __init__(self, store: AlertStore, rules: AlertsConfig, sinks: Mapping[str, Sink] | None = None,
                 every_s: float = 60.0):
        self.store = store
        self.sinks = build_sinks(rules, store) if sinks is None else sinks
        self.give_up_ms = rules.notify.give_up_after
        self.every_s = every_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._report = FlushReport()
        self._thread = threading.Thread(target=self._run, name="expkit-alert-delivery", daemon=True)

    def start(self) -> DeliveryWorker:
        """Start the thread (it passes over the outbox at once)."""
        self._wake.set()
        self._thread.start()
        return self

    def wake(self) -> None:
        """Ask for a pass now (an update queued something)."""
        self._wake.set()

    def deliver(self) -> FlushReport:
        """One pass in the calling thread; what it did is also kept for :meth:`take`."""
        report = deliver_webhooks(self.store, self.sinks, self.give_up_ms)
        with self._lock:
            self._report.merge(report)
        return report

    def after_update(self, last: bool) -> FlushReport:
        """What an update loop does after each update: ask for a pass, and on the ``last`` update of a
        bounded run deliver before returning (:meth:`close` with ``drain``); return what the passes
        did since the previous call (:meth:`take`)."""
        self.wake()
        if last:
            self.close(drain=True)
        return self.take()

    def take(self) -> FlushReport:
        """What the passes did since the last call."""
        with self._lock:
            report, self._report = self._report, FlushReport()
        return report

    def close(self, drain: bool = False, wait_s: float = 1.0) -> None:
        """Stop the thread (if started). With ``drain`` wait for its pass in flight, then make one
        more pass here (a bounded run delivers before it exits); otherwise wait at most
        ``wait_s``: a call still in flight stays pending in the outbox and is sent again by the
        next process."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(None if drain else wait_s)
        if drain:
            self.deliver()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.every_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.deliver()
            except Exception as err:  # a broken state file, a full disk: said, and tried again next pass
                log.warning("alert delivery pass failed: %s: %s", type(err).__name__, err)


def _drop_removed_rules(state: LiveState, rules: AlertsConfig) -> None:
    """Forget the alerts of rules deleted from the rules file, with a warning naming each."""
    for a in state.drop_removed_rules(r.name for r in rules.rules):
        log.warning("alert rule %r is no longer in the rules file: its %s alert (%s) is dropped, "
                    "without a resolved notification", a.rule, a.state,
                    ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items())))


def deliver_new(store: AlertStore, rules: AlertsConfig, result: ReplayResult,
                sinks: Mapping[str, Sink] | None = None, lock_timeout: float | None = None) -> FlushReport:
    """Queue what a batch replay decided (skipping what was delivered before) and deliver it."""
    with store.lock(lock_timeout):
        state = store.load()
        _drop_removed_rules(state, rules)
        sinks = build_sinks(rules, store) if sinks is None else sinks
        enqueue(state, result, sinks)
        store.save(state)
        return deliver_outbox(store, state, sinks, rules.notify.give_up_after)


# --- live -------------------------------------------------------------------------------------


@dataclass
class MonitorReport:
    """What one live iteration did."""

    now: str
    evaluated: dict[str, tuple[str | None, str | None]]
    firing: list[dict[str, Any]]
    notifications: int
    delivery: FlushReport


def monitor_once(
    warehouse: str | Path | Warehouse,
    config: ExperimentConfig,
    params_file: str | Path | None,
    rules: AlertsConfig,
    now_ms: int,
    since_ms: int | None = None,
    sinks: Mapping[str, Sink] | None = None,
    lock_timeout: float | None = None,
) -> MonitorReport:
    """One live evaluation: every time since the saved cursor whose rollups are ready.

    Without a saved cursor it starts at ``since_ms`` (default ``now − evaluation.catch_up``;
    daily rules start early enough for their ``for``). It queues the notifications in the
    outbox and carries out the kill switches and the log, but calls no webhook: those are left
    pending for a :class:`DeliveryWorker` (or :func:`deliver_webhooks`), so an evaluation never
    waits on a receiver.
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse.open(warehouse)
    params_path = Path(params_file) if params_file else default_params_file()
    store = AlertStore(wh)
    with store.lock(lock_timeout):
        state = store.load()
        _drop_removed_rules(state, rules)
        sinks = build_sinks(rules, store) if sinks is None else sinks
        flush = deliver_outbox(store, state, sinks, rules.notify.give_up_after, webhooks=False)
        source = WarehouseSource(wh, config, params_path)
        engine = RuleEngine(rules, {"experiment": config.experiment_id})
        planner = Planner(rules, store.silences(), store.acks())
        ev = rules.evaluation
        ranges: dict[int, tuple[int, int]] = {}
        for step in sorted({r.step_ms for r in rules.rules}):
            key = "5m" if step == BIN_MS else "1d"
            first = since_ms if since_ms is not None else now_ms - (ev.catch_up if step == BIN_MS
                                                                    else _day_warm_up(rules))
            cursor = state.cursors.get(key, first - first % step)
            end = source.ready_until(cursor, now_ms - ev.settle, step, ev.settle)
            if end > cursor:
                ranges[step] = (cursor, end)
        result = replay(engine, planner, samples_for(source, engine, ranges), plan_times(rules, ranges),
                        state.active, state.delivery)
        for step, (_, end) in ranges.items():
            state.cursors["5m" if step == BIN_MS else "1d"] = end
        state.recent = (state.recent + result.resolved)[-RECENT_KEEP:]
        enqueue(state, result, sinks)
        store.save(state)
        flush.merge(deliver_outbox(store, state, sinks, rules.notify.give_up_after, webhooks=False))
    evaluated: dict[str, tuple[str | None, str | None]] = {
        ("5m" if s == BIN_MS else "1d"): (ms_to_iso(a), ms_to_iso(b)) for s, (a, b) in ranges.items()}
    firing = [alert_record(a, planner) for a in state.active.values() if a.state == "firing"]
    return MonitorReport(ms_to_iso(now_ms) or "", evaluated, firing, len(result.notifications), flush)


def monitor(
    warehouse: str | Path | Warehouse,
    config: ExperimentConfig,
    params_file: str | Path | None,
    rules: AlertsConfig,
    every_s: float,
    iterations: int | None = None,
    start_ms: int | None = None,
    since_ms: int | None = None,
    report: Callable[[MonitorReport], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_error: Callable[[Exception], None] | None = None,
) -> list[MonitorReport]:
    """Evaluate every ``every_s`` seconds, ``iterations`` times (forever when ``None``).

    With ``start_ms`` the clock is simulated: iteration ``i`` runs at ``start_ms + i·every``
    without sleeping (to replay a past day through the live path). With ``on_error``, an
    iteration that fails (say, a rollup being rebuilt) is reported and the next one runs; the
    saved state is untouched by the failed one. The webhooks are called by a
    :class:`DeliveryWorker` beside the loop; each report's ``delivery`` adds what it did since the
    previous report, and a bounded run waits for it before its last report (``iterations=1``:
    one delivery pass after the evaluation, no thread).
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse.open(warehouse)
    worker = DeliveryWorker(AlertStore(wh), rules, every_s=every_s)
    if iterations != 1:
        worker.start()
    reports = []
    i = 0
    try:
        while iterations is None or i < iterations:
            now = start_ms + int(i * every_s * 1000) if start_ms is not None else int(time.time() * 1000)
            try:
                r = monitor_once(wh, config, params_file, rules, now, since_ms=since_ms)
            except Exception as err:
                if on_error is None:
                    raise
                on_error(err)
            else:
                r.delivery.merge(worker.after_update(last=iterations is not None and i + 1 == iterations))
                reports.append(r)
                if report is not None:
                    report(r)
            i += 1
            if start_ms is None and (iterations is None or i < iterations):
                sleep(every_s)
    finally:
        worker.close()
    return reports
