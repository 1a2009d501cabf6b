"""Ground truth of the generative model: the superpopulation value of each outcome metric.

CTR and save rate are exact (analytic): clicks and saves are Bernoulli per impression with
probability ``min(1, p_u * w_pos * (1 + lift))``, where ``p_u`` is a Beta per-user propensity
(mean scaled by cohort) and impressions per user are proportional to the user's cohort
activity, independent of ``p_u``. So the expected Σclicks / Σimpressions of an arm is

    Σ_c π_c A_c Σ_j f_j E[min(1, p_c w_j m)] / Σ_c π_c A_c

with π_c the cohort shares, A_c the mean sessions of cohort c, f_j the share of impressions
at position j (from the distribution of k_returned) and m = 1 + lift.

Recall@K and session depth involve distinct items across a user's or session's events, so
they come from a large Monte-Carlo run of the very same simulation code (healthy data, one
day, every user forced into the arm), with a fixed seed independent of the warehouse's seed;
the cluster-robust (per-user) standard error of each estimate is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import betainc

from expkit.synth.model import (
    BLOCK_USERS,
    STREAM_TRUTH,
    LatentDay,
    Model,
    RealizedDay,
    RequestOverrides,
    Users,
    beta_params,
    make_catalog,
    make_users,
    realize,
    rng_for,
    simulate_day,
)

MC_SEED = 20_261_101
MC_BLOCKS = 8  # users per arm in the Monte-Carlo run = MC_BLOCKS * BLOCK_USERS


def _expected_min1(a: float, b: float, c: float) -> float:
    """E[min(1, c X)] for X ~ Beta(a, b)."""
    mean = a / (a + b)
    if c <= 1.0:
        return c * mean
    t = 1.0 / c
    return c * mean * float(betainc(a + 1, b, t)) + (1.0 - float(betainc(a, b, t)))


def analytic_rate(model: Model, kind: str, multiplier: float, cohort: int | None = None) -> float:
    """Expected Σevents / Σimpressions of clicks (``kind="click"``) or saves ("save"), over
    every user or over the users of one ``cohort`` (its code in ``model.cohorts``)."""
    base = model.click_mean if kind == "click" else model.save_mean
    pmf = model.k_returned_pmf()
    at_least = pmf[::-1].cumsum()[::-1][1:]  # P(k_returned >= j), j = 1..k
    f = at_least / at_least.sum()
    w = model.position_weights()
    share = np.asarray(model.cohort_share) * np.asarray(model.cohort_sessions)
    if cohort is not None:
        share = np.where(np.arange(len(share)) == cohort, share, 0.0)
    total = 0.0
    for pi_a, eng in zip(share, model.cohort_engagement, strict=True):
        a, b = beta_params(base * eng, model.propensity_concentration)
        total += pi_a * sum(fj * _expected_min1(a, b, wj * multiplier) for fj, wj in zip(f, w, strict=True))
    return total / share.sum()


@dataclass
class UserOutcomes:
    """Per-user sufficient statistics of one simulated chunk (non-shadow traffic only)."""

    impressions: np.ndarray
    clicks: np.ndarray
    saves: np.ndarray
    plays: np.ndarray  # distinct items played in the day
    hits: np.ndarray  # of which shown at position <= K before their first play
    sessions: np.ndarray
    depth: np.ndarray  # Σ over the user's sessions of distinct items clicked/saved/played


def _unique_min(key: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys (sorted) and, for each, its smallest ``t``."""
    order = np.lexsort((t, key))
    key, t = key[order], t[order]
    first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, dtype=bool)
    return key[first], t[first]


def user_outcomes(model: Model, users: Users, day: LatentDay, real: RealizedDay,
                  top_k: int | None = None) -> UserOutcomes:
    """Recompute every outcome metric's per-user sums from the simulation's arrays."""
    n, c = users.n, np.int64(model.catalog_size)
    top_k = model.k if top_k is None else top_k
    ok_sess = ~day.sess_shadow
    ok_req = ok_sess[day.req_sess]

    def per_user(user: np.ndarray, keep: np.ndarray) -> np.ndarray:
        return np.bincount(user[keep], minlength=n)

    imp_user = day.req_user[real.imp_req]
    imp_ok = ok_req[real.imp_req]
    click_ok = ok_req[real.click_req]
    save_ok = ok_req[real.save_req]
    rp = real.rec_plays
    play_sess = np.concatenate([day.req_sess[real.click_req[rp]], day.op_sess])
    play_item = np.concatenate([real.click_item[rp], day.op_item]).astype(np.int64)
    play_t = np.concatenate([real.rec_play_t, day.op_t])
    play_ok = ok_sess[play_sess]
    play_user = day.sess_user[play_sess].astype(np.int64)

    # Recall: distinct (user, item) played; hit if shown (position <= K) before its first play
    # (docs/metrics.md; the rollup's definition, see expkit/sql/user_items.sql).
    pkey, pfirst = _unique_min((play_user * c + play_item)[play_ok], play_t[play_ok])
    ikeep = imp_ok & (real.imp_pos <= top_k)
    ikey = imp_user.astype(np.int64) * c + real.imp_item
    cand = ikeep & np.isin(ikey, pkey, kind="table") if len(pkey) else np.zeros(0, bool)
    ckey, ct = ikey[cand], real.imp_t[real.imp_req[cand]]
    order = np.lexsort((-ct, ckey))  # per key, the earliest impression last
    ckey, ct = ckey[order], ct[order]
    last = np.r_[ckey[1:] != ckey[:-1], True] if len(ckey) else np.zeros(0, dtype=bool)
    ckey, cmin = ckey[last], ct[last]
    pos = np.minimum(np.searchsorted(ckey, pkey), max(len(ckey) - 1, 0))
    hit = (ckey[pos] == pkey) & (cmin[pos] < pfirst) if len(ckey) else np.zeros(len(pkey), bool)
    puser = pkey // c

    # Session depth: distinct items a session clicked, saved or played.
    dsess = np.concatenate([day.req_sess[real.click_req][click_ok],
                            day.req_sess[real.save_req][save_ok], play_sess[play_ok]])
    ditem = np.concatenate([real.click_item[click_ok], real.save_item[save_ok],
                            play_item[play_ok]]).astype(np.int64)
    dkey = np.unique(dsess.astype(np.int64) * c + ditem)
    depth_user = day.sess_user[dkey // c]

    return UserOutcomes(
        impressions=per_user(imp_user, imp_ok),
        clicks=per_user(day.req_user[real.click_req], click_ok),
        saves=per_user(day.req_user[real.save_req], save_ok),
        plays=np.bincount(puser, minlength=n),
        hits=np.bincount(puser, weights=hit, minlength=n).astype(np.int64),
        sessions=np.bincount(day.sess_user[ok_sess], minlength=n),
        depth=np.bincount(depth_user, minlength=n),
    )


def ratio_with_se(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """Σnum/Σden with its delta-method (per-user, cluster-robust) standard error."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    keep = den > 0
    num, den = num[keep], den[keep]
    n = len(den)
    if n < 2 or den.sum() == 0:
        return float("nan"), float("nan")
    r = num.sum() / den.sum()
    resid = num - r * den
    se = np.sqrt(n / (n - 1) * (resid**2).sum()) / den.sum()
    return float(r), float(se)


@dataclass(frozen=True)
class MonteCarloTruth:
    """Monte-Carlo estimates (and standard errors) for one arm."""

    users: int
    recall: float
    recall_se: float
    session_depth: float
    session_depth_se: float
    ctr: float
    ctr_se: float
    save_rate: float
    save_rate_se: float


@lru_cache(maxsize=32)
def monte_carlo(model: Model, multiplier: float, shadow_share: float,
                blocks: int = MC_BLOCKS) -> MonteCarloTruth:
    """Simulate ``blocks * BLOCK_USERS`` users of one arm for one healthy day (cached)."""
    catalog = make_catalog(model, MC_SEED)
    key = int(round(multiplier * 1e6))
    parts: list[UserOutcomes] = []
    for b in range(blocks):
        users = make_users(model, MC_SEED, b, BLOCK_USERS, np.array([1.0]), force_bucket=0)
        rng = rng_for(MC_SEED, STREAM_TRUTH, key, b)
        day = simulate_day(model, catalog, users, 0, rng, np.array([multiplier]), shadow_share)
        real = realize(model, users, day, RequestOverrides(model.cache_hit_rate))
        parts.append(user_outcomes(model, users, day, real))
    cat = {f: np.concatenate([getattr(p, f) for p in parts]) for f in UserOutcomes.__annotations__}
    recall = ratio_with_se(cat["hits"], cat["plays"])
    depth = ratio_with_se(cat["depth"], cat["sessions"])
    ctr = ratio_with_se(cat["clicks"], cat["impressions"])
    save = ratio_with_se(cat["saves"], cat["impressions"])
    return MonteCarloTruth(blocks * BLOCK_USERS, *recall, *depth, *ctr, *save)
