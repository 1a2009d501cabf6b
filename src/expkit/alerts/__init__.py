"""Alerts: ten rules as data, Prometheus/Alertmanager semantics, kill switches (spec §6).

* :func:`evaluate_day` — the day's alert timeline by batch replay (what ``expkit daily`` and
  ``expkit alerts eval`` use); no side effects unless ``notify=True``.
* :func:`monitor_once` / :func:`monitor` — the live path (``expkit monitor``).
* :func:`load_alerts` — ``params/alerts.yaml``, validated.
* :func:`run_rule_tests` — promtool-style rule tests (``expkit alerts test``).

See ``docs/alerts.md`` for the rules, the semantics and the runbook lines.
"""

from expkit.alerts.engine import Alert, RuleEngine
from expkit.alerts.promtest import run_rule_tests
from expkit.alerts.rules import AlertsConfig, default_rules_file, load_alerts, parse_alerts
from expkit.alerts.runner import evaluate_day, monitor, monitor_once, replay_day
from expkit.alerts.state import AlertStore

__all__ = [
    "Alert",
    "AlertStore",
    "AlertsConfig",
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
