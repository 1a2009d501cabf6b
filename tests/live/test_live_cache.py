"""The long-running ``live`` keeps the tiles' per-bin series from one update to the next
(:class:`expkit.series_cache.SegmentCache`): after updates that take in new minute files (with
late rows for earlier bins) and an hourly compaction, every tile's status, summary, headline
and per-bin numbers, and the page's data freshness, equal a computation from scratch of the same
warehouse."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc
import pytest

from expkit.compaction import compact_day, minute_file, write_events
from expkit.config import ExperimentConfig
from expkit.live import compute_tiles, tick
from expkit.rollup import build_rollups
from expkit.series import ingest_freshness
from expkit.series_cache import SegmentCache, session
from expkit.synth.warehouse import day_start_ms
from expkit.warehouse import DAY_MS, Warehouse

from .conftest import DAY, PARAMS, Minutes, write_minute

START = 11 * 60 + 56  # the first update; updates follow every minute up to END
END = 12 * 60 + 4
CHECKS = (START + 1, 12 * 60 + 1, END)  # compared with a computation from scratch after these updates


def _same(a: Any, b: Any, where: str) -> None:
    """``a == b`` exactly, NaN equal to NaN, recursively."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
        return
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
        return
    assert a == b, f"{where}: {a!r} != {b!r}"


def _land_day_before(wh: Warehouse, minutes: Minutes, config: ExperimentConfig) -> None:
    """The same rows a day earlier, rolled up as the daily job leaves them (one file a table)."""
    before = DAY - dt.timedelta(days=1)
    for m, tables in minutes:
        for t, tab in tables.items():
            for col in ("timestamp_ms", "ingest_ms"):
                tab = tab.set_column(tab.schema.get_field_index(col), col, pc.subtract(tab[col], DAY_MS))
            folder = wh.event_partition(t, before)
            folder.mkdir(parents=True, exist_ok=True)
            write_events(t, tab, folder / minute_file(m))
    build_rollups(wh, before, config)


@pytest.mark.slow
def test_tiles_after_cached_updates_equal_a_fresh_computation(
    tmp_path: Path, minutes: Minutes, config: ExperimentConfig
) -> None:
    wh = Warehouse.open(tmp_path / "wh", must_exist=False)
    _land_day_before(wh, minutes, config)
    by = dict(minutes)
    for m, tables in minutes:
        if m < START:
            write_minute(wh, m, tables)
    ms = day_start_ms(DAY)
    cache = SegmentCache()
    checked = 0
    for m in range(START, END + 1):
        write_minute(wh, m, by[m])  # the minute's files hold late rows of earlier bins too
        if m == 12 * 60 + 2:  # the hour 11:00 compacted into one file (the rollups do not change)
            compact_day(wh, DAY)
        now = ms + (m + 1) * 60_000
        tick(wh, tmp_path / "page", PARAMS, now_ms=now, page=False)
        cached = compute_tiles(wh, PARAMS, now, cache)
        with session(cache):
            kept = ingest_freshness(wh, [now])  # the page's freshness rows, from the kept segments
        if m not in CHECKS:
            continue
        fresh = compute_tiles(wh, PARAMS, now)
        assert [(c.tile, c.window) for c in cached] == [(c.tile, c.window) for c in fresh]
        for c, f in zip(cached, fresh, strict=True):
            where = f"{c.tile}/{c.window} at minute {m}"
            assert c.error is None and f.error is None, (where, c.error, f.error)
            assert c.result is not None and f.result is not None
            assert (c.result.status, c.result.summary) == (f.result.status, f.result.summary), where
            _same(c.result.headline, f.result.headline, where)
            for name in ("bins", "flagged", "table"):
                got, want = getattr(c.result, name, None), getattr(f.result, name, None)
                if isinstance(want, pd.DataFrame):
                    assert isinstance(got, pd.DataFrame), where
                    pd.testing.assert_frame_equal(got, want, check_exact=True, obj=f"{where} {name}")
        pd.testing.assert_frame_equal(kept, ingest_freshness(wh, [now]), check_exact=True, obj=f"freshness at {m}")
        checked += 1
    assert checked == len(CHECKS)
    assert cache.computed > 0 and cache.entries  # the cache was used, and holds this update's series
