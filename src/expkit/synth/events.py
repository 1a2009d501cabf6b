"""One chunk (a day x a block of users) of the synthetic warehouse: incidents and Arrow tables."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa

from expkit.schema import EVENT_TABLES, EXPOSURES
from expkit.synth.incidents import INCIDENTS
from expkit.synth.model import (
    DAY_MS,
    STREAM_DAY,
    STREAM_INCIDENT,
    Catalog,
    LatentDay,
    Model,
    RealizedDay,
    RequestOverrides,
    Users,
    make_users,
    realize,
    rng_for,
    simulate_day,
)

_INCIDENT_CODE = {name: i for i, name in enumerate(INCIDENTS)}
_MINUTE = 60_000

ALL_ARMS = -1
"""Arm code of an incident window that applies to every arm."""
Windows = Mapping[str, Sequence[tuple[int, int, int]]]
"""Incident name → its windows ``(start_ms, end_ms, arm code or ALL_ARMS)``."""


class Injector:
    """Decides which events fall inside an incident's windows on one chunk.

    Each incident draws from its own stream keyed by (seed, incident, date, block), so the
    main simulation's draws, and hence all data outside the windows, never change. Every
    method takes the arm code of each event (its user's arm): a window limited to one arm
    leaves the other arms' events alone; the random draws are the same either way.
    """

    def __init__(self, seed: int, ordinal: int, block: int, day_start_ms: int,
                 windows: Windows) -> None:
        day_end = day_start_ms + DAY_MS
        self._windows = {n: [(s, e, a) for s, e, a in ws if s < day_end and e > day_start_ms]
                         for n, ws in windows.items()}
        self._key = (seed, ordinal, block)
        self._rngs: dict[str, np.random.Generator] = {}
        self.counts: dict[str, Counter] = {n: Counter() for n in self._windows if self.active(n)}

    def windows(self, name: str) -> list[tuple[int, int, int]]:
        """The incident's windows that overlap this day."""
        return self._windows.get(name, [])

    def active(self, name: str) -> bool:
        """Whether the incident has a window overlapping this day."""
        return bool(self._windows.get(name))

    def param(self, name: str, key: str) -> float:
        """An injected magnitude from the incident registry."""
        return float(INCIDENTS[name].params[key])  # type: ignore[arg-type]

    def rng(self, name: str) -> np.random.Generator:
        """The incident's own random stream on this chunk."""
        if name not in self._rngs:
            seed, ordinal, block = self._key
            self._rngs[name] = rng_for(seed, STREAM_INCIDENT, _INCIDENT_CODE[name], ordinal, block)
        return self._rngs[name]

    def inside(self, name: str, ts: np.ndarray, arm: np.ndarray) -> np.ndarray:
        """Events whose time lies in one of the incident's windows (and whose arm is the
        window's, when it names one)."""
        mask = np.zeros(len(ts), dtype=bool)
        for start, end, window_arm in self._windows.get(name, ()):
            hit = (ts >= start) & (ts < end)
            if window_arm != ALL_ARMS:
                hit &= arm == window_arm
            mask |= hit
        return mask

    def pick(self, name: str, ts: np.ndarray, rate: float, arm: np.ndarray) -> np.ndarray:
        """A random share ``rate`` of the events inside the windows (one draw per event)."""
        if not self.active(name):
            return np.zeros(len(ts), dtype=bool)
        return self.inside(name, ts, arm) & (self.rng(name).random(len(ts)) < rate)

    def minutes_ms(self, name: str, lo_key: str, hi_key: str, n: int) -> np.ndarray:
        """``n`` uniform durations in ms between two of the incident's minute parameters."""
        lo, hi = self.param(name, lo_key), self.param(name, hi_key)
        return self.rng(name).integers(int(lo * _MINUTE), int(hi * _MINUTE), n)

    def override(self, name: str, ts: np.ndarray, value: float, default: float,
                 arm: np.ndarray) -> float | np.ndarray:
        """``value`` inside the windows, ``default`` elsewhere (a scalar when inactive)."""
        if not self.active(name):
            return default
        return np.where(self.inside(name, ts, arm), value, default)


@dataclass
class Rows:
    """Columns of one table as numpy arrays (string columns as int8 codes), plus the local
    session index of every row, used to drop or delay whole sessions."""

    cols: dict[str, np.ndarray]
    sess: np.ndarray

    def take(self, idx: np.ndarray) -> Rows:
        """The rows at ``idx`` (indices or boolean mask)."""
        return Rows({k: v[idx] for k, v in self.cols.items()}, self.sess[idx])

    def append(self, other: Rows) -> Rows:
        """These rows followed by ``other``'s."""
        return Rows({k: np.concatenate([v, other.cols[k]]) for k, v in self.cols.items()},
                    np.concatenate([self.sess, other.sess]))

    def __len__(self) -> int:
        return len(self.sess)


@dataclass(frozen=True)
class Assignment:
    """One of several concurrent experiments, as a chunk needs it."""

    experiment_id: str
    arms: tuple[str, ...]
    allocation_cum: tuple[float, ...]  # cumulative planned allocation, one entry per arm
    arm_multiplier: tuple[float, ...]  # 1 + the arm's true lift on this day


def hashed_arms(experiment_id: str, user_ids: np.ndarray, allocation_cum: Sequence[float]) -> np.ndarray:
    """Arm codes of ``user_ids`` in one experiment: a uniform from the hash of (experiment id, user id)
    against the cumulative planned allocation, so experiments are randomized independently.

    >>> codes = hashed_arms("e1", np.arange(1, 2001), (0.5, 1.0))
    >>> sorted(set(codes.tolist())), 900 < int(codes.sum()) < 1100
    ([0, 1], True)
    """
    digests = [hashlib.blake2b(f"{experiment_id}:{int(u)}".encode(), digest_size=8).digest() for u in user_ids]
    u = np.array([int.from_bytes(d, "big") for d in digests], dtype=np.float64) / 2.0**64
    codes = np.searchsorted(np.asarray(allocation_cum), u, side="right")
    return np.minimum(codes, len(allocation_cum) - 1).astype(np.int8)


@dataclass(frozen=True)
class ChunkSpec:
    """Everything needed to build one chunk."""

    model: Model
    catalog: Catalog
    seed: int
    ordinal: int  # date.toordinal() of the day
    block: int
    n_users: int  # users in this block
    allocation_cum: tuple[float, ...]  # cumulative planned allocation, one entry per arm
    day_start_ms: int
    experiment_id: str
    arms: tuple[str, ...]
    arm_multiplier: tuple[float, ...]
    control_code: int
    shadow_share: float
    windows: Windows = field(default_factory=dict)
    # Per-user factors 1 + lift of the block's users on this day, when they differ from
    # ``arm_multiplier`` (segment lifts, novelty); None: every user gets their arm's.
    user_multiplier: np.ndarray | None = None
    # Several concurrent experiments (the first is the one of ``experiment_id``): users are
    # randomized into each by hashed_arms, requests carry the first one's bucket, and the
    # exposures table lists every experiment of every exposed user. Empty: one experiment.
    assignments: tuple[Assignment, ...] = ()
    log_exposures: bool = True  # False on pre-experiment days: no experiment runs yet


@dataclass
class ChunkResult:
    """The Arrow tables of a chunk (on-time rows, and rows that land after the day closed)."""

    tables: dict[str, pa.Table]
    late: dict[str, pa.Table]
    exposed: np.ndarray  # local users with a non-shadow request in the data
    bucket: np.ndarray  # arm code of each user of the block
    counts: dict[str, Counter]
    codes: tuple[np.ndarray, ...] = ()  # with assignments: each experiment's arm code of each user


def _dictionaries(spec: ChunkSpec) -> dict[str, list[str]]:
    m = spec.model
    return {
        "experiment_id": [spec.experiment_id], "bucket": list(spec.arms),
        "cohort": list(m.cohorts), "region": list(m.regions), "surface": list(m.surfaces),
        "client": list(m.clients), "status": ["ok", "error"],
        "error_component": list(m.error_components), "error_severity": list(m.error_severities),
        "genre": list(m.genres), "provider": list(m.providers), "source": list(m.play_sources),
    }


def to_arrow(table: str, rows: Rows, dictionaries: Mapping[str, list[str]]) -> pa.Table:
    """Arrow table with exactly the schema.py columns; strings dictionary-encoded (code -1 =
    null), which Parquet stores as plain strings."""
    arrays = []
    for f in EVENT_TABLES[table]:
        v = rows.cols[f.name]
        if pa.types.is_string(f.type):
            null = v < 0
            arrays.append(pa.DictionaryArray.from_arrays(
                pa.array(v, type=pa.int8(), mask=null if null.any() else None),
                pa.array(dictionaries[f.name], type=pa.string())))
        else:
            arrays.append(pa.array(v, type=f.type))
    return pa.Table.from_arrays(arrays, names=EVENT_TABLES[table].names)


def _request_overrides(model: Model, day: LatentDay, inj: Injector, arm: np.ndarray
                       ) -> RequestOverrides:
    t = day.req_t
    force_empty = None
    if inj.active("coverage_drop"):
        force_empty = inj.pick("coverage_drop", t, inj.param("coverage_drop", "empty_share"), arm)
    return RequestOverrides(
        cache_hit_rate=inj.override("cache_failure", t, inj.param("cache_failure",
                                                                  "cache_hit_rate"),
                                    model.cache_hit_rate, arm),
        latency_factor=inj.override("latency_spike", t, inj.param("latency_spike",
                                                                  "latency_factor"), 1.0, arm),
        error_rate=inj.override("error_burst", t, inj.param("error_burst", "error_rate"),
                                model.error_rate, arm),
        force_empty=force_empty,
    )


def _rows(spec: ChunkSpec, users: Users, day: LatentDay, real: RealizedDay
          ) -> dict[str, Rows]:
    """Logged rows of every table (healthy logging)."""
    k = spec.model.k
    base = _id_base(spec)
    r = len(day.req_t)
    user_id = np.int64(users.first + 1) + np.arange(users.n, dtype=np.int64)
    req_id = base + np.arange(r, dtype=np.int64)
    sess_id = base + np.arange(len(day.sess_start), dtype=np.int64)
    req_user = day.req_user
    shadow = day.sess_shadow[day.req_sess]
    ingest = real.imp_t + day.req_delay
    err = real.error
    requests = Rows({
        "request_id": req_id, "user_id": user_id[req_user], "session_id": sess_id[day.req_sess],
        "experiment_id": np.zeros(r, np.int8), "bucket": users.bucket[req_user],
        "cohort": users.cohort[req_user], "region": users.region[req_user],
        "surface": day.surface, "client": users.client[req_user],
        "k_requested": np.full(r, k, np.int32), "k_returned": real.k_returned,
        "latency_ms": np.round(real.latency_ms, 3), "cache_hit": real.cache_hit,
        "fallback_level": day.fallback.astype(np.int32), "status": err.astype(np.int8),
        "error_component": np.where(err, day.error_component, -1).astype(np.int8),
        "error_severity": np.where(err, day.error_severity, -1).astype(np.int8),
        "timestamp_ms": day.req_t, "ingest_ms": ingest, "shadow": shadow,
    }, day.req_sess)

    # Request columns copied to each shown item (impressions are in request order).
    def rep(col: np.ndarray) -> np.ndarray:
        return np.repeat(col, real.k_returned)

    n_imp = len(real.imp_item)
    item = real.imp_item
    impressions = Rows({
        "request_id": rep(req_id), "user_id": rep(user_id[req_user]),
        "session_id": rep(sess_id[day.req_sess]), "experiment_id": np.zeros(n_imp, np.int8),
        "bucket": rep(users.bucket[req_user]), "item_id": item + 1, "position": real.imp_pos,
        "genre": spec.catalog.genre[item], "provider": spec.catalog.provider[item],
        "cohort": rep(users.cohort[req_user]), "region": rep(users.region[req_user]),
        "surface": rep(day.surface), "client": rep(users.client[req_user]),
        "timestamp_ms": rep(real.imp_t), "ingest_ms": rep(ingest), "shadow": rep(shadow),
    }, rep(day.req_sess))

    def engagement(id_name: str, latent: np.ndarray, req: np.ndarray, item: np.ndarray,
                   t: np.ndarray, delay: np.ndarray) -> Rows:
        return Rows({
            id_name: base + latent.astype(np.int64), "request_id": req_id[req],
            "item_id": item + 1, "user_id": user_id[req_user[req]],
            "session_id": sess_id[day.req_sess[req]], "timestamp_ms": t,
            "ingest_ms": t + delay[latent], "shadow": shadow[req],
        }, day.req_sess[req])

    clicks = engagement("click_id", real.clicks, real.click_req, real.click_item, real.click_t,
                        day.click_delay)
    saves = engagement("save_id", real.saves, real.save_req, real.save_item, real.save_t,
                       day.save_delay)

    rp = real.rec_plays
    rp_latent = real.clicks[rp]
    rp_req = real.click_req[rp]
    n_latent_clicks = len(day.click_cell)
    play_sess = np.concatenate([day.req_sess[rp_req], day.op_sess])
    play_t = np.concatenate([real.rec_play_t, day.op_t])
    plays = Rows({
        "play_id": base + np.concatenate([rp_latent, n_latent_clicks
                                          + np.arange(len(day.op_sess))]).astype(np.int64),
        "user_id": user_id[day.sess_user[play_sess]], "session_id": sess_id[play_sess],
        "item_id": np.concatenate([real.click_item[rp], day.op_item]) + 1,
        "source": np.concatenate([np.zeros(len(rp), np.int8), day.op_source]),
        "timestamp_ms": play_t,
        "ingest_ms": play_t + np.concatenate([day.play_delay[rp_latent], day.op_delay]),
        "shadow": day.sess_shadow[play_sess],
    }, play_sess)
    return {"requests": requests, "impressions": impressions, "clicks": clicks,
            "saves": saves, "plays": plays}


@dataclass
class _Chunk:
    """The state a logging fault works on."""

    spec: ChunkSpec
    users: Users
    day: LatentDay
    rows: dict[str, Rows]
    inj: Injector
    keep_sess: np.ndarray
    sess_arm: np.ndarray  # arm code of each session's user

    def arm(self, rows: Rows) -> np.ndarray:
        """The arm code of each row's user."""
        return self.sess_arm[rows.sess]


def _lose_clicks(c: _Chunk, name: str) -> None:
    """ctr_collapse: most clicks in the window are never logged (plays still happen)."""
    clicks = c.rows["clicks"]
    lost = c.inj.pick(name, clicks.cols["timestamp_ms"],
                      1.0 - c.inj.param(name, "click_keep_share"), c.arm(clicks))
    c.inj.counts[name]["clicks_not_logged"] += int(lost.sum())
    c.rows["clicks"] = clicks.take(~lost)


def _add_orphans(c: _Chunk, name: str) -> None:
    """orphan_clicks: copies of some clicks pointing at an item their request never showed."""
    clicks = c.rows["clicks"]
    src = clicks.take(c.inj.pick(name, clicks.cols["timestamp_ms"],
                                 c.inj.param(name, "orphan_rate"), c.arm(clicks)))
    n = len(src)
    if n == 0:
        return
    rng, catalog_size = c.inj.rng(name), c.spec.model.catalog_size
    base = _id_base(c.spec)
    grid = c.day.items[src.cols["request_id"] - base]  # the request's candidate items
    item = rng.integers(0, catalog_size, n)
    clash = (grid == item[:, None]).any(axis=1)
    while clash.any():
        item[clash] = (item[clash] + 1) % catalog_size
        clash = (grid == item[:, None]).any(axis=1)
    jitter = rng.integers(1, 30_000, n)
    cols = dict(src.cols, item_id=item + 1,
                click_id=base + len(c.day.click_cell) + np.arange(n, dtype=np.int64),
                timestamp_ms=src.cols["timestamp_ms"] + jitter,
                ingest_ms=src.cols["ingest_ms"] + jitter)
    c.rows["clicks"] = clicks.append(Rows(cols, src.sess))
    c.inj.counts[name]["orphan_clicks"] += n


def _duplicate(c: _Chunk, name: str) -> None:
    """duplicate_events: some rows delivered twice (same ids, re-ingested a bit later)."""
    for table in INCIDENTS[name].tables:
        t = c.rows[table]
        dup = t.take(c.inj.pick(name, t.cols["timestamp_ms"], c.inj.param(name, "duplicate_rate"),
                                c.arm(t)))
        if len(dup):
            dup.cols["ingest_ms"] = dup.cols["ingest_ms"] + c.inj.rng(name).integers(
                1_000, 10 * _MINUTE, len(dup))
            c.rows[table] = t.append(dup)
            c.inj.counts[name][table] += len(dup)


def _delay(c: _Chunk, name: str) -> None:
    """stale_partition: one table's rows in the window land much later than usual."""
    table = str(INCIDENTS[name].params["table"])
    t = c.rows[table]
    late = c.inj.inside(name, t.cols["timestamp_ms"], c.arm(t))
    ingest = t.cols["ingest_ms"].copy()
    ingest[late] = t.cols["timestamp_ms"][late] + c.inj.minutes_ms(
        name, "delay_min_minutes", "delay_max_minutes", int(late.sum()))
    t.cols["ingest_ms"] = ingest
    c.inj.counts[name][table] += int(late.sum())


def _drop_sessions(c: _Chunk, name: str) -> None:
    """traffic_imbalance: a fixed share of non-control users lose their sessions (of the
    window's arm, control included, when the window names one)."""
    user_rng = rng_for(c.spec.seed, STREAM_INCIDENT, _INCIDENT_CODE[name], c.spec.block)
    lost = user_rng.random(c.users.n) < c.inj.param(name, "dropped_user_share")
    bucket, ts = c.users.bucket, c.day.sess_start
    drop = np.zeros(len(ts), dtype=bool)
    for start, end, window_arm in c.inj.windows(name):
        arm_users = bucket != c.spec.control_code if window_arm == ALL_ARMS else bucket == window_arm
        drop |= (ts >= start) & (ts < end) & (lost & arm_users)[c.day.sess_user]
    c.keep_sess &= ~drop
    c.inj.counts[name]["sessions_dropped"] += int(drop.sum())
    c.inj.counts[name]["users_affected"] += int(np.unique(c.day.sess_user[drop]).size)
    for table, t in c.rows.items():
        c.rows[table] = t.take(c.keep_sess[t.sess])


# Faults in how events are logged, applied in this order after the service has acted.
_LOGGING_FAULTS = {"ctr_collapse": _lose_clicks, "orphan_clicks": _add_orphans,
                   "duplicate_events": _duplicate, "stale_partition": _delay,
                   "traffic_imbalance": _drop_sessions}


def _id_base(spec: ChunkSpec) -> np.int64:
    """Ids are (date ordinal, block, local index) packed into 20 + 13 + 30 bits."""
    return np.int64(((spec.ordinal << 13) | spec.block) << 30)


def build_chunk(spec: ChunkSpec) -> ChunkResult:
    """Simulate one block of users for one day and return its Arrow tables."""
    m = spec.model
    users = make_users(m, spec.seed, spec.block, spec.n_users, np.asarray(spec.allocation_cum))
    user_multiplier = spec.user_multiplier
    codes: tuple[np.ndarray, ...] = ()
    if spec.assignments:
        ids = np.int64(users.first + 1) + np.arange(users.n, dtype=np.int64)
        codes = tuple(hashed_arms(a.experiment_id, ids, a.allocation_cum) for a in spec.assignments)
        users = replace(users, bucket=codes[0])
        user_multiplier = np.ones(users.n)
        for a, code in zip(spec.assignments, codes, strict=True):
            user_multiplier = user_multiplier * np.asarray(a.arm_multiplier)[code]
    rng = rng_for(spec.seed, STREAM_DAY, spec.ordinal, spec.block)
    day = simulate_day(m, spec.catalog, users, spec.day_start_ms, rng,
                       np.asarray(spec.arm_multiplier), spec.shadow_share, user_multiplier)
    inj = Injector(spec.seed, spec.ordinal, spec.block, spec.day_start_ms, spec.windows)
    sess_arm = users.bucket[day.sess_user]
    req_arm = sess_arm[day.req_sess]
    ov = _request_overrides(m, day, inj, req_arm)
    real = realize(m, users, day, ov)
    _count_request_effects(inj, day, real, ov, req_arm)
    c = _Chunk(spec, users, day, _rows(spec, users, day, real), inj,
               np.ones(len(day.sess_start), dtype=bool), sess_arm)
    for name, fault in _LOGGING_FAULTS.items():
        if inj.active(name):
            fault(c, name)

    # late_data: whole sessions of the window land after the day was closed.
    late_sess = inj.pick("late_data", day.sess_start, inj.param("late_data", "late_share"),
                         sess_arm) if inj.active("late_data") else None
    dictionaries = _dictionaries(spec)
    tables, late_tables = {}, {}
    for table, t in c.rows.items():
        if late_sess is not None and late_sess[t.sess].any():
            is_late = late_sess[t.sess]
            lt = t.take(is_late)
            lt.cols["ingest_ms"] = spec.day_start_ms + DAY_MS + inj.minutes_ms(
                "late_data", "ingest_after_day_end_min_minutes",
                "ingest_after_day_end_max_minutes", len(lt))
            late_tables[table] = to_arrow(table, lt, dictionaries)
            inj.counts["late_data"][table] += len(lt)
            t = t.take(~is_late)
        tables[table] = to_arrow(table, t, dictionaries)

    ok_req = c.keep_sess[day.req_sess] & ~day.sess_shadow[day.req_sess]
    exposed = np.zeros(users.n, dtype=bool)
    exposed[day.req_user[ok_req]] = True
    if spec.assignments and spec.log_exposures:
        tables["exposures"] = _exposures(spec, users, c.rows["requests"], codes)
    return ChunkResult(tables, late_tables, exposed, users.bucket, inj.counts, codes)


def _exposures(spec: ChunkSpec, users: Users, requests: Rows, codes: tuple[np.ndarray, ...]) -> pa.Table:
    """One row per (user, experiment) with a logged non-shadow request: its first request's time."""
    cols = requests.cols
    ok = ~cols["shadow"]
    user, t, ingest = cols["user_id"][ok], cols["timestamp_ms"][ok], cols["ingest_ms"][ok]
    order = np.lexsort((t, user))
    first = order[np.r_[True, user[order][1:] != user[order][:-1]]] if len(order) else order
    local = (user[first] - (users.first + 1)).astype(np.int64)
    n, parts = len(first), []
    for a, code in zip(spec.assignments, codes, strict=True):
        parts.append(pa.table([
            pa.array(user[first], pa.int64()), pa.array([a.experiment_id] * n, pa.string()),
            pa.array(np.asarray(a.arms, dtype=object)[code[local]].tolist() if n else [], pa.string()),
            pa.array(t[first], pa.int64()), pa.array(ingest[first], pa.int64()),
            pa.array(np.zeros(n, dtype=bool), pa.bool_()),
        ], schema=EXPOSURES))
    return pa.concat_tables(parts)


def _count_request_effects(inj: Injector, day: LatentDay, real: RealizedDay,
                           ov: RequestOverrides, arm: np.ndarray) -> None:
    t = day.req_t
    for name in ("latency_spike", "cache_failure", "error_burst"):
        if inj.active(name):
            inj.counts[name]["requests_in_window"] += int(inj.inside(name, t, arm).sum())
    if inj.active("error_burst"):
        inj.counts["error_burst"]["errors"] += int(
            (real.error & inj.inside("error_burst", t, arm)).sum())
    if ov.force_empty is not None:
        inj.counts["coverage_drop"]["emptied_requests"] += int((ov.force_empty & ~real.error).sum())

