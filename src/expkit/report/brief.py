"""What one day's ``summary.json`` says in brief: the verdict, the primary lift, guardrails,
progress and the day's alerts, read back from the file alone (docs/reports.md, "History" and
"Digests").

The history page (:mod:`expkit.report.history_page`) and the digests (:mod:`expkit.report.digest`)
show this and nothing else, so both can be rebuilt at any time from the files on disk. Reading
never raises on odd content (a summary of an older version, a field another tool left out): what
is missing or malformed is ``None`` or empty.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from expkit.report.html import STATUS_LABELS

VERDICT_LABELS: dict[str, str] = {
    "ship": "Ship",
    "roll_back": "Roll back",
    "keep_running": "Keep running",
    "no_effect": "No effect",
    "untrustworthy": "Untrustworthy",
}
# The colour of a verdict or status (a ``status-*`` class of the stylesheet).
TONES: dict[str, str] = {
    "ship": "ok", "roll_back": "breach", "untrustworthy": "failed", "keep_running": "warn", "no_effect": "no_data",
    "ok": "ok", "warn": "warn", "breach": "breach", "no_data": "no_data", "failed": "failed",
}
_STATUS_ORDER = ("failed", "breach", "warn", "ok", "no_data")


@dataclass(frozen=True)
class Lift:
    """The primary metric's relative lift of one treatment arm against control.

    ``low``/``high``: the fixed-horizon 95% interval; ``seq_low``/``seq_high``: the always-valid
    one; ``cuped``/``variance_reduction`` only when the decision block gives them.
    """

    arm: str
    metric: str
    rel_lift: float | None
    low: float | None
    high: float | None
    seq_low: float | None = None
    seq_high: float | None = None
    cuped: bool | None = None
    variance_reduction: float | None = None


@dataclass(frozen=True)
class Guardrail:
    """One guardrail comparison of one arm (``status``: pass, fail or inconclusive)."""

    arm: str
    metric: str
    status: str
    estimate: float | None
    low: float | None
    high: float | None
    margin: float | None
    relative: bool = False  # estimate, bounds and margin are relative changes (latency p95)


@dataclass(frozen=True)
class Progress:
    """How far the experiment is towards its required sample (``decision.progress``)."""

    users: dict[str, int]
    required_per_arm: float | None
    fraction: float | None
    days_run: float | None
    days_remaining: float | None
    min_days: float | None


@dataclass(frozen=True)
class AlertLine:
    """One alert of the day."""

    rule: str
    severity: str
    state: str
    fired_at: str | None
    resolved_at: str | None
    kill_switch: str | None


@dataclass(frozen=True)
class Gate:
    """One trust gate (``decision.trust``)."""

    gate: str
    status: str
    detail: str


@dataclass(frozen=True)
class ArmVerdict:
    """The verdict of one treatment arm and its reasons."""

    arm: str
    verdict: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ReportBrief:
    """One report (one day of one experiment) in brief.

    Attributes:
        date: the report's date (``YYYY-MM-DD``).
        experiment_id: the experiment (``"–"`` when the summary does not name one).
        verdict: ``decision.verdict`` when the summary has a decision, else the report's overall
            status (:func:`report_status`).
        verdict_source: ``"decision"`` or ``"status"``: which of the two ``verdict`` is.
        reasons: the decision's reasons (empty without a decision).
        arms: each treatment arm's own verdict (decision only).
        lifts: the primary metric's lift per treatment arm (decision, else the lift tile).
        guardrails, progress, trust: from the decision, when present.
        alerts: the day's alerts, most severe first.
        failed_tiles, failed_checks, step_errors: what went wrong in the run.
        href: the report's index page, relative to the report folder (``D/index.html``).
    """

    date: str
    experiment_id: str
    verdict: str
    verdict_source: Literal["decision", "status"]
    href: str
    reasons: tuple[str, ...] = ()
    arms: tuple[ArmVerdict, ...] = ()
    lifts: tuple[Lift, ...] = ()
    guardrails: tuple[Guardrail, ...] = ()
    progress: Progress | None = None
    trust: tuple[Gate, ...] = ()
    alerts: tuple[AlertLine, ...] = ()
    failed_tiles: tuple[str, ...] = ()
    failed_checks: tuple[str, ...] = ()
    step_errors: dict[str, str] = field(default_factory=dict)

    @property
    def verdict_label(self) -> str:
        """The verdict for people (``Keep running``, ``OK``)."""
        return label(self.verdict)

    @property
    def tone(self) -> str:
        """The colour class of the verdict (``ok``, ``warn``, ``breach``, ``no_data``, ``failed``)."""
        return TONES.get(self.verdict, "no_data")

    @property
    def primary_metric(self) -> str | None:
        """The primary metric's id, when a lift names it."""
        return self.lifts[0].metric if self.lifts else None


def label(verdict: str) -> str:
    """A verdict or status for people: ``keep_running`` → ``Keep running``, ``ok`` → ``OK``."""
    return VERDICT_LABELS.get(verdict) or STATUS_LABELS.get(verdict) or verdict


def num(value: Any) -> float | None:
    """``value`` as a finite float, else ``None`` (booleans, text, NaN and infinities are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


FINAL_VERDICTS = frozenset({"ship", "roll_back"})


def decided(verdicts: Iterable[object]) -> bool:
    """Whether every treatment arm has a final verdict (ship or roll back): no more days are
    needed, whatever share of the planned sample was reached (the always-valid intervals decide
    before it), so the progress says so instead of counting days remaining."""
    seen = list(verdicts)
    return bool(seen) and all(v in FINAL_VERDICTS for v in seen)


def pct(value: float | None, digits: int = 1) -> str:
    """A relative change as a signed percentage with a true minus sign; ``n/a`` when unknown.

    >>> pct(0.07), pct(-0.048), pct(0.0), pct(None)
    ('+7.0%', '−4.8%', '+0.0%', 'n/a')
    """
    if value is None:
        return "n/a"
    text = f"{value * 100:+.{digits}f}%"
    return text.replace("-", "\u2212")


def interval(low: float | None, high: float | None) -> str:
    """``−4.8% to +18.8%`` (``n/a`` when a bound is unknown)."""
    if low is None or high is None:
        return "n/a"
    return f"{pct(low)} to {pct(high)}"


def lift_text(lift: Lift) -> str:
    """One line: ``treatment: ctr +7.0% (95% −4.8% to +18.8%; always-valid −9.1% to +25.0%)``."""
    parts = [f"95% {interval(lift.low, lift.high)}"]
    if lift.seq_low is not None and lift.seq_high is not None:
        parts.append(f"always-valid {interval(lift.seq_low, lift.seq_high)}")
    if lift.cuped:
        vr = f", variance −{lift.variance_reduction * 100:.0f}%" if lift.variance_reduction is not None else ""
        parts.append(f"CUPED{vr}")
    return f"{lift.arm}: {lift.metric} {pct(lift.rel_lift)} ({'; '.join(parts)})"


def report_status(summary: Mapping[str, Any]) -> str:
    """The report's overall status: ``failed`` when a tile failed or a step raised, else the most
    severe tile status (``breach`` > ``warn`` > ``ok``), ``no_data`` when every tile had none.

    >>> report_status({"ok": True, "tiles": {"a": {"status": "ok"}, "b": {"status": "warn"}}})
    'warn'
    >>> report_status({"ok": False, "tiles": {"a": {"status": "ok"}}})
    'failed'
    """
    tiles = summary.get("tiles")
    statuses = {str(t.get("status")) for t in tiles.values() if isinstance(t, Mapping)} if isinstance(
        tiles, Mapping) else set()
    if summary.get("ok") is False or "failed" in statuses or summary.get("step_errors"):
        return "failed"
    for status in _STATUS_ORDER:
        if status in statuses:
            return status
    return "no_data"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _lift_from_decision(arm: str, primary: Mapping[str, Any]) -> Lift:
    cuped = primary.get("cuped")
    return Lift(
        arm=arm, metric=_text(primary.get("metric")) or "primary", rel_lift=num(primary.get("rel_lift")),
        low=num(primary.get("rel_low")), high=num(primary.get("rel_high")), seq_low=num(primary.get("seq_low")),
        seq_high=num(primary.get("seq_high")), cuped=cuped if isinstance(cuped, bool) else None,
        variance_reduction=num(primary.get("variance_reduction")),
    )


def _lifts_from_tile(summary: Mapping[str, Any]) -> tuple[Lift, ...]:
    """The primary metric's lift per arm from the lift tile's headline: the contract's
    ``arms.<arm>.metrics.<primary>`` entry, else the arm's own ``metric``/``estimate``/``low``/``high``."""
    headline = _mapping(_mapping(_mapping(summary.get("tiles")).get("lift")).get("headline"))
    experiment = _mapping(_mapping(summary.get("params")).get("experiment"))
    wanted = experiment.get("primary_metric")
    out = []
    for arm, entry in _mapping(headline.get("arms")).items():
        entry = _mapping(entry)
        metric = _text(wanted or entry.get("metric"))
        m = _mapping(_mapping(entry.get("metrics")).get(metric))
        if m:
            out.append(Lift(arm=str(arm), metric=metric, rel_lift=num(m.get("rel_lift")), low=num(m.get("rel_low")),
                            high=num(m.get("rel_high")), seq_low=num(m.get("seq_low")),
                            seq_high=num(m.get("seq_high"))))
        elif entry.get("estimate") is not None or entry.get("metric"):
            out.append(Lift(arm=str(arm), metric=_text(entry.get("metric")) or metric,
                            rel_lift=num(entry.get("estimate")), low=num(entry.get("low")),
                            high=num(entry.get("high")), seq_low=num(entry.get("seq_low")),
                            seq_high=num(entry.get("seq_high"))))
    return tuple(out)


def _alerts(summary: Mapping[str, Any]) -> tuple[AlertLine, ...]:
    order = ("P1", "P2", "P3", "P4")
    lines = [
        AlertLine(rule=_text(a.get("rule")) or "?", severity=_text(a.get("severity")), state=_text(a.get("state")),
                  fired_at=a.get("fired_at"), resolved_at=a.get("resolved_at"),
                  kill_switch=_text(a.get("kill_switch")) or None)
        for a in _seq(summary.get("alerts")) if isinstance(a, Mapping)
    ]
    return tuple(sorted(lines, key=lambda a: (order.index(a.severity) if a.severity in order else 9,
                                              a.fired_at or "")))


def brief(summary: Mapping[str, Any], href: str) -> ReportBrief:
    """Read ``summary`` (a ``summary.json`` document) in brief; ``href`` is its index page
    relative to the report folder."""
    decision = _mapping(summary.get("decision"))
    verdict = decision.get("verdict")
    has_decision = isinstance(verdict, str) and bool(verdict)
    arms: list[ArmVerdict] = []
    lifts: list[Lift] = []
    guardrails: list[Guardrail] = []
    for arm, entry in _mapping(decision.get("arms")).items():
        entry = _mapping(entry)
        arms.append(ArmVerdict(str(arm), _text(entry.get("verdict")),
                               tuple(_text(r) for r in _seq(entry.get("reasons")))))
        if _mapping(entry.get("primary")):
            lifts.append(_lift_from_decision(str(arm), _mapping(entry.get("primary"))))
        for g in _seq(entry.get("guardrails")):
            g = _mapping(g)
            guardrails.append(Guardrail(arm=str(arm), metric=_text(g.get("metric")), status=_text(g.get("status")),
                                        estimate=num(g.get("estimate")), low=num(g.get("low")),
                                        high=num(g.get("high")), margin=num(g.get("margin")),
                                        relative=g.get("relative") is True))
    prog = _mapping(decision.get("progress"))
    progress = None
    if prog:
        users = {str(k): int(v) for k, v in _mapping(prog.get("users")).items() if num(v) is not None}
        progress = Progress(users=users, required_per_arm=num(prog.get("required_per_arm")),
                            fraction=num(prog.get("fraction")), days_run=num(prog.get("days_run")),
                            days_remaining=num(prog.get("days_remaining")), min_days=num(prog.get("min_days")))
    tiles = _mapping(summary.get("tiles"))
    return ReportBrief(
        date=_text(summary.get("date")),
        experiment_id=_text(summary.get("experiment_id") or _mapping(summary.get("params")).get("experiment_id"))
        or "\u2013",
        verdict=str(verdict) if has_decision else report_status(summary),
        verdict_source="decision" if has_decision else "status",
        href=href,
        reasons=tuple(_text(r) for r in _seq(decision.get("reasons"))),
        arms=tuple(arms),
        lifts=tuple(lifts) or _lifts_from_tile(summary),
        guardrails=tuple(guardrails),
        progress=progress,
        trust=tuple(Gate(_text(_mapping(g).get("gate")), _text(_mapping(g).get("status")),
                         _text(_mapping(g).get("detail"))) for g in _seq(decision.get("trust"))),
        alerts=_alerts(summary),
        failed_tiles=tuple(str(k) for k, t in tiles.items() if _mapping(t).get("status") == "failed"),
        failed_checks=tuple(
            f"{_text(c.get('name'))}" + (f" ({c.get('table')})" if c.get("table") else "")
            for c in (_mapping(c) for c in _seq(summary.get("checks"))) if c.get("status") == "fail"),
        step_errors={str(k): _text(v) for k, v in _mapping(summary.get("step_errors")).items()},
    )
