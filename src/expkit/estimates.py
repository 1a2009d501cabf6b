"""Estimates and comparisons over frames of sufficient statistics (docs/statistics.md).

One row per arm (and metric, slice value, day ...) with the columns of
:data:`expkit.readers.STAT_COLUMNS` in; the same rows with the estimates of
:mod:`expkit.stats` added out. Tiles and alert sources share them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from expkit.readers import STAT_COLUMNS
from expkit.stats import compare_ratios, ratio_estimate

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


def compare_frame(
    stats: pd.DataFrame, control: str, treatments: list[str], n_star: int,
    key: tuple[str, ...] = ("metric", "slice_value"),
) -> pd.DataFrame:
    """One row per treatment arm and ``key`` (metric × slice value, or also day) with every comparison field.

    ``stats`` has ``bucket``, the ``key`` columns and :data:`~expkit.readers.STAT_COLUMNS`; the
    comparisons run in one vectorized call.
    """
    keys = list(key)
    ctl = stats[stats["bucket"] == control][keys + STAT_COLUMNS]
    trt = stats[stats["bucket"].isin(treatments)][["bucket", *keys, *STAT_COLUMNS]]
    rows = trt.merge(ctl, on=keys, how="inner", suffixes=("", "_c"))
    if rows.empty:
        return pd.DataFrame()
    c = {s: rows[f"{s}_c"].to_numpy(float) for s in STAT_COLUMNS}
    t = {s: rows[s].to_numpy(float) for s in STAT_COLUMNS}
    r = compare_ratios(c, t, alpha=ALPHA, sequential=True, tuning_n=n_star)
    out = rows[["bucket", *keys]].copy()
    out["users_control"], out["users_treatment"] = c["n"].astype(int), t["n"].astype(int)
    fields = {
        "control": r.control, "treatment": r.treatment, "abs_diff": r.diff, "diff_low": r.diff_low,
        "diff_high": r.diff_high, "rel_lift": r.rel_lift, "rel_low": r.rel_low, "rel_high": r.rel_high,
        "fieller_low": r.rel_low_fieller, "fieller_high": r.rel_high_fieller,
        "seq_low": r.seq_rel_low, "seq_high": r.seq_rel_high, "seq_diff_low": r.seq_low,
        "seq_diff_high": r.seq_high,
        # One statistic per claim: the p-values shown beside the relative intervals are those of
        # the relative tests (docs/statistics.md); the difference's own are kept beside its interval.
        "pvalue": r.rel_pvalue, "seq_pvalue": r.seq_rel_pvalue,
        "diff_pvalue": r.pvalue, "seq_diff_pvalue": r.seq_pvalue,
    }
    for name, values in fields.items():
        out[name] = np.atleast_1d(values)
    out["reason"] = np.atleast_1d(r.reason)
    return out
