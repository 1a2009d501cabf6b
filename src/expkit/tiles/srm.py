"""Sample ratio mismatch for the outcome tiles (docs/statistics.md, "Sample ratio mismatch").

Users per arm (each user once, in the arm of her first exposure in the window) against the
planned shares, by Pearson's χ² test (:func:`expkit.stats.srm_test`). :func:`srm_check` gives
every outcome tile the arms whose results are untrustworthy: a treatment arm is flagged when
its users against the control's mismatch the planned ratio of the two (pairwise χ²), the
control when the test over all arms flags. Also the experiment's days, which the per-day views
walk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np

from expkit.readers import USER_ATTRIBUTES, arm_users
from expkit.stats import srm_test
from expkit.tiles.base import TileParams

MAX_DAYS = 90
"""The per-day view covers the experiment's days up to the report date, at most this many."""


def srm_population(p: TileParams) -> TileParams:
    """The population whose split is tested: every arm of the experiment, the tile's filters on
    user attributes (the randomized population stays randomized), no slice."""
    filters = {k: v for k, v in p.filters.items() if k in USER_ATTRIBUTES}
    return replace(p, slice="bucket", filters=filters, buckets=list(p.config.buckets))


@dataclass(frozen=True)
class SrmCheck:
    """Sample ratio mismatch of one window.

    Attributes:
        window: the window tested.
        users: users per arm.
        planned: planned share per arm.
        pvalue: χ² p-value over all arms (NaN without users).
        max_deviation: largest relative deviation of an arm's share.
        arm_pvalue: per arm, the p-value behind its flag (pairwise against the control for a
            treatment arm, over all arms for the control).
        flags: per arm, ``arm_pvalue < threshold``.
        threshold: the configured ``srm_pvalue_threshold``.
    """

    window: str
    users: dict[str, int]
    planned: dict[str, float]
    pvalue: float
    max_deviation: float
    arm_pvalue: dict[str, float]
    flags: dict[str, bool]
    threshold: float

    @property
    def any(self) -> bool:
        """True when some arm is flagged."""
        return any(self.flags.values())

    def note(self) -> str | None:
        """The "untrustworthy" line for a tile's notes (None when no arm is flagged)."""
        if not self.any:
            return None
        bad = [a for a, f in self.flags.items() if f]
        counts = ", ".join(f"{a} {n:,}" for a, n in self.users.items())
        plan = "/".join(f"{s:.0%}" for s in self.planned.values())
        p = min(self.arm_pvalue[a] for a in bad)
        return (
            f"UNTRUSTWORTHY: sample ratio mismatch in the {self.window} window for {', '.join(bad)} "
            f"(users {counts}; planned {plan}; χ² p = {p:.2g} < {self.threshold:g}). "
            "Comparisons involving these arms are not to be trusted until the cause is found."
        )


def arm_srm_pvalues(users: np.ndarray, shares: np.ndarray, control: int) -> np.ndarray:
    """p-value per arm: each treatment against the control (shares renormalized to the pair);
    the control gets the test over all arms.

    >>> arm_srm_pvalues(np.array([5000, 2500, 2200]), np.array([0.5, 0.25, 0.25]), 0) < 0.001
    array([ True, False,  True])
    """
    out = np.full(len(shares), np.nan)
    out[control] = float(srm_test(users, shares).pvalue)
    others = [i for i in range(len(shares)) if i != control]
    if others:
        pair_counts = np.array([[users[control], users[i]] for i in others], dtype=float)
        pair_shares = np.array([[shares[control], shares[i]] for i in others])
        pair_shares = pair_shares / pair_shares.sum(axis=1, keepdims=True)
        out[others] = srm_test(pair_counts, pair_shares).pvalue
    return out


def srm_check(p: TileParams, window: str | None = None) -> SrmCheck:
    """The SRM test of the tile's window (or ``window``) on :func:`srm_population`."""
    window = window or p.window
    cfg = p.config
    arms = list(cfg.buckets)
    df = arm_users(srm_population(p), [window])
    counts = df.groupby("bucket")["users"].sum()
    users = np.array([float(counts.get(a, 0)) for a in arms])
    shares = np.array([cfg.buckets[a] for a in arms])
    thr = cfg.srm_pvalue_threshold
    res = srm_test(users, shares, thr)
    arm_p = arm_srm_pvalues(users, shares, arms.index(cfg.control))
    return SrmCheck(
        window=window,
        users={a: int(u) for a, u in zip(arms, users, strict=True)},
        planned={a: float(s) for a, s in zip(arms, shares, strict=True)},
        pvalue=float(res.pvalue),
        max_deviation=float(res.max_relative_deviation),
        arm_pvalue={a: float(v) for a, v in zip(arms, arm_p, strict=True)},
        flags={a: bool(np.isfinite(v) and v < thr) for a, v in zip(arms, arm_p, strict=True)},
        threshold=thr,
    )


def srm_flags(p: TileParams) -> dict[str, bool]:
    """Arm → True when its results in the tile's window are untrustworthy (sample ratio mismatch)."""
    return srm_check(p).flags


def srm_label(arm: str, flagged: bool) -> str:
    """How charts name an arm: flagged arms carry a visible warning."""
    return f"{arm} ⚠ SRM: untrustworthy" if flagged else arm


def experiment_days(p: TileParams, limit: int = MAX_DAYS) -> list[dt.date]:
    """The experiment's days from its start date to the report date (the last ``limit`` of them)."""
    return experiment_span(p.config.start_date, p.event_date, limit)


def experiment_span(start_date: dt.date, day: dt.date, limit: int = MAX_DAYS) -> list[dt.date]:
    """The days from ``start_date`` to ``day`` (the last ``limit`` of them; none before the start).

    >>> experiment_span(dt.date(2026, 11, 1), dt.date(2026, 11, 3))
    [datetime.date(2026, 11, 1), datetime.date(2026, 11, 2), datetime.date(2026, 11, 3)]
    """
    first = max(start_date, day - dt.timedelta(days=limit - 1))
    return [first + dt.timedelta(days=i) for i in range((day - first).days + 1)]


def srm_days(p: TileParams) -> list[str]:
    """The experiment's days (up to the report date) whose users per arm mismatch the plan
    (χ² over all arms, ``srm_pvalue_threshold``), each day's users once."""
    cfg = p.config
    arms = list(cfg.buckets)
    users = arm_users(srm_population(p), ["24h"], experiment_days(p))
    if users.empty:
        return []
    wide = users.pivot_table(index="day", columns="bucket", values="users", aggfunc="sum", fill_value=0)
    wide = wide.reindex(columns=arms, fill_value=0)
    res = srm_test(wide.to_numpy(float), np.array([cfg.buckets[a] for a in arms]), cfg.srm_pvalue_threshold)
    return sorted(str(d) for d, flag in zip(wide.index, np.atleast_1d(res.flag), strict=True) if flag)
