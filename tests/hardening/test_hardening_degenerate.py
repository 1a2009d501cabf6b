"""Degenerate experiments: an empty arm, zero impressions, a single user.

Every tile runs to a status (never a crash); undefined numbers are NaN (null in JSON) with a
reason, or the tile says ``no_data``; an interval is never a misleading 0-width one.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hardening_support import END, PARAMS, START, event_file

import expkit
from expkit.config import load_experiment
from expkit.rollup import build_range
from expkit.tiles.base import STATUSES, TileResult
from expkit.tiles.registry import TILES


def _keep_control(table: str, t: pa.Table) -> pa.Table:
    return t.filter(pc.equal(t["bucket"], "control")) if "bucket" in t.column_names else t


def _no_impressions(table: str, t: pa.Table) -> pa.Table:
    return t.slice(0, 0) if table in ("impressions", "clicks", "saves") else t


def _one_user(table: str, t: pa.Table) -> pa.Table:
    return t.filter(pc.equal(t["user_id"], _one_user.user_id)) if "user_id" in t.column_names else t


SCENARIOS: dict[str, Callable[[str, pa.Table], pa.Table]] = {
    "empty arm": _keep_control, "zero impressions": _no_impressions, "single user": _one_user,
}


@pytest.fixture(scope="module", params=list(SCENARIOS))
def scenario(request: pytest.FixtureRequest, base_wh: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[str, dict[str, TileResult]]:
    """Events of the base warehouse filtered by the scenario, rolled up; every tile's result."""
    name = request.param
    wh = tmp_path_factory.mktemp("degenerate") / "wh"
    shutil.copytree(base_wh / "events", wh / "events")
    _one_user.user_id = pq.read_table(event_file(wh, "requests"))["user_id"][0]  # seen on the report day
    for f in (wh / "events").rglob("*.parquet"):
        pq.write_table(SCENARIOS[name](f.parts[-3], pq.read_table(f)), f)
    build_range(wh, START, END, load_experiment(PARAMS))
    return name, {t: expkit.run_tile(t, warehouse=wh, event_date=END, params_file=PARAMS) for t in TILES}


def _numbers(obj: object) -> list[float]:
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _numbers(v)]
    if isinstance(obj, list):
        return [x for v in obj for x in _numbers(v)]
    return [obj] if isinstance(obj, float) else []


def test_every_tile_has_a_status_and_a_clean_sidecar(scenario: tuple[str, dict[str, TileResult]]) -> None:
    _, results = scenario
    for tile, res in results.items():
        assert res.status in STATUSES, tile
        doc = json.loads(json.dumps(res.sidecar(), allow_nan=False))  # NaN must be null
        assert all(math.isfinite(x) for x in _numbers(doc)), tile
        if res.status == "no_data" and res.headline.get("no_data"):
            assert res.headline["reason"], tile


def test_undefined_intervals_carry_a_reason(scenario: tuple[str, dict[str, TileResult]]) -> None:
    """An arm whose interval cannot be computed shows null bounds and why, never [x, x]."""
    _, results = scenario
    for tile in ("ctr", "recall", "session_depth", "save_rate"):
        for arm, a in results[tile].headline.get("arms", {}).items():
            if a["low"] is None or not math.isfinite(a["low"]):
                assert a["reason"] and (a["high"] is None or not math.isfinite(a["high"])), (tile, arm)
                assert any(a["reason"] in n for n in results[tile].notes), (tile, arm)
            else:
                assert a["low"] < a["high"] or a["se"] > 0, (tile, arm)


def test_scenario_specific_outcomes(scenario: tuple[str, dict[str, TileResult]]) -> None:
    name, r = scenario
    if name == "empty arm":
        assert set(r["ctr"].headline["arms"]) == {"control"}  # the empty arm is absent, not 0
        assert r["lift"].status == "no_data" and "no comparable arms" in r["lift"].headline["reason"]
        alloc = r["allocation"].headline["arms"]
        assert r["allocation"].status == "breach" and alloc["treatment"]["users"] == 0
    elif name == "zero impressions":
        for tile in ("ctr", "save_rate"):
            assert r[tile].status == "no_data" and "no impressions" in r[tile].headline["reason"]
        ctr_lift = r["lift"].sidecar()["headline"]["arms"]["treatment"]["metrics"]["ctr"]
        assert ctr_lift["rel_lift"] is None  # NaN, not a 0% lift
    else:
        arm = r["ctr"].headline["arms"]["control"]
        assert arm["users"] == 1 and math.isnan(arm["low"]) and "fewer than 2 units" in arm["reason"]
        assert r["lift"].status == "no_data"
