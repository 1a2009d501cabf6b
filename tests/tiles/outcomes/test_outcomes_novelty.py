"""Novelty and primacy end to end (docs/statistics.md, "Novelty and primacy"): synthetic warehouses
with a planted decaying lift (docs/synthetic.md, ``--novelty``) and with a constant lift, rolled up,
through the novelty tile and the readout.

Reference for the tile's numbers: the per-user, per-exposure-age clicks and impressions computed
here with DuckDB from the raw events (first exposure: the user's first non-shadow request of the
experiment; a click counts on the day of its impression), then statsmodels ``WLS`` with the
cluster-robust covariance (groups = user, no small-sample correction) for the per-age ratios and
a second ``WLS`` of the lifts on the age for the slope, as tests/stats/test_stats_novelty.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import duckdb
import nbformat
import numpy as np
import pandas as pd
import papermill as pm
import pytest
import statsmodels.api as sm
from outcomes_support import END, Built, build

from expkit.charts import VEGALITE_MIME
from expkit.rollup import EXPOSURE_TAIL_DAYS
from expkit.tiles.base import headline_of
from expkit.tiles.novelty import NoveltyTrends
from expkit.tiles.registry import TILES
from expkit.warehouse import DAY_MS

DAYS = 8


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Built:
    # +40% on day 0 decaying to the base lift (+5%) with a half-life of 2 days
    return build(tmp_path_factory.mktemp("novelty"), days=DAYS, users=5000, seed=3, novelty=["treatment=0.4:2"])


@pytest.fixture(scope="module")
def segment(tmp_path_factory: pytest.TempPathFactory) -> Built:
    # no overall lift; +60% for the users in region eu only (enough users per arm in eu to be tested)
    return build(tmp_path_factory.mktemp("segment"), days=2, users=12000, seed=5, lift={"treatment": 0.0},
                 segment_lifts=["region=eu:0.6"])


@pytest.fixture(scope="module")
def constant(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("constant"), days=DAYS, users=3000, seed=8, lift={"treatment": 0.1})


def _user_ages(b: Built) -> pd.DataFrame:
    """Per user and exposure-age bucket: arm, clicks and impressions, straight from the events."""
    ev = b.path / "events"
    con = duckdb.connect()
    return con.execute(f"""
        WITH req AS (
            SELECT user_id, bucket, timestamp_ms, timestamp_ms // {DAY_MS} AS day
            FROM read_parquet('{ev}/requests/*/*.parquet') WHERE NOT shadow
        ),
        firsts AS (SELECT user_id, arg_min(bucket, timestamp_ms) AS bucket, min(day) AS first_day
                   FROM req GROUP BY user_id),
        seen AS (SELECT DISTINCT user_id, day FROM req),
        imp AS (SELECT user_id, request_id, item_id, timestamp_ms // {DAY_MS} AS day
                FROM read_parquet('{ev}/impressions/*/*.parquet') WHERE NOT shadow),
        clk AS (SELECT request_id, item_id, timestamp_ms // {DAY_MS} AS day, count(*) AS clicks
                FROM read_parquet('{ev}/clicks/*/*.parquet') WHERE NOT shadow GROUP BY ALL),
        per_day AS (
            SELECT s.user_id, s.day, count(i.item_id) AS impressions, coalesce(sum(c.clicks), 0) AS clicks
            FROM seen AS s
            LEFT JOIN imp AS i ON i.user_id = s.user_id AND i.day = s.day
            LEFT JOIN clk AS c ON c.request_id = i.request_id AND c.item_id = i.item_id AND c.day = i.day
            GROUP BY s.user_id, s.day
        )
        SELECT d.user_id, f.bucket, least(d.day - f.first_day, {EXPOSURE_TAIL_DAYS}) AS age,
               sum(d.clicks)::DOUBLE AS num, sum(d.impressions)::DOUBLE AS den
        FROM per_day AS d JOIN firsts AS f USING (user_id)
        GROUP BY ALL
    """).df()


@pytest.mark.slow
def test_tile_matches_statsmodels_on_the_raw_events(planted: Built) -> None:
    r = planted.run("novelty")
    (ctr,) = [m for m in r.headline["metrics"] if m["metric"] == "ctr"]
    df = _user_ages(planted)
    ages = sorted(df["age"].unique())
    assert ctr["ages"] == [str(a) if a < EXPOSURE_TAIL_DAYS else f"{a}+" for a in ages]
    k = len(ages)
    rows = df[df["den"] > 0]
    cell = (rows["bucket"] == "treatment").to_numpy(int) * k + rows["age"].map({a: i for i, a in enumerate(ages)})
    fit = sm.WLS((rows["num"] / rows["den"]).to_numpy(), np.eye(2 * k)[cell.to_numpy()], weights=rows["den"]).fit(
        cov_type="cluster", cov_kwds={"groups": rows["user_id"].to_numpy(), "use_correction": False})
    ratio, cov = np.asarray(fit.params), np.asarray(fit.cov_params())
    rc, rt = ratio[:k], ratio[k:]
    jac = np.hstack([np.diag(-rt / rc**2), np.diag(1 / rc)])
    lift, cov_lift = rt / rc - 1, jac @ cov @ jac.T
    np.testing.assert_allclose(ctr["rel_lift"], lift, rtol=1e-9)
    users = df.groupby(["bucket", "age"]).size().unstack("age")[ages].to_numpy(float)
    w = 1 / (1 / users[0] + 1 / users[1])  # control, treatment
    x = sm.add_constant(np.asarray(ages, float))
    slope = sm.WLS(lift, x, weights=w).fit().params[1]
    a = np.linalg.solve(x.T @ (w[:, None] * x), x.T * w)[1]
    se = float(np.sqrt(a @ cov_lift @ a))
    assert ctr["slope"] == pytest.approx(slope, rel=1e-8)
    assert ctr["slope_high"] - ctr["slope"] == pytest.approx(1.959963984540054 * se, rel=1e-7)


@pytest.mark.slow
def test_planted_novelty_is_found(planted: Built) -> None:
    r = planted.run("novelty")
    assert r.status == "warn"
    # the compute step's typed result is what the headline shows
    assert isinstance(r.result, NoveltyTrends) and r.headline == headline_of(r.result)
    assert [t.verdict for t in r.result.trends if t.metric == "ctr"] == ["decaying"]
    ctr = next(m for m in r.headline["metrics"] if m["metric"] == "ctr")
    assert ctr["verdict"] == "decaying" and ctr["slope_high"] < 0 and ctr["adj_pvalue"] < 0.05
    assert set(ctr) >= {"ages", "rel_lift", "low", "high", "slope", "slope_low", "slope_high", "pvalue", "verdict"}
    assert ctr["ages"][0] == "0" and ctr["ages"][-1] == f"{EXPOSURE_TAIL_DAYS}+"
    # day 0 vs the tail, against the truth (pooled over segments: roughly, within the intervals' reach)
    truth = planted.truth["novelty"]["treatment"]["ctr_lift_by_exposure_day"]
    assert ctr["rel_lift"][0] > ctr["rel_lift"][-1] + 0.1
    assert ctr["low"][0] < truth[0] + 0.15 and ctr["high"][-1] > truth[-1]
    assert any(n.startswith("CTR proxy lift falls from ") and ": novelty" in n for n in r.notes)
    assert "no lift" not in r.summary and len(r.charts) == 1 and not r.table.empty


@pytest.mark.slow
def test_readout_names_the_novelty(planted: Built) -> None:
    r = planted.run("readout")
    reasons = r.headline["reasons"]
    novelty = [s for s in reasons if s.startswith("CTR proxy lift falls from +")]
    assert novelty and "on day 0 to +" in novelty[0] and f"after day {EXPOSURE_TAIL_DAYS}: novelty" in novelty[0]
    assert reasons.index(novelty[0]) > 0  # the verdict's own reasons come first
    assert novelty[0] in r.summary and novelty[0] in r.notes
    assert not any(s.startswith("effect differs") for s in reasons)


@pytest.mark.slow
def test_readout_names_the_segment(segment: Built) -> None:
    reasons = segment.run("readout").headline["reasons"]
    found = [s for s in reasons if s.startswith("effect differs in region=eu: +")]
    assert any(s.endswith("(ctr, treatment)") and "elsewhere, adjusted p = " in s for s in found), reasons


@pytest.mark.slow
def test_constant_lift_shows_no_trend(constant: Built) -> None:
    r = constant.run("novelty")
    assert r.status == "ok", r.summary
    assert all(m["verdict"] == "none" for m in r.headline["metrics"])
    assert r.headline["trends"] == [] and r.summary.startswith("no trend")
    ctr = next(m for m in r.headline["metrics"] if m["metric"] == "ctr")
    assert ctr["slope_low"] < 0 < ctr["slope_high"]
    assert not any("novelty" in s for s in constant.run("readout").headline["reasons"])


@pytest.mark.slow
def test_no_data_before_the_start_and_filters_refused(constant: Built) -> None:
    before = constant.run("novelty", event_date=(constant.first_day - dt.timedelta(days=1)).isoformat())
    assert before.status == "no_data" and before.headline["no_data"]
    from expkit.errors import ExpkitError

    with pytest.raises(ExpkitError, match="novelty tile reads every user"):
        constant.run("novelty", filters={"region": ["eu"]})


@pytest.mark.slow
def test_notebook_through_papermill_and_from_rollups_only(constant: Built, tmp_path: Path) -> None:
    """The generated notebook runs with Papermill (a sidecar with the per-metric headline, a chart); and
    with the raw events gone the tile gives the same sidecar (it reads only the rollups)."""
    sidecar = tmp_path / "novelty.json"
    pm.execute_notebook(str(TILES["novelty"].notebook), str(tmp_path / "novelty.ipynb"), kernel_name="python3",
                        progress_bar=False, parameters={"event_date": END.isoformat(), "warehouse": str(constant.path),
                                                        "params_file": str(constant.params_file),
                                                        "sidecar_path": str(sidecar)})
    doc = json.loads(sidecar.read_text())
    assert doc["tile"] == "novelty" and doc["status"] == "ok"
    assert {m["metric"] for m in doc["headline"]["metrics"]} >= {"ctr", "session_depth", "save_rate"}
    nb = nbformat.read(tmp_path / "novelty.ipynb", as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert any(VEGALITE_MIME in o.get("data", {}) for o in outputs)
    assert not any(o.get("output_type") == "error" for o in outputs)
    bare = tmp_path / "rollups_only"
    (bare / "events").mkdir(parents=True)
    os.symlink(constant.path / "rollups", bare / "rollups")
    full = constant.run("novelty").sidecar()
    only = constant.run("novelty", warehouse=str(bare)).sidecar()
    full["params"].pop("warehouse")
    only["params"].pop("warehouse")
    assert json.dumps(full, sort_keys=True) == json.dumps(only, sort_keys=True)


def test_the_trend_sentence_never_says_rises_between_falling_numbers() -> None:
    """A fitted slope up while the first and last ages' lifts fall (ages between them high): seen
    in a daily report as "lift rises from +17.2% on day 0 to +9.9% on day 5"."""
    from expkit.tiles.exposure import novelty_note

    row = {"metric": "ctr", "bucket": "treatment", "first_label": "0", "first_lift": 0.172, "last_label": "5",
           "last_lift": 0.099, "slope": 0.030, "adj_pvalue": 0.014, "verdict": "growing"}
    text = novelty_note(row, "CTR proxy")
    assert "rises from" not in text and "falls from" not in text, text
    assert text.startswith("CTR proxy lift trends up over exposure age (+17.2% on day 0, +9.9% on day 5)"), text
    assert "slope +3.0 points/day" in text
    # numbers and slope agreeing keep the plain sentence
    agree = novelty_note({**row, "last_lift": 0.25}, "CTR proxy")
    assert agree.startswith("CTR proxy lift rises from +17.2% on day 0 to +25.0% on day 5: a growing effect")
