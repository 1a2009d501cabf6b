"""Alerts: ten rules as data, Prometheus/Alertmanager semantics, kill switches (docs/alerts.md).

* :func:`evaluate_day` — the day's alert timeline by batch replay (what ``expkit daily`` and
  ``expkit alerts eval`` use); no side effects unless ``notify=True``.
* :func:`monitor_once` / :func:`monitor` — the live path (``expkit monitor``); the webhooks are
  called off that path by a :class:`DeliveryWorker` thread.
* :func:`load_alerts` — ``params/alerts.yaml``, validated.
* :func:`run_rule_tests` — promtool-style rule tests (``expkit alerts test``).

See ``docs/alerts.md`` for the rules, the semantics and the runbook lines.
"""

from importlib import import_module
from typing import Any

# Loaded on first use, so that ``expkit --help`` (which imports expkit.alerts.commands) does
# not pull in the analysis stack.
_LAZY = {
    "Alert": "engine", "RuleEngine": "engine", "run_rule_tests": "promtest",
    "AlertsConfig": "rules", "default_rules_file": "rules", "load_alerts": "rules", "parse_alerts": "rules",
    "evaluate_day": "runner", "monitor": "runner", "monitor_once": "runner", "replay_day": "runner",
    "AlertStore": "state", "DeliveryWorker": "runner",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"expkit.alerts.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'expkit.alerts' has no attribute {name!r}")


__all__ = [
    "Alert",
    "AlertStore",
    "AlertsConfig",
    "DeliveryWorker",
    "RuleEngine",
    "default_rules_file",
    "evaluate_day",
    "load_alerts",
    "monitor",
    "monitor_once",
    "parse_alerts",
    "replay_day",
    "run_rule_tests",
]
