"""Incremental health rollups: extend a running day's 5-minute bins from its new event files only.

The health rollups of :data:`INCREMENTAL_ROLLUPS` are additive per row of their grain (counts,
sums, maxima), so the rollup of a day's files is the rollup of the files already read merged
with the rollup of the new ones: rows with the same grain add up (``max_*`` columns take the
larger value). A late row for an earlier bin lands in that bin's row, exactly as in the
full-day rollup. ``engagement_bins`` (a join of clicks and saves to impressions and requests
that may land in different files) and the per-user outcome rollups are not additive and stay
with the daily rollup (docs/live.md).

A partition the live update writes holds one Parquet file per hour of its bins
(``part-h14.parquet``), so an update rewrites only the hours that got rows (the current one,
and earlier ones for late rows) and its cost does not grow through the day; the other hours'
files are hard-linked into the new folder. Beside them, ``_live.json`` records the fingerprint
of the event files the partition was built from and the time its data is complete to
(``as_of_ms``). All are swapped in as one folder (:func:`expkit.atomic.building_dir`), so a
process killed at any point leaves each table either before or after the update, never
counting a file twice. Which files are new comes from comparing that record with the
partition's current files (:func:`expkit.lineage.changes`); a file rewritten or removed
otherwise than by :mod:`expkit.compaction` makes the update rebuild the table from all files.
A partition built by ``expkit rollup`` (no ``_live.json``) is adopted with the event files
its manifest recorded (and left untouched while no file is new, so a finished day's report
keeps its inputs). Updates run under the rollup lock, so they never interleave with
``expkit rollup`` or a compaction of the same warehouse.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from expkit import lineage
from expkit.atomic import atomic_write_json, building_dir, clean_stale_temps
from expkit.compaction import finish_compactions, ledger
from expkit.config import ExperimentConfig
from expkit.engines import Engine, write_reader
from expkit.names import HOUR_MS
from expkit.rollup import _params, _read_manifest, manifest_path, open_engine, rollup_lock
from expkit.schema import EVENT_TABLES, require_schema
from expkit.templates import TEMPLATES
from expkit.warehouse import Warehouse, day_bounds_ms

INCREMENTAL_ROLLUPS = ("health_bins", "error_bins", "latency_hist", "ingest_bins", "item_hours")
"""The rollups a live update maintains (each is its template's name)."""
MAX_COLUMNS = frozenset({"max_ingest_ms", "max_delay_ms"})
"""Columns merged by taking the larger value (every other non-grain column is summed)."""
STATE_FILE = "_live.json"


@dataclass(frozen=True)
class TableUpdate:
    """What one live update did to one rollup partition.

    Attributes:
        name: the rollup.
        mode: ``"extend"`` (merged the new files), ``"rebuild"`` (read every file: first update,
            or a file changed or vanished), ``"adopt"`` (took over a partition of ``expkit rollup``
            and extended it) or ``"none"`` (no new file).
        new_files: event files read, per table.
        rows: rows in the partition after the update.
    """

    name: str
    mode: str
    new_files: dict[str, int]
    rows: int


@dataclass
class LiveUpdate:
    """One live update of a day: per-table results, the data time it covers, seconds taken."""

    day: dt.date
    as_of_ms: int
    tables: list[TableUpdate] = field(default_factory=list)
    seconds: float = 0.0


def _state(part: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((part / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def as_of_ms(wh: Warehouse, day: dt.date) -> int | None:
    """The time up to which every incremental health rollup of ``day`` holds every landed file
    (the oldest ``as_of_ms`` of its tables); ``None`` when a table was not updated live."""
    times = []
    for name in INCREMENTAL_ROLLUPS:
        doc = _state(wh.rollup_partition(name, day))
        if doc is None or doc.get("as_of_ms") is None:
            return None
        times.append(int(doc["as_of_ms"]))
    return min(times)


def _adopted_files(wh: Warehouse, day: dt.date, part: Path) -> dict[str, list[lineage.Entry]] | None:
    """The event files a partition of ``expkit rollup`` holds (from the day's manifest), or None
    when the manifest cannot vouch for it (written before the partition: a killed rebuild)."""
    m = _read_manifest(manifest_path(wh, day))
    files = lineage.partition_files(part)
    if not m or "sources" not in m or not files:
        return None
    built = int(m.get("built_at_ms") or 0)
    if any(f.stat().st_mtime_ns // 1_000_000 > built for f in files):
        return None
    return {t: [list(e) for e in entries] for t, entries in m["sources"].items()}


@dataclass(frozen=True)
class _Files:
    """One table's event files as the update found them: path, (size, mtime ns) and the
    compaction ledger, read once per update."""

    paths: dict[str, Path]
    stats: dict[str, tuple[int, int]]
    compacted: dict[str, list[str]]

    @classmethod
    def of(cls, wh: Warehouse, table: str, day: dt.date) -> _Files:
        paths = {p.name: p for p in wh.event_files(table, day)}
        stats = {str(e[0]): (int(e[1]), int(e[2])) for e in lineage.fingerprint_files(paths.values())}
        return cls({n: p for n, p in paths.items() if n in stats}, stats, ledger(wh, table, day))

    def entries(self, names: Iterable[str]) -> list[lineage.Entry]:
        return [[n, *self.stats[n]] for n in names]


def _plan(snap: Mapping[str, _Files], recorded: Mapping[str, list[lineage.Entry]],
          reads: tuple[str, ...]) -> dict[str, list[str]] | None:
    """The new files of each table since ``recorded`` (``None``: a recorded file changed or
    vanished other than into a compacted file whose sources were all recorded: rebuild)."""
    out: dict[str, list[str]] = {}
    for t in reads:
        now = snap[t].stats
        before = {str(e[0]): (int(e[1]), int(e[2])) for e in recorded.get(t, [])}
        new = sorted(n for n in now if n not in before)
        gone = {n for n in before if n not in now}
        if any(now[n] != before[n] for n in now if n in before):
            return None
        for n in list(new):
            sources = snap[t].compacted.get(n)
            if sources is not None and set(sources) <= before.keys() and gone >= set(sources):
                gone -= set(sources)
                new.remove(n)  # the compacted file holds rows already counted
        if gone:
            return None
        out[t] = new
    return out


def _recorded_after(snap: Mapping[str, _Files], recorded: Mapping[str, list[lineage.Entry]],
                    plan: Mapping[str, list[str]]) -> dict[str, list[lineage.Entry]]:
    """The record after reading ``plan``: recorded files still present, the new ones, and
    compacted files in place of their sources."""
    out = {}
    for t, new in plan.items():
        f = snap[t]
        entries = [list(e) for e in recorded.get(t, []) if str(e[0]) in f.stats]
        entries += f.entries(new)
        known = {str(e[0]) for e in entries}
        entries += f.entries(n for n in f.stats if n not in known and n in f.compacted)
        out[t] = sorted(entries)
    return out


def _merge(old: pa.Table | None, delta: pa.Table, grain: tuple[str, ...]) -> pa.Table:
    """Rows of ``old`` and ``delta`` with the same grain combined (sum; max for ``MAX_COLUMNS``)."""
    if old is None:
        both = delta
        schema = delta.schema
    else:
        schema = old.schema
        both = pa.concat_tables([old, delta.select(old.column_names).cast(schema)])
    values = [c for c in schema.names if c not in grain]
    aggs = [(c, "max" if c in MAX_COLUMNS else "sum") for c in values]
    out = both.group_by(list(grain), use_threads=False).aggregate(aggs)
    out = out.select([*grain, *[f"{c}_{a}" for c, a in aggs]]).rename_columns([*grain, *values])
    out = out.select(schema.names).cast(schema)
    return out.sort_by([(g, "ascending") for g in grain])


def _read_part(part: Path) -> pa.Table | None:
    files = lineage.partition_files(part)
    return pa.concat_tables([pq.ParquetFile(f).read() for f in files]) if files else None


def _update_table(wh: Warehouse, eng: Engine, day: dt.date, name: str, config: ExperimentConfig,
                  now_ms: int, snap: Mapping[str, _Files]) -> TableUpdate:
    template = TEMPLATES[name]
    part = wh.rollup_partition(name, day)
    doc = _state(part)
    mode = "extend"
    recorded: dict[str, list[lineage.Entry]] | None
    if doc is not None:
        recorded = doc.get("files", {})
    else:
        recorded = _adopted_files(wh, day, part)
        mode = "adopt"
    plan = _plan(snap, recorded, template.reads) if recorded is not None else None
    if plan is None:  # first update, or a file changed underneath: read everything
        recorded, mode = {}, "rebuild"
        plan = {t: sorted(snap[t].stats) for t in template.reads}
    assert recorded is not None
    counted = {t: len(v) for t, v in plan.items()}
    files = _recorded_after(snap, recorded, plan)
    if not any(plan.values()) and doc is None:  # a rollup's partition, still complete: left as it is
        rows = sum(pq.read_metadata(f).num_rows for f in lineage.partition_files(part))
        return TableUpdate(name, "none", counted, rows)
    if not any(plan.values()) and doc is not None:  # nothing new: the data stays, its time moves on
        atomic_write_json(part / STATE_FILE, {**doc, "files": files,
                                              "as_of_ms": max(int(doc.get("as_of_ms") or 0), now_ms)})
        return TableUpdate(name, "none", counted, int(doc.get("rows") or 0))
    new_paths = {t: [snap[t].paths[n] for n in plan[t]] for t in template.reads}
    require_schema(new_paths)  # footers of the new files only
    start, end = day_bounds_ms(day)
    sources: dict[str, list[Path] | pa.Schema] = {
        t: (new_paths[t] or EVENT_TABLES[t]) for t in template.reads}
    delta = eng.query(template, _params(name, start, end, config), sources).read_all()
    column = "hour_ms" if "hour_ms" in template.grain else "bin_ms"
    keep = _hour_files(part) if mode != "rebuild" else {}
    pieces: dict[int, pa.Table] = {}
    if keep is None:  # a partition of 'expkit rollup' (one file): split into hours once
        old = _read_part(part)
        pieces, keep = (_by_hour(old, column, start) if old is not None else {}), {}
    schema = next(iter(pieces.values())).schema if pieces else (
        pq.read_schema(next(iter(keep.values()))) if keep else delta.schema)
    for hour, rows in _by_hour(delta, column, start).items():
        before = pieces.get(hour)
        if before is None and hour in keep:
            before = pq.ParquetFile(keep.pop(hour)).read()
        pieces[hour] = _merge(before if before is not None else schema.empty_table(), rows, template.grain)
    total = sum(t.num_rows for t in pieces.values()) + sum(pq.read_metadata(f).num_rows for f in keep.values())
    state = {"files": files, "as_of_ms": now_ms, "updated_at_ms": int(time.time() * 1000), "mode": mode,
             "rows": total}
    _write(part, keep, pieces, state)
    return TableUpdate(name, mode, counted, total)


def _hour_file(hour: int) -> str:
    return f"part-h{hour:02d}.parquet"


def _hour_files(part: Path) -> dict[int, Path] | None:
    """The hour files of a partition written by a live update (``None``: another layout)."""
    out = {}
    for f in lineage.partition_files(part):
        if not (f.name.startswith("part-h") and f.name[6:8].isdigit()):
            return None
        out[int(f.name[6:8])] = f
    return out


def _by_hour(table: pa.Table, column: str, day_start: int) -> dict[int, pa.Table]:
    """``table`` cut by the hour of the day of ``column`` (bins never straddle an hour)."""
    hours = pc.divide(pc.subtract(table[column], day_start), HOUR_MS)
    return {int(h): table.filter(pc.equal(hours, h)) for h in pc.unique(hours).to_pylist()}


def _write(part: Path, keep: Mapping[int, Path], pieces: Mapping[int, pa.Table], state: dict[str, Any]) -> None:
    """Swap in a new partition folder: the unchanged hour files (hard links), the rewritten
    ones and the state record, all at once."""
    with building_dir(part) as tmp:
        for hour, src in keep.items():
            os.link(src, tmp / _hour_file(hour))
        for hour, table in pieces.items():
            if table.num_rows:
                write_reader(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()),
                             tmp / _hour_file(hour))
        (tmp / STATE_FILE).write_text(json.dumps(state) + "\n")


def update_day(wh: Warehouse, eng: Engine, day: dt.date, config: ExperimentConfig, now_ms: int) -> LiveUpdate:
    """Bring the incremental health rollups of ``day`` up to its current event files.

    ``now_ms`` is the time the files present now have landed by (wall clock, or the simulated
    time of a replay): the monitor evaluates bins up to it. Caller holds no lock; this takes
    the rollup lock.
    """
    t0 = time.perf_counter()
    result = LiveUpdate(day, now_ms)
    with rollup_lock(wh):
        finish_compactions(wh, day)
        snap = {t: _Files.of(wh, t, day) for t in EVENT_TABLES}
        for name in INCREMENTAL_ROLLUPS:
            clean_stale_temps(wh.rollups / name)
            result.tables.append(_update_table(wh, eng, day, name, config, now_ms, snap))
    result.seconds = time.perf_counter() - t0
    return result


def update(warehouse: Warehouse | str | Path, day: dt.date, config: ExperimentConfig, now_ms: int,
           engine: str | Engine = "duckdb") -> LiveUpdate:
    """:func:`update_day` with an engine opened (and closed) here when given by name."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse.open(warehouse)
    eng = open_engine(engine, wh) if isinstance(engine, str) else engine
    try:
        return update_day(wh, eng, day, config, now_ms)
    finally:
        if isinstance(engine, str):
            eng.close()
