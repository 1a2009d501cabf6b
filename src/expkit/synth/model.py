"""The generative model of the synthetic service: catalog, users, and one day of events.

Generation is chunked by (day, block of ``BLOCK_USERS`` users). Every random draw of a chunk
comes from a numpy ``Generator`` seeded by ``SeedSequence(seed, spawn_key=(stream, ...))``,
so a chunk's content depends only on the seed, the date, the block and the model, never on
the order chunks are generated in.

A day is simulated in two steps. :func:`simulate_day` draws the *latent* events (sessions,
requests, a full grid of K candidate impressions per request, latent clicks/saves/plays and
all timings) independently of any incident. :func:`realize` then turns them into what the
service logged, given per-request overrides (cache failure, latency factor, error rate,
empty responses). Incidents therefore only change the data inside their windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from expkit.names import DAY_MS

BLOCK_USERS = 4096  # users per chunk: ~700k impressions a day, so two workers stay busy
MAX_BLOCKS = 8192  # ids reserve 13 bits for the block
# Sessions cross midnight: a day also simulates the sessions that started in the last
# CARRY_MS of the previous day, and keeps only the events inside the day.
CARRY_MS = 45 * 60_000

# First element of every SeedSequence spawn_key: one independent stream per purpose.
STREAM_CATALOG, STREAM_USERS, STREAM_DAY, STREAM_INCIDENT, STREAM_TRUTH = range(5)


def rng_for(seed: int, *key: int) -> np.random.Generator:
    """A generator for one purpose/chunk: ``SeedSequence(seed, spawn_key=key)``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key)))


@dataclass(frozen=True)
class Model:
    """Parameters of the healthy service (the defaults meet every SLO and target of docs/metrics.md)."""

    k: int = 10
    catalog_size: int = 5_000
    popularity_exponent: float = 0.9  # Zipf exponent of impression popularity
    genres: tuple[str, ...] = ("drama", "comedy", "action", "thriller", "documentary",
                               "animation", "romance", "horror", "scifi", "family", "crime",
                               "reality")
    providers: tuple[str, ...] = ("originals", "northlight", "bluepeak", "redharbor",
                                  "silverline", "indie")
    cohorts: tuple[str, ...] = ("new", "casual", "power")
    cohort_share: tuple[float, ...] = (0.25, 0.5, 0.25)
    cohort_sessions: tuple[float, ...] = (0.7, 1.0, 2.2)  # mean sessions per user-day
    cohort_engagement: tuple[float, ...] = (0.8, 1.0, 1.2)  # multiplies click/save means
    activity_shape: float = 2.0  # Gamma shape of per-user activity within a cohort
    regions: tuple[str, ...] = ("na", "eu", "apac", "latam")
    region_share: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)
    clients: tuple[str, ...] = ("web", "ios", "android", "tv")
    client_share: tuple[float, ...] = (0.3, 0.25, 0.3, 0.15)
    surfaces: tuple[str, ...] = ("home", "search", "detail")
    surface_share: tuple[float, ...] = (0.6, 0.15, 0.25)
    # Per-user propensities: Beta with the given mean (x cohort engagement) and concentration.
    click_mean: float = 0.06
    save_mean: float = 0.011
    propensity_concentration: float = 12.0
    play_after_click: tuple[float, float] = (2.0, 5.0)  # Beta(a, b) per user
    other_plays_mean: float = 3.0  # search/browse/continue plays per session, Gamma per user
    other_plays_shape: float = 2.0
    play_sources: tuple[str, ...] = ("rec", "search", "browse", "continue")
    other_source_share: tuple[float, ...] = (0.45, 0.35, 0.2)
    position_decay: float = 0.5  # click/save weight of position j is j ** -decay
    requests_per_session: float = 14.0  # 1 + Poisson(mean - 1)
    request_gap_s: float = 25.0  # exponential, capped
    request_gap_cap_s: float = 120.0
    # Relative traffic at each hour (UTC, interpolated per minute): night trough, evening peak.
    hourly_traffic: tuple[float, ...] = (0.80, 0.62, 0.50, 0.43, 0.40, 0.42, 0.50, 0.60, 0.70,
                                         0.78, 0.85, 0.90, 0.95, 0.97, 1.00, 1.05, 1.12, 1.25,
                                         1.45, 1.62, 1.70, 1.62, 1.35, 1.05)
    cache_hit_rate: float = 0.95
    warm_latency_ms: tuple[float, float] = (9.0, 0.45)  # lognormal median, sigma
    cold_latency_ms: tuple[float, float] = (40.0, 0.33)
    timeout_ms: float = 10_000.0
    fallback_share: tuple[float, ...] = (0.97, 0.02, 0.008, 0.002)
    error_rate: float = 1e-5
    error_components: tuple[str, ...] = ("ranker", "feature_store", "candidate_gen", "cache")
    error_component_share: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)
    error_severities: tuple[str, ...] = ("minor", "major", "critical")
    error_severity_share: tuple[float, ...] = (0.6, 0.3, 0.1)
    # Ok responses with 1..short_missing items fewer than k. Healthy responses are never
    # empty, and short ones lose little, so Top-K fill and coverage hold even in 5-minute
    # bins of a few dozen requests.
    short_rate: float = 0.002
    short_missing: int = 2
    empty_rate: float = 0.0
    ingest_delay_s: tuple[float, float, float] = (20.0, 0.8, 600.0)  # median, sigma, cap
    click_lag_s: tuple[float, float, float] = (6.0, 0.8, 90.0)
    save_lag_s: tuple[float, float, float] = (15.0, 0.8, 120.0)
    play_lag_s: tuple[float, float, float] = (20.0, 0.8, 300.0)

    def position_weights(self) -> np.ndarray:
        """Click/save weight of positions 1..k."""
        return np.arange(1, self.k + 1, dtype=np.float64) ** -self.position_decay

    def k_returned_pmf(self, error_rate: float | None = None) -> np.ndarray:
        """P(k_returned = j), j = 0..k, of a request in healthy traffic."""
        err = self.error_rate if error_rate is None else error_rate
        k, lo = self.k, self.k - self.short_missing
        pmf = np.zeros(k + 1)
        ok = 1.0 - err
        pmf[0] = err + ok * self.empty_rate
        pmf[lo:k] += ok * self.short_rate / (k - lo)
        pmf[k] += ok * (1.0 - self.short_rate - self.empty_rate)
        return pmf


def _categorical(rng: np.random.Generator, shares: tuple[float, ...], n: int) -> np.ndarray:
    cum = np.cumsum(shares)
    cum[-1] = 1.0
    return np.searchsorted(cum, rng.random(n), side="right").astype(np.int8)


def _lag_ms(rng: np.random.Generator, spec: tuple[float, float, float], n: int) -> np.ndarray:
    """Lognormal delays in whole ms, at least 1 ms (so an effect is strictly after its cause)."""
    median, sigma, cap = spec
    lag = np.minimum(rng.lognormal(np.log(median * 1000.0), sigma, n), cap * 1000.0)
    return lag.astype(np.int64) + 1


@dataclass(frozen=True)
class Catalog:
    """Items: fixed genre and provider, and the impression popularity (Zipf) lookup table."""

    genre: np.ndarray  # int8 code per item
    provider: np.ndarray
    lookup: np.ndarray  # item index for each uint16 draw (inverse CDF of popularity)


def make_catalog(model: Model, seed: int) -> Catalog:
    """The catalog of a warehouse (popularity ranks do not depend on the seed)."""
    rng = rng_for(seed, STREAM_CATALOG)
    n = model.catalog_size
    genre_share = 1.0 / np.arange(1, len(model.genres) + 1) ** 0.7
    provider_share = 1.0 / np.arange(1, len(model.providers) + 1) ** 0.8
    genre = _categorical(rng, tuple(genre_share / genre_share.sum()), n)
    provider = _categorical(rng, tuple(provider_share / provider_share.sum()), n)
    pop = np.arange(1, n + 1, dtype=np.float64) ** -model.popularity_exponent
    cdf = np.cumsum(pop / pop.sum())
    grid = (np.arange(65536) + 0.5) / 65536
    lookup = np.minimum(np.searchsorted(cdf, grid, side="right"), n - 1).astype(np.int64)
    return Catalog(genre, provider, lookup)


@dataclass(frozen=True)
class Users:
    """Fixed attributes of one block of users (local index i is user ``first + i``)."""

    first: int  # global index of the block's first user (user_id = first + i + 1)
    bucket: np.ndarray  # int8 arm code
    cohort: np.ndarray
    region: np.ndarray
    client: np.ndarray
    activity: np.ndarray  # expected sessions per day
    p_click: np.ndarray
    p_save: np.ndarray
    p_play: np.ndarray  # P(play | click)
    other_rate: np.ndarray  # expected non-rec plays per session

    @property
    def n(self) -> int:
        """Number of users in the block."""
        return len(self.bucket)


def beta_params(mean: np.ndarray | float, concentration: float) -> tuple:
    """Beta(a, b) with the given mean and a + b = concentration."""
    return np.multiply(mean, concentration), np.multiply(1.0 - np.asarray(mean), concentration)


def make_users(model: Model, seed: int, block: int, n: int, allocation_cum: np.ndarray,
               force_bucket: int | None = None) -> Users:
    """Draw the users of a block. Arms come from one uniform per user against the cumulative
    planned allocation, so a user's arm is stable across days and runs."""
    rng = rng_for(seed, STREAM_USERS, block)
    # Draw a full block and keep the first n: a user's attributes do not depend on how many
    # users the warehouse has.
    full = BLOCK_USERS
    u_bucket = rng.random(full)
    cohort = _categorical(rng, model.cohort_share, full)
    region = _categorical(rng, model.region_share, full)
    client = _categorical(rng, model.client_share, full)
    shape = model.activity_shape
    activity = rng.gamma(shape, 1.0, full) * (np.asarray(model.cohort_sessions)[cohort] / shape)
    kappa = model.propensity_concentration
    engagement = np.asarray(model.cohort_engagement)[cohort]
    p_click = rng.beta(*beta_params(model.click_mean * engagement, kappa))
    p_save = rng.beta(*beta_params(model.save_mean * engagement, kappa))
    p_play = rng.beta(*model.play_after_click, full)
    oshape = model.other_plays_shape
    other_rate = rng.gamma(oshape, model.other_plays_mean / oshape, full)
    u_bucket, cohort, region, client, activity, p_click, p_save, p_play, other_rate = (
        a[:n] for a in (u_bucket, cohort, region, client, activity, p_click, p_save, p_play,
                        other_rate))
    if force_bucket is None:
        bucket = np.searchsorted(allocation_cum, u_bucket, side="right").astype(np.int8)
        bucket = np.minimum(bucket, len(allocation_cum) - 1).astype(np.int8)
    else:
        bucket = np.full(n, force_bucket, dtype=np.int8)
    return Users(block * BLOCK_USERS, bucket, cohort, region, client, activity,
                 p_click, p_save, p_play, other_rate)


def _cycle_cdf(model: Model) -> tuple[np.ndarray, np.ndarray]:
    """Per-minute density of session starts over [-CARRY_MS, DAY_MS) (periodic in the day)."""
    hours = np.arange(25) + 0.5  # weights sit at mid-hour; wrap around midnight
    weights = np.r_[model.hourly_traffic, model.hourly_traffic[0]]
    minute_h = (np.arange(1440) + 0.5) / 60.0
    pdf = np.interp(np.where(minute_h < 0.5, minute_h + 24, minute_h), hours, weights)
    pdf /= pdf.sum()
    carry = CARRY_MS // 60_000
    pdf = np.r_[pdf[-carry:], pdf]
    return np.cumsum(pdf), pdf


def sample_session_starts(model: Model, u: np.ndarray) -> np.ndarray:
    """Map uniforms to session start times in ms from 00:00 (negative: the day before)."""
    cdf, pdf = _cycle_cdf(model)
    u = u * cdf[-1]
    minute = np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)
    before = np.where(minute > 0, cdf[minute - 1], 0.0)
    frac = np.clip((u - before) / pdf[minute], 0.0, 1.0 - 1e-9)
    return ((minute + frac) * 60_000).astype(np.int64) - CARRY_MS


@dataclass
class LatentDay:
    """Everything drawn for one block of users on one day, before incidents."""

    day_start_ms: int
    # sessions (S)
    sess_user: np.ndarray  # int32 local user index
    sess_start: np.ndarray  # int64 epoch ms
    sess_shadow: np.ndarray
    # requests (R), in session order; sessions are sorted by start time
    req_sess: np.ndarray
    req_user: np.ndarray
    req_t: np.ndarray
    surface: np.ndarray
    fallback: np.ndarray
    u_cache: np.ndarray
    z_latency: np.ndarray
    u_error: np.ndarray
    error_component: np.ndarray
    error_severity: np.ndarray
    u_k: np.ndarray
    req_delay: np.ndarray  # ingest delay, ms (impressions land with their request)
    # candidate grid: K items per request (R, K), distinct within a request
    items: np.ndarray
    # latent clicks / saves: flat cell index r * K + (position - 1)
    click_cell: np.ndarray
    click_lag: np.ndarray
    click_delay: np.ndarray
    play_u: np.ndarray  # one per latent click: played if play_u < p_play
    play_lag: np.ndarray
    play_delay: np.ndarray
    save_cell: np.ndarray
    save_lag: np.ndarray
    save_delay: np.ndarray
    # non-rec plays
    op_sess: np.ndarray
    op_item: np.ndarray
    op_t: np.ndarray
    op_source: np.ndarray  # code into model.play_sources (1..3)
    op_delay: np.ndarray


def _slates(rng: np.random.Generator, lookup: np.ndarray, n_items: int, n_rows: int,
            k: int) -> np.ndarray:
    """(n_rows, k) distinct item indices per request, most popular first.

    Position j draws from the j-th of k equal-mass popularity strata, so items are
    non-decreasing along a row and impressions as a whole follow the popularity law (up to
    the rare item that straddles two strata and repeats: it is pushed to the next item).
    """
    # Drawn position-major (k, n_rows): the column-wise pass runs over contiguous rows.
    u = (rng.random((k, n_rows), dtype=np.float32)
         + np.arange(k, dtype=np.float32)[:, None]) * (len(lookup) / k)
    # float32 rounds the top of the last stratum up to len(lookup): clip it back.
    items = lookup[np.minimum(u.astype(np.int32), len(lookup) - 1)]
    np.minimum(items, (n_items - k + np.arange(k))[:, None], out=items)  # room for pushes
    for j in range(1, k):
        np.maximum(items[j], items[j - 1] + 1, out=items[j])
    items = np.ascontiguousarray(items.T)
    return items


@dataclass
class Sessions:
    """The sessions and requests of one day of a block of users (the first draws of a day)."""

    sess_user: np.ndarray  # int32 local user index, sessions sorted by start time
    sess_shadow: np.ndarray
    sess_start: np.ndarray  # epoch ms of the session's first kept request
    span: np.ndarray  # ms from the first to the last kept request
    req_sess: np.ndarray
    req_user: np.ndarray
    req_t: np.ndarray

    def exposed(self, n_users: int) -> np.ndarray:
        """Users with a non-shadow request in the day."""
        out = np.zeros(n_users, dtype=bool)
        out[self.req_user[~self.sess_shadow[self.req_sess]]] = True
        return out


def draw_sessions(model: Model, users: Users, day_start_ms: int, rng: np.random.Generator,
                  shadow_share: float) -> Sessions:
    """The day's sessions and requests: the first draws of :func:`simulate_day` from ``rng``."""
    day_end = day_start_ms + DAY_MS
    # Sessions (including those carried over from the previous evening), sorted by start
    # time so files are roughly time-ordered.
    cdf, _ = _cycle_cdf(model)
    n_sess = rng.poisson(users.activity * cdf[-1])
    sess_user = np.repeat(np.arange(users.n, dtype=np.int32), n_sess)
    start = sample_session_starts(model, rng.random(len(sess_user)))
    order = np.argsort(start, kind="stable")
    sess_user, start = sess_user[order], start[order]
    sess_shadow = rng.random(len(start)) < shadow_share
    n_req = 1 + rng.poisson(model.requests_per_session - 1.0, len(start))
    first = np.cumsum(n_req) - n_req
    req_sess = np.repeat(np.arange(len(start), dtype=np.int32), n_req)
    gap = np.minimum(rng.exponential(model.request_gap_s * 1000.0, len(req_sess)),
                     model.request_gap_cap_s * 1000.0).astype(np.int64)
    gap[first] = 0
    offset = np.cumsum(gap)
    offset -= np.repeat(offset[first], n_req)
    req_t = day_start_ms + start[req_sess] + offset
    # Keep the day's requests (none so late that the response would fall on the next day),
    # and the sessions that have any.
    in_day = (req_t >= day_start_ms) & (req_t < day_end - int(model.timeout_ms))
    kept = np.bincount(req_sess[in_day], minlength=len(start)) > 0
    new_index = np.cumsum(kept) - 1
    req_sess = new_index[req_sess[in_day]].astype(np.int32)
    req_t = req_t[in_day]
    sess_user, sess_shadow = sess_user[kept], sess_shadow[kept]
    n_req = np.bincount(req_sess, minlength=int(kept.sum()))
    first = np.cumsum(n_req) - n_req
    sess_start = req_t[first]
    span = req_t[first + n_req - 1] - sess_start
    return Sessions(sess_user, sess_shadow, sess_start, span, req_sess, sess_user[req_sess], req_t)


def simulate_day(model: Model, catalog: Catalog, users: Users, day_start_ms: int,
                 rng: np.random.Generator, arm_multiplier: np.ndarray,
                 shadow_share: float, user_multiplier: np.ndarray | None = None) -> LatentDay:
    """Draw one day of latent events for a block of users (vectorized; no per-row Python).

    ``arm_multiplier[arm]`` is 1 + the arm's true lift on click and save propensities;
    ``user_multiplier``, when given, is that factor for each user instead (segment lifts,
    novelty: :mod:`expkit.synth.effects`).
    """
    k = model.k
    day_end = day_start_ms + DAY_MS
    ses = draw_sessions(model, users, day_start_ms, rng, shadow_share)
    sess_user, sess_shadow, sess_start, span = ses.sess_user, ses.sess_shadow, ses.sess_start, ses.span
    req_sess, req_user, req_t = ses.req_sess, ses.req_user, ses.req_t
    s, r = len(sess_start), len(req_t)

    surface = _categorical(rng, model.surface_share, r)
    fallback = _categorical(rng, model.fallback_share, r)
    u_cache = rng.random(r)
    z_latency = rng.standard_normal(r)
    u_error = rng.random(r)
    error_component = _categorical(rng, model.error_component_share, r)
    error_severity = _categorical(rng, model.error_severity_share, r)
    u_k = rng.random(r)
    req_delay = _lag_ms(rng, model.ingest_delay_s, r)

    items = _slates(rng, catalog.lookup, model.catalog_size, r, k)
    w = model.position_weights().astype(np.float32)
    if user_multiplier is None:
        mult = np.asarray(arm_multiplier, dtype=np.float64)[users.bucket]
    else:
        mult = np.asarray(user_multiplier, dtype=np.float64)
    pc = (users.p_click * mult).astype(np.float32)[req_user]
    click_cell = np.flatnonzero(rng.random((r, k), dtype=np.float32) < pc[:, None] * w)
    ps = (users.p_save * mult).astype(np.float32)[req_user]
    save_cell = np.flatnonzero(rng.random((r, k), dtype=np.float32) < ps[:, None] * w)
    nc, ns = len(click_cell), len(save_cell)
    click_lag = _lag_ms(rng, model.click_lag_s, nc)
    click_delay = _lag_ms(rng, model.ingest_delay_s, nc)
    play_u = rng.random(nc)
    play_lag = _lag_ms(rng, model.play_lag_s, nc)
    play_delay = _lag_ms(rng, model.ingest_delay_s, nc)
    save_lag = _lag_ms(rng, model.save_lag_s, ns)
    save_delay = _lag_ms(rng, model.ingest_delay_s, ns)

    n_op = rng.poisson(users.other_rate[sess_user])
    op_sess = np.repeat(np.arange(s, dtype=np.int32), n_op)
    nop = len(op_sess)
    op_item = rng.integers(0, model.catalog_size, nop)
    op_t = sess_start[op_sess] + (rng.random(nop) * (span[op_sess] + 60_000)).astype(np.int64)
    op_source = (_categorical(rng, model.other_source_share, nop) + 1).astype(np.int8)
    op_delay = _lag_ms(rng, model.ingest_delay_s, nop)
    keep_op = op_t < day_end
    op_sess, op_item, op_t = op_sess[keep_op], op_item[keep_op], op_t[keep_op]
    op_source, op_delay = op_source[keep_op], op_delay[keep_op]

    return LatentDay(day_start_ms, sess_user, sess_start, sess_shadow, req_sess, req_user, req_t,
                     surface, fallback, u_cache, z_latency, u_error, error_component,
                     error_severity, u_k, req_delay, items, click_cell, click_lag, click_delay,
                     play_u, play_lag, play_delay, save_cell, save_lag, save_delay,
                     op_sess, op_item, op_t, op_source, op_delay)


@dataclass
class RequestOverrides:
    """Per-request parameters that incidents change (scalars or arrays of length R)."""

    cache_hit_rate: float | np.ndarray
    latency_factor: float | np.ndarray = 1.0
    error_rate: float | np.ndarray | None = None
    force_empty: np.ndarray | None = None  # ok requests that return nothing


@dataclass
class RealizedDay:
    """What the service did and logged (before logging faults), as indices into a LatentDay."""

    cache_hit: np.ndarray
    latency_ms: np.ndarray
    error: np.ndarray
    k_returned: np.ndarray  # int32
    imp_t: np.ndarray  # response time of each request = its impressions' timestamp
    imp_req: np.ndarray  # impressions: request index, position (1-based), item index
    imp_pos: np.ndarray
    imp_item: np.ndarray
    clicks: np.ndarray  # indices of latent clicks that happened on a shown item
    click_req: np.ndarray
    click_item: np.ndarray
    click_t: np.ndarray
    saves: np.ndarray
    save_req: np.ndarray
    save_item: np.ndarray
    save_t: np.ndarray
    rec_plays: np.ndarray  # indices into ``clicks`` of clicks followed by a play
    rec_play_t: np.ndarray


def realize(model: Model, users: Users, day: LatentDay, ov: RequestOverrides) -> RealizedDay:
    """Apply the service's behaviour (and request-level overrides) to the latent day."""
    k = model.k
    cache_hit = day.u_cache < ov.cache_hit_rate
    wm, ws = model.warm_latency_ms
    cm, cs = model.cold_latency_ms
    mu = np.where(cache_hit, np.log(wm), np.log(cm))
    sigma = np.where(cache_hit, ws, cs)
    latency = np.minimum(np.exp(mu + sigma * day.z_latency) * ov.latency_factor, model.timeout_ms)
    err_rate = model.error_rate if ov.error_rate is None else ov.error_rate
    error = day.u_error < err_rate
    lo = k - model.short_missing
    short = day.u_k < model.short_rate
    k_ret = np.full(len(day.u_k), k, dtype=np.int32)
    k_ret[short] = lo + (day.u_k[short] / model.short_rate * (k - lo)).astype(np.int32)
    k_ret[(day.u_k >= model.short_rate) & (day.u_k < model.short_rate + model.empty_rate)] = 0
    if ov.force_empty is not None:
        k_ret[ov.force_empty] = 0
    k_ret[error] = 0
    imp_t = day.req_t + np.ceil(latency).astype(np.int64)

    r = len(k_ret)
    imp_req = np.repeat(np.arange(r, dtype=np.int64), k_ret)
    if r and k_ret.min() == k:
        imp_pos = np.tile(np.arange(1, k + 1, dtype=np.int32), r)
        imp_item = day.items.reshape(-1)
    else:
        returned = np.arange(k) < k_ret[:, None]
        imp_pos = np.broadcast_to(np.arange(1, k + 1, dtype=np.int32), (r, k))[returned]
        imp_item = day.items[returned]

    day_end = day.day_start_ms + DAY_MS

    def shown(cells: np.ndarray, lag: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Latent events on an item that was shown, happening before the day ends."""
        req = cells // k
        t = imp_t[req] + lag
        idx = np.flatnonzero((cells % k < k_ret[req]) & (t < day_end))
        return idx, req[idx], day.items.reshape(-1)[cells[idx]], t[idx]

    clicks, click_req, click_item, click_t = shown(day.click_cell, day.click_lag)
    saves, save_req, save_item, save_t = shown(day.save_cell, day.save_lag)
    played = day.play_u[clicks] < users.p_play[day.req_user[click_req]]
    played &= click_t + day.play_lag[clicks] < day_end
    rec_plays = np.flatnonzero(played)
    rec_play_t = click_t[rec_plays] + day.play_lag[clicks[rec_plays]]
    return RealizedDay(cache_hit, latency, error, k_ret, imp_t, imp_req, imp_pos, imp_item,
                       clicks, click_req, click_item, click_t, saves, save_req, save_item, save_t,
                       rec_plays, rec_play_t)
