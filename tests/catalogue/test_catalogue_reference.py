"""The example metrics of the catalogue equal an independent pandas computation from the raw events.

``top3_ctr``, ``rec_play_share`` and ``plays_per_user`` (docs/metrics.md, "The metric catalogue")
and ``items_per_user`` (a ``count_distinct``) are added to the catalogue as YAML only
(``tests/catalogue/metrics.yaml``); the rollups and the readers compute them with no metric-specific
code. The reference here reads the event Parquet files with pandas and applies the documented
semantics: per user and UTC day (a click or save is attributed to an impression of the same day,
a ``count_distinct`` counts distinct values per day), summed over the window's days; the user's arm
and attributes are those of their first request in the window; ``denominator: users`` counts each
exposed user once. Windows 1h (the ``user_last_hour`` rollup), 24h and 7d, slices per arm, per region
(a user attribute) and per genre (an impression attribute). Sums are integers, so the
delta-method sums must be equal exactly.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from catalogue_support import END, Built

from expkit.readers import STAT_COLUMNS, ratio_stats
from expkit.schema import SLICE_COLUMNS
from expkit.tiles.base import resolve_params
from expkit.warehouse import Warehouse, day_bounds_ms

METRICS = ("top3_ctr", "rec_play_share", "plays_per_user", "items_per_user")
WINDOW_DAYS = {"24h": 1, "7d": 7}
HOUR_MS = 3_600_000


def _events(wh: Warehouse, table: str, days: list[dt.date], last_hour: bool = False) -> pd.DataFrame:
    """Non-shadow events of ``days`` (or of the last hour of the last day)."""
    files = [f for d in days for f in wh.event_files(table, d)]
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    lo, hi = day_bounds_ms(days[0])[0], day_bounds_ms(days[-1])[1]
    lo = hi - HOUR_MS if last_hour else lo
    return df[~df["shadow"] & (df["timestamp_ms"] >= lo) & (df["timestamp_ms"] < hi)]


def _day_facts(wh: Warehouse, day: dt.date, metric: str, by: str | None, last_hour: bool = False) -> pd.DataFrame:
    """Per user (and ``by`` value) of one day (or its last hour): num, den of ``metric``; only users
    with a request in that span."""
    users = set(_events(wh, "requests", [day], last_hour)["user_id"])
    if metric == "top3_ctr":
        imp = _events(wh, "impressions", [day], last_hour)
        clicks = _events(wh, "clicks", [day], last_hour)
        clicked = set(zip(clicks["request_id"], clicks["item_id"], strict=True))
        imp = imp.assign(
            clicked=[(r, i) in clicked for r, i in zip(imp["request_id"], imp["item_id"], strict=True)],
            top3=imp["position"].isin([1, 2, 3]),
        )
        imp = imp.assign(num=(imp["clicked"] & imp["top3"]).astype(int), den=imp["top3"].astype(int))
        keys = ["user_id"] + ([by] if by else [])
        facts = imp.groupby(keys, dropna=False)[["num", "den"]].sum().reset_index()
    else:
        assert by is None, "a plays metric has no impression-attribute slices"
        plays = _events(wh, "plays", [day], last_hour)
        g = plays.groupby("user_id")
        facts = pd.DataFrame({
            "num": {"rec_play_share": g["source"].apply(lambda s: int((s == "rec").sum())),
                    "plays_per_user": g.size(), "items_per_user": g["item_id"].nunique()}[metric],
            "den": g.size() if metric == "rec_play_share" else 0,
        }).reset_index()
    return facts[facts["user_id"].isin(users)]


def reference(wh: Warehouse, metric: str, window: str, slice_: str) -> pd.DataFrame:
    """n and the delta-method sums per arm and slice value, from the raw events."""
    hour = window == "1h"
    days = [END - dt.timedelta(days=i) for i in range(WINDOW_DAYS.get(window, 1) - 1, -1, -1)]
    days = [d for d in days if wh.event_files("requests", d)]
    req = _events(wh, "requests", days, hour).sort_values("timestamp_ms", kind="stable")
    first = req.groupby("user_id").first()[["bucket", "region"]]
    by = slice_ if slice_ in ("surface", "genre", "provider") else None
    facts = pd.concat([_day_facts(wh, d, metric, by, hour) for d in days], ignore_index=True)
    keys = ["user_id"] + ([by] if by else [])
    per_user = facts.groupby(keys, dropna=False)[["num", "den"]].sum().reset_index()
    if by is None:  # every exposed user is a unit, with zeros when the metric has no event of theirs
        per_user = first[[]].reset_index().merge(per_user, on="user_id", how="left").fillna(0)
    if metric in ("plays_per_user", "items_per_user"):
        per_user["den"] = 1.0
    per_user = per_user.merge(first, left_on="user_id", right_index=True)
    value = {"bucket": None, "region": "region"}.get(slice_, by)
    per_user["slice_value"] = per_user[value] if value else "all"
    per_user = per_user.assign(num2=per_user["num"] ** 2, den2=per_user["den"] ** 2,
                               numden=per_user["num"] * per_user["den"])
    out = per_user.groupby(["bucket", "slice_value"], dropna=False).agg(
        n=("user_id", "size"), sum_num=("num", "sum"), sum_den=("den", "sum"), sum_num2=("num2", "sum"),
        sum_den2=("den2", "sum"), sum_numden=("numden", "sum")).reset_index()
    return out.sort_values(["slice_value", "bucket"]).reset_index(drop=True)


def expkit_stats(built: Built, metric: str, window: str, slice_: str) -> pd.DataFrame:
    p = resolve_params(metric, SLICE_COLUMNS, event_date=END, window=window, slice=slice_,
                       params_file=built.params_file, warehouse=built.warehouse.root)
    return ratio_stats(p, metric).sort_values(["slice_value", "bucket"]).reset_index(drop=True)


CASES = [(m, w, s) for m in METRICS for w in WINDOW_DAYS for s in ("bucket", "region")]
CASES += [("top3_ctr", w, "genre") for w in WINDOW_DAYS]
CASES += [(m, "1h", "bucket") for m in METRICS]


@pytest.mark.parametrize(("metric", "window", "slice_"), CASES)
def test_example_metric_equals_pandas(built: Built, metric: str, window: str, slice_: str) -> None:
    want = reference(built.warehouse, metric, window, slice_)
    got = expkit_stats(built, metric, window, slice_)
    assert len(want) > 1 and (want["sum_num"] > 0).mean() > 0.5  # not a vacuous comparison
    assert list(got["bucket"]) == list(want["bucket"])
    assert list(got["slice_value"].fillna("<null>")) == list(want["slice_value"].fillna("<null>"))
    np.testing.assert_array_equal(got[STAT_COLUMNS].to_numpy(float), want[STAT_COLUMNS].to_numpy(float))


def test_count_distinct_is_per_day_over_several_days(built: Built) -> None:
    """docs/metrics.md: a count_distinct of a multi-day window sums each day's distinct count, so an
    item played on two days counts twice; over one day it is the exact distinct count."""
    one_day = expkit_stats(built, "items_per_user", "24h", "bucket")
    plays = _events(built.warehouse, "plays", [END])
    users = set(_events(built.warehouse, "requests", [END])["user_id"])
    exact = plays[plays["user_id"].isin(users)].groupby("user_id")["item_id"].nunique().sum()
    assert one_day["sum_num"].sum() == exact
    week = expkit_stats(built, "items_per_user", "7d", "bucket")
    per_day = 0
    for day in [END - dt.timedelta(days=i) for i in range(3)]:
        plays = _events(built.warehouse, "plays", [day])
        users = set(_events(built.warehouse, "requests", [day])["user_id"])
        per_day += plays[plays["user_id"].isin(users)].groupby("user_id")["item_id"].nunique().sum()
    assert week["sum_num"].sum() == per_day
