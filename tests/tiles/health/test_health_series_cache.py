"""The per-day cache of derived series: the same frames as computing, recomputed when a day's
rollup changes, and never in the way (unreadable entries, an unwritable warehouse).

The reference is always the uncached computation on the same rollup files at the same moment.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from expkit.series import _ingest_quantiles, _latency_quantiles, ingest_quantiles, latency_quantiles
from expkit.series_cache import cache_folder
from expkit.warehouse import BIN_MS, Warehouse, day_bounds_ms

from .conftest import END, SynthWarehouse

FIRST = END - dt.timedelta(days=4)
START_MS = day_bounds_ms(FIRST)[0] + 5 * 3_600_000  # a partial first day
END_MS = day_bounds_ms(END)[1]
WHOLE_PAST_DAYS = [FIRST + dt.timedelta(days=i) for i in range(1, 4)]  # the newest day is never kept


@pytest.fixture
def wh(clean: SynthWarehouse, tmp_path: Path) -> Warehouse:
    """The clean warehouse's two histogram rollups, hard-linked into a private warehouse."""
    for name in ("latency_hist", "ingest_bins"):
        for src in (clean.root / "rollups" / name).rglob("*.parquet"):
            dest = tmp_path / src.relative_to(clean.root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dest)
    return Warehouse(tmp_path)


SERIES: dict[str, tuple[Callable[[Warehouse], pd.DataFrame], Callable[[Warehouse], pd.DataFrame]]] = {
    "latency_quantiles": (
        lambda w: latency_quantiles(w, START_MS, END_MS, "region", {"region": ["eu", "na"]}, "rec_ranker_v2"),
        lambda w: _latency_quantiles(w, START_MS, END_MS, "region", {"region": ["eu", "na"]}, "rec_ranker_v2",
                                     True, BIN_MS),
    ),
    "ingest_quantiles": (
        lambda w: ingest_quantiles(w, START_MS, END_MS, as_of_ms=END_MS),
        lambda w: _ingest_quantiles(w, START_MS, END_MS, True, BIN_MS, END_MS),
    ),
}


def _entries(w: Warehouse, series: str) -> list[str]:
    return sorted(p.name for p in (cache_folder(w) / series).rglob("*.parquet"))


@pytest.mark.parametrize("series", sorted(SERIES))
def test_cold_and_warm_reads_equal_the_computation(wh: Warehouse, series: str) -> None:
    cached, computed = SERIES[series]
    reference = computed(wh)
    assert not reference.empty and reference["bin_ms"].min() == START_MS
    pd.testing.assert_frame_equal(cached(wh), reference)
    assert _entries(wh, series) == [f"{d.isoformat()}.parquet" for d in WHOLE_PAST_DAYS]
    pd.testing.assert_frame_equal(cached(wh), reference)


@pytest.mark.parametrize("series", sorted(SERIES))
def test_a_rebuilt_day_is_computed_again(wh: Warehouse, series: str) -> None:
    cached, computed = SERIES[series]
    before = cached(wh)
    rollup = "latency_hist" if series == "latency_quantiles" else "ingest_bins"
    day = WHOLE_PAST_DAYS[1]
    (f,) = wh.rollup_files(rollup, [day])
    table = pq.read_table(f)
    # as a rebuild without one series' rows that day would write it
    gone = (pc.equal(table["slice_value"], "eu") if series == "latency_quantiles"
            else pc.equal(table["event_table"], "clicks"))
    f.unlink()
    pq.write_table(table.filter(pc.invert(pc.fill_null(gone, False))), f)
    after = cached(wh)
    pd.testing.assert_frame_equal(after, computed(wh))
    assert len(after) < len(before)  # the cached day was not served


def test_bad_entries_and_an_unwritable_cache_only_cost_time(wh: Warehouse) -> None:
    cached, computed = SERIES["latency_quantiles"]
    reference = computed(wh)
    cached(wh)
    for entry in (cache_folder(wh) / "latency_quantiles").rglob("*.parquet"):
        entry.write_bytes(b"not parquet")
    pd.testing.assert_frame_equal(cached(wh), reference)
    assert all(pq.read_table(p).num_rows for p in (cache_folder(wh) / "latency_quantiles").rglob("*.parquet"))

    blocked = Warehouse(wh.root)
    (blocked.state / "cache").rename(blocked.state / "cache-old")
    (blocked.state / "cache").write_text("a file where the cache folder would be")
    pd.testing.assert_frame_equal(cached(blocked), reference)
    assert not list(wh.state.rglob("*.tmp"))


def test_other_parameters_are_other_entries(wh: Warehouse) -> None:
    everything = latency_quantiles(wh, START_MS, END_MS, "region", experiment_id="rec_ranker_v2")
    some = latency_quantiles(wh, START_MS, END_MS, "region", {"region": ["eu"]}, experiment_id="rec_ranker_v2")
    assert set(some["slice_value"]) == {"eu"} and len(set(everything["slice_value"])) > 1
    again = latency_quantiles(wh, START_MS, END_MS, "region", experiment_id="rec_ranker_v2")
    pd.testing.assert_frame_equal(again, everything)
    assert len(list((cache_folder(wh) / "latency_quantiles").iterdir())) == 2


def test_only_the_newest_days_are_kept(wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    from expkit import series_cache

    monkeypatch.setattr(series_cache, "KEEP_DAYS", 2)
    cached, computed = SERIES["ingest_quantiles"]
    pd.testing.assert_frame_equal(cached(wh), computed(wh))
    assert _entries(wh, "ingest_quantiles") == [f"{d.isoformat()}.parquet" for d in WHOLE_PAST_DAYS[-2:]]
