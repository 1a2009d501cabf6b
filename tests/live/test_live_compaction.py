"""Compaction of minute files into hour files: no row lost or duplicated, atomic for every
holder of the rollup lock (the daily rollup, the live update, readers that take it), and a
compaction killed half-way is completed, never counted twice."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from expkit import compaction
from expkit.compaction import compact_day, file_minute
from expkit.config import ExperimentConfig
from expkit.incremental import INCREMENTAL_ROLLUPS, update
from expkit.rollup import build_rollups, rollup_lock
from expkit.schema import EVENT_TABLES
from expkit.warehouse import Warehouse

from .conftest import DAY, Minutes, assert_same_table, read_partition, write_minute

KEYS = {"requests": ["request_id"], "impressions": ["request_id", "item_id"], "clicks": ["click_id"],
        "saves": ["save_id"], "plays": ["play_id"]}


def _rows(wh: Warehouse, table: str) -> pa.Table:
    files = wh.event_files(table, DAY)
    data = pa.concat_tables([pq.ParquetFile(f).read() for f in files])
    return data.sort_by([(k, "ascending") for k in KEYS[table]] + [("ingest_ms", "ascending")])


def test_compaction_keeps_every_row_once(tmp_path: Path, minutes: Minutes) -> None:
    wh = Warehouse.open(tmp_path, must_exist=False)
    for m, tables in minutes:
        write_minute(wh, m, tables)
    before = {t: _rows(wh, t) for t in EVENT_TABLES}
    done = compact_day(wh, DAY)
    assert {c.table for c in done} == set(EVENT_TABLES)
    for t in EVENT_TABLES:
        names = [f.name for f in wh.event_files(t, DAY)]
        hours = {file_minute(n) // 60 for n in names if file_minute(n) is not None}
        assert hours == {max(m for m, tables in minutes if t in tables) // 60}, "only the last hour stays in minutes"
        assert _rows(wh, t).equals(before[t])
    assert compact_day(wh, DAY) == []  # nothing left to compact: idempotent


@pytest.mark.slow
def test_compaction_is_safe_while_the_stream_rollups_and_readers_run(
    tmp_path: Path, minutes: Minutes, full_rollup: Path, config: ExperimentConfig
) -> None:
    """Minutes land (as the stream writes them) while one thread compacts, one runs the live
    update, one the daily rollup and one reads every table under the rollup lock: the reader
    never sees a row twice, and at the end the live and the daily tables equal the reference."""
    wh = Warehouse.open(tmp_path, must_exist=False)
    landing_done = threading.Event()
    errors: list[BaseException] = []
    duplicates: list[str] = []

    def land() -> None:
        for m, tables in minutes:
            write_minute(wh, m, tables)
        landing_done.set()

    def loop(step: object) -> None:
        try:
            while not landing_done.is_set():
                step()  # type: ignore[operator]
        except BaseException as err:  # reported by the test
            errors.append(err)

    def read() -> None:
        with rollup_lock(wh):
            for t in ("requests", "clicks"):
                files = wh.event_files(t, DAY)
                if files:
                    ids = pa.concat_tables([pq.ParquetFile(f).read(columns=KEYS[t]) for f in files])[KEYS[t][0]]
                    if len(set(ids.to_pylist())) != len(ids):
                        duplicates.append(t)

    write_minute(wh, *minutes[0])
    threads = [threading.Thread(target=land)] + [threading.Thread(target=loop, args=(f,)) for f in (
        lambda: compact_day(wh, DAY), lambda: update(wh, DAY, config, now_ms=1),
        lambda: build_rollups(wh, DAY, config), read)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=600)
    assert not errors, errors
    assert not duplicates
    compact_day(wh, DAY)
    update(wh, DAY, config, now_ms=2)
    ref = Warehouse.open(full_rollup)
    for name in INCREMENTAL_ROLLUPS:
        assert_same_table(name, read_partition(wh.rollup_partition(name, DAY)),
                          read_partition(ref.rollup_partition(name, DAY)))
    build_rollups(wh, DAY, config)
    for name in INCREMENTAL_ROLLUPS:
        assert_same_table(name, read_partition(wh.rollup_partition(name, DAY)),
                          read_partition(ref.rollup_partition(name, DAY)))


def test_a_compaction_killed_after_its_ledger_entry_is_completed(
    tmp_path: Path, minutes: Minutes, full_rollup: Path, config: ExperimentConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between the ledger entry (the commit point) and the rename: the sources and the
    finished temporary file are both on disk. The next holder of the lock completes the
    compaction; the rows are counted once."""
    wh = Warehouse.open(tmp_path, must_exist=False)
    for m, tables in minutes:
        write_minute(wh, m, tables)
    update(wh, DAY, config, now_ms=1)  # the sources are counted before the compaction
    real_replace = compaction.os.replace

    def die(src: object, dst: object) -> None:
        if str(dst).endswith("live-h09.parquet"):
            raise KeyboardInterrupt("killed")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(compaction.os, "replace", die)
    with pytest.raises(KeyboardInterrupt):
        compact_day(wh, DAY)
    monkeypatch.setattr(compaction.os, "replace", real_replace)
    part = wh.event_partition("requests", DAY)
    sources = compaction.ledger(wh, "requests", DAY)["live-h09.parquet"]
    assert (part / ".live-h09.parquet.tmp").exists() and all((part / s).exists() for s in sources)
    result = update(wh, DAY, config, now_ms=2)
    assert (part / "live-h09.parquet").exists() and not any((part / s).exists() for s in sources)
    assert {x.mode for x in result.tables} == {"none"}
    ref = Warehouse.open(full_rollup)
    for name in INCREMENTAL_ROLLUPS:
        assert_same_table(name, read_partition(wh.rollup_partition(name, DAY)),
                          read_partition(ref.rollup_partition(name, DAY)))
