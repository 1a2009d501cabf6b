"""Planted treatment effects of the synthetic generator, and the parsers of their specs.

An arm's true lift multiplies its users' click and save propensities by ``1 + lift``
(docs/synthetic.md). On top of the per-arm lift (``lift``):

- a segment lift (``SLICE=VALUE:LIFT``) replaces the lift of every non-control arm for the
  users whose attribute ``SLICE`` (cohort, region or client: fixed per user) is ``VALUE``; a
  user in several segments gets the lift of the last one given;
- a novelty effect (``ARM=INITIAL:HALF_LIFE_DAYS``) makes the arm's lift decay with the
  days since the user's first exposure (:data:`NOVELTY_FORMULA`), from ``INITIAL`` on the
  day of first exposure toward the user's base lift (the arm's, or the segment's).

Every parser and check raises :class:`~expkit.errors.ExpkitError` with one line that names
the flag (or parameter), the value and the fix.

>>> parse_lift("treatment=0.1")
('treatment', 0.1)
>>> parse_segment_lift("region=eu:0.15")
SegmentLift(slice='region', value='eu', lift=0.15)
>>> n = parse_novelty("treatment=0.2:3")
>>> n, float(n.lift(0.05, 3.0))
(Novelty(arm='treatment', initial=0.2, half_life_days=3.0), 0.125)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from expkit.errors import ExpkitError
from expkit.synth.model import Model

USER_SLICES = ("cohort", "region", "client")
"""The slices that are fixed attributes of a user (segment lifts are planted on these)."""


def slice_values(model: Model) -> dict[str, tuple[str, ...]]:
    """The values of each user attribute of :data:`USER_SLICES` in ``model``."""
    values = {"cohort": model.cohorts, "region": model.regions, "client": model.clients}
    return {k: values[k] for k in USER_SLICES}


NOVELTY_FORMULA = ("lift(a) = base + (initial - base) * 2 ** (-a / half_life_days), where a is "
                   "the number of days since the user's first exposure (0 on the day of the "
                   "user's first non-shadow request of the experiment) and base is the user's "
                   "lift without novelty (the arm's lift, or the segment's)")
"""The novelty effect, as written into ``truth.json``."""


class SegmentLift(NamedTuple):
    """The true relative lift of every non-control arm for users with ``slice == value``."""

    slice: str
    value: str
    lift: float


class Novelty(NamedTuple):
    """A lift of ``arm`` that decays with exposure age (:data:`NOVELTY_FORMULA`)."""

    arm: str
    initial: float
    half_life_days: float

    def lift(self, base: float | np.ndarray, age_days: float | np.ndarray) -> float | np.ndarray:
        """The lift at ``age_days`` days since first exposure, for a user whose base lift is ``base``."""
        return base + (self.initial - base) * np.exp2(-np.asarray(age_days, dtype=float) / self.half_life_days)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _lift_value(text: str) -> float | None:
    """A relative lift: a finite number > -1, or None."""
    value = _number(text)
    return value if value is not None and value > -1 else None


def parse_lift(text: str, label: str = "--lift") -> tuple[str, float]:
    """``ARM=VALUE`` → (arm, relative lift > -1)."""
    arm, sep, value = str(text).rpartition("=")
    if not sep or not arm.strip():
        raise ExpkitError(f"{label} {text!r}: expected ARM=VALUE, e.g. {label} treatment=0.05 "
                          "(a relative lift: 0.05 = +5%, 0 = an A/A test)")
    lift = _lift_value(value)
    if lift is None:
        raise ExpkitError(f"{label} {text!r}: VALUE {value!r} must be a relative lift, a number "
                          f"> -1, e.g. {label} {arm.strip()}=0.05")
    return arm.strip(), lift


def parse_segment_lift(text: str, label: str = "--segment-lift") -> SegmentLift:
    """``SLICE=VALUE:LIFT`` → :class:`SegmentLift` (slice and value are checked later)."""
    slice_, sep, rest = str(text).partition("=")
    value, sep2, lift_text = rest.rpartition(":")
    if not sep or not sep2 or not slice_.strip() or not value.strip():
        raise ExpkitError(f"{label} {text!r}: expected SLICE=VALUE:LIFT, e.g. {label} region=eu:0.15")
    lift = _lift_value(lift_text)
    if lift is None:
        raise ExpkitError(f"{label} {text!r}: LIFT {lift_text!r} must be a relative lift, a number "
                          f"> -1, e.g. {label} {slice_.strip()}={value.strip()}:0.15")
    return SegmentLift(slice_.strip(), value.strip(), lift)


def parse_novelty(text: str, label: str = "--novelty") -> Novelty:
    """``ARM=INITIAL:HALF_LIFE_DAYS`` → :class:`Novelty` (the arm is checked later)."""
    arm, sep, rest = str(text).partition("=")
    initial_text, sep2, half_text = rest.rpartition(":")
    if not sep or not sep2 or not arm.strip():
        raise ExpkitError(f"{label} {text!r}: expected ARM=INITIAL:HALF_LIFE_DAYS, e.g. "
                          f"{label} treatment=0.2:3")
    initial = _lift_value(initial_text)
    if initial is None:
        raise ExpkitError(f"{label} {text!r}: INITIAL {initial_text!r} must be a relative lift, a "
                          f"number > -1, e.g. {label} {arm.strip()}=0.2:3")
    half = _number(half_text)
    if half is None or half <= 0:
        raise ExpkitError(f"{label} {text!r}: HALF_LIFE_DAYS {half_text!r} must be a number of days "
                          f"> 0, e.g. {label} {arm.strip()}=0.2:3")
    return Novelty(arm.strip(), initial, half)


def _arm_problem(arm: str, arms: Sequence[str], control: str) -> str | None:
    treatments = ", ".join(a for a in arms if a != control) or "none"
    if arm == control:
        return (f"{arm!r} is the control arm (its lift is 0 by definition); name a non-control "
                f"arm: {treatments}")
    if arm not in arms:
        return f"unknown arm {arm!r}; the non-control arms are {treatments}"
    return None


def check_segment(seg: SegmentLift, slice_values: Mapping[str, Sequence[str]], label: str,
                  text: str) -> None:
    """Refuse a segment on a slice that is not a user attribute, or on an unknown value."""
    if seg.slice not in slice_values:
        raise ExpkitError(f"{label} {text!r}: {seg.slice!r} is not a user attribute; segments are "
                          f"one of {', '.join(slice_values)}")
    values = slice_values[seg.slice]
    if seg.value not in values:
        raise ExpkitError(f"{label} {text!r}: unknown value {seg.value!r} of {seg.slice}; "
                          f"the values are {', '.join(values)}")
    if not math.isfinite(seg.lift) or seg.lift <= -1:
        raise ExpkitError(f"{label} {text!r}: LIFT must be a relative lift, a number > -1")


@dataclass(frozen=True)
class Effects:
    """The validated effects of one run (per-arm lifts are in :class:`SynthConfig`)."""

    segments: tuple[SegmentLift, ...] = ()
    novelty: tuple[Novelty, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.segments or self.novelty)

    def user_lift(self, arm_lift: np.ndarray, bucket: np.ndarray, control_code: int,
                  attributes: Mapping[str, np.ndarray], codes: Mapping[str, Mapping[str, int]],
                  arm_codes: Mapping[str, int], age: np.ndarray | None) -> np.ndarray:
        """The true lift of each user on one day.

        ``arm_lift[arm]`` is the arm's lift, ``attributes[slice]`` the users' codes of each
        user slice, ``codes[slice][value]`` the code of a value, and ``age`` the days since
        each user's first exposure (negative: not exposed yet).
        """
        lift = np.asarray(arm_lift, dtype=np.float64)[bucket]
        treated = bucket != control_code
        for seg in self.segments:
            lift[treated & (attributes[seg.slice] == codes[seg.slice][seg.value])] = seg.lift
        if age is not None:
            for nov in self.novelty:
                m = (bucket == arm_codes[nov.arm]) & (age >= 0)
                lift[m] = nov.lift(lift[m], age[m])
        return lift


def check_effects(arms: Sequence[str], control: str, slice_values: Mapping[str, Sequence[str]],
                  segments: Sequence[SegmentLift | str], novelty: Sequence[Novelty | str],
                  labels: tuple[str, str] = ("segment_lifts", "novelty")) -> Effects:
    """Parse (when given as specs) and check segment lifts and novelty effects.

    ``labels`` name the two inputs in error messages (the parameters, or the flags).
    """
    seg_label, nov_label = labels
    segs: list[SegmentLift] = []
    for item in segments:
        seg = parse_segment_lift(item, seg_label) if isinstance(item, str) else SegmentLift(*item)
        check_segment(seg, slice_values, seg_label, str(item))
        if any((s.slice, s.value) == (seg.slice, seg.value) for s in segs):
            raise ExpkitError(f"{seg_label} {str(item)!r}: {seg.slice}={seg.value} is given twice; "
                              "give each segment once")
        segs.append(seg)
    novs: list[Novelty] = []
    for spec in novelty:
        nov = parse_novelty(spec, nov_label) if isinstance(spec, str) else Novelty(*spec)
        problem = _arm_problem(nov.arm, arms, control)
        if problem:
            raise ExpkitError(f"{nov_label} {str(spec)!r}: {problem}")
        if (not math.isfinite(nov.initial) or nov.initial <= -1 or not math.isfinite(nov.half_life_days)
                or nov.half_life_days <= 0):
            raise ExpkitError(f"{nov_label} {str(spec)!r}: INITIAL must be a number > -1 and "
                              "HALF_LIFE_DAYS a number > 0")
        if any(n.arm == nov.arm for n in novs):
            raise ExpkitError(f"{nov_label} {str(spec)!r}: arm {nov.arm!r} has a novelty effect "
                              "already; give one per arm")
        novs.append(nov)
    return Effects(tuple(segs), tuple(novs))


class FlagValues(NamedTuple):
    """The effects of an ``expkit synth`` command line, checked against the experiment."""

    lift: dict[str, float]
    incidents: tuple[str, ...]
    effects: Effects


def from_flags(arms: Sequence[str], control: str, default_lift: float, lift: Sequence[str] = (),
               incidents: Sequence[str] = (), segment_lift: Sequence[str] = (),
               novelty: Sequence[str] = (), model: Model | None = None) -> FlagValues:
    """Parse and check ``--lift``, ``--incident``, ``--segment-lift`` and ``--novelty``.

    Non-control arms that ``--lift`` does not name keep ``default_lift``. Errors name the
    flag and the value as given on the command line.
    """
    from expkit.synth.incidents import parse_incident

    lifts = {a: default_lift for a in arms if a != control}
    named: set[str] = set()
    for text in lift:
        arm, value = parse_lift(text)
        problem = _arm_problem(arm, arms, control)
        if problem:
            raise ExpkitError(f"--lift {text!r}: {problem}")
        if arm in named:
            raise ExpkitError(f"--lift {text!r}: arm {arm!r} has a lift already; give one per arm")
        named.add(arm)
        lifts[arm] = value
    for text in incidents:
        try:
            inc = parse_incident(text)
        except ExpkitError as err:
            raise ExpkitError(f"--incident: {err}") from None
        if inc.arm is not None and inc.arm not in arms:
            raise ExpkitError(f"--incident {text!r}: unknown arm {inc.arm!r}; the arms are "
                              f"{', '.join(arms)}")
    effects = check_effects(arms, control, slice_values(model or Model()), segment_lift, novelty,
                            labels=("--segment-lift", "--novelty"))
    return FlagValues(lifts, tuple(incidents), effects)
