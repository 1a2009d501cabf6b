"""The verdict of an experiment: ship, roll back, no effect, keep running or untrustworthy.

A pure function of already computed statistics (docs/statistics.md, "The verdict"):
per treatment arm the primary metric's comparison with control, the guardrail
judgments (:mod:`expkit.stats.guardrails`), the progress towards the required
sample (:mod:`expkit.stats.progress`) and the trust gates (SRM, validation,
alerts, ...), plus ``min_days``, the relative ``mde`` and the good ``direction``
of the primary metric. Rules per arm, first match wins:

1. ``roll_back``: a guardrail fails (harm shown on a guardrail is acted on even when a
   trust gate failed too: the failed gates are added to the reasons; an incident the
   treatment causes both fails its guardrail and fires the alert behind the alerts gate).
2. ``untrustworthy``: a trust gate failed (the gate is named).
3. ``roll_back``: the primary metric's **always-valid** interval lies entirely on the
   bad side of 0.
4. ``ship``: the always-valid interval lies entirely on the good side of 0, every
   guardrail passes, every trust gate was judged and ``min_days`` days have run.
5. ``no_effect``: the required sample is reached and the fixed-horizon interval
   lies inside ``(-mde, +mde)``.
6. ``keep_running``: otherwise.

The experiment's verdict is the most severe over its arms:
``untrustworthy > roll_back > ship > keep_running > no_effect``. Reasons are plain
sentences ("CTR +7.0% (always-valid −4.8% to +18.8%) not yet conclusive; 58% of
the 12,400 users per arm needed; about 6 more days").

>>> primary = PrimaryResult("CTR", 0.07, -0.01, 0.15, -0.048, 0.188)
>>> progress = ProgressResult(users=7192, required_per_arm=12387.0, fraction=0.5806,
...                           days_run=4, days_remaining=6.0)
>>> d = decide({"treatment": ArmEvidence(primary, progress)})
>>> d.verdict
'keep_running'
>>> print(d.reasons[0])
CTR +7.0% (always-valid −4.8% to +18.8%) not yet conclusive; 58% of the 12,400 users per arm needed; about 6 more days
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from expkit.stats.compare import Comparison
from expkit.stats.guardrails import GuardrailJudgment
from expkit.stats.progress import Progress

__all__ = [
    "VERDICTS",
    "Verdict",
    "Direction",
    "PrimaryResult",
    "GuardrailResult",
    "ProgressResult",
    "GateStatus",
    "TrustGate",
    "ArmEvidence",
    "ArmDecision",
    "Decision",
    "decide_arm",
    "decide",
    "with_findings",
]

Verdict = Literal["ship", "roll_back", "no_effect", "keep_running", "untrustworthy"]
Direction = Literal["increase", "decrease"]
# Most severe first.
VERDICTS: tuple[Verdict, ...] = ("untrustworthy", "roll_back", "ship", "keep_running", "no_effect")


def _item(x: Any, index: Any) -> float:
    arr = np.asarray(x)
    return float(arr if index is None else arr[index])


@dataclasses.dataclass(frozen=True)
class PrimaryResult:
    """The primary metric of one treatment arm against control (relative lift).

    Attributes:
        metric: the metric's display name (e.g. ``"CTR"``).
        rel_lift: ``treatment / control - 1``.
        rel_low, rel_high: fixed-horizon interval of ``rel_lift``.
        seq_low, seq_high: always-valid interval of ``rel_lift``.
        cuped: whether the estimate is CUPED-adjusted.
        variance_reduction: ``1 - var_adjusted / var_unadjusted`` (NaN without CUPED).
    """

    metric: str
    rel_lift: float
    rel_low: float
    rel_high: float
    seq_low: float
    seq_high: float
    cuped: bool = False
    variance_reduction: float = math.nan

    @classmethod
    def from_comparison(cls, metric: str, comparison: Comparison, index: Any = None) -> PrimaryResult:
        """From a :class:`~expkit.stats.compare.Comparison` run with ``sequential=True``
        (``index`` picks one slice of a vectorized comparison)."""
        reduction = _item(comparison.variance_reduction, index)
        return cls(metric, _item(comparison.rel_lift, index), _item(comparison.rel_low, index),
                   _item(comparison.rel_high, index), _item(comparison.seq_rel_low, index),
                   _item(comparison.seq_rel_high, index), not math.isnan(reduction), reduction)


@dataclasses.dataclass(frozen=True)
class GuardrailResult:
    """A guardrail metric's judgment for one arm.

    Attributes:
        metric: display name.
        status: ``"pass"``, ``"fail"`` or ``"inconclusive"``.
        estimate: the change judged (difference or relative lift).
        low, high: its interval (always-valid as a rule).
        margin: the tolerated change, signed towards harm.
        relative: whether the change and margin are relative.
        reason: "" or why the status is ``inconclusive`` without an interval (no data, no statistic).
    """

    metric: str
    status: Literal["pass", "fail", "inconclusive"]
    estimate: float
    low: float
    high: float
    margin: float
    relative: bool = False
    reason: str = ""

    @classmethod
    def from_judgment(cls, metric: str, judgment: GuardrailJudgment, estimate: Any,
                      relative: bool = False, index: Any = None) -> GuardrailResult:
        """From :func:`expkit.stats.guardrails.judge_guardrail` (and the comparison's
        ``diff`` or ``rel_lift`` as ``estimate``)."""
        status = np.asarray(judgment.status, dtype=object)
        value = str(status if index is None else status[index])
        if value not in ("pass", "fail", "inconclusive"):
            raise ValueError(f"unknown guardrail status {value!r}")
        status_: Literal["pass", "fail", "inconclusive"] = (
            "pass" if value == "pass" else "fail" if value == "fail" else "inconclusive")
        reason = np.asarray(judgment.reason, dtype=object)
        return cls(metric, status_, _item(estimate, index), _item(judgment.low, index),
                   _item(judgment.high, index), _item(judgment.margin, index), relative,
                   str(reason if index is None else reason[index]))


@dataclasses.dataclass(frozen=True)
class ProgressResult:
    """Progress of one arm towards the required sample.

    Attributes:
        users: users so far (the smaller of the arm and control).
        required_per_arm: users per arm needed for the mde at power 0.8.
        fraction: ``users / required_per_arm``.
        days_run: days of data.
        days_remaining: days until the required sample at the observed rate (NaN unknown).
    """

    users: int
    required_per_arm: float
    fraction: float
    days_run: int
    days_remaining: float

    @classmethod
    def from_progress(cls, progress: Progress, days_run: int, index: Any = None) -> ProgressResult:
        """From :func:`expkit.stats.progress.progress`."""
        return cls(int(_item(progress.users_per_arm, index)), _item(progress.required_per_arm, index),
                   _item(progress.fraction, index), int(days_run),
                   _item(progress.days_remaining, index))


GateStatus = Literal["pass", "fail", "not_judged"]


@dataclasses.dataclass(frozen=True)
class TrustGate:
    """One trust gate (docs/readout.md, "Trust gates").

    Attributes:
        gate: ``srm``, ``validation``, ``bucket_consistency``, ``alerts``, ...
        status: ``pass``, ``fail``, or ``not_judged`` when its evidence is missing (a failed
            gate makes the arm untrustworthy; an unjudged one keeps it from ``ship``).
        detail: one plain sentence: what was checked, or what failed.
    """

    gate: str
    status: GateStatus
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class ArmEvidence:
    """Everything the verdict of one treatment arm rests on (``trust``: gates of this arm)."""

    primary: PrimaryResult
    progress: ProgressResult
    guardrails: Sequence[GuardrailResult] = ()
    trust: Sequence[TrustGate] = ()


@dataclasses.dataclass(frozen=True)
class ArmDecision:
    """The verdict of one treatment arm, its reasons and the evidence it rests on."""

    verdict: Verdict
    reasons: tuple[str, ...]
    evidence: ArmEvidence
    trust: tuple[TrustGate, ...]


@dataclasses.dataclass(frozen=True)
class Decision:
    """The experiment's verdict (most severe over arms), reasons, and each arm's decision."""

    verdict: Verdict
    reasons: tuple[str, ...]
    arms: Mapping[str, ArmDecision]
    trust: tuple[TrustGate, ...]
    min_days: int
    mde: float

    def progress(self) -> OverallProgress:
        """The experiment's progress over its arms (the least advanced arm decides)."""
        progs = [a.evidence.progress for a in self.arms.values()]
        return OverallProgress(
            users={name: a.evidence.progress.users for name, a in self.arms.items()},
            required_per_arm=max((p.required_per_arm for p in progs), default=math.nan),
            fraction=min((p.fraction for p in progs), default=math.nan),
            days_run=max((p.days_run for p in progs), default=0),
            days_remaining=max((p.days_remaining for p in progs), default=math.nan),
            min_days=self.min_days,
        )

    def gates(self) -> list[TrustGate]:
        """Every trust gate once: the arms' own, then the experiment-wide ones (which win)."""
        gates = {g.gate: g for a in self.arms.values() for g in a.trust}
        gates.update({g.gate: g for g in self.trust})
        return list(gates.values())

    def to_dict(self) -> dict[str, Any]:
        """The ``decision`` object of summary.json (NaN becomes ``None``)."""
        arms = {name: {
            "verdict": a.verdict, "reasons": list(a.reasons),
            "primary": {k: _json(v) for k, v in dataclasses.asdict(a.evidence.primary).items()},
            "guardrails": [{k: _json(v) for k, v in dataclasses.asdict(g).items()}
                           for g in a.evidence.guardrails],
        } for name, a in self.arms.items()}
        progress = {k: _json(v) for k, v in dataclasses.asdict(self.progress()).items()}
        return {"verdict": self.verdict, "reasons": list(self.reasons), "arms": arms,
                "progress": progress, "trust": [dataclasses.asdict(g) for g in self.gates()]}


@dataclasses.dataclass(frozen=True)
class OverallProgress:
    """The experiment's progress towards the required sample (summary.json ``decision.progress``).

    Attributes:
        users: arm → its users so far (:attr:`ProgressResult.users`).
        required_per_arm: the largest of the arms' required samples (NaN without arms).
        fraction: the smallest of the arms' fractions.
        days_run: days of data.
        days_remaining: the most days any arm still needs (NaN unknown).
        min_days: the experiment's minimum duration.
    """

    users: dict[str, int]
    required_per_arm: float
    fraction: float
    days_run: int
    days_remaining: float
    min_days: int


def _json(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _pct(x: float) -> str:
    """Signed percentage with one decimal and a real minus sign: ``+7.0%``, ``−4.8%``."""
    s = f"{x * 100:+.1f}%"
    return s.replace("-", "\u2212")


def _count(x: float) -> str:
    """A required sample rounded up to 3 significant digits: 12,387 -> ``12,400``."""
    if not math.isfinite(x) or x <= 0:
        return "?"
    step = 10 ** max(int(math.floor(math.log10(x))) - 2, 0)
    return f"{math.ceil(x / step) * step:,}"


def _change(g: GuardrailResult) -> str:
    if not math.isfinite(g.estimate):
        return "no estimate yet (no data for this comparison)"
    if g.relative:
        return f"{_pct(g.estimate)} (always-valid {_pct(g.low)} to {_pct(g.high)}), margin {_pct(g.margin)}"
    def num(x: float) -> str:
        return f"{x:+.4g}".replace("-", "\u2212")

    return f"{num(g.estimate)} (always-valid {num(g.low)} to {num(g.high)}), margin {num(g.margin)}"


def decide_arm(
    evidence: ArmEvidence,
    *,
    trust: Sequence[TrustGate] = (),
    min_days: int = 7,
    mde: float = 0.05,
    direction: Direction = "increase",
) -> ArmDecision:
    """The verdict of one treatment arm (rules in the module docstring).

    ``trust`` are the experiment-wide gates, added to the arm's own.
    """
    if direction not in ("increase", "decrease"):
        raise ValueError(f"direction must be 'increase' or 'decrease', got {direction!r}")
    gates = tuple(trust) + tuple(evidence.trust)
    p, prog = evidence.primary, evidence.progress

    def result(verdict: Verdict, reasons: list[str]) -> ArmDecision:
        return ArmDecision(verdict, tuple(reasons), evidence, gates)

    failed = [g for g in gates if g.status == "fail"]
    gate_reasons = [f"{g.gate} check failed" + (f": {g.detail}" if g.detail else "") for g in failed]
    harmful = [g for g in evidence.guardrails if g.status == "fail"]
    if failed and not harmful:
        return result("untrustworthy", gate_reasons)

    shown = f"{p.metric} {_pct(p.rel_lift)} (always-valid {_pct(p.seq_low)} to {_pct(p.seq_high)})"
    sign = 1.0 if direction == "increase" else -1.0
    good_low, good_high = sorted((sign * p.seq_low, sign * p.seq_high))
    better, worse = good_low > 0, good_high < 0
    if harmful or worse:
        reasons = [f"{shown} significantly worse"] if worse and not failed else []
        reasons += [f"guardrail {g.metric} fails: {_change(g)}" for g in harmful]
        return result("roll_back", reasons + gate_reasons)

    pending = [g for g in evidence.guardrails if g.status != "pass"]
    unjudged = [g for g in gates if g.status == "not_judged"]
    days_short = max(min_days - prog.days_run, 0)
    if better:
        if not pending and not unjudged and days_short == 0:
            return result("ship", [f"{shown} significantly better; all guardrails pass; "
                                   f"{prog.days_run} days run"])
        reasons = [f"{shown} significantly better, but not yet shippable"]
        reasons += [f"guardrail {g.metric} not yet shown within its margin: {_change(g)}"
                    for g in pending]
        reasons += [f"{g.gate} not judged" + (f": {g.detail}" if g.detail else "") for g in unjudged]
        if days_short:
            reasons.append(f"day {prog.days_run} of the minimum {min_days}; "
                           f"{days_short} more day{'s' if days_short != 1 else ''}")
        return result("keep_running", reasons)

    if not (math.isfinite(p.rel_lift) and math.isfinite(p.seq_low) and math.isfinite(p.seq_high)):
        return result("keep_running", [f"{p.metric}: no estimate yet (no data or no variance)"])
    if prog.fraction >= 1 and -mde < p.rel_low and p.rel_high < mde:
        return result("no_effect", [
            f"{p.metric} {_pct(p.rel_lift)} ({_pct(p.rel_low)} to {_pct(p.rel_high)}) rules out a "
            f"change of {_pct(mde).lstrip('+')} either way; required sample of "
            f"{_count(prog.required_per_arm)} users per arm reached"])
    sentence = f"{shown} not yet conclusive"
    if math.isfinite(prog.fraction):
        sentence += (f"; {math.floor(prog.fraction * 100):.0f}% of the "
                     f"{_count(prog.required_per_arm)} users per arm needed")
    days = max(prog.days_remaining if math.isfinite(prog.days_remaining) else 0.0, days_short)
    if days > 0:
        sentence += f"; about {days:.0f} more day{'s' if days != 1 else ''}"
    return result("keep_running", [sentence])


def decide(
    arms: Mapping[str, ArmEvidence],
    *,
    trust: Sequence[TrustGate] = (),
    min_days: int = 7,
    mde: float = 0.05,
    direction: Direction = "increase",
) -> Decision:
    """Verdicts of every treatment arm and of the experiment (the most severe).

    ``trust`` are the experiment-wide gates; each arm may carry its own.
    """
    decided = {name: decide_arm(ev, trust=trust, min_days=min_days, mde=mde, direction=direction)
               for name, ev in arms.items()}
    if not decided:
        return Decision("keep_running", ("no treatment arm with data yet",), {}, tuple(trust),
                        min_days, mde)
    verdict = min((a.verdict for a in decided.values()), key=VERDICTS.index)
    top = [(name, a) for name, a in decided.items() if a.verdict == verdict]
    many = len(decided) > 1
    reasons = tuple(f"{name}: {r}" if many else r for name, a in top for r in a.reasons)
    return Decision(verdict, reasons, decided, tuple(trust), min_days, mde)


def with_findings(decision: Decision, findings: Sequence[str]) -> Decision:
    """``decision`` with ``findings`` appended to its reasons, its verdict unchanged.

    Findings are what a data scientist reads before acting on the verdict, but that do not
    change it: a lift that decays with the days since first exposure (novelty: the lasting lift
    is smaller than the lift to date) or segments whose effect differs (docs/readout.md).

    >>> d = with_findings(decide({}), ["effect differs in region=eu: +15.0% vs +3.0% elsewhere"])
    >>> d.verdict, d.reasons[-1]
    ('keep_running', 'effect differs in region=eu: +15.0% vs +3.0% elsewhere')
    """
    return dataclasses.replace(decision, reasons=decision.reasons + tuple(findings))
