"""Incremental health rollups equal the full-day rollup of the same events, whatever order
the minute files land in, with compactions in between, and whoever built the partition first."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from expkit.compaction import compact_day
from expkit.config import ExperimentConfig
from expkit.incremental import INCREMENTAL_ROLLUPS, STATE_FILE, as_of_ms, update
from expkit.rollup import build_rollups
from expkit.warehouse import Warehouse

from .conftest import DAY, Minutes, assert_same_table, read_partition, write_minute


def _assert_equal_to(wh: Warehouse, reference: Path) -> None:
    ref = Warehouse.open(reference)
    for name in INCREMENTAL_ROLLUPS:
        assert_same_table(name, read_partition(wh.rollup_partition(name, DAY)),
                          read_partition(ref.rollup_partition(name, DAY)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_incremental_equals_full_rollup_in_any_arrival_order(
    seed: int, tmp_path: Path, minutes: Minutes, full_rollup: Path, config: ExperimentConfig
) -> None:
    """Minute files land in a random order (late rows for earlier bins included), in batches
    of random size, with compactions at random points; after the last update every table
    equals the full-day rollup."""
    rng = random.Random(seed)
    order = minutes[:]
    rng.shuffle(order)
    wh = Warehouse.open(tmp_path / "wh", must_exist=False)
    modes: set[str] = set()
    i, t = 0, 0
    while i < len(order):
        n = rng.randint(10, 50)
        for m, tables in order[i:i + n]:
            write_minute(wh, m, tables)
        i += n
        t += 1
        modes |= {x.mode for x in update(wh, DAY, config, now_ms=t).tables}
        if rng.random() < 0.3:
            compact_day(wh, DAY)
    assert modes >= {"rebuild", "extend"}
    assert as_of_ms(wh, DAY) == t
    _assert_equal_to(wh, full_rollup)


def test_daily_rollup_rebuilds_identical_tables(
    tmp_path: Path, minutes: Minutes, full_rollup: Path, config: ExperimentConfig
) -> None:
    """The daily rollup of a live-updated day rebuilds its partitions; both give the same tables."""
    wh = Warehouse.open(tmp_path / "wh", must_exist=False)
    for m, tables in minutes:
        write_minute(wh, m, tables)
    update(wh, DAY, config, now_ms=1)
    live = {n: read_partition(wh.rollup_partition(n, DAY)) for n in INCREMENTAL_ROLLUPS}
    build_rollups(wh, DAY, config)
    for name in INCREMENTAL_ROLLUPS:
        assert not (wh.rollup_partition(name, DAY) / STATE_FILE).exists()
        assert_same_table(name, live[name], read_partition(wh.rollup_partition(name, DAY)))


def test_live_update_adopts_daily_rollup_and_extends_it(
    tmp_path: Path, minutes: Minutes, full_rollup: Path, config: ExperimentConfig
) -> None:
    """A day rolled up by 'expkit rollup' at 11:00 is taken over by the live update (from the
    files its manifest recorded) and extended with the afternoon's files only."""
    wh = Warehouse.open(tmp_path / "wh", must_exist=False)
    morning = [(m, t) for m, t in minutes if m < 11 * 60]
    for m, tables in morning:
        write_minute(wh, m, tables)
    build_rollups(wh, DAY, config)
    for m, tables in minutes[len(morning):]:
        write_minute(wh, m, tables)
    result = update(wh, DAY, config, now_ms=1)
    assert {x.mode for x in result.tables} == {"adopt"}
    afternoon = sum(1 for _, tables in minutes[len(morning):] if "requests" in tables)
    assert {x.new_files["requests"] for x in result.tables if "requests" in x.new_files} == {afternoon}
    _assert_equal_to(wh, full_rollup)


def test_update_with_nothing_new_changes_no_row(
    tmp_path: Path, minutes: Minutes, config: ExperimentConfig
) -> None:
    wh = Warehouse.open(tmp_path / "wh", must_exist=False)
    for m, tables in minutes[:100]:
        write_minute(wh, m, tables)
    update(wh, DAY, config, now_ms=1)
    before = {n: read_partition(wh.rollup_partition(n, DAY)) for n in INCREMENTAL_ROLLUPS}
    again = update(wh, DAY, config, now_ms=2)
    assert {x.mode for x in again.tables} == {"none"}
    assert as_of_ms(wh, DAY) == 2
    for n in INCREMENTAL_ROLLUPS:
        assert read_partition(wh.rollup_partition(n, DAY)).equals(before[n])
