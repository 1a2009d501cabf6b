"""Novelty and primacy tile: the lift by days since first exposure (docs/statistics.md, "Novelty and primacy").

Over the experiment to date (``cum``), per outcome metric the experiment lists (per-day sums:
every ratio metric but Recall@K) and treatment arm: the relative lift with its 95% interval at
each exposure age (day 0, 1, …, the tail from :data:`expkit.rollup.EXPOSURE_TAIL_DAYS` days on
grouped) and the user-clustered test of a linear trend of the lift over the age
(:func:`expkit.stats.exposure_trend`). A significant trend that brings the lift towards 0 is
``decaying``: the early lift overstates the lasting one (novelty, or primacy when it starts
negative).

``headline["metrics"]``: one record per metric and arm with ``ages`` (labels), ``rel_lift``,
``low``, ``high`` (lists, one per age), ``slope``, ``slope_low``, ``slope_high``, ``pvalue``,
``adj_pvalue`` (Benjamini–Hochberg over the metrics and arms) and ``verdict`` (``decaying``,
``growing``, ``none``, judged on ``adj_pvalue``). :func:`novelty_tile` is the public entry
(``expkit.api.compute_tile("novelty", ...)``).

Status: ``warn`` when a metric's lift has a significant trend, ``ok`` otherwise, ``no_data``
before any user of the experiment or without the ``exposure_stats`` rollup.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from expkit.charts import forest_chart
from expkit.errors import ExpkitError
from expkit.rollup import EXPOSURE_TAIL_DAYS
from expkit.tiles.arms import shown_treatments
from expkit.tiles.base import TileParams, TileResult
from expkit.tiles.common import data_as_of, no_data_result
from expkit.tiles.exposure import NOVELTY_ALPHA, Novelty, novelty, novelty_note

TITLE = "Novelty and primacy"
WINDOW = "cum"
"""The lift by exposure age is read over the experiment to date."""


def check_novelty_params(p: TileParams) -> None:
    """The tile reads every user of the experiment: a filter other than on ``bucket`` is refused."""
    other = sorted(set(p.filters) - {"bucket"})
    if other:
        raise ExpkitError(f"parameter filters: the novelty tile reads every user of the experiment and cannot "
                          f"filter on {', '.join(other)}; choose the arms shown with -p buckets=... instead")


def _json(v: Any) -> Any:
    return None if isinstance(v, float) and not np.isfinite(v) else v


def _headline(p: TileParams, n: Novelty) -> dict[str, Any]:
    records = []
    for t in n.trends.to_dict("records"):
        ages = n.ages[(n.ages["metric"] == t["metric"]) & (n.ages["bucket"] == t["bucket"])]
        records.append({
            "metric": t["metric"], "bucket": t["bucket"], "ages": list(ages["label"]),
            "rel_lift": [_json(float(v)) for v in ages["rel_lift"]],
            "low": [_json(float(v)) for v in ages["rel_low"]], "high": [_json(float(v)) for v in ages["rel_high"]],
            **{k: _json(float(t[k])) for k in ("slope", "slope_low", "slope_high", "pvalue", "adj_pvalue")},
            "verdict": t["verdict"], "reason": t["reason"],
        })
    return {
        "control": p.config.control, "window": WINDOW, "tail_days": EXPOSURE_TAIL_DAYS, "alpha": NOVELTY_ALPHA,
        "metrics": records, "trends": [r for r in records if r["verdict"] != "none"],
        "method": "relative lift per days since first exposure (delta method 95%); trend: weighted least-squares "
                  "slope of the lift over the age, user-clustered standard error, two-sided z test, "
                  "Benjamini–Hochberg over the metrics and arms",
    }


def _chart(n: Novelty, p: TileParams) -> object:
    titles = {m: p.config.catalogue[m].title for m in set(n.ages["metric"])}
    data = n.ages.assign(row=[f"{titles[m]} · day {lab}" for m, lab in zip(n.ages["metric"], n.ages["label"],
                                                                             strict=True)])
    return forest_chart(data, label="row", estimate="rel_lift", low="rel_low", high="rel_high", color="bucket",
                        title=f"Relative lift vs {p.config.control} by days since first exposure "
                              "(experiment to date; 95% delta method)")


def novelty_tile(p: TileParams) -> TileResult:
    """Build the novelty tile for parameters ``p`` (the lift by exposure age and its trend)."""
    n = novelty(p, shown_treatments(p))
    if n.empty or n.ages["rel_lift"].isna().all():
        return no_data_result(p, "novelty", "outcomes", TITLE,
                              f"no lift by exposure age from {p.config.start_date} to {p.event_date} "
                              "(no users in both arms, or no exposure_stats rollup for the day)")
    titles = {m: p.config.catalogue[m].title for m in set(n.trends["metric"])}
    found = n.trends[n.trends["verdict"] != "none"].sort_values("pvalue")
    notes = [novelty_note(r, titles[r["metric"]]) for r in found.to_dict("records")]
    undefined = n.trends[n.trends["reason"] != ""]
    notes += [f"{titles[r.metric]} ({r.bucket}): no trend test: {r.reason}" for r in undefined.itertuples()]
    summary = "; ".join(notes[: len(found)]) if len(found) else (
        "no trend of the lift over days since first exposure (adjusted p ≥ "
        f"{NOVELTY_ALPHA:g} for every metric)")
    table = n.ages.merge(n.trends[["metric", "bucket", "slope", "slope_low", "slope_high", "verdict"]].rename(
        columns={"verdict": "trend"}), on=["metric", "bucket"])
    return TileResult(
        tile=p.tile, section="outcomes", title=TITLE, status="warn" if len(found) else "ok",
        headline=_headline(p, n), summary=summary, table=pd.DataFrame(table), charts=[_chart(n, p)],
        params=p.describe(), as_of=data_as_of(p), experiment_id=p.config.experiment_id, notes=notes,
    )
