"""Segments whose effect differs (docs/readout.md, "Segments"): shared by the lift tile and the readout.

For every outcome metric, every user-attribute slice the experiment lists (``slices``: cohort,
region, client) and every value of it with at least :data:`SEGMENT_MIN_USERS` users per arm, the
value's relative lift is tested against the lift of the rest of the population
(:func:`expkit.stats.segment_interaction`), with Benjamini–Hochberg over all these tests; the
values with an adjusted p-value below :data:`SEGMENT_ALPHA` are flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from expkit.readers import STAT_COLUMNS, USER_ATTRIBUTES, ratio_stats_table
from expkit.stats import adjust_pvalues, segment_interaction
from expkit.tiles.arms import arm_level, lift_metrics, with_all_arms
from expkit.tiles.base import TileParams

__all__ = ["SEGMENT_ALPHA", "SEGMENT_COLUMNS", "SEGMENT_KEYS", "SEGMENT_MIN_USERS", "flagged_segments", "segment_frame",
           "segment_note", "segment_scope", "segment_slices", "segment_stats"]

SEGMENT_COLUMNS = ["bucket", "metric", "slice", "value", "users_control", "users_treatment", "rel_lift",
                   "rest_rel_lift", "difference", "se", "pvalue", "adj_pvalue", "reason"]
"""The columns of :func:`segment_frame`."""

SEGMENT_ALPHA = 0.05
"""Level of the Benjamini–Hochberg adjusted p-value under which a segment is flagged."""

SEGMENT_MIN_USERS = 1000
"""Users per arm a slice value (and the rest) needs to be tested; smaller ones are left out
(docs/statistics.md, "Segments whose effect differs": below this the test rejects too often)."""


def segment_slices(p: TileParams) -> list[str]:
    """The experiment's slices whose values partition the users (user attributes), in its order."""
    return [s for s in p.config.slices if s in USER_ATTRIBUTES]


def segment_scope(p: TileParams, slice_: str) -> TileParams:
    """The read behind the segment tests of ``slice_``: every arm, the tile's user-attribute filters."""
    return with_all_arms(replace(arm_level(p), slice=slice_))


def segment_stats(p: TileParams) -> dict[str, pd.DataFrame]:
    """Per segment slice, the per-user sums of every outcome metric per arm and slice value (one read each)."""
    return {s: ratio_stats_table(segment_scope(p, s), lift_metrics(p)) for s in segment_slices(p)}


def segment_frame(stats: dict[str, pd.DataFrame], control: str, treatments: list[str]) -> pd.DataFrame:
    """Every slice value's lift against the rest's, per treatment arm and metric (:data:`SEGMENT_COLUMNS`).

    ``stats`` maps a user-attribute slice to its per-value sums (:func:`segment_stats`); an arm's
    totals are the sums over the slice's values, the rest is the totals minus the value's.
    ``adj_pvalue``: Benjamini–Hochberg over every row.
    """
    parts = []
    for slice_, frame in stats.items():
        if frame.empty:
            continue
        keys = ["metric", "bucket"]
        totals = frame.groupby(keys, as_index=False)[STAT_COLUMNS].sum()
        sums = frame.merge(totals, on=keys, suffixes=("", "_total"))
        ctl = sums[sums["bucket"] == control].drop(columns="bucket")
        rows = sums[sums["bucket"].isin(treatments)].merge(ctl, on=["metric", "slice_value"], suffixes=("", "_c"))
        if rows.empty:
            continue

        def arm(suffix: str, rows: pd.DataFrame = rows) -> dict[str, np.ndarray]:
            return {k: rows[k + suffix].to_numpy(float) for k in STAT_COLUMNS}

        r = segment_interaction(arm("_c"), arm("_total_c"), arm(""), arm("_total"), min_users=SEGMENT_MIN_USERS)
        out = pd.DataFrame({
            "bucket": rows["bucket"].to_numpy(), "metric": rows["metric"].to_numpy(), "slice": slice_,
            "value": rows["slice_value"].astype(str).to_numpy(), "users_control": rows["n_c"].astype(int).to_numpy(),
            "users_treatment": rows["n"].astype(int).to_numpy(),
        })
        for name in ("rel_lift", "rest_rel_lift", "difference", "se", "pvalue", "reason"):
            out[name] = np.atleast_1d(getattr(r, name))
        parts.append(out)
    if not parts:
        return pd.DataFrame(columns=SEGMENT_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    out["adj_pvalue"] = adjust_pvalues(out["pvalue"].to_numpy(float), "bh")
    return out[SEGMENT_COLUMNS]


def segment_note(row: Mapping[Any, Any]) -> str:
    """The tile's line for a flagged segment.

    >>> segment_note({"slice": "region", "value": "eu", "rel_lift": 0.15, "rest_rel_lift": 0.03,
    ...               "adj_pvalue": 0.0041, "metric": "ctr", "bucket": "treatment"})
    'effect differs in region=eu: +15.0% vs +3.0% elsewhere, adjusted p = 0.004 (ctr, treatment)'
    """
    return (f"effect differs in {row['slice']}={row['value']}: {_pct(row['rel_lift'])} vs "
            f"{_pct(row['rest_rel_lift'])} elsewhere, adjusted p = {_pval(row['adj_pvalue'])} "
            f"({row['metric']}, {row['bucket']})")


def _pval(v: float) -> str:
    return f"{v:.3f}" if v >= 0.001 else f"{v:.1e}"


SEGMENT_KEYS = ["bucket", "metric", "slice", "value", "rel_lift", "rest_rel_lift", "pvalue", "adj_pvalue"]
"""The fields of a flagged segment in summary.json (``tiles.lift.headline.segments``)."""


def flagged_segments(segments: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`segment_frame` flagged (adjusted p-value below :data:`SEGMENT_ALPHA`), largest
    evidence first."""
    return segments[segments["adj_pvalue"] < SEGMENT_ALPHA].sort_values("adj_pvalue")


def _pct(v: float | None) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:+.1%}"
