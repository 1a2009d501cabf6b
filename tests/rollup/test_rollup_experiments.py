"""Rollups of a warehouse where two experiments run at once over the same users.

Each experiment's ``outcome_stats`` (CTR of the experiment to date, per arm) equals the sums
computed here directly from the raw events and the ``exposures`` table with DuckDB; the per-user
latency histograms carry each experiment's arms; the exposures are part of each day's lineage.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from expkit.config import load_experiment, rollup_config
from expkit.rollup import build_range, stale_dates
from expkit.synth import generate
from expkit.synth.warehouse import SynthExperiment
from expkit.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[2]
END = dt.date(2026, 11, 14)
DAYS = [END - dt.timedelta(days=1), END]
A, B = "rec_ranker_v2", "search_v3"


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("two_experiments") / "wh"
    other = SynthExperiment(B, (("base", 0.3), ("new", 0.7)), "base", (("new", 0.2),))
    generate(out, days=2, end=END, users=1500, seed=4, lift={"treatment": 0.0}, others=[other], pre_days=1)
    first = load_experiment(REPO / "params" / "experiment.yaml").model_copy(update={"start_date": DAYS[0]})
    second = first.model_copy(update={"experiment_id": B, "buckets": {"base": 0.3, "new": 0.7}, "control": "base",
                                      "start_date": END})
    cfg = rollup_config([first, second])
    assert cfg.start_date == DAYS[0]  # the earliest start
    build_range(out, DAYS[0] - dt.timedelta(days=1), END, cfg)
    return out, cfg


def test_each_experiment_has_its_own_exact_sums(two: tuple[Path, object]) -> None:
    out, _ = two
    con = duckdb.connect()
    got = con.execute(f"""
        select experiment_id, bucket, n, sum_num, sum_den, sum_num2, sum_numden
        from read_parquet('{out}/rollups/outcome_stats/*/*.parquet', hive_partitioning = true)
        where event_date = '{END}' and window_name = 'cum' and metric = 'ctr' and slice = 'all'
        order by 1, 2""").fetchall()
    ev = f"{out}/events"
    hive = "hive_partitioning = true"
    expected = con.execute(f"""
        with x as (select distinct experiment_id, user_id, bucket from read_parquet('{ev}/exposures/*/*.parquet')),
             i as (select user_id, count(*) den from read_parquet('{ev}/impressions/*/*.parquet', {hive})
                   where not shadow and event_date >= '{DAYS[0]}' group by 1),
             c as (select user_id, count(*) num from read_parquet('{ev}/clicks/*/*.parquet', {hive})
                   where not shadow and event_date >= '{DAYS[0]}' group by 1),
             u as (select x.experiment_id, x.bucket, coalesce(i.den, 0) den, coalesce(c.num, 0) num
                   from x left join i using (user_id) left join c using (user_id))
        select experiment_id, bucket, count(*), sum(num), sum(den), sum(num * num), sum(num * den)
        from u group by 1, 2 order by 1, 2""").fetchall()
    assert [r[:2] for r in got] == [(A, "control"), (A, "treatment"), (B, "base"), (B, "new")]
    assert [tuple(float(v) for v in r[2:]) for r in got] == [tuple(float(v) for v in r[2:]) for r in expected]
    # every exposed user is in both experiments
    assert sum(r[2] for r in got[:2]) == sum(r[2] for r in got[2:])
    latency = con.execute(f"""select distinct experiment_id, bucket
        from read_parquet('{out}/rollups/user_latency/*/*.parquet') order by 1, 2""").fetchall()
    assert latency == [(A, "control"), (A, "treatment"), (B, "base"), (B, "new")]


def test_pre_period_day_keeps_the_requests_experiment(two: tuple[Path, object]) -> None:
    out, _ = two
    pre = DAYS[0] - dt.timedelta(days=1)
    ids = duckdb.connect().execute(f"""select distinct experiment_id from read_parquet(
        '{out}/rollups/user_day/event_date={pre}/*.parquet')""").fetchall()
    assert ids == [(A,)]  # no exposures before the start: the requests' own experiment


def test_exposures_are_part_of_the_lineage(two: tuple[Path, object]) -> None:
    out, cfg = two
    wh = Warehouse.open(out)
    assert stale_dates(wh, DAYS, cfg) == []
    f = next((out / "events" / "exposures" / f"event_date={END}").glob("*.parquet"))
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        assert stale_dates(wh, DAYS, cfg) == [END]
    finally:
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert stale_dates(wh, DAYS, cfg) == []
    # an exposures table that appears on a day built without one makes that day stale too
    pre = DAYS[0] - dt.timedelta(days=1)
    folder = out / "events" / "exposures" / f"event_date={pre}"
    folder.mkdir()
    try:
        shutil.copy(f, folder / f.name)
        assert stale_dates(wh, [pre], cfg) == [pre]
    finally:
        shutil.rmtree(folder)
    assert stale_dates(wh, [pre, *DAYS], cfg) == []
