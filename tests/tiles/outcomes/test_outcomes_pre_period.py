"""Traffic before the experiment's start never enters an outcome window (docs/metrics.md, "Windows and slices")."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from expkit import run_tile
from expkit.config import load_experiment
from expkit.readers import ratio_stats
from expkit.rollup import build_range
from expkit.synth import generate
from expkit.tiles import check_params

START = dt.date(2026, 11, 13)
END = dt.date(2026, 11, 14)


@pytest.fixture(scope="module")
def pre_wh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two experiment days after three pre-experiment days, every day rolled up."""
    root = tmp_path_factory.mktemp("pre")
    truth = generate(root / "wh", days=2, end=END, users=1500, seed=5, pre_days=3)
    assert truth["start_date"] == START.isoformat()
    params = root / "experiment.yaml"
    params.write_text(yaml.safe_dump({
        "experiment_id": truth["experiment_id"], "start_date": truth["start_date"], "control": truth["control"],
        "buckets": truth["planned_allocation"], "top_k": truth["top_k"]}))
    build_range(root / "wh", START - dt.timedelta(days=3), END, load_experiment(params))
    return root / "wh", params


def _stats(wh: Path, params: Path, day: dt.date, window: str):
    p = check_params("ctr", event_date=day, warehouse=wh, params_file=params, window=window)
    return ratio_stats(p, "ctr").set_index("bucket")


def test_windows_of_the_first_day_read_that_day_alone(pre_wh: tuple[Path, Path]) -> None:
    wh, params = pre_wh
    cols = ["n", "sum_num", "sum_den"]
    one_day = _stats(wh, params, START, "24h")
    for window in ("7d", "30d"):
        # the 7d and 30d windows of the first day hold exactly its 24h users and sums: the
        # three pre-experiment days before it are clipped off
        assert _stats(wh, params, START, window)[cols].equals(one_day[cols])
    two_days = _stats(wh, params, END, "7d")
    assert (two_days["n"] >= one_day["n"]).all() and (two_days["sum_den"] > one_day["sum_den"]).all()


def test_a_date_before_the_start_has_no_outcome_window(pre_wh: tuple[Path, Path]) -> None:
    wh, params = pre_wh
    before = START - dt.timedelta(days=1)
    assert _stats(wh, params, before, "24h").empty
    for tile in ("ctr", "lift"):
        res = run_tile(tile, event_date=before, warehouse=wh, params_file=params)
        assert res.status == "no_data", tile
        assert f"before the experiment's start ({START})" in res.summary
