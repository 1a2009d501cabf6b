"""Write a synthetic warehouse (events + ``truth.json``) with known truth and injected faults."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import math
import os
import shutil
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from expkit.errors import ExpkitError
from expkit.schema import EVENT_TABLES, OPTIONAL_TABLES
from expkit.synth.effects import (
    NOVELTY_FORMULA,
    USER_SLICES,
    Effects,
    Novelty,
    SegmentLift,
    check_effects,
    slice_values,
)
from expkit.synth.events import ALL_ARMS, Assignment, ChunkSpec, build_chunk
from expkit.synth.incidents import INCIDENTS, Incident, parse_incident
from expkit.synth.model import (
    BLOCK_USERS,
    DAY_MS,
    MAX_BLOCKS,
    STREAM_DAY,
    Model,
    draw_sessions,
    make_catalog,
    make_users,
    rng_for,
)
from expkit.synth.truth import MonteCarloTruth, analytic_rate, monte_carlo

DEFAULT_LIFT = 0.05
_EPOCH = dt.date(1970, 1, 1)
_STRING_COLUMNS = {t: [f.name for f in s if pa.types.is_string(f.type)]
                   for t, s in {**EVENT_TABLES, **OPTIONAL_TABLES}.items()}
# Column statistics let engines skip row groups by time; other columns skip them for speed.
_STATISTICS = ["timestamp_ms", "ingest_ms"]
_COMPRESSION = "snappy"  # measured: ~30% faster than zstd level 1, files ~2x larger
_WORKERS = max(1, min(2, os.cpu_count() or 1))


@dataclass(frozen=True)
class SynthExperiment:
    """One more experiment running beside the main one over the same users (docs/synthetic.md,
    "Several experiments"): its id, arms with planned shares, control and true lift per
    non-control arm (arms it leaves out get 0)."""

    experiment_id: str
    buckets: tuple[tuple[str, float], ...]
    control: str
    lift: tuple[tuple[str, float], ...] = ()

    @property
    def arms(self) -> tuple[str, ...]:
        """Arm names in allocation order."""
        return tuple(a for a, _ in self.buckets)

    def multiplier(self) -> tuple[float, ...]:
        """1 + the true lift of each arm."""
        lift = dict(self.lift)
        return tuple(1.0 + lift.get(a, 0.0) for a in self.arms)


@dataclass(frozen=True)
class SynthConfig:
    """A validated ``generate`` call."""

    out: Path
    days: int
    end: dt.date
    users: int
    seed: int
    incidents: tuple[Incident, ...]
    experiment_id: str
    buckets: tuple[tuple[str, float], ...]
    control: str
    lift: tuple[tuple[str, float], ...]
    shadow_share: float
    model: Model = Model()
    pre_days: int = 0
    effects: Effects = Effects()
    others: tuple[SynthExperiment, ...] = ()

    @property
    def experiments(self) -> tuple[SynthExperiment, ...]:
        """Every experiment, the main one first."""
        return (SynthExperiment(self.experiment_id, self.buckets, self.control, self.lift), *self.others)

    @property
    def dates(self) -> list[dt.date]:
        """The experiment's days, oldest first (the first is its start date)."""
        return [self.end - dt.timedelta(days=self.days - 1 - i) for i in range(self.days)]

    @property
    def pre_dates(self) -> list[dt.date]:
        """The pre-experiment days before the start date, oldest first."""
        start = self.dates[0]
        return [start - dt.timedelta(days=self.pre_days - i) for i in range(self.pre_days)]

    @property
    def arms(self) -> tuple[str, ...]:
        """Arm names in allocation order."""
        return tuple(a for a, _ in self.buckets)


def day_start_ms(day: dt.date) -> int:
    """Epoch ms of 00:00 UTC of ``day``."""
    return (day - _EPOCH).days * DAY_MS


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).isoformat().replace(
        "+00:00", "Z")


def _validate(out: Path | str, days: int, end: dt.date | str, users: int, seed: int,
              incidents: Sequence[str | Incident], experiment_id: str,
              buckets: Mapping[str, float], control: str, lift: Mapping[str, float] | None,
              shadow_share: float, pre_days: int = 0,
              segment_lifts: Sequence[SegmentLift | str] = (),
              novelty: Sequence[Novelty | str] = (), others: Sequence[SynthExperiment] = ()) -> SynthConfig:
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ExpkitError(f"days must be a whole number >= 1 (got {days!r})")
    if isinstance(pre_days, bool) or not isinstance(pre_days, int) or pre_days < 0:
        raise ExpkitError(f"pre_days must be a whole number >= 0 (got {pre_days!r})")
    max_users = MAX_BLOCKS * BLOCK_USERS
    if isinstance(users, bool) or not isinstance(users, int) or not 1 <= users <= max_users:
        raise ExpkitError(f"users must be a whole number from 1 to {max_users:,} (got {users!r})")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ExpkitError(f"seed must be a whole number >= 0 (got {seed!r})")
    if isinstance(end, dt.datetime):
        end = end.date()
    elif isinstance(end, str):
        try:
            end = dt.date.fromisoformat(end)
        except ValueError:
            raise ExpkitError(f"end must be a date YYYY-MM-DD (got {end!r})") from None
    if not isinstance(end, dt.date):
        raise ExpkitError(f"end must be a date YYYY-MM-DD (got {end!r})")
    if not isinstance(experiment_id, str) or not experiment_id.strip():
        raise ExpkitError("experiment_id must be a non-empty string")
    if not buckets:
        raise ExpkitError("buckets must name at least one arm with its planned share")
    arms = [(str(a), float(v)) for a, v in buckets.items()]
    if any(not math.isfinite(v) or v <= 0 for _, v in arms):
        raise ExpkitError(f"every bucket share must be > 0 (got {dict(arms)})")
    total = sum(v for _, v in arms)
    if abs(total - 1.0) > 1e-6:
        raise ExpkitError(f"bucket allocation sums to {total:g}, not 1: fix the shares "
                          f"{dict(arms)} so they add up to 1")
    if control not in buckets:
        raise ExpkitError(f"control {control!r} is not one of the buckets "
                          f"({', '.join(a for a, _ in arms)}); name one of them as control")
    treatments = [a for a, _ in arms if a != control]
    if lift is None:
        lift = {a: DEFAULT_LIFT for a in treatments}
    for a, v in lift.items():
        if a not in treatments:
            raise ExpkitError(f"lift names {a!r}, which is not a non-control bucket "
                              f"({', '.join(treatments) or 'none'})")
        if not math.isfinite(float(v)) or float(v) <= -1:
            raise ExpkitError(f"lift of {a!r} must be a relative change > -1 (got {v!r})")
    if not 0.0 <= float(shadow_share) < 0.5:
        raise ExpkitError(f"shadow_share must be in [0, 0.5) (got {shadow_share!r})")
    if (end - _EPOCH).days < days + pre_days:
        raise ExpkitError(f"the {days} day(s) ending {end} and {pre_days} pre-experiment day(s) "
                          "would start before 1970-01-02; choose a later end date")
    if isinstance(incidents, (str, Incident)):
        incidents = [incidents]
    parsed = tuple(parse_incident(s) for s in incidents)
    for inc in parsed:
        if inc.arm is not None and inc.arm not in buckets:
            raise ExpkitError(f"incident {inc.name!r} names arm {inc.arm!r}, which is not a bucket; "
                              f"the arms are {', '.join(a for a, _ in arms)}")
    if isinstance(segment_lifts, (str, SegmentLift)):
        segment_lifts = [segment_lifts]
    if isinstance(novelty, (str, Novelty)):
        novelty = [novelty]
    effects = check_effects([a for a, _ in arms], control, slice_values(Model()), segment_lifts,
                            novelty)
    others = tuple(others)
    if others and (effects.segments or effects.novelty):
        raise ExpkitError("segment lifts and novelty plant an effect of one experiment; give them without "
                          "several experiments")
    seen = {experiment_id}
    for other in others:
        if other.experiment_id in seen:
            raise ExpkitError(f"experiment id {other.experiment_id!r} is given twice; give each experiment its own id")
        seen.add(other.experiment_id)
        shares = [v for _, v in other.buckets]
        if len(shares) < 2 or any(not math.isfinite(v) or v <= 0 for v in shares) or abs(sum(shares) - 1.0) > 1e-6:
            raise ExpkitError(f"experiment {other.experiment_id!r}: needs two or more bucket shares > 0 that sum "
                              f"to 1 (got {dict(other.buckets)})")
        if other.control not in other.arms:
            raise ExpkitError(f"experiment {other.experiment_id!r}: control {other.control!r} is not one of the "
                              f"buckets ({', '.join(other.arms)})")
        for a, v in other.lift:
            if a not in other.arms or a == other.control:
                raise ExpkitError(f"experiment {other.experiment_id!r}: lift names {a!r}, which is not a "
                                  f"non-control bucket")
            if not math.isfinite(v) or v <= -1:
                raise ExpkitError(f"experiment {other.experiment_id!r}: lift of {a!r} must be > -1 (got {v!r})")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExpkitError(f"output {out} is a file; choose a folder path for the warehouse")
    events = out / "events"
    if events.exists() and any(events.iterdir()):
        raise ExpkitError(f"{out} already contains events; choose an empty folder or delete it")
    return SynthConfig(out, days, end, users, seed, parsed, experiment_id, tuple(arms), control,
                       tuple((a, float(lift.get(a, 0.0))) for a in treatments),
                       float(shadow_share), pre_days=pre_days, effects=effects, others=others)


def _windows(cfg: SynthConfig) -> tuple[dict[str, list[tuple[int, int, int]]], list[dict]]:
    """Incident windows in epoch ms (clipped to the experiment's days: the pre-experiment days
    stay healthy) with their arm codes, and their truth entries."""
    first, last = day_start_ms(cfg.dates[0]), day_start_ms(cfg.end)
    windows: dict[str, list[tuple[int, int, int]]] = {}
    entries = []
    for inc in cfg.incidents:
        start, end = inc.window_ms(last)
        clipped = start < first
        start = max(start, first)
        arm = ALL_ARMS if inc.arm is None else cfg.arms.index(inc.arm)
        windows.setdefault(inc.name, []).append((start, end, arm))
        info = INCIDENTS[inc.name]
        entries.append({
            "name": inc.name, "arm": inc.arm, "start": _iso(start), "end": _iso(end), "start_ms": start,
            "end_ms": end, "minutes": (end - start) // 60_000, "clipped_to_data": clipped,
            "description": info.description, "tables": list(info.tables),
            "metrics": list(info.metrics), "alerts": list(info.alerts),
            "params": dict(info.params), "injected": {},
        })
    return windows, entries


def _write(table: pa.Table, path: Path, name: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression=_COMPRESSION,
                   use_dictionary=_STRING_COLUMNS[name], write_statistics=_STATISTICS,
                   store_schema=False)
    os.replace(tmp, path)


@dataclass
class _ChunkSummary:
    bucket: np.ndarray
    exposed: np.ndarray
    rows: Counter
    late_rows: Counter
    counts: dict[str, Counter]
    codes: tuple[np.ndarray, ...] = ()


def _chunk_job(spec: ChunkSpec, staging: Path, date: str) -> _ChunkSummary:
    """Build one chunk and write its files into the day's staging folders."""
    res = build_chunk(spec)
    rows: Counter[str] = Counter()
    late_rows: Counter[str] = Counter()
    for kind, tables in (("part", res.tables), ("part-late", res.late)):
        for t, table in tables.items():
            folder = staging / t / f"event_date={date}"
            folder.mkdir(parents=True, exist_ok=True)
            _write(table, folder / f"{kind}-{spec.block:05d}.parquet", t)
            rows[t] += table.num_rows
            if kind == "part-late":
                late_rows[t] += table.num_rows
    return _ChunkSummary(res.bucket, res.exposed, rows, late_rows, res.counts, res.codes)


def _segment_truth(cfg: SynthConfig, bucket: np.ndarray, attributes: Mapping[str, np.ndarray]
                   ) -> list[dict]:
    """Truth entries of the segment lifts: planted lift, users, and CTR / save rate per arm."""
    m = cfg.model
    values = slice_values(m)
    out = []
    for seg in cfg.effects.segments:
        code = values[seg.slice].index(seg.value)
        members = attributes[seg.slice] == code
        users = np.bincount(bucket[members], minlength=len(cfg.arms))
        # Cohort changes the propensity mix; region and client are independent of it.
        cohort = code if seg.slice == "cohort" else None
        mult = {a: 1.0 if a == cfg.control else 1.0 + seg.lift for a in cfg.arms}
        metrics = {kind_name: {a: float(analytic_rate(m, kind, mult[a], cohort)) for a in cfg.arms}
                   for kind_name, kind in (("ctr", "click"), ("save_rate", "save"))}
        out.append({
            "slice": seg.slice, "value": seg.value, "lift": seg.lift,
            "arms": [a for a in cfg.arms if a != cfg.control],
            "users": {a: int(users[i]) for i, a in enumerate(cfg.arms)},
            "metrics": metrics,
            "metric_lift": {k: {a: v[a] / v[cfg.control] - 1.0 for a in cfg.arms if a != cfg.control}
                            for k, v in metrics.items()},
        })
    return out


def _novelty_truth(cfg: SynthConfig) -> dict[str, dict]:
    """Truth entries of the novelty effects: the formula and the lift by exposure day."""
    m = cfg.model
    base_ctr = analytic_rate(m, "click", 1.0)
    lift = dict(cfg.lift)
    out = {}
    for nov in cfg.effects.novelty:
        base = lift.get(nov.arm, 0.0)
        by_day = [float(nov.lift(base, a)) for a in range(cfg.days)]
        out[nov.arm] = {
            "initial": nov.initial, "half_life_days": nov.half_life_days, "base_lift": base,
            "formula": NOVELTY_FORMULA,
            "lift_by_exposure_day": by_day,
            "ctr_lift_by_exposure_day": [float(analytic_rate(m, "click", 1.0 + v) / base_ctr - 1.0)
                                         for v in by_day],
        }
    return out


def _truth(cfg: SynthConfig, mc: Mapping[str, MonteCarloTruth], bucket: np.ndarray,
           exposed: np.ndarray, incidents: list[dict], rows: dict[str, Counter],
           late_rows: Counter, attributes: Mapping[str, np.ndarray]) -> dict:
    m = cfg.model
    lift = dict(cfg.lift)
    mult = {a: 1.0 + lift.get(a, 0.0) for a in cfg.arms}
    metrics = {
        "ctr": {a: float(analytic_rate(m, "click", mult[a])) for a in cfg.arms},
        "save_rate": {a: float(analytic_rate(m, "save", mult[a])) for a in cfg.arms},
        "recall": {a: mc[a].recall for a in cfg.arms},
        "session_depth": {a: mc[a].session_depth for a in cfg.arms},
    }
    arm_users = np.bincount(bucket, minlength=len(cfg.arms))
    exposed_by_arm = np.bincount(bucket[exposed], minlength=len(cfg.arms))
    n_exposed = int(exposed.sum())
    return {
        "seed": cfg.seed,
        "experiment_id": cfg.experiment_id,
        "start_date": cfg.dates[0].isoformat(),
        "end_date": cfg.end.isoformat(),
        "days": cfg.days,
        "pre_days": cfg.pre_days,
        "pre_start_date": cfg.pre_dates[0].isoformat() if cfg.pre_days else None,
        "users": cfg.users,
        "planned_allocation": dict(cfg.buckets),
        "realized_allocation": {
            a: {"users": int(arm_users[i]), "share": float(arm_users[i] / cfg.users),
                "exposed_users": int(exposed_by_arm[i]),
                "exposed_share": float(exposed_by_arm[i] / n_exposed) if n_exposed else 0.0}
            for i, a in enumerate(cfg.arms)},
        "control": cfg.control,
        "true_lift": {a: lift.get(a, 0.0) for a in cfg.arms if a != cfg.control},
        "segment_lifts": _segment_truth(cfg, bucket, attributes),
        "novelty": _novelty_truth(cfg),
        "metrics": metrics,
        "metric_lift": {k: {a: v[a] / v[cfg.control] - 1.0 for a in cfg.arms if a != cfg.control}
                        for k, v in metrics.items()},
        "metric_se": {"recall": {a: mc[a].recall_se for a in cfg.arms},
                      "session_depth": {a: mc[a].session_depth_se for a in cfg.arms}},
        "truth_method": {
            "ctr": "analytic", "save_rate": "analytic", "recall": "monte_carlo",
            "session_depth": "monte_carlo", "monte_carlo_users_per_arm": mc[cfg.control].users,
            "recall_window": "one day (event_date); K = model k",
            "note": "expected values for healthy, non-shadow data (definitions in docs/metrics.md); "
                    "incidents are not included",
            "effects": "metrics and metric_lift are at each arm's base lift (true_lift): outside "
                       "the segments of segment_lifts, and once a novelty effect has decayed; the "
                       "pre-experiment days (pre_days) have no treatment effect in any arm; a "
                       "segment's entry assumes its users get its own lift (a user in several "
                       "segments gets the last one's)",
        },
        "top_k": m.k,
        "shadow_share": cfg.shadow_share,
        "incidents": incidents,
        "tables": {t: int(sum(c[t] for c in rows.values())) for t in EVENT_TABLES},
        "late_rows": {t: int(late_rows[t]) for t in EVENT_TABLES},
        "rows_by_date": {d: {t: int(c[t]) for t in EVENT_TABLES} for d, c in rows.items()},
        "model": dataclasses.asdict(m),
    }


class _BlockEffects:
    """Per-user lifts of the experiment's days when segment lifts or novelty are planted."""

    def __init__(self, cfg: SynthConfig, alloc_cum: tuple[float, ...], n_blocks: int) -> None:
        model, self.cfg = cfg.model, cfg
        self.users = [make_users(model, cfg.seed, b, min(BLOCK_USERS, cfg.users - b * BLOCK_USERS),
                                 np.asarray(alloc_cum)) for b in range(n_blocks)]
        self.arm_lift = np.array([dict(cfg.lift).get(a, 0.0) for a in cfg.arms])
        self.codes = {k: {v: i for i, v in enumerate(vs)} for k, vs in slice_values(model).items()}
        self.arm_codes = {a: i for i, a in enumerate(cfg.arms)}
        # The experiment day (0 = start date) of each user's first non-shadow request: the
        # same draws as the day's simulation (draw_sessions), so it matches the data.
        self.first: list[np.ndarray | None] = [None] * n_blocks
        if cfg.effects.novelty:
            for b, users in enumerate(self.users):
                first = np.full(users.n, -1, dtype=np.int64)
                for i, day in enumerate(cfg.dates):
                    rng = rng_for(cfg.seed, STREAM_DAY, day.toordinal(), b)
                    seen = draw_sessions(model, users, day_start_ms(day), rng, cfg.shadow_share).exposed(users.n)
                    first[(first < 0) & seen] = i
                self.first[b] = first

    def attributes(self, b: int) -> dict[str, np.ndarray]:
        """The user-attribute codes of block ``b``'s users."""
        u = self.users[b]
        return {"cohort": u.cohort, "region": u.region, "client": u.client}

    def multiplier(self, day_index: int, b: int) -> np.ndarray:
        """1 + the true lift of each user of block ``b`` on experiment day ``day_index``."""
        first = self.first[b]
        age = None if first is None else np.where((first >= 0) & (first <= day_index), day_index - first, -1)
        lift = self.cfg.effects.user_lift(self.arm_lift, self.users[b].bucket,
                                          self.cfg.arms.index(self.cfg.control), self.attributes(b),
                                          self.codes, self.arm_codes, age)
        return 1.0 + lift


def _mixture_rate(cfg: SynthConfig, kind: str, index: int, arm: str) -> float:
    """True CTR or save rate of ``arm`` of experiment ``index``: the other experiments' arms are
    independent of it, so the rate is their planned-share-weighted mix (impressions do not depend
    on a lift, so mixing the rates mixes the ratios exactly)."""
    exps = cfg.experiments
    own = dict(exps[index].lift).get(arm, 0.0)
    others = [e for i, e in enumerate(exps) if i != index]
    total = 0.0
    for combo in itertools.product(*(e.buckets for e in others)):
        weight = math.prod(share for _, share in combo)
        mult = (1.0 + own) * math.prod(1.0 + dict(e.lift).get(a, 0.0) for e, (a, _) in zip(others, combo, strict=True))
        total += weight * float(analytic_rate(cfg.model, kind, mult))
    return total


def _experiments_truth(truth: dict, cfg: SynthConfig, codes: Mapping[str, np.ndarray], exposed: np.ndarray,
                       rows: Mapping[str, Counter]) -> None:
    """Add ``experiments`` (one entry per experiment) to ``truth``; the main experiment's CTR and save
    rate become those of its entry (the other experiments' lifts are mixed into every arm)."""
    entries: dict[str, dict[str, Any]] = {}
    n_exposed = int(exposed.sum())
    for i, e in enumerate(cfg.experiments):
        code = codes[e.experiment_id]
        users = np.bincount(code, minlength=len(e.arms))
        seen = np.bincount(code[exposed], minlength=len(e.arms))
        metrics = {name: {a: _mixture_rate(cfg, kind, i, a) for a in e.arms}
                   for name, kind in (("ctr", "click"), ("save_rate", "save"))}
        entries[e.experiment_id] = {
            "planned_allocation": dict(e.buckets), "control": e.control,
            "realized_allocation": {
                a: {"users": int(users[j]), "share": float(users[j] / cfg.users), "exposed_users": int(seen[j]),
                    "exposed_share": float(seen[j] / n_exposed) if n_exposed else 0.0}
                for j, a in enumerate(e.arms)},
            "true_lift": {a: dict(e.lift).get(a, 0.0) for a in e.arms if a != e.control},
            "metrics": metrics,
            "metric_lift": {k: {a: v[a] / v[e.control] - 1.0 for a in e.arms if a != e.control}
                            for k, v in metrics.items()},
        }
    truth["experiments"] = entries
    main = entries[cfg.experiment_id]
    for k in ("ctr", "save_rate"):
        truth["metrics"][k] = main["metrics"][k]
        truth["metric_lift"][k] = main["metric_lift"][k]
    truth["truth_method"]["experiments"] = (
        "each experiment's ctr and save_rate are analytic, mixed over the other experiments' arms by their "
        "planned shares; recall and session_depth of the main experiment are at its own arms' lifts only")
    truth["tables"]["exposures"] = int(sum(c["exposures"] for c in rows.values()))


def generate(out: Path | str, days: int, end: dt.date | str, users: int = 20_000, seed: int = 0,
             incidents: Sequence[str | Incident] = (), experiment_id: str = "rec_ranker_v2",
             buckets: Mapping[str, float] | None = None, control: str = "control",
             lift: Mapping[str, float] | None = None, shadow_share: float = 0.02,
             progress: Callable[[str], None] | None = None, *, pre_days: int = 0,
             segment_lifts: Sequence[SegmentLift | str] = (),
             novelty: Sequence[Novelty | str] = (), others: Sequence[SynthExperiment] = ()) -> dict:
    """Write a synthetic warehouse at ``out`` and return its truth (also in ``out/truth.json``).

    Events of the ``days`` days ending with ``end`` (inclusive) go to
    ``out/events/<table>/event_date=YYYY-MM-DD/part-NNNNN.parquet`` (one file per block of
    4096 users; rows that land after their day closed, from ``late_data``, go to
    ``part-late-NNNNN.parquet``). Each day partition is built in ``out/.staging`` and renamed
    into place when complete, one table after the other (a kill between those renames leaves
    the newest day in some of the tables only; a rerun refuses the folder). ``incidents`` are
    specs ``NAME@HH:MM/MINUTES[:ARM]`` on the last day (or ``NAME`` for its default window, see
    ``INCIDENTS``; ``:ARM`` limits it to that arm's users). ``lift`` is the true relative lift
    of click and save propensities per non-control arm (default 5% for each; arms it leaves
    out get 0).

    ``pre_days`` adds that many days of pre-experiment traffic before the first day (the same
    users, arms and propensities, no treatment effect, no incidents). ``segment_lifts``
    (:class:`~expkit.synth.effects.SegmentLift` or ``SLICE=VALUE:LIFT``) and ``novelty``
    (:class:`~expkit.synth.effects.Novelty` or ``ARM=INITIAL:HALF_LIFE_DAYS``) plant a
    segment interaction and a decaying lift (docs/synthetic.md). Without them the events are
    byte-identical to a run that does not name them.

    ``others`` adds experiments running at the same time over the same users (docs/synthetic.md,
    "Several experiments"): every experiment then randomizes by a hash of (experiment id, user id),
    a user's propensities are multiplied by 1 + her arm's lift in each, requests and impressions
    carry the main experiment's id and bucket, and ``exposures`` lists every experiment of every
    exposed user; ``truth.json`` gains ``experiments``, one entry per experiment.

    Raises :class:`~expkit.errors.ExpkitError` for an invalid call, before writing anything.
    """
    buckets = {"control": 0.5, "treatment": 0.5} if buckets is None else buckets
    cfg = _validate(out, days, end, users, seed, incidents, experiment_id, buckets, control, lift,
                    shadow_share, pre_days, segment_lifts, novelty, others)
    say = progress or (lambda _msg: None)
    model = cfg.model
    catalog = make_catalog(model, cfg.seed)
    arms = cfg.arms
    alloc_cum = tuple(np.cumsum([v for _, v in cfg.buckets]).tolist())
    mult = tuple(1.0 + dict(cfg.lift).get(a, 0.0) for a in arms)
    no_effect = (1.0,) * len(arms)
    windows, entries = _windows(cfg)
    n_blocks = -(-cfg.users // BLOCK_USERS)
    block_effects = _BlockEffects(cfg, alloc_cum, n_blocks) if cfg.effects else None
    start = cfg.dates[0]

    events, staging = cfg.out / "events", cfg.out / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    events.mkdir(parents=True, exist_ok=True)
    bucket = np.zeros(cfg.users, dtype=np.int8)
    exposed = np.zeros(cfg.users, dtype=bool)
    all_dates = cfg.pre_dates + cfg.dates
    rows: dict[str, Counter] = {d.isoformat(): Counter() for d in all_dates}
    late_rows: Counter = Counter()
    injected: dict[str, Counter] = {}
    codes: dict[str, np.ndarray] = {}

    jobs = [(day, b) for day in all_dates for b in range(n_blocks)]

    def submit(pool: ThreadPoolExecutor, day: dt.date, b: int) -> Future:
        n = min(BLOCK_USERS, cfg.users - b * BLOCK_USERS)
        pre = day < start
        user_mult = None if pre or block_effects is None else block_effects.multiplier((day - start).days, b)
        assignments = tuple(
            Assignment(e.experiment_id, e.arms, tuple(np.cumsum([v for _, v in e.buckets]).tolist()),
                       (1.0,) * len(e.arms) if pre else e.multiplier())
            for e in cfg.experiments) if cfg.others else ()
        spec = ChunkSpec(model, catalog, cfg.seed, day.toordinal(), b, n, alloc_cum,
                         day_start_ms(day), cfg.experiment_id, arms, no_effect if pre else mult,
                         arms.index(cfg.control), cfg.shadow_share, windows, user_mult, assignments,
                         log_exposures=not pre)
        return pool.submit(_chunk_job, spec, staging, day.isoformat())

    # Chunks are built and written by a small pool (numpy and Parquet release the GIL);
    # results are consumed in order, and a day is moved into place once all its blocks are.
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        futures = [submit(pool, *job) for job in jobs[: _WORKERS + 1]]
        # The Monte-Carlo truth runs beside the chunks (it uses an idle worker on small runs).
        mc_jobs = {m: pool.submit(monte_carlo, model, m, cfg.shadow_share) for m in set(mult)}
        for i, (day, b) in enumerate(jobs):
            res = futures[i].result()
            futures[i] = None  # type: ignore[call-overload]
            if i + _WORKERS + 1 < len(jobs):
                futures.append(submit(pool, *jobs[i + _WORKERS + 1]))
            date = day.isoformat()
            block = slice(b * BLOCK_USERS, b * BLOCK_USERS + len(res.bucket))
            bucket[block] = res.bucket
            if day >= start:
                exposed[block] |= res.exposed
            for exp, code in zip(cfg.experiments, res.codes, strict=False):
                codes.setdefault(exp.experiment_id, np.zeros(cfg.users, dtype=np.int8))[block] = code
            rows[date].update(res.rows)
            late_rows.update(res.late_rows)
            for name, c in res.counts.items():
                injected.setdefault(name, Counter()).update(c)
            say(f"{date}: users block {b + 1}/{n_blocks}")
            if b == n_blocks - 1:
                for t in [*EVENT_TABLES, *(o for o in OPTIONAL_TABLES if (staging / o).is_dir())]:
                    src = staging / t / f"event_date={date}"
                    if t in OPTIONAL_TABLES and not src.is_dir():
                        continue
                    (events / t).mkdir(exist_ok=True)
                    os.replace(src, events / t / src.name)
                say(f"{date}: done ({rows[date]['impressions']:,} impressions)")
    shutil.rmtree(staging, ignore_errors=True)

    for e in entries:
        e["injected"] = dict(injected.get(e["name"], {}))
    say("computing truth")
    mc = {a: mc_jobs[m].result() for a, m in zip(arms, mult, strict=True)}
    attributes = {}
    if block_effects is not None:
        parts = [block_effects.attributes(b) for b in range(n_blocks)]
        attributes = {k: np.concatenate([p[k] for p in parts]) for k in USER_SLICES}
    truth = _truth(cfg, mc, bucket, exposed, entries, rows, late_rows, attributes)
    if cfg.others:
        _experiments_truth(truth, cfg, codes, exposed, rows)
    tmp = cfg.out / "truth.json.tmp"
    tmp.write_text(json.dumps(truth, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, cfg.out / "truth.json")
    return truth
