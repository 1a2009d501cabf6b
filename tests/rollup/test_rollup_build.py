"""Rollups: correct against independent queries over the raw events, idempotent, mergeable."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import os
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from expkit.readers import ratio_stats
from expkit.rollup import ROLLUP_NAMES, build_rollups, manifest_path, source_fingerprint, stale_dates
from expkit.series import latency_quantiles
from expkit.stats import ratio_estimate
from expkit.tiles import resolve_params
from expkit.warehouse import Warehouse, day_bounds_ms

END = dt.date(2026, 11, 14)  # the last day of the session warehouse (conftest)


def raw(wh: Path, table: str, days: list[dt.date]) -> str:
    files = ", ".join(f"'{wh}/events/{table}/event_date={d}/*.parquet'" for d in days)
    return f"read_parquet([{files}])"


def params(wh: Path, **kw):
    return resolve_params("ctr", ("bucket", "cohort", "region", "surface", "client", "genre", "provider"),
                          event_date=END, warehouse=wh, **kw)


def test_every_rollup_partition_exists(small_wh: Path) -> None:
    wh = Warehouse.open(small_wh)
    for name in ROLLUP_NAMES:
        assert END in wh.rollup_dates(name), name


@pytest.mark.parametrize("window", ["24h", "7d"])
def test_ctr_sums_match_an_independent_per_user_query(small_wh: Path, window: str) -> None:
    """The rollup's n/Σ/Σ² equal a direct per-user aggregation of the raw events over the window;
    a user seen on several days is one unit (n = distinct exposed users, not user-days)."""
    days = [END - dt.timedelta(days=i) for i in range(7 if window == "7d" else 1)]
    con = duckdb.connect()
    expected = con.execute(f"""
        WITH u AS (
            SELECT user_id, arg_min(bucket, timestamp_ms) AS bucket FROM {raw(small_wh, 'requests', days)}
            WHERE NOT shadow GROUP BY user_id),
        c AS (SELECT request_id, item_id, count(*) AS n FROM {raw(small_wh, 'clicks', days)}
              WHERE NOT shadow GROUP BY ALL),
        i AS (SELECT i.user_id, count(*) AS imp, sum(coalesce(c.n, 0)) AS clk
              FROM {raw(small_wh, 'impressions', days)} i
              LEFT JOIN c USING (request_id, item_id) WHERE NOT i.shadow GROUP BY i.user_id),
        per_user AS (SELECT u.bucket, coalesce(i.clk, 0) AS clk, coalesce(i.imp, 0) AS imp
                     FROM u LEFT JOIN i USING (user_id))
        SELECT bucket, count(*) AS n, sum(clk) AS sum_num, sum(imp) AS sum_den,
               sum(clk * clk) AS sum_num2, sum(imp * imp) AS sum_den2, sum(clk * imp) AS sum_numden
        FROM per_user GROUP BY bucket ORDER BY bucket""").df()
    got = ratio_stats(params(small_wh, window=window), "ctr").sort_values("bucket")
    for col in ("n", "sum_num", "sum_den", "sum_num2", "sum_den2", "sum_numden"):
        np.testing.assert_array_equal(got[col].to_numpy(float), expected[col].to_numpy(float), err_msg=col)
    if window == "7d":
        user_days = con.execute(
            f"SELECT count(DISTINCT (user_id, event_date)) FROM "
            f"read_parquet('{small_wh}/events/requests/*/*.parquet', hive_partitioning=true) "
            f"WHERE NOT shadow AND event_date >= '{days[-1]}'"
        ).fetchone()[0]
        assert got["n"].sum() < user_days  # users, not user-days


def test_ctr_per_arm_covers_truth(small_wh: Path) -> None:
    """Per-arm CTR over 7 days is within sampling error of the generator's true CTR."""
    truth = json.loads((small_wh / "truth.json").read_text())["metrics"]["ctr"]
    got = ratio_stats(params(small_wh, window="7d"), "ctr")
    est = ratio_estimate(*(got[c].to_numpy(float) for c in
                           ("n", "sum_num", "sum_den", "sum_num2", "sum_den2", "sum_numden")), alpha=0.001)
    for arm, estimate, low, high in zip(got["bucket"], est.estimate, est.low, est.high, strict=True):
        assert low <= truth[arm] <= high, (arm, estimate, truth[arm])


def test_rerunning_a_rollup_changes_nothing(small_wh: Path, config) -> None:
    wh = Warehouse.open(small_wh)

    def content() -> dict[str, object]:
        out = {}
        for name in ROLLUP_NAMES:
            df = pq.read_table(wh.rollup_files(name, [END])).to_pandas()
            out[name] = df.astype(str).sort_values(list(df.columns)).to_dict("list")
        return out

    before = content()
    build_rollups(wh, END, config)
    assert content() == before
    assert len(list(wh.rollup_partition("health_bins", END).iterdir())) == 1
    assert not [p for p in wh.rollups.rglob(".tmp-*")]


def test_a_file_rewritten_in_the_second_of_the_build_makes_the_day_stale(small_wh: Path, tmp_path: Path) -> None:
    """Late data landing in the same wall-clock second as the build (same size) is still seen;
    a manifest from before fingerprints held nanoseconds (whole seconds) is compared per second."""
    copy = Path(shutil.copytree(small_wh, tmp_path / "wh"))
    wh = Warehouse.open(copy)
    late = sorted(wh.event_files("clicks", END))[0]
    built_ns = 1_700_000_000_100_000_000  # 0.1 s into a second
    os.utime(late, ns=(built_ns, built_ns))
    manifest = json.loads(manifest_path(wh, END).read_text())
    manifest["sources"] = source_fingerprint(wh, END)  # as if the build had just read it
    manifest_path(wh, END).write_text(json.dumps(manifest))
    assert stale_dates(wh, [END]) == []

    os.utime(late, ns=(built_ns + 5_000_000, built_ns + 5_000_000))  # 5 ms later, same second
    assert stale_dates(wh, [END]) == [END]

    legacy = {t: [[n, size, mtime // 10**9] for n, size, mtime in files] for t, files in manifest["sources"].items()}
    manifest_path(wh, END).write_text(json.dumps({**manifest, "sources": legacy}))
    assert stale_dates(wh, [END]) == []  # whole seconds recorded: the same second is all it can tell
    os.utime(late, ns=(built_ns + 10**9, built_ns + 10**9))
    assert stale_dates(wh, [END]) == [END]


def test_a_file_landing_during_the_build_is_either_read_and_recorded_or_neither(
    small_wh: Path, tmp_path: Path, config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream lands files while ``expkit rollup`` runs. A file landing right after the build listed
    the day's requests must not be read without being recorded: the next live update would count it
    again (seen as n = 2 in ingest_bins when compaction, the live update and the rollup ran at once)."""
    copy = Path(shutil.copytree(small_wh, tmp_path / "wh"))
    wh = Warehouse.open(copy)
    first = sorted(wh.event_files("requests", END))[0]
    listed = Warehouse.event_files
    landed = first.with_name("part-landed.parquet")

    def event_files(self: Warehouse, table: str, day: dt.date) -> list[Path]:
        out = listed(self, table, day)
        building = any(f.function == "_build_day" for f in inspect.stack(0))  # not the checks before it
        if table == "requests" and day == END and building and not landed.exists():
            shutil.copyfile(first, landed)  # lands just after the build's first listing
        return out

    monkeypatch.setattr(Warehouse, "event_files", event_files)
    build_rollups(wh, END, config)
    monkeypatch.undo()
    recorded = [name for name, _, _ in json.loads(manifest_path(wh, END).read_text())["sources"]["requests"]]
    assert "part-landed.parquet" not in recorded
    rows = sum(pq.ParquetFile(first.with_name(n)).metadata.num_rows for n in recorded)
    ingest = pq.read_table(wh.rollup_files("ingest_bins", [END])).to_pandas()
    assert ingest[ingest.event_table == "requests"].n.sum() == rows  # read = recorded
    assert stale_dates(wh, [END]) == [END]  # and the landed file makes the day stale


@pytest.mark.parametrize("days_back", [1, 7])
def test_merged_histogram_quantiles_within_one_percent(small_wh: Path, days_back: int) -> None:
    """p50/p95/p99 over 24h and 7d from merged 5-minute histograms vs exact order statistics."""
    days = [END - dt.timedelta(days=i) for i in range(days_back)]
    lo, hi = day_bounds_ms(days[-1])[0], day_bounds_ms(END)[1]
    got = latency_quantiles(Warehouse.open(small_wh), lo, hi, per_bin=False)
    lat = duckdb.sql(f"SELECT latency_ms, cache_hit FROM {raw(small_wh, 'requests', days)} WHERE NOT shadow").df()
    for cache, sel in (("all", slice(None)), ("warm", lat.cache_hit), ("cold", ~lat.cache_hit)):
        values = lat.latency_ms[sel].to_numpy()
        row = got[got.cache == cache].iloc[0]
        assert row.n == len(values)
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            exact = np.quantile(values, q, method="inverted_cdf")
            assert abs(row[name] / exact - 1) <= 0.01, (cache, name, row[name], exact)
