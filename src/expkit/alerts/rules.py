"""Alert rules as data: ``params/alerts.yaml`` parsed and validated (docs/alerts.md, "The rules").

A rule names a metric (a selector such as ``staleness_minutes{table!="saves"}``), a condition
(``"> 15"``), optional further ``or`` conditions, a ``for`` duration, labels (``severity``
P1–P4, ``team``, anything else), annotations (``summary``, ``runbook``), a no-data policy and
an optional kill switch. The file also holds the routing (grouping, repeat interval),
inhibition rules, escalation deadlines per severity and the notification sinks.

Every error names the file, the rule and the key:

>>> parse_duration("10m"), parse_duration("2d"), parse_duration("0")
(600000, 172800000, 0)
>>> sel = parse_selector('staleness_minutes{table!="saves"}')
>>> sel.name, sel.matches({"table": "clicks"}), sel.matches({"table": "saves"})
('staleness_minutes', True, False)
>>> parse_comparison("< 0.95").holds(0.9)
True
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from expkit.alerts.metrics import METRICS
from expkit.errors import ConfigError

SEVERITIES = ("P1", "P2", "P3", "P4")
KILL_SWITCH_ACTIONS: dict[str, str] = {
    "disable_experiment": "disable the experiment: all traffic to control",
    "serve_cached": "serve cached recommendations",
    "bypass_cache": "bypass the cache: compute recommendations directly",
    "pause_experiment": "pause the experiment (no new exposures)",
}
"""Kill switch actions the serving side understands, with what each does."""

_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")


def parse_duration(value: Any) -> int:
    """``30s``, ``10m``, ``1h``, ``2d`` (or ``0``) → milliseconds."""
    if isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}; write e.g. 30s, 10m, 1h or 2d")
    if isinstance(value, int) and value == 0:
        return 0
    text = str(value).strip()
    if text == "0":
        return 0
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"bad duration {value!r}; write e.g. 30s, 10m, 1h or 2d")
    return int(m[1]) * _UNITS_MS[m[2]]


def format_duration(ms: int) -> str:
    """Milliseconds → the largest exact unit (``600000`` → ``10m``)."""
    if ms == 0:
        return "0"
    for unit in ("w", "d", "h", "m", "s"):
        if ms % _UNITS_MS[unit] == 0:
            return f"{ms // _UNITS_MS[unit]}{unit}"
    return f"{ms}ms"


Duration = Annotated[int, BeforeValidator(parse_duration)]
"""A duration written as ``10m`` in YAML, held in milliseconds."""


# --- selectors and comparisons ---------------------------------------------------------------

_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_SELECTOR = re.compile(rf"^\s*({_NAME})\s*(?:\{{(.*)\}})?\s*$", re.S)
_MATCHER = re.compile(rf'\s*({_NAME})\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')


@dataclass(frozen=True)
class Matcher:
    """One label matcher: ``label="v"``, ``!=``, ``=~`` (full regex match) or ``!~``."""

    label: str
    op: str
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether ``labels`` satisfy the matcher (a missing label is the empty string)."""
        have = labels.get(self.label, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        hit = re.fullmatch(self.value, have) is not None
        return hit if self.op == "=~" else not hit


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """``a="x", b=~"y|z"`` → matchers (regexes are compiled to reject bad ones early)."""
    out, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = _MATCHER.match(text, pos)
        if not m:
            raise ValueError(f"bad label matcher near {text[pos:]!r}; write label=\"value\" (or !=, =~, !~)")
        value = m[3].replace('\\"', '"')
        if m[2] in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"bad regular expression {value!r} for label {m[1]}: {err}") from None
        out.append(Matcher(m[1], m[2], value))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise ValueError(f"expected ',' between label matchers near {text[pos:]!r}")
            pos += 1
    return tuple(out)


@dataclass(frozen=True)
class Selector:
    """A metric name with label matchers, as in PromQL: ``name{label="value", ...}``."""

    name: str
    matchers: tuple[Matcher, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether a series with ``labels`` is selected."""
        return all(m.matches(labels) for m in self.matchers)

    def __str__(self) -> str:
        inner = ", ".join(f'{m.label}{m.op}"{m.value}"' for m in self.matchers)
        return f"{self.name}{{{inner}}}" if inner else self.name


def parse_selector(value: Any) -> Selector:
    """Parse ``name`` or ``name{matchers}``."""
    if isinstance(value, Selector):
        return value
    m = _SELECTOR.match(str(value))
    if not m:
        raise ValueError(f"bad metric {value!r}; write a name, optionally with label matchers: name{{label=\"v\"}}")
    return Selector(m[1], parse_matchers(m[2] or ""))


_OPS = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}
_COMPARISON = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Comparison:
    """``op threshold``, e.g. ``> 0.01``."""

    op: str
    threshold: float

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets the condition (NaN never does)."""
        return bool(math.isfinite(value) and _OPS[self.op](value, self.threshold))

    def __str__(self) -> str:
        return f"{self.op} {self.threshold:g}"


def parse_comparison(value: Any) -> Comparison:
    """Parse ``"> 15"``, ``"<= 0.5"`` …"""
    if isinstance(value, Comparison):
        return value
    m = _COMPARISON.match(str(value))
    if not m:
        raise ValueError(f"bad condition {value!r}; write an operator and a number, e.g. \"> 0.01\" or \"< 0.95\"")
    return Comparison(m[1], float(m[2]))


SelectorField = Annotated[Selector, BeforeValidator(parse_selector)]
ComparisonField = Annotated[Comparison, BeforeValidator(parse_comparison)]
MatchersField = Annotated[tuple[Matcher, ...], BeforeValidator(
    lambda v: v if isinstance(v, tuple) else tuple(m for item in v for m in parse_matchers(str(item))))]


# --- the configuration models ----------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, populate_by_name=True)


class Condition(_Strict):
    """One comparison of one metric."""

    metric: SelectorField
    condition: ComparisonField

    @field_validator("metric")
    @classmethod
    def _known(cls, v: Selector) -> Selector:
        if v.name not in METRICS:
            raise ValueError(f"unknown metric {v.name!r}; known metrics: {', '.join(METRICS)}")
        return v


class KillSwitch(_Strict):
    """The kill switch a firing alert pulls."""

    action: Literal["disable_experiment", "serve_cached", "bypass_cache", "pause_experiment"]
    mode: Literal["automatic", "approval"] = "automatic"

    @property
    def description(self) -> str:
        """What the action does."""
        return KILL_SWITCH_ACTIONS[self.action]


class Annotations(_Strict):
    """Text for people. ``{value}``, ``{metric}`` (the one that made the rule true), ``{threshold}``,
    ``{for}``, ``{rule}`` and label names are filled in."""

    summary: str
    runbook: str
    description: str = ""


class Rule(_Strict):
    """One alerting rule (``alertname`` = ``name``)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    metric: SelectorField
    condition: ComparisonField
    or_: tuple[Condition, ...] = Field(default=(), alias="or")
    for_: Duration = Field(default=0, alias="for")
    labels: dict[str, str]
    annotations: Annotations
    no_data: Literal["ok", "alerting", "keep_state"] = "keep_state"
    kill_switch: KillSwitch | None = None
    repeat_interval: Duration | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: Selector) -> Selector:
        return Condition._known(v)

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        if v.get("severity") not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)} (got {v.get('severity')!r})")
        if not v.get("team"):
            raise ValueError("needs a 'team' label: the owner who gets paged")
        bad = [k for k in v if not re.fullmatch(_NAME, k)]
        if bad:
            raise ValueError(f"bad label name(s) {bad}: use letters, digits and _")
        reserved = sorted({k for k in v if any(k in m.labels for m in METRICS.values())} | ({"alertname"} & set(v)))
        if reserved:
            raise ValueError(f"label(s) {reserved} come from the metric's series; a rule cannot set them")
        return {k: str(x) for k, x in v.items()}

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        steps = {METRICS[c.metric.name].step_ms for c in self.conditions}
        if len(steps) > 1:
            raise ValueError(
                "metrics of one rule must share a step (5-minute bins or days): "
                + ", ".join(f"{c.metric.name} ({METRICS[c.metric.name].step})" for c in self.conditions)
            )
        names = {"value", "metric", "threshold", "for", "rule", *self.labels}
        for c in self.conditions:
            names.update(METRICS[c.metric.name].labels)
        for key in ("summary", "runbook", "description"):
            for _, field, _, _ in string.Formatter().parse(getattr(self.annotations, key)):
                if field is not None and field.split(".")[0].split("[")[0] not in names:
                    raise ValueError(
                        f"annotations.{key}: unknown field {{{field}}}; use one of {sorted(names)}"
                    )
        return self

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """The main condition followed by the ``or`` ones (any one true makes the rule true)."""
        return (Condition(metric=self.metric, condition=self.condition), *self.or_)

    @property
    def severity(self) -> str:
        """P1–P4."""
        return self.labels["severity"]

    @property
    def step_ms(self) -> int:
        """Evaluation step: a 5-minute bin or a day (from the metrics)."""
        return METRICS[self.metric.name].step_ms

    def render(self, template: str, labels: dict[str, str], value: float, metric: str = "") -> str:
        """Fill an annotation template; a missing label renders as empty text."""
        values: dict[str, Any] = {
            **dict.fromkeys(self._template_fields(template), ""), **labels,
            "value": value, "threshold": self.condition.threshold, "for": format_duration(self.for_),
            "rule": self.name, "metric": metric or self.metric.name,
        }
        try:
            return template.format_map(values)
        except (ValueError, TypeError):  # e.g. a float format applied to a missing value
            return template

    @staticmethod
    def _template_fields(template: str) -> list[str]:
        return [f.split(".")[0].split("[")[0] for _, f, _, _ in string.Formatter().parse(template) if f]


class Escalation(_Strict):
    """Deadlines after an alert fires: respond, then escalate (``next_business_day`` allowed)."""

    respond: int | Literal["next_business_day"]
    escalate: int | Literal["next_business_day"]

    @field_validator("respond", "escalate", mode="before")
    @classmethod
    def _either(cls, v: Any) -> Any:
        return v if v == "next_business_day" else parse_duration(v)


class InhibitRule(_Strict):
    """A firing alert matching ``source_matchers`` mutes alerts matching ``target_matchers``
    that carry the same values of the ``equal`` labels (Alertmanager semantics)."""

    source_matchers: MatchersField
    target_matchers: MatchersField
    equal: tuple[str, ...] = ()


class Routing(_Strict):
    """Grouping and re-notification (Alertmanager's route)."""

    group_by: tuple[str, ...] = ("alertname", "experiment")
    repeat_interval: Duration = Field(default=4 * 3_600_000)
    send_resolved: bool = True
    receiver: str = "expkit"


class Webhook(_Strict):
    """An HTTP endpoint that receives Alertmanager webhook JSON (version 4)."""

    name: str
    url: str | None = None
    url_env: str | None = None
    timeout: Duration = Field(default=5_000)
    retries: int = Field(default=3, ge=0, le=10)
    backoff: Duration = Field(default=1_000)
    send_resolved: bool = True

    @model_validator(mode="after")
    def _one_url(self) -> Webhook:
        if not self.url and not self.url_env:
            raise ValueError("needs 'url' or 'url_env' (the environment variable holding the URL)")
        if self.url and not re.match(r"^https?://", self.url):
            raise ValueError(f"url {self.url!r} must start with http:// or https://")
        return self

    def resolved_url(self) -> str | None:
        """The URL, from ``url`` or the environment (``None`` when the variable is unset)."""
        return self.url or os.environ.get(self.url_env or "") or None


class Notify(_Strict):
    """Where notifications go: the append-only log (always) and webhooks."""

    log: bool = True
    webhooks: tuple[Webhook, ...] = ()
    external_url: str = ""
    give_up_after: Duration = Field(default=86_400_000)


class Evaluation(_Strict):
    """When rules run: batch warm-up and live-monitor timing."""

    warm_up: Duration = Field(default=3_600_000)
    settle: Duration = Field(default=60_000)
    catch_up: Duration = Field(default=3_600_000)
    business_day_start_hour: int = Field(default=9, ge=0, le=23)


class AlertsConfig(_Strict):
    """The whole ``alerts.yaml``."""

    version: Literal[1] = 1
    evaluation: Evaluation = Field(default_factory=Evaluation)
    severities: dict[Literal["P1", "P2", "P3", "P4"], Escalation]
    routing: Routing = Field(default_factory=Routing)
    inhibit_rules: tuple[InhibitRule, ...] = ()
    notify: Notify = Field(default_factory=Notify)
    rules: tuple[Rule, ...]

    @model_validator(mode="after")
    def _complete(self) -> AlertsConfig:
        missing = [s for s in SEVERITIES if s not in self.severities]
        if missing:
            raise ValueError(f"severities: deadlines missing for {missing}")
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rules: duplicate rule name(s) {dupes}")
        return self

    def rule(self, name: str) -> Rule:
        """The rule called ``name``."""
        for r in self.rules:
            if r.name == name:
                return r
        raise ConfigError(f"no alert rule {name!r}; rules: {', '.join(r.name for r in self.rules)}")

    def deadline_ms(self, severity: str, fired_ms: int, which: Literal["respond", "escalate"]) -> int:
        """When the ``respond``/``escalate`` deadline of an alert fired at ``fired_ms`` falls."""
        spec = getattr(self.severities[severity], which)  # type: ignore[index]
        if spec != "next_business_day":
            return fired_ms + int(spec)
        return next_business_day_ms(fired_ms, self.evaluation.business_day_start_hour)


def next_business_day_ms(ms: int, start_hour: int = 9) -> int:
    """``start_hour``:00 UTC of the first Monday–Friday after the day of ``ms``.

    >>> from expkit.warehouse import ms_to_iso
    >>> ms_to_iso(next_business_day_ms(1795176000000))  # Friday 2026-11-20 12:00Z
    '2026-11-23T09:00:00Z'
    """
    day = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).date() + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    start = dt.datetime(day.year, day.month, day.day, start_hour, tzinfo=dt.timezone.utc)
    return int(start.timestamp() * 1000)


# --- loading -----------------------------------------------------------------------------------


def _where(loc: tuple[Any, ...], data: Any) -> str:
    """``("rules", 3, "for")`` → ``rule 'error_rate_high' key 'for'``."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rules = data.get("rules") if isinstance(data, dict) else None
        name = None
        if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
            name = rules[loc[1]].get("name")
        rest = ".".join(str(x) for x in loc[2:] if not str(x).startswith("function-"))
        who = f"rule {name!r}" if name else f"rule #{loc[1] + 1}"
        return f"{who} key '{rest}'" if rest else who
    return "key '" + (".".join(str(x) for x in loc if not str(x).startswith("function-")) or "(top level)") + "'"


def parse_alerts(data: Any, source: Path | str = "<alerts>") -> AlertsConfig:
    """Validate an already-parsed mapping; errors name ``source``, the rule and the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with 'severities' and 'rules', got {type(data).__name__}")
    try:
        return AlertsConfig.model_validate(data)
    except ValidationError as err:
        parts = []
        for e in err.errors():
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling; see docs/alerts.md for the known keys)"
            elif e["type"] == "literal_error":
                msg = f"{msg} (got {e.get('input')!r})"
            parts.append(f"{_where(tuple(e['loc']), data)}: {msg}")
        raise ConfigError(f"{source}: " + "; ".join(parts)) from None


def load_alerts(path: str | Path) -> AlertsConfig:
    """Read and validate an alert rules file."""
    from expkit.yamlio import read_yaml

    return parse_alerts(read_yaml(path, "alert rules file", "params/alerts.yaml, or pass --rules FILE"), Path(path))


def default_rules_file(params_file: str | Path | None = None) -> Path:
    """``alerts.yaml`` beside the experiment parameters file (default ``params/alerts.yaml``), or
    above an ``experiments/`` folder (:func:`expkit.project.shared_file`)."""
    from expkit.config import default_params_file
    from expkit.project import shared_file

    return shared_file(Path(params_file) if params_file else default_params_file(), "alerts.yaml")
