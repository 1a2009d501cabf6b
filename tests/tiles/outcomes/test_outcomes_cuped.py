"""CUPED from the rollups: the pre-period sums and the adjusted lift (docs/statistics.md, "CUPED from the rollups")."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from expkit.config import load_experiment
from expkit.estimates import compare_frame
from expkit.readers import PRE_STAT_COLUMNS, ratio_stats
from expkit.rollup import build_range
from expkit.synth import generate
from expkit.tiles import check_params
from expkit.warehouse import day_bounds_ms

START = dt.date(2026, 11, 12)
END = dt.date(2026, 11, 14)
PRE_DAYS = 4
LIFT = 0.10


@pytest.fixture(scope="module")
def cuped_wh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """Three experiment days after four pre-experiment days, a known lift; rolled up from the start only
    (the pre-period days' rollups are built by the rollup of the experiment's days)."""
    root = tmp_path_factory.mktemp("cuped")
    truth = generate(root / "wh", days=3, end=END, users=4000, seed=11, pre_days=PRE_DAYS,
                     lift={"treatment": LIFT})
    assert truth["start_date"] == START.isoformat()
    params = root / "experiment.yaml"
    params.write_text(yaml.safe_dump({
        "experiment_id": truth["experiment_id"], "start_date": truth["start_date"], "control": truth["control"],
        "buckets": truth["planned_allocation"], "top_k": truth["top_k"]}))
    build_range(root / "wh", START, END, load_experiment(params))
    return root / "wh", params, truth


def _events(wh: Path, table: str, days: list[dt.date], cols: list[str]) -> pd.DataFrame:
    files = [f for d in days for f in sorted((wh / "events" / table / f"event_date={d}").glob("*.parquet"))]
    df = pd.concat([pd.read_parquet(f, columns=[*cols, "shadow"]) for f in files], ignore_index=True)
    return df[~df["shadow"]]


def _per_user_ctr(wh: Path, days: list[dt.date]) -> pd.DataFrame:
    """Independent per-user clicks and impressions over ``days`` from the raw events (pandas)."""
    imp = _events(wh, "impressions", days, ["request_id", "item_id", "user_id", "timestamp_ms"])
    clk = _events(wh, "clicks", days, ["request_id", "item_id", "timestamp_ms"])
    lo, hi = day_bounds_ms(days[0])[0], day_bounds_ms(days[-1])[1]
    imp = imp[(imp.timestamp_ms >= lo) & (imp.timestamp_ms < hi)]
    clk = clk[(clk.timestamp_ms >= lo) & (clk.timestamp_ms < hi)]
    clicks = clk.groupby(["request_id", "item_id"]).size().rename("clicks").reset_index()
    joined = imp.merge(clicks, on=["request_id", "item_id"], how="left").fillna({"clicks": 0})
    return joined.groupby("user_id").agg(num=("clicks", "sum"), den=("item_id", "size"))


def _expected_sums(wh: Path, days: list[dt.date], slice_: str) -> pd.DataFrame:
    """The nine CUPED sums of ctr per arm (and region) over ``days``, from the raw events alone."""
    req = _events(wh, "requests", days, ["user_id", "bucket", "region", "timestamp_ms"])
    lo, hi = day_bounds_ms(days[0])[0], day_bounds_ms(days[-1])[1]
    req = req[(req.timestamp_ms >= lo) & (req.timestamp_ms < hi)].sort_values("timestamp_ms")
    # the arm and region of first exposure in the window
    users = req.groupby("user_id")[["bucket", "region"]].first()
    pre_days = [START - dt.timedelta(days=PRE_DAYS - i) for i in range(PRE_DAYS)]
    win, pre = _per_user_ctr(wh, days), _per_user_ctr(wh, pre_days)
    u = users.join(win).join(pre.add_suffix("_pre")).fillna(0.0)
    n, d, pn, pd_ = u["num"], u["den"], u["num_pre"], u["den_pre"]
    cols = {"sum_pre_num": pn, "sum_pre_den": pd_, "sum_pre_num2": pn * pn, "sum_pre_den2": pd_ * pd_,
            "sum_pre_numden": pn * pd_, "sum_num_pre_num": n * pn, "sum_num_pre_den": n * pd_,
            "sum_den_pre_num": d * pn, "sum_den_pre_den": d * pd_}
    keys = ["bucket"] if slice_ == "bucket" else ["bucket", slice_]
    return pd.DataFrame(cols).join(u[keys]).groupby(keys).sum()


@pytest.mark.slow
@pytest.mark.parametrize("slice_", ["bucket", "region"])
@pytest.mark.parametrize(("window", "days"), [("24h", [END]), ("7d", [START, START + dt.timedelta(days=1), END])])
def test_the_nine_sums_equal_a_pandas_computation_from_raw_events(
    cuped_wh: tuple[Path, Path, dict], window: str, days: list[dt.date], slice_: str
) -> None:
    wh, params, _ = cuped_wh
    p = check_params("ctr", event_date=END, warehouse=wh, params_file=params, window=window, slice=slice_)
    index = ["bucket"] if slice_ == "bucket" else ["bucket", "slice_value"]
    got = ratio_stats(p, "ctr").set_index(index)[PRE_STAT_COLUMNS]
    want = _expected_sums(wh, days, slice_)[PRE_STAT_COLUMNS]
    assert (want["sum_pre_den"] > 0).all()
    pd.testing.assert_frame_equal(got.sort_index(), want.sort_index(), check_names=False, check_dtype=False)


@pytest.mark.slow
def test_adjusted_lift_covers_the_truth_with_a_variance_reduction(cuped_wh: tuple[Path, Path, dict]) -> None:
    wh, params, truth = cuped_wh
    p = check_params("lift", event_date=END, warehouse=wh, params_file=params, window="7d")
    stats = ratio_stats(p, "ctr").assign(metric="ctr")
    frame = compare_frame(stats, "control", ["treatment"], 5000).set_index("metric")
    row = frame.loc["ctr"]
    true_lift = truth["metric_lift"]["ctr"]["treatment"]  # the generator's analytic truth (truth.json)
    assert bool(row["cuped"]) and row["variance_reduction"] > 0
    assert row["rel_low"] <= true_lift <= row["rel_high"]
    plain = compare_frame(stats.drop(columns=PRE_STAT_COLUMNS), "control", ["treatment"], 5000).set_index("metric")
    # the adjusted interval is narrower than the unadjusted one of the same rows
    assert row["rel_high"] - row["rel_low"] < plain.loc["ctr", "rel_high"] - plain.loc["ctr", "rel_low"]
    assert not bool(plain.loc["ctr", "cuped"]) and np.isnan(plain.loc["ctr", "variance_reduction"])


@pytest.mark.slow
def test_summary_headline_carries_cuped(cuped_wh: tuple[Path, Path, dict]) -> None:
    from expkit import run_tile

    wh, params, _ = cuped_wh
    res = run_tile("lift", event_date=END, warehouse=wh, params_file=params, window="7d")
    ctr = res.headline["arms"]["treatment"]["metrics"]["ctr"]
    assert ctr["cuped"] is True and 0 < ctr["variance_reduction"] < 1
    assert "CUPED: variance" in res.summary
    json.dumps(res.headline, default=str)


def test_without_pre_period_data_nothing_is_adjusted() -> None:
    """Rows whose pre-period sums are all 0 are compared exactly as without a covariate."""
    base = pd.DataFrame({"bucket": ["control", "treatment"], "metric": "ctr", "slice_value": "all",
                         "n": [1000.0, 1000.0], "sum_num": [300.0, 330.0], "sum_den": [9000.0, 9100.0],
                         "sum_num2": [900.0, 1000.0], "sum_den2": [90000.0, 91000.0],
                         "sum_numden": [8000.0, 8500.0]})
    zero = base.assign(**{c: 0.0 for c in PRE_STAT_COLUMNS})
    a, b = compare_frame(base, "control", ["treatment"], 5000), compare_frame(zero, "control", ["treatment"], 5000)
    pd.testing.assert_frame_equal(a, b)
    assert not b["cuped"].any()
