"""Outcome tiles against the generator's truth, and the incidents that must show (docs/metrics.md)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from outcomes_support import END, OUTCOME_IDS, RATIO_IDS, Built

from expkit.tiles.allocation import Allocation
from expkit.tiles.arms import USER_SLICES
from expkit.tiles.base import headline_of, resolve_params
from expkit.tiles.lift import Lift
from expkit.tiles.ratio import Ratio
from expkit.tiles.srm import srm_flags
from expkit.tiles.timeline import Timeline


def _covers(low: float, high: float, value: float) -> bool:
    return low <= value <= high


# The truth of recall and session depth is one day of the model (truth.json: truth_method); over
# several days recall also counts items shown on an earlier day than their first play, so its 7-day
# value is checked exactly against the raw events instead (test_recall_multi_day_definition).
COVERED = [("24h", m) for m in RATIO_IDS] + [("7d", "ctr"), ("7d", "save_rate"), ("7d", "session_depth")]


@pytest.mark.parametrize(("window", "metric"), COVERED)
def test_ratio_interval_covers_truth(clean: Built, window: str, metric: str) -> None:
    """Each arm's 95% delta-method interval covers the generator's true value of the metric."""
    result = clean.run(metric, window=window)
    # the compute step's typed result is what the headline shows, sums under their metric's names
    assert isinstance(result.result, Ratio) and result.headline == headline_of(result.result)
    for arm, a in result.headline["arms"].items():
        assert result.result.arms[arm].estimate == a["estimate"] and result.result.arms[arm].sums == {
            k: a[k] for k in result.result.arms[arm].sums}
        truth = clean.truth["metrics"][metric][arm]
        z = (a["estimate"] - truth) / a["se"]
        assert _covers(a["low"], a["high"], truth), f"{metric} {window} {arm}: truth {truth:.6g}, z = {z:.2f}"
        assert a["wilson_low"] < a["estimate"] < a["wilson_high"] or metric == "session_depth"


@pytest.mark.parametrize("window", ["24h", "7d"])
def test_lift_covers_true_lift(clean: Built, window: str) -> None:
    """The relative-lift interval of every metric covers truth.json's metric_lift; the CTR lift
    (+30% propensity) is found by the fixed-horizon test and by the always-valid interval."""
    arm = clean.run("lift", window=window).headline["arms"]["treatment"]
    for metric, v in arm["metrics"].items():
        truth = clean.truth["metric_lift"][metric]["treatment"]
        assert _covers(v["rel_low"], v["rel_high"], truth), f"{metric} {window}: {v} vs {truth}"
        assert v["seq_low"] <= v["rel_low"] and v["rel_high"] <= v["seq_high"]
        assert v["adj_pvalue"] >= v["pvalue"]
    assert arm["metrics"]["ctr"]["pvalue"] < 0.001 and arm["metrics"]["ctr"]["seq_low"] > 0
    assert not arm["untrustworthy"]


def test_timeline_days_cover_truth_and_match_tiles(clean: Built) -> None:
    """Per-day intervals cover the truth on most days; the last day is the ratio tiles' 24h value;
    the cumulative lift of the last day equals the lift tile over the same days."""
    result = clean.run("timeline")
    # the compute step's typed result is what the headline shows
    assert isinstance(result.result, Timeline) and result.headline == headline_of(result.result)
    assert result.result.metrics["ctr"]["control"].estimate == result.headline["metrics"]["ctr"]["control"]["estimate"]
    values = result.table[result.table["kind"] == "value (24h)"]
    assert set(values["day"]) == {clean.first_day + dt.timedelta(days=i) for i in range(clean.days)}
    covered = [_covers(r.low, r.high, clean.truth["metrics"][r.metric][r.bucket]) for r in values.itertuples()]
    assert len(covered) == clean.days * 2 * len(RATIO_IDS)
    assert sum(covered) >= 0.85 * len(covered), values.to_string()
    ctr = clean.run("ctr").headline["arms"]
    for arm, v in result.headline["metrics"]["ctr"].items():
        assert v["estimate"] == pytest.approx(ctr[arm]["estimate"], rel=1e-12)
    lift = clean.run("lift", window="7d").headline["arms"]["treatment"]["metrics"]
    cum = result.headline["cumulative_lift"]["treatment"]
    for metric in RATIO_IDS:
        assert cum[metric]["rel_lift"] == pytest.approx(lift[metric]["rel_lift"], rel=1e-12)
        assert cum[metric]["seq_low"] == pytest.approx(lift[metric]["seq_low"], rel=1e-12)


def test_clean_warehouse_is_ok_everywhere(clean: Built) -> None:
    """Default parameters on healthy data: every outcome tile is ok, no arm flagged."""
    for tile in OUTCOME_IDS:
        result = clean.run(tile)
        assert result.status == "ok", (tile, result.summary, result.notes)
        assert not result.notes, (tile, result.notes)
    p = resolve_params("ctr", USER_SLICES, **clean.kwargs())
    assert srm_flags(p) == {"control": False, "treatment": False}


def test_traffic_imbalance_breaches_allocation_and_marks_lift(imbalance: Built) -> None:
    """30% of treatment users lost on the last day: allocation breaches, the lift tile marks the
    arm untrustworthy (headline, notes, chart), and so does every other outcome tile."""
    alloc = imbalance.run("allocation")
    assert alloc.status == "breach" == alloc.result.status
    assert isinstance(alloc.result, Allocation) and alloc.headline == headline_of(alloc.result)
    assert alloc.result.arms["treatment"].deviation == alloc.headline["arms"]["treatment"]["deviation"]
    assert alloc.headline["srm"] and alloc.headline["srm_pvalue"] < 1e-6
    assert alloc.headline["arms"]["treatment"]["deviation"] > 0.10
    assert alloc.headline["srm_days"] == [END.isoformat()]  # the day before is clean

    lift = imbalance.run("lift")
    assert lift.status == "breach" == lift.result.status
    assert isinstance(lift.result, Lift) and lift.result.arms["treatment"].outcome == "untrustworthy"
    assert lift.headline["arms"]["treatment"]["untrustworthy"]
    assert lift.table["untrustworthy"].all()
    assert any("UNTRUSTWORTHY" in n for n in lift.notes)
    forest = lift.charts[0].to_dict()
    assert "treatment ⚠ SRM: untrustworthy" in {r.get("arm") for r in _datasets(forest)}

    p = resolve_params("ctr", USER_SLICES, **imbalance.kwargs())
    assert srm_flags(p)["treatment"]
    for tile in ("ctr", "recall", "session_depth", "save_rate", "timeline"):
        result = imbalance.run(tile)
        assert result.headline["arms"]["treatment"]["srm"], tile
        assert any("UNTRUSTWORTHY" in n for n in result.notes), tile


def test_ctr_collapse_breaches_ctr(collapse: Built) -> None:
    """Only 10% of clicks logged: CTR far below its 1% target; allocation is unaffected."""
    ctr = collapse.run("ctr")
    assert ctr.status == "breach" == ctr.result.status
    assert set(ctr.result.arms["control"].sums) == {"clicks", "impressions"} <= set(ctr.headline["arms"]["control"])
    assert all(a["estimate"] < 0.005 for a in ctr.headline["arms"].values())
    assert collapse.run("timeline").headline["metrics"]["ctr"]["control"]["status"] == "breach"
    assert collapse.run("allocation").status == "ok"


def test_multi_day_window_counts_each_user_once(clean: Built) -> None:
    """A 7-day window has one unit per user (first-exposure arm), not one per user-day."""
    users = {a: v["users"] for a, v in clean.run("ctr", window="7d").headline["arms"].items()}
    daily = {a: 0 for a in users}
    for i in range(clean.days):
        day = (END - dt.timedelta(days=i)).isoformat()
        for a, v in clean.run("ctr", window="24h", event_date=day).headline["arms"].items():
            daily[a] += v["users"]
    raw = duckdb.sql(
        f"SELECT bucket, count(*) AS n FROM (SELECT user_id, arg_min(bucket, timestamp_ms) AS bucket "
        f"FROM read_parquet('{clean.path}/events/requests/*/*.parquet') WHERE NOT shadow GROUP BY user_id) "
        "GROUP BY bucket"
    ).fetchall()
    assert users == dict(raw)
    assert all(users[a] < daily[a] for a in users)


def test_recall_multi_day_definition(clean: Built) -> None:
    """Recall@K over 7 days as docs/metrics.md defines it, from the raw events, equals the tile's: an item
    shown on one day and played on a later day is a hit, an item played on several days counts once,
    and "before the play" means before its first play in the window."""
    tile = clean.run("recall", window="7d").headline["arms"]
    ev = f"{clean.path}/events"
    rows = duckdb.sql(f"""
        WITH u AS (SELECT user_id, arg_min(bucket, timestamp_ms) AS bucket
                   FROM read_parquet('{ev}/requests/*/*.parquet') WHERE NOT shadow GROUP BY 1),
        p AS (SELECT user_id, item_id, min(timestamp_ms) AS t FROM read_parquet('{ev}/plays/*/*.parquet')
              WHERE NOT shadow GROUP BY 1, 2),
        s AS (SELECT user_id, item_id, min(timestamp_ms) AS t FROM read_parquet('{ev}/impressions/*/*.parquet')
              WHERE NOT shadow AND position <= {clean.truth["top_k"]} GROUP BY 1, 2)
        SELECT u.bucket, sum(CASE WHEN s.t < p.t THEN 1 ELSE 0 END) / count(*) AS recall
        FROM p JOIN u USING (user_id) LEFT JOIN s USING (user_id, item_id) GROUP BY 1""").fetchall()
    for arm, recall in rows:
        assert tile[arm]["estimate"] == pytest.approx(recall, rel=1e-9)


def _datasets(spec: dict) -> list[dict]:
    return [row for rows in spec.get("datasets", {}).values() for row in rows]
