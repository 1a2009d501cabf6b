"""Estimates and comparisons over frames of sufficient statistics (docs/statistics.md).

One row per arm (and metric, slice value, day ...) with the columns of
:data:`expkit.readers.STAT_COLUMNS` in; the same rows with the estimates of
:mod:`expkit.stats` added out. Tiles and alert sources share them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from expkit.readers import PRE_STAT_COLUMNS, STAT_COLUMNS
from expkit.stats import Comparison, compare_ratios, ratio_estimate

ALPHA = 0.05
"""Two-sided level of every interval and test shown (95% intervals)."""


def estimate_frame(stats: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Add estimate, delta-method interval and effective-size Wilson interval to a stats frame."""
    out = stats.copy()
    if out.empty:
        for col in ("estimate", "se", "low", "high", "wilson_low", "wilson_high", "design_effect", "reason"):
            out[col] = []
        return out
    est = ratio_estimate(
        out["n"].to_numpy(float), out["sum_num"].to_numpy(float), out["sum_den"].to_numpy(float),
        out["sum_num2"].to_numpy(float), out["sum_den2"].to_numpy(float), out["sum_numden"].to_numpy(float),
        alpha=alpha,
    )
    for col in ("estimate", "se", "low", "high", "wilson_low", "wilson_high", "design_effect"):
        out[col] = np.atleast_1d(getattr(est, col))
    out["reason"] = np.atleast_1d(est.reason)
    return out


def _fields(r: Comparison) -> dict[str, np.ndarray]:
    """The frame's columns of a comparison, by column name."""
    fields = {
        "control": r.control, "treatment": r.treatment, "abs_diff": r.diff, "diff_low": r.diff_low,
        "diff_high": r.diff_high, "rel_lift": r.rel_lift, "rel_low": r.rel_low, "rel_high": r.rel_high,
        "fieller_low": r.rel_low_fieller, "fieller_high": r.rel_high_fieller,
        "seq_low": r.seq_rel_low, "seq_high": r.seq_rel_high, "seq_diff_low": r.seq_low,
        "seq_diff_high": r.seq_high, "theta": r.theta, "variance_reduction": r.variance_reduction,
        # One statistic per claim: the p-values shown beside the relative intervals are those of
        # the relative tests (docs/statistics.md); the difference's own are kept beside its interval.
        "pvalue": r.rel_pvalue, "seq_pvalue": r.seq_rel_pvalue,
        "diff_pvalue": r.pvalue, "seq_diff_pvalue": r.seq_pvalue,
        "reason": r.reason,
    }
    return {k: np.atleast_1d(v) for k, v in fields.items()}


def compare_frame(
    stats: pd.DataFrame, control: str, treatments: list[str], n_star: int,
    key: tuple[str, ...] = ("metric", "slice_value"),
) -> pd.DataFrame:
    """One row per treatment arm and ``key`` (metric × slice value, or also day) with every comparison field.

    ``stats`` has ``bucket``, the ``key`` columns and :data:`~expkit.readers.STAT_COLUMNS`; the
    comparisons run in one vectorized call. Rows that also carry the CUPED sums
    (:data:`~expkit.readers.PRE_STAT_COLUMNS`) with pre-period data in either arm are compared
    with the regression adjustment (``compare_ratios(..., covariate=True)``, docs/statistics.md,
    "CUPED"): ``cuped`` is True there and ``theta``, ``variance_reduction`` are filled in; the
    others are compared as without a covariate (``cuped`` False, ``theta`` and
    ``variance_reduction`` NaN).
    """
    keys = list(key)
    cols = STAT_COLUMNS + [c for c in PRE_STAT_COLUMNS if c in stats.columns]
    ctl = stats[stats["bucket"] == control][keys + cols]
    trt = stats[stats["bucket"].isin(treatments)][["bucket", *keys, *cols]]
    rows = trt.merge(ctl, on=keys, how="inner", suffixes=("", "_c"))
    if rows.empty:
        return pd.DataFrame()
    c = {s: rows[f"{s}_c"].to_numpy(float) for s in cols}
    t = {s: rows[s].to_numpy(float) for s in cols}
    cuped = np.zeros(len(rows), dtype=bool)
    if len(cols) > len(STAT_COLUMNS):
        finite = np.all([np.isfinite(a[k]) for a in (c, t) for k in PRE_STAT_COLUMNS], axis=0)
        cuped = finite & ((c["sum_pre_den"] > 0) | (t["sum_pre_den"] > 0))
    out = rows[["bucket", *keys]].copy()
    out["users_control"], out["users_treatment"] = c["n"].astype(int), t["n"].astype(int)
    values: dict[str, np.ndarray] = {}
    for adjusted in (False, True):
        pick = cuped == adjusted
        if not pick.any():
            continue
        names = cols if adjusted else STAT_COLUMNS
        r = compare_ratios({k: c[k][pick] for k in names}, {k: t[k][pick] for k in names}, alpha=ALPHA,
                           sequential=True, tuning_n=n_star, covariate=adjusted)
        for name, v in _fields(r).items():
            if name not in values:
                values[name] = np.full(len(rows), np.nan, dtype=object if name == "reason" else float)
            values[name][pick] = np.broadcast_to(v, (int(pick.sum()),))
    for name, v in values.items():
        if name != "reason":
            out[name] = v
    out["reason"] = values["reason"]
    out["cuped"] = cuped
    return out
