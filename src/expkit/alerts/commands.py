"""Command line of the alerts: ``expkit alerts eval|test|ack|silence|status``, ``expkit monitor``,
``expkit killswitch status|reset|approve|audit`` (docs/alerts.md, "Commands" and "Kill switches").

``alerts eval`` exits 1 when a P1 or P2 alert fired during the day (whether or not it has
resolved since) and ``alerts test`` when a rule test fails; user errors exit 2.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from expkit.cli_options import DATE, PARAMS, QUIET, RULES, WAREHOUSE, add_option, positive_float, positive_int
from expkit.errors import ExpkitError

AddCommand = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def _params_file(args: argparse.Namespace) -> Path:
    from expkit.config import default_params_file

    return Path(args.params) if getattr(args, "params", None) else default_params_file()


def _rules(args: argparse.Namespace) -> Any:
    from expkit.alerts.rules import default_rules_file, load_alerts

    return load_alerts(Path(args.rules) if getattr(args, "rules", None) else default_rules_file(_params_file(args)))


def _warehouse(args: argparse.Namespace) -> Any:
    from expkit.warehouse import Warehouse

    return Warehouse.open(args.warehouse)


def _time_ms(value: str, what: str) -> int:
    import datetime as dt

    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ExpkitError(f"{what} {value!r} is not an ISO-8601 time; write e.g. 2026-11-14T12:00:00Z") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return int(t.timestamp() * 1000)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) if c is not None else "-" for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def _labels_text(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items() if k != "experiment") or "-"


# --- alerts ----------------------------------------------------------------------------------


def cmd_eval(args: argparse.Namespace) -> int:
    from expkit.alerts.runner import evaluate_day
    from expkit.config import load_experiment
    from expkit.warehouse import parse_date

    params = _params_file(args)
    config = load_experiment(params)
    alerts = evaluate_day(_warehouse(args), parse_date(args.date), config, params,
                          rules_file=args.rules, notify=args.notify)
    if args.json:
        _print_json(alerts)
    elif alerts:
        print(_table([[a["severity"], a["rule"], _labels_text(a["labels"]), a["state"], a["active_at"],
                       a["fired_at"], a["resolved_at"], a["kill_switch"]] for a in alerts],
                     ["sev", "rule", "labels", "state", "active_at", "fired_at", "resolved_at", "kill_switch"]))
    else:
        print(f"no alerts on {args.date}")
    paging = [a for a in alerts if a["severity"] in ("P1", "P2") and a["fired_at"] is not None]
    return 1 if paging else 0


def cmd_test(args: argparse.Namespace) -> int:
    from expkit.alerts.promtest import run_many, summarize

    files: list[Path] = []
    for item in args.files:
        p = Path(item)
        files += sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    if not files:
        raise ExpkitError(f"no rule test files in {args.files}")
    reports = run_many(files)
    print(summarize(reports))
    return 0 if all(r.ok for r in reports) else 1


def cmd_ack(args: argparse.Namespace) -> int:
    from expkit.alerts.delivery import Ack
    from expkit.alerts.state import AlertStore

    store = AlertStore(_warehouse(args))
    now = int(time.time() * 1000)
    with store.lock(timeout=60):
        active = store.load().active
        if args.fingerprint:
            if not re.fullmatch(r"[0-9a-f]{16}", args.fingerprint):
                raise ExpkitError(f"{args.fingerprint!r} is not an alert fingerprint (16 hex digits, as 'expkit alerts "
                                  "status' or 'alerts eval --json' show); or ack by rule with --rule NAME")
            hits = [a for a in active.values() if a.fingerprint == args.fingerprint]
            acks = [Ack(args.fingerprint, now, args.by, args.comment, hits[0].active_at if hits else None)]
        else:
            hits = [a for a in active.values() if a.rule == args.rule and a.state == "firing"]
            if not hits:
                raise ExpkitError(f"no firing {args.rule!r} alert in the live state; ack a fingerprint from "
                                  "'expkit alerts eval --json' instead")
            acks = [Ack(a.fingerprint, now, args.by, args.comment, a.active_at) for a in hits]
        for ack in acks:
            store.add_ack(ack)
    _print_json([a.to_json() for a in acks])
    return 0


def _matcher_text(item: str) -> str:
    m = re.match(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", item)
    if not m:
        raise ExpkitError(f"--match {item!r}: write label=value (or !=, =~, !~), e.g. --match rule=coverage_low")
    label = "alertname" if m[1] == "rule" else m[1]
    value = m[3][1:-1] if len(m[3]) >= 2 and m[3][0] == m[3][-1] == '"' else m[3]
    return f'{label}{m[2]}"{value}"'


def cmd_silence(args: argparse.Namespace) -> int:
    from expkit.alerts.delivery import Silence
    from expkit.alerts.rules import parse_duration, parse_matchers
    from expkit.alerts.state import AlertStore, new_silence_id

    store = AlertStore(_warehouse(args))
    now = int(time.time() * 1000)
    if args.list:
        _print_json([dict(s.to_json(), active=s.starts_at <= now < s.ends_at) for s in store.silences()])
        return 0
    with store.lock(timeout=60):
        if args.expire:
            _print_json(store.expire_silence(args.expire, now).to_json())
            return 0
        if not args.match:
            raise ExpkitError("give at least one --match label=value (e.g. --match rule=coverage_low)")
        try:
            matchers = tuple(m for item in args.match for m in parse_matchers(_matcher_text(item)))
            start = _time_ms(args.start, "--start") if args.start else now
            if args.until:
                end = _time_ms(args.until, "--until")
            else:
                end = start + parse_duration(args.duration)
        except ValueError as err:
            raise ExpkitError(str(err)) from None
        if end <= start:
            raise ExpkitError("the silence would end before it starts; check --for/--until")
        silence = store.add_silence(Silence(new_silence_id(), matchers, start, end, args.by, args.comment))
    _print_json(silence.to_json())
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from expkit.alerts.delivery import Planner
    from expkit.alerts.runner import alert_record
    from expkit.alerts.state import AlertStore
    from expkit.warehouse import ms_to_iso

    store = AlertStore(_warehouse(args))
    state = store.load()
    planner = Planner(_rules(args))
    state.drop_removed_rules(r.name for r in planner.config.rules)  # shown as the next evaluation leaves it
    doc = {
        "cursors": {k: ms_to_iso(v) for k, v in state.cursors.items()},
        "active": [alert_record(a, planner) for a in state.active.values()],
        "recently_resolved": [alert_record(a, planner) for a in state.recent[-20:]],
        "outbox": [{"id": o.id, "type": o.type, "pending": o.pending, "attempts": o.attempts,
                    "last_error": o.last_error} for o in state.outbox],
    }
    _print_json(doc)
    return 0


# --- monitor ---------------------------------------------------------------------------------


def cmd_monitor(args: argparse.Namespace) -> int:
    from expkit.alerts.runner import MonitorReport, monitor
    from expkit.config import load_experiment

    params = _params_file(args)
    config = load_experiment(params)
    rules = _rules(args)
    if args.every <= 0 and not args.now:
        raise ExpkitError("--every must be > 0 seconds")
    iterations = 1 if args.once else args.iterations
    start = _time_ms(args.now, "--now") if args.now else None
    since = _time_ms(args.since, "--since") if args.since else None

    def show(r: MonitorReport) -> None:
        line = {"now": r.now, "evaluated": r.evaluated, "notifications": r.notifications,
                "delivered": len(r.delivery.done), "failed": r.delivery.failed, "dropped": r.delivery.dropped,
                "firing": [{"rule": a["rule"], "severity": a["severity"], "labels": a["labels"]} for a in r.firing]}
        print(json.dumps(line), flush=True)

    def keep_going(err: Exception) -> None:
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)

    try:
        reports = monitor(_warehouse(args), config, params, rules, args.every, iterations, start, since, show,
                          on_error=keep_going if iterations is None else None)
    except KeyboardInterrupt:
        print("monitor stopped", file=sys.stderr)
        return 0
    failed = any(r.delivery.failed or r.delivery.dropped for r in reports[-1:])
    return 1 if failed else 0


# --- kill switches ---------------------------------------------------------------------------


def cmd_killswitch(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from expkit.alerts.state import AlertStore

    store = AlertStore(_warehouse(args))
    ks = store.killswitches
    if args.action == "status":
        switches = [asdict(s) for s in ks.status()]
        if args.json:
            _print_json(switches)
        elif switches:
            print(_table([[s["key"], s["state"], s["mode"], s["rule"], s["alert_fired_at"], s["changed_at"],
                           s["changed_by"], s["reason"]] for s in switches],
                         ["switch", "state", "mode", "rule", "alert_fired_at", "changed_at", "by", "reason"]))
        else:
            print("no kill switch has been set")
        return 0
    if args.action == "audit":
        _print_json(ks.audit())
        return 0
    if not args.name:
        raise ExpkitError(f"killswitch {args.action} needs a switch: a key (disable_experiment/EXP), an action or all")
    with store.lock(timeout=60):
        change = ks.reset if args.action == "reset" else ks.approve
        changed = change(args.name, args.experiment, args.by, args.reason)
    _print_json([asdict(s) for s in changed])
    return 0


# --- registration ----------------------------------------------------------------------------


def _sub(parent: argparse.ArgumentParser, dest: str) -> Callable[..., argparse.ArgumentParser]:
    sub = parent.add_subparsers(dest=dest, required=True, metavar="ACTION")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=fn)
        # Also accepted after the action; SUPPRESS keeps a value given before it.
        add_option(p, QUIET, default=argparse.SUPPRESS)
        add_option(p, PARAMS, default=argparse.SUPPRESS)
        return p

    return add


def _common(p: argparse.ArgumentParser, rules: bool = True) -> None:
    add_option(p, WAREHOUSE)
    if rules:
        add_option(p, RULES)


def add_commands(add: AddCommand) -> None:
    """Register ``alerts``, ``monitor`` and ``killswitch`` with the ``expkit`` parser."""
    me = getpass.getuser() if hasattr(getpass, "getuser") else "unknown"

    alerts = add("alerts", cmd_eval, "alert rules: eval (batch replay of a day), test, ack, silence, status")
    sub = _sub(alerts, "alerts_action")
    p = sub("eval", cmd_eval, "replay a day's bins and daily checks; print the alert timeline "
                              "(exit 1 when a P1/P2 fired)")
    _common(p)
    add_option(p, DATE)
    p.add_argument("--json", action="store_true", help="print the timeline as JSON (summary.json's alerts)")
    p.add_argument("--notify", action="store_true",
                   help="also deliver notifications and kill switch requests not delivered before")

    p = sub("test", cmd_test, "run promtool-style rule tests (YAML files or folders of them)")
    p.add_argument("files", nargs="+", help="test files or folders (e.g. params/alert_tests)")

    p = sub("ack", cmd_ack, "acknowledge an alert: stops its escalation")
    _common(p, rules=False)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("fingerprint", nargs="?", help="the alert's fingerprint (from eval --json or status)")
    who.add_argument("--rule", help="acknowledge every firing alert of this rule (default: the fingerprint's alert)")
    p.add_argument("--by", default=me, help="who acknowledges (default: the current user)")
    p.add_argument("--comment", default="", help="a note kept with the acknowledgement (default: none)")

    p = sub("silence", cmd_silence, "mute notifications of matching alerts until an expiry")
    _common(p, rules=False)
    p.add_argument("--match", action="append", help="label=value, label!=value, label=~regex (repeatable; "
                                                    "rule=NAME matches the alert name; default: none)")
    p.add_argument("--for", dest="duration", default="2h", help="how long, e.g. 30m, 2h, 1d (default: 2h)")
    p.add_argument("--until", help="or an end time, ISO-8601 (default: --start plus --for)")
    p.add_argument("--start", help="start time, ISO-8601 (default now)")
    p.add_argument("--by", default=me, help="who silences (default: the current user)")
    p.add_argument("--comment", default="", help="why (default: none)")
    p.add_argument("--list", action="store_true", help="list silences")
    p.add_argument("--expire", metavar="ID", help="end a silence now (default: add a silence)")

    p = sub("status", cmd_status, "the live monitor's state: active alerts, outbox, cursors")
    _common(p)

    p = add("monitor", cmd_monitor, "evaluate the newest bins every --every seconds and notify")
    _common(p)
    p.add_argument("--every", type=positive_float("--every 60"), default=60.0, help="seconds between evaluations")
    runs = p.add_mutually_exclusive_group()
    runs.add_argument("--once", action="store_true", help="one evaluation, then exit")
    runs.add_argument("--iterations", type=positive_int("--iterations 10"), default=None,
                      help="evaluations before exiting (default: run until stopped)")
    p.add_argument("--now", help="simulate the clock from this ISO time (no sleeping); for replays and tests "
                   "(default: the real clock)")
    p.add_argument("--since", help="first run only: evaluate from this ISO time (default now - catch_up)")

    p = add("killswitch", cmd_killswitch, "kill switches: status, reset, approve, audit")
    p.add_argument("action", choices=["status", "reset", "approve", "audit"],
                   help="status: the switches; reset, approve: change one (NAME); audit: the log")
    p.add_argument("name", nargs="?", help="switch key (disable_experiment/EXP), action name, or all")
    _common(p, rules=False)
    p.add_argument("--experiment", help="only this experiment's switches (default: every experiment)")
    p.add_argument("--by", default=me, help="who (default: the current user)")
    p.add_argument("--reason", default="", help="why, kept in the audit log (default: none)")
    p.add_argument("--json", action="store_true", help="print JSON")
