"""Rule unit tests in the style of ``promtool test rules``.

A test file names the rule file and lists test groups; each group gives input series in
promtool's expanding notation and the alerts expected to be *firing* at given times::

    rule_files: [../alerts.yaml]          # relative to this file
    tests:
      - name: errors above 1% for 10 minutes page P1
        interval: 5m                       # spacing of the values (default: the metric's step)
        input_series:
          - series: 'error_rate{experiment="e1"}'
            values: '0 0.03x3 0'            # 0, 0.03, 0.03, 0.03, 0.03, 0
        alert_rule_test:
          - eval_time: 10m
            alertname: error_rate_high
            exp_alerts:
              - exp_labels: {experiment: e1, severity: P1, team: recsys-serving}
                exp_annotations: {summary: "error rate 3.00% > 1% for 10m (e1)"}

Value ``i`` of a series is the sample evaluated at ``i × interval`` (covering the step
before it). Notation: ``a+bxn`` / ``a-bxn`` (n + 1 values), ``axn`` (``a`` n + 1 times),
``_`` (no sample), ``_xn`` (n missing), ``stale`` (no sample). Rules are evaluated at every
multiple of their step from 0 to the largest ``eval_time``. As in promtool, ``exp_labels``
must equal the alert's labels (series labels plus the rule's, without ``alertname``); unlike
promtool, ``exp_annotations`` lists only the annotations to check.

>>> expand_values("1+1x3 _ 5x1 _x2")
[1.0, 2.0, 3.0, 4.0, None, 5.0, 5.0, None, None]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from expkit.alerts.delivery import Planner
from expkit.alerts.engine import Alert, RuleEngine
from expkit.alerts.metrics import METRICS, Sample, label_key
from expkit.alerts.rules import Duration, default_rules_file, format_duration, load_alerts, parse_selector
from expkit.alerts.runner import plan_times, replay
from expkit.errors import ConfigError
from expkit.yamlio import StrictLoader, yaml_error_text

_NUMBER = r"\d+\.?\d*(?:[eE][-+]?\d+)?"
_TOKEN = re.compile(rf"^(?P<a>[-+]?(?:{_NUMBER}|\.\d+))(?:(?P<sign>[-+])(?P<b>{_NUMBER}))?x(?P<n>\d+)$")


def expand_values(text: str) -> list[float | None]:
    """Expand promtool's series notation (``None`` = no sample)."""
    out: list[float | None] = []
    for tok in str(text).split():
        if tok in ("_", "stale"):
            out.append(None)
            continue
        if tok.startswith("_x"):
            out += [None] * int(tok[2:])
            continue
        m = _TOKEN.match(tok)
        if m:
            a, n = float(m["a"]), int(m["n"])
            b = float(m["b"] or 0) * (-1 if m["sign"] == "-" else 1)
            out += [a + i * b for i in range(n + 1)]
            continue
        try:
            out.append(float(tok))
        except ValueError:
            raise ValueError(f"bad value {tok!r}; use numbers, a+bxn, axn, _ or _xn") from None
    return out


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSeries(_Strict):
    """One input series."""

    series: str
    values: str


class ExpectedAlert(_Strict):
    """One alert expected to fire."""

    exp_labels: dict[str, str] = Field(default_factory=dict)
    exp_annotations: dict[str, str] = Field(default_factory=dict)


class AlertTestCase(_Strict):
    """The firing alerts of one rule at one time."""

    eval_time: Duration
    alertname: str
    exp_alerts: list[ExpectedAlert] = Field(default_factory=list)


class RuleTestGroup(_Strict):
    """Input series and the expected alerts."""

    name: str = ""
    interval: Duration | None = None
    input_series: list[InputSeries]
    alert_rule_test: list[AlertTestCase] = Field(default_factory=list)
    external_labels: dict[str, str] = Field(default_factory=dict)


class RuleTestFile(_Strict):
    """A test file."""

    rule_files: list[str] = Field(default_factory=list)
    evaluation_interval: Duration | None = None
    tests: list[RuleTestGroup]


@dataclass
class RuleTestReport:
    """Outcome of a test file."""

    file: str
    cases: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every case passed."""
        return not self.failures


def series_samples(series: Mapping[str, str], interval: int | None = None, where: str = "series") -> list[Sample]:
    """Samples from promtool-style series: ``{'error_rate{experiment="e1"}': "0 0.03x2"}``.

    Value ``i`` is evaluated at ``i × interval`` (default: the metric's step).
    """
    out = []
    for text, values_text in series.items():
        try:
            sel = parse_selector(text)
            values = expand_values(values_text)
        except ValueError as err:
            raise ConfigError(f"{where}: series {text!r}: {err}") from None
        if sel.name not in METRICS:
            raise ConfigError(f"{where}: unknown metric {sel.name!r} in series; known: {', '.join(METRICS)}")
        if any(m.op != "=" for m in sel.matchers):
            raise ConfigError(f"{where}: series {text!r} must give labels with '=' only")
        info = METRICS[sel.name]
        step = interval or info.step_ms
        labels = label_key({m.label: m.value for m in sel.matchers})
        for i, v in enumerate(values):
            if v is not None:
                t = i * step
                out.append(Sample(sel.name, labels, t - info.step_ms if info.kind == "window" else t, t, v))
    return out


def _firing(active: dict[str, Alert]) -> list[Alert]:
    return [Alert(**vars(a)) for a in active.values() if a.state == "firing"]


def run_rule_tests(path: str | Path) -> RuleTestReport:
    """Run one test file; failures are described promtool-style."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"rule test file {path} not found")
    try:
        doc = RuleTestFile.model_validate(yaml.load(path.read_text(encoding="utf-8"), Loader=StrictLoader))  # noqa: S506
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not a valid rule test file: {yaml_error_text(err)}") from None
    except ValidationError as err:
        raise ConfigError(f"{path}: not a valid rule test file: {err}") from None
    if len(doc.rule_files) > 1:
        raise ConfigError(f"{path}: rule_files: give one rules file (expkit keeps all rules in one)")
    rules_path = (path.parent / doc.rule_files[0]) if doc.rule_files else default_rules_file()
    config = load_alerts(rules_path)
    report = RuleTestReport(str(path))
    for gi, group in enumerate(doc.tests):
        where = f"{path}: test {group.name or gi + 1!r}"
        samples: list[Sample] = []
        for s in group.input_series:
            samples += series_samples({s.series: s.values}, group.interval, where)
        horizon = max((c.eval_time for c in group.alert_rule_test), default=0)
        snapshots: dict[int, list[Alert]] = {}

        def snapshot(t: int, active: dict[str, Alert], into: dict[int, list[Alert]] = snapshots) -> None:
            into[t] = _firing(active)

        engine = RuleEngine(config, dict(group.external_labels))
        planner = Planner(config)
        times = plan_times(config, {r.step_ms: (-1, horizon) for r in config.rules})
        replay(engine, planner, samples, times, on_eval=snapshot)
        for case in group.alert_rule_test:
            report.cases += 1
            report.failures += _check(where, case, snapshots, planner)
    return report


def _check(where: str, case: AlertTestCase, snapshots: dict[int, list[Alert]], planner: Planner) -> list[str]:
    try:
        planner.config.rule(case.alertname)
    except ConfigError as err:
        return [f"{where}: {err}"]
    earlier = [t for t in snapshots if t <= case.eval_time]
    got = [a for a in snapshots[max(earlier)] if a.rule == case.alertname] if earlier else []
    unmatched = list(got)
    missing: list[ExpectedAlert] = []
    for exp in case.exp_alerts:
        hit = next((a for a in unmatched if a.labels == exp.exp_labels and all(
            planner.annotations(a).get(k) == v for k, v in exp.exp_annotations.items())), None)
        if hit is None:
            missing.append(exp)
        else:
            unmatched.remove(hit)
    if not missing and not unmatched:
        return []
    shown = [{"labels": a.labels, "annotations": planner.annotations(a)} for a in got]
    expected = [e.model_dump() for e in case.exp_alerts]
    return [f"{where}: alertname {case.alertname!r} at eval_time {format_duration(case.eval_time)}:\n"
            f"    expected: {expected}\n    got:      {shown}"]


def run_many(paths: Sequence[str | Path]) -> list[RuleTestReport]:
    """Run several test files."""
    return [run_rule_tests(p) for p in paths]


def summarize(reports: Sequence[RuleTestReport]) -> str:
    """promtool-like text: SUCCESS or the failures per file."""
    lines = []
    for r in reports:
        lines.append(f"Unit Testing: {r.file}")
        lines.append(f"  SUCCESS ({r.cases} cases)" if r.ok else "  FAILED:")
        lines += ["    " + f.replace("\n", "\n    ") for f in r.failures]
    return "\n".join(lines)
