"""Lift vs control tile (docs/statistics.md): every treatment arm × outcome metric (× slice value).

The outcome metrics are those the experiment names (``primary_metric``, ``secondary_metrics``,
ratio ``guardrail_metrics``; :attr:`expkit.config.ExperimentConfig.outcome_metrics`), from its
metric catalogue.

Per comparison: absolute difference with its interval, relative lift with delta-method and
Fieller intervals, the fixed-horizon p-value of the relative lift, its Benjamini–Hochberg
adjustment over every comparison the tile shows, and the always-valid (confidence-sequence)
interval and p-value of the relative lift, all from :func:`expkit.stats.compare_ratios` on
per-user sums. Each p-value is that of the interval shown beside it (``diff_pvalue`` is the
difference's).

The always-valid results use the mixture tuning ``N*`` of the experiment parameters
(``sequential_tuning_n`` of the parameters file).
It must be fixed before the experiment starts: tuning it on the data seen breaks the
any-time guarantee.

Outcome per arm and metric: ``win``, ``loss`` or ``inconclusive`` by where the always-valid
interval lies in the metric's good ``direction`` (catalogue), ``untrustworthy`` for an arm with
a sample ratio mismatch; the card shows the most severe over arms, never a bare "OK".

Segments whose effect differs (docs/readout.md, "Segments"): for every outcome metric, every
user-attribute slice the experiment lists (``slices``: cohort, region, client) and every value of
it with at least :data:`SEGMENT_MIN_USERS` users per arm, the value's relative lift is tested
against the lift of the rest of the population (:func:`expkit.stats.segment_interaction`), with
Benjamini–Hochberg over all these tests; the values with an adjusted p-value below 0.05 are
listed in ``headline["segments"]`` and get a note.

Status: ``breach`` when an arm has a sample ratio mismatch in the window (its lifts are
untrustworthy), ``warn`` when a metric is worse than control under the always-valid interval
(which stays valid however often the report is read), ``ok`` otherwise, ``no_data`` when no
comparison can be made.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from expkit.charts import forest_chart
from expkit.errors import ExpkitError
from expkit.estimates import compare_frame
from expkit.readers import USER_ATTRIBUTES, ratio_stats_table
from expkit.stats import adjust_pvalues, srm_test
from expkit.tiles.arms import (
    ALL_SLICES,
    arm_level,
    lift_metrics,
    metrics_for,
    shown_treatments,
    tuning_n,
    with_all_arms,
)
from expkit.tiles.base import TileParams, TileResult
from expkit.tiles.common import capped_metrics, data_as_of, no_data_result
from expkit.tiles.segments import (
    SEGMENT_ALPHA,
    SEGMENT_MIN_USERS,
    segment_frame,
    segment_note,
    segment_scope,
    segment_slices,
    segment_stats,
)
from expkit.tiles.srm import SrmCheck, srm_check, srm_label

LIFT_SLICES = ALL_SLICES
TABLE_COLUMNS = [
    "bucket", "metric", "slice_value", "users_control", "users_treatment", "control", "treatment", "abs_diff",
    "diff_low", "diff_high", "rel_lift", "rel_low", "rel_high", "fieller_low", "fieller_high", "pvalue", "adj_pvalue",
    "seq_low", "seq_high", "seq_pvalue", "cuped", "variance_reduction", "untrustworthy", "reason",
]
"""The columns of the tile's table (:func:`lift_frame` has a few more)."""


def _slice_srm(frame: pd.DataFrame, p: TileParams) -> np.ndarray:
    """Per row of a user-attribute slice: SRM of the slice value's users (treatment vs control)."""
    cfg = p.config
    flags = np.zeros(len(frame), dtype=bool)
    rows = frame["slice_value"].ne("all").to_numpy() & (p.slice in USER_ATTRIBUTES)
    if rows.any():
        counts = frame.loc[rows, ["users_control", "users_treatment"]].to_numpy(float)
        shares = np.array([[cfg.buckets[cfg.control], cfg.buckets[a]] for a in frame.loc[rows, "bucket"]])
        flags[rows] = srm_test(counts, shares / shares.sum(axis=1, keepdims=True), cfg.srm_pvalue_threshold).flag
    return flags


def lift_frame(
    p: TileParams, check: SrmCheck | None = None, segment_stats: dict[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """Every comparison the tile shows: the overall rows (``slice_value == "all"``) and, when
    sliced, one row per slice value; with ``adj_pvalue`` (BH over all rows), ``srm`` (the arm's
    window SRM as in ``check``, or the slice value's own) and ``untrustworthy``.

    ``segment_stats`` (of :func:`segment_stats`) saves reading the tile's slice again when it
    is one of them."""
    control, treatments, n_star = p.config.control, shown_treatments(p), tuning_n(p)
    if not treatments:
        raise ExpkitError(
            f"the lift tile compares treatment arms with the control {control!r}; parameter buckets/filters "
            f"leave no treatment arm (experiment arms: {list(p.config.buckets)})"
        )
    metrics = lift_metrics(p)
    reads = [(arm_level(p), metrics)] + ([(p, metrics_for(p, p.slice))] if p.slice != "bucket" else [])
    known = segment_stats or {}

    def stats(q: TileParams, ms: list[str]) -> pd.DataFrame:
        if q.slice in known and ms == metrics and with_all_arms(q) == segment_scope(p, q.slice):
            return known[q.slice]
        return ratio_stats_table(with_all_arms(q), ms)

    parts = [compare_frame(stats(q, ms), control, treatments, n_star) for q, ms in reads]
    parts = [f for f in parts if not f.empty]
    if not parts:
        return pd.DataFrame()
    frame = pd.concat(parts, ignore_index=True)
    order = {m: i for i, m in enumerate(metrics)}
    frame = frame.assign(_o=frame["metric"].map(order), _all=frame["slice_value"].ne("all")).sort_values(
        ["bucket", "_o", "_all", "slice_value"]).drop(columns=["_o", "_all"]).reset_index(drop=True)
    frame["adj_pvalue"] = adjust_pvalues(frame["pvalue"].to_numpy(float), "bh")
    arm_srm = (check or srm_check(p)).flags
    frame["arm_srm"] = [bool(arm_srm.get(a, False)) for a in frame["bucket"]]
    frame["srm"] = frame["arm_srm"] | _slice_srm(frame, p)
    frame["untrustworthy"] = frame["srm"]
    return frame


def outcome(seq_low: float, seq_high: float, direction: str) -> str:
    """``win``, ``loss`` or ``inconclusive``: where the always-valid interval of the relative lift
    lies, read in the metric's good ``direction`` (it stays valid however often it is read).

    >>> outcome(0.01, 0.09, "increase"), outcome(0.01, 0.09, "decrease"), outcome(-0.02, 0.05, "increase")
    ('win', 'loss', 'inconclusive')
    """
    if not (np.isfinite(seq_low) and np.isfinite(seq_high)):
        return "inconclusive"
    sign = 1.0 if direction == "increase" else -1.0
    low, high = sorted((sign * seq_low, sign * seq_high))
    return "win" if low > 0 else "loss" if high < 0 else "inconclusive"


def lift_status(frame: pd.DataFrame, directions: dict[str, str]) -> str:
    """``breach`` on SRM, ``warn`` on an always-valid significant loss in a metric's good
    direction (overall rows), else ``ok``."""
    overall = frame[frame["slice_value"] == "all"]
    if overall["pvalue"].isna().all():
        return "no_data"
    if overall["arm_srm"].any():
        return "breach"
    losses = [outcome(r.seq_low, r.seq_high, directions[r.metric]) == "loss" for r in overall.itertuples()]
    return "warn" if any(losses) else "ok"


def lift_tile(p: TileParams) -> TileResult:
    """Build the lift tile for parameters ``p``."""
    title = "Lift vs control"
    check = srm_check(p)
    seg_stats = segment_stats(p)
    frame = lift_frame(p, check, seg_stats)
    if frame.empty or frame["pvalue"].isna().all():
        return no_data_result(p, "lift", "outcomes", title,
                              f"no comparable arms in the {p.window} window ending {p.event_date}")
    cat = p.config.catalogue
    directions = {m: cat[m].direction for m in set(frame["metric"])}
    status = lift_status(frame, directions)
    metrics = lift_metrics(p)
    primary = p.config.primary_metric if p.config.primary_metric in metrics else metrics[0]
    overall = frame[frame["slice_value"] == "all"]
    keep = ["rel_lift", "rel_low", "rel_high", "fieller_low", "fieller_high", "pvalue", "adj_pvalue", "seq_low",
            "seq_high", "seq_pvalue", "abs_diff", "diff_low", "diff_high", "control", "treatment", "reason"]
    arms = {}
    for arm, rows in overall.groupby("bucket", sort=False):
        metrics = {r["metric"]: {**{k: r[k] for k in keep}, "cuped": bool(r["cuped"]),
                                 "variance_reduction": float(r["variance_reduction"]),
                                 "outcome": outcome(r["seq_low"], r["seq_high"], directions[r["metric"]])}
                   for r in rows.to_dict("records")}
        head = metrics.get(primary, {})
        untrustworthy = bool(check.flags.get(arm, False))
        arms[arm] = {
            "metric": primary, "estimate": head.get("rel_lift"), "low": head.get("rel_low"),
            "high": head.get("rel_high"), "seq_low": head.get("seq_low"), "seq_high": head.get("seq_high"),
            "outcome": "untrustworthy" if untrustworthy else head.get("outcome", "inconclusive"),
            "untrustworthy": untrustworthy, "srm_pvalue": check.arm_pvalue.get(arm),
            "metrics": metrics,
        }
    caps = capped_metrics(p, lift_metrics(p))
    for a in arms.values():
        for mid, cap in caps.items():
            if mid in a["metrics"]:
                a["metrics"][mid]["cap"] = cap.to_dict()
    segments = segment_frame(seg_stats, p.config.control, shown_treatments(p))
    flagged = segments[segments["adj_pvalue"] < SEGMENT_ALPHA].sort_values("adj_pvalue")
    seg_keys = ["bucket", "metric", "slice", "value", "rel_lift", "rest_rel_lift", "pvalue", "adj_pvalue"]
    headline = {
        "control": p.config.control, "window": p.window, "arms": arms, "tuning_n": tuning_n(p),
        "adjustment": f"Benjamini–Hochberg over the {len(frame)} comparisons shown",
        "interval": "relative lift, delta method 95%; always-valid: asymptotic confidence sequence 95%; "
                    "CUPED-adjusted (pre-period covariate) where the metric has pre-period data",
        "srm_pvalue": check.pvalue,
        "srm": any(a["untrustworthy"] for a in arms.values()),
        "outcome": _worst_outcome([a["outcome"] for a in arms.values()]),
        "segments": flagged[seg_keys].to_dict("records"),
        "segment_tests": int(segments["pvalue"].notna().sum()),
        "segment_adjustment": f"Benjamini–Hochberg over the {int(segments['pvalue'].notna().sum())} segment-vs-rest "
                              f"tests (slices {', '.join(segment_slices(p)) or 'none'}; values with at least "
                              f"{SEGMENT_MIN_USERS} users per arm); flagged when adjusted p < {SEGMENT_ALPHA}",
    }
    summary = "; ".join(
        f"{srm_label(arm, a['untrustworthy'])}: {a['outcome']}, {a['metric']} {_pct(a['estimate'])} "
        f"[{_pct(a['low'])}, {_pct(a['high'])}], always-valid [{_pct(a['seq_low'])}, {_pct(a['seq_high'])}]"
        + _cuped_note(a["metrics"].get(primary, {}))
        for arm, a in arms.items()
    )
    notes = [n for n in [check.note()] if n]
    sliced_bad = frame[frame["srm"] & ~frame["arm_srm"]]
    if not sliced_bad.empty:
        values = sorted(set(sliced_bad["slice_value"]))
        notes.append(f"UNTRUSTWORTHY: sample ratio mismatch within {p.slice} = {', '.join(values)}")
    notes += [segment_note(r) for r in flagged.to_dict("records")]
    notes += [c.note() for c in caps.values()]
    return TileResult(
        tile=p.tile, section="outcomes", title=title, status=status, headline=headline, summary=summary,
        table=frame[TABLE_COLUMNS], charts=[_forest(frame, p)], params=p.describe(), as_of=data_as_of(p),
        experiment_id=p.config.experiment_id, notes=notes,
    )


OUTCOMES = ("untrustworthy", "loss", "win", "inconclusive")
"""A lift card's outcomes, most severe first (the card shows the most severe over arms)."""


def _worst_outcome(outcomes: list[str]) -> str:
    return min(outcomes, key=OUTCOMES.index) if outcomes else "inconclusive"


def _cuped_note(m: dict[str, object]) -> str:
    """`` (CUPED: variance −38%)`` when the metric's interval is CUPED-adjusted, else empty."""
    vr = m.get("variance_reduction")
    if not m.get("cuped") or not isinstance(vr, float) or not np.isfinite(vr):
        return ""
    return f" (CUPED: variance {-vr:+.0%})"


def _pct(v: float | None) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:+.1%}"


def _forest(frame: pd.DataFrame, p: TileParams) -> object:
    titles = {m: p.config.catalogue[m].title for m in lift_metrics(p)}
    label = [titles[m] + ("" if v == "all" else f" · {v}") for m, v in zip(frame["metric"], frame["slice_value"],
                                                                          strict=True)]
    data = frame.assign(row=label, arm=[srm_label(a, f) for a, f in zip(frame["bucket"], frame["srm"], strict=True)])
    return forest_chart(
        data, label="row", estimate="rel_lift", low="rel_low", high="rel_high", outer_low="seq_low",
        outer_high="seq_high", color="arm", flag="untrustworthy",
        title=f"Relative lift vs {p.config.control} ({p.window}): thick 95% delta method, thin always-valid"
              + (" (CUPED-adjusted)" if frame["cuped"].any() else "") + "; red ring: untrustworthy (SRM)",
    )
