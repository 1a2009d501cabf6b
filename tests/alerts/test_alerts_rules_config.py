"""params/alerts.yaml holds the ten rules of docs/alerts.md, and bad rule files are rejected with the
file, the rule and the key; the promtool-style tests shipped with the rules pass."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from expkit.alerts import load_alerts, parse_alerts
from expkit.alerts.promtest import run_rule_tests
from expkit.cli import main
from expkit.errors import ConfigError

from .conftest import ROOT, RULES

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
SPEC = {  # rule: (metric, op, threshold, for, severity, kill switch)
    "latency_p95_high": ("latency_p95_ms", ">", 100, 10 * MIN, "P2", None),
    "coverage_low": ("coverage", "<", 0.95, 10 * MIN, "P2", None),
    "error_rate_high": ("error_rate", ">", 0.01, 10 * MIN, "P1", "disable_experiment"),
    "data_stale": ("staleness_minutes", ">", 15, 0, "P2", "serve_cached"),
    "cache_hit_low": ("cache_hit_rate", "<", 0.70, 10 * MIN, "P3", "bypass_cache"),
    "topk_fill_low": ("topk_fill", "<", 0.99, 10 * MIN, "P3", None),
    "ctr_low": ("ctr", "<", 0.005, 2 * DAY, "P3", None),
    "recall_low": ("recall", "<", 0.10, 2 * DAY, "P3", None),
    "session_depth_low": ("session_depth", "<", 3, 2 * DAY, "P3", None),
    "traffic_imbalance": ("allocation_deviation", ">", 0.10, DAY, "P2", "pause_experiment"),
}


def test_the_ten_rules_of_the_spec() -> None:
    cfg = load_alerts(RULES)
    assert [r.name for r in cfg.rules] == list(SPEC)
    for r in cfg.rules:
        metric, op, threshold, for_, severity, kill = SPEC[r.name]
        assert (r.metric.name, r.condition.op, r.condition.threshold, r.for_, r.severity) == \
            (metric, op, threshold, for_, severity), r.name
        assert (r.kill_switch.action if r.kill_switch else None) == kill
        assert r.labels["team"] and r.annotations.summary and r.annotations.runbook
    stale = cfg.rule("data_stale")
    assert [c.metric.name for c in stale.or_] == ["arrival_delay_p95_minutes", "missing_hours", "validation_failed"]
    assert [(c.metric.name, c.condition.op, c.condition.threshold) for c in cfg.rule("traffic_imbalance").or_] == \
        [("srm_pvalue", "<", 0.001)]
    deadlines = {s: (e.respond, e.escalate) for s, e in cfg.severities.items()}
    assert deadlines == {"P1": (15 * MIN, 30 * MIN), "P2": (HOUR, 4 * HOUR), "P3": (4 * HOUR, DAY),
                         "P4": ("next_business_day", "next_business_day")}


def _doc() -> dict[str, Any]:
    return yaml.safe_load(RULES.read_text())


def _error(mutate: Any) -> str:
    doc = copy.deepcopy(_doc())
    mutate(doc)
    with pytest.raises(ConfigError) as err:
        parse_alerts(doc, "alerts.yaml")
    return str(err.value)


def _rule(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in doc["rules"] if r["name"] == name)


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: _rule(d, "coverage_low").update(metric="coverage_ratio"),
     "rule 'coverage_low' key 'metric': unknown metric 'coverage_ratio'"),
    (lambda d: _rule(d, "error_rate_high").update({"for": "10 min"}),
     "rule 'error_rate_high' key 'for': bad duration '10 min'"),
    (lambda d: _rule(d, "ctr_low")["labels"].update(severity="P5"),
     "rule 'ctr_low' key 'labels': severity must be one of P1, P2, P3, P4 (got 'P5')"),
    (lambda d: _rule(d, "ctr_low").update(threshold=0.1),
     "rule 'ctr_low' key 'threshold': unknown key"),
    (lambda d: _rule(d, "data_stale")["or"][0].update(metric="freshness"),
     "rule 'data_stale' key 'or.0.metric': unknown metric 'freshness'"),
    (lambda d: _rule(d, "latency_p95_high").update(condition="above 100"),
     "rule 'latency_p95_high' key 'condition': bad condition 'above 100'"),
    (lambda d: _rule(d, "latency_p95_high")["annotations"].update(summary="p95 {p95}"),
     "annotations.summary: unknown field {p95}"),
    (lambda d: _rule(d, "cache_hit_low")["kill_switch"].update(action="reboot"),
     "rule 'cache_hit_low' key 'kill_switch.action'"),
    (lambda d: _rule(d, "coverage_low")["labels"].pop("team"),
     "rule 'coverage_low' key 'labels': needs a 'team' label"),
    (lambda d: _rule(d, "coverage_low").update({"or": [{"metric": "ctr", "condition": "< 0.01"}]}),
     "rule 'coverage_low': metrics of one rule must share a step"),
    (lambda d: d["rules"].append(copy.deepcopy(d["rules"][0])), "duplicate rule name(s) ['latency_p95_high']"),
    (lambda d: d["severities"].pop("P4"), "deadlines missing for ['P4']"),
    (lambda d: d["routing"].update(repeat_interval="soon"), "key 'routing.repeat_interval': bad duration 'soon'"),
    (lambda d: d["notify"]["webhooks"][0].pop("url_env"), "needs 'url' or 'url_env'"),
])
def test_bad_rules_are_rejected_naming_rule_and_key(mutate: Any, expected: str) -> None:
    message = _error(mutate)
    assert message.startswith("alerts.yaml: ")
    assert expected in message


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_alerts(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [\n")
    with pytest.raises(ConfigError, match="malformed YAML at line"):
        load_alerts(bad)


def test_shipped_rule_tests_cover_all_ten_rules_and_pass(capsys: pytest.CaptureFixture[str]) -> None:
    folder = ROOT / "params" / "alert_tests"
    covered = set()
    for f in folder.glob("*.yaml"):
        report = run_rule_tests(f)
        assert report.ok, report.failures
        covered |= {c["alertname"] for t in yaml.safe_load(f.read_text())["tests"]
                    for c in t.get("alert_rule_test", []) if c.get("exp_alerts")}
    assert covered == set(SPEC)
    assert main(["alerts", "test", str(folder)]) == 0
    assert "SUCCESS" in capsys.readouterr().out


def test_a_failing_rule_test_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "alerts.yaml").write_text(RULES.read_text())
    test = tmp_path / "t.yaml"
    test.write_text(yaml.safe_dump({"rule_files": ["alerts.yaml"], "tests": [{
        "interval": "5m",
        "input_series": [{"series": 'error_rate{experiment="e1"}', "values": "0.05x3"}],
        "alert_rule_test": [{"eval_time": "5m", "alertname": "error_rate_high", "exp_alerts": [
            {"exp_labels": {"experiment": "e1", "severity": "P2", "team": "recsys-serving"}}]}]}]}))
    assert main(["alerts", "test", str(test)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "'severity': 'P1'" in out
    test.write_text(yaml.safe_dump({"rule_files": ["alerts.yaml"], "tests": [{
        "input_series": [{"series": "no_such_metric", "values": "1"}]}]}))
    assert main(["alerts", "test", str(test)]) == 2
