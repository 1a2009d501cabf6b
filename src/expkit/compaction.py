"""Compaction of a day's many small event files (one per minute of a stream) into one per hour.

A streamed day (``expkit synth --stream``) has one file per table and minute, named after the
minute its rows landed (:func:`minute_file`, ``live-0845.parquet`` for 08:45 UTC). Once an hour
is complete (a file of a later minute exists), :func:`compact_day` replaces its minute files by
one file (``live-h08.parquet``) holding exactly their rows, in the same order. The steps, under
the rollup lock (so ``expkit rollup`` and the live update never see the partition in between):

1. the hour's rows are written to a hidden temporary file beside the partition's files;
2. the compaction ledger (``state/compaction/<table>/<date>.json``: compacted file → its
   source files) records it, atomically: from here on the compaction is decided;
3. the temporary file is renamed into place, then the sources are deleted.

A process killed after step 2 leaves the sources and the temporary or renamed file together;
:func:`finish_compactions` (run first by every holder of the lock: the compaction itself, the
daily rollup and the live update) completes it, so no row is ever counted twice or lost. The
ledger also tells the incremental rollups (:mod:`expkit.incremental`) that a compacted file
holds rows they already counted. See docs/live.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from expkit.atomic import atomic_write_json
from expkit.schema import EVENT_TABLES
from expkit.warehouse import Warehouse

_MINUTE = re.compile(r"live-(\d{2})([0-5]\d)\.parquet")
_STRING_COLUMNS = {t: [f.name for f in s if pa.types.is_string(f.type)] for t, s in EVENT_TABLES.items()}


def minute_file(minute: int) -> str:
    """The file name of the rows that landed in ``minute`` (minutes since the day's 00:00 UTC;
    more than 1439 for rows of the day landing after midnight), as HHMM.

    >>> minute_file(8 * 60 + 45), minute_file(24 * 60 + 3), file_minute("live-0845.parquet")
    ('live-0845.parquet', 'live-2403.parquet', 525)
    """
    return f"live-{minute // 60:02d}{minute % 60:02d}.parquet"


def file_minute(name: str) -> int | None:
    """The landing minute of a stream file name (``None`` for any other file)."""
    m = _MINUTE.fullmatch(name)
    return int(m.group(1)) * 60 + int(m.group(2)) if m else None


def write_events(table: str, data: pa.Table, path: Path) -> None:
    """Write event rows as the generator does (dictionary strings, time statistics), atomically:
    a hidden temporary file renamed over ``path`` (like the batch generator, without fsync)."""
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(data, tmp, compression="snappy", use_dictionary=_STRING_COLUMNS[table],
                   write_statistics=["timestamp_ms", "ingest_ms"], store_schema=False)
    os.replace(tmp, path)


def ledger_path(wh: Warehouse, table: str, day: dt.date) -> Path:
    return wh.state / "compaction" / table / f"{day.isoformat()}.json"


def ledger(wh: Warehouse, table: str, day: dt.date) -> dict[str, list[str]]:
    """The compaction ledger of one table's day: compacted file → the files it replaced."""
    try:
        doc = json.loads(ledger_path(wh, table, day).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): [str(x) for x in v] for k, v in doc.items()} if isinstance(doc, dict) else {}


def compacted_sources(wh: Warehouse, table: str, day: dt.date, name: str) -> list[str] | None:
    """The files that the compacted file ``name`` replaced (``None``: not a compacted file)."""
    return ledger(wh, table, day).get(name)


def finish_compactions(wh: Warehouse, day: dt.date) -> int:
    """Complete compactions of ``day`` interrupted after their ledger entry; return how many
    source files were deleted. Caller holds the rollup lock."""
    removed = 0
    for table in EVENT_TABLES:
        part = wh.event_partition(table, day)
        for out, sources in ledger(wh, table, day).items():
            final, tmp = part / out, part / f".{out}.tmp"
            if not final.exists() and tmp.exists():
                os.replace(tmp, final)
            if not final.exists():
                continue
            for s in sources:
                with contextlib.suppress(FileNotFoundError):
                    (part / s).unlink()
                    removed += 1
        for leftover in part.glob(".live-h*.tmp") if part.is_dir() else ():
            name = leftover.name[1:-4]
            if name not in ledger(wh, table, day):  # written before its ledger entry: not decided
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
    return removed


@dataclass(frozen=True)
class Compacted:
    """One compacted hour of one table: the new file, how many files and rows it replaced."""

    table: str
    file: str
    sources: int
    rows: int


def compact_day(wh: Warehouse, day: dt.date, min_files: int = 2) -> list[Compacted]:
    """Compact every complete landing hour of ``day``'s stream files that has at least
    ``min_files`` files, in every table. An hour is complete once a file of a later minute
    exists in that table. Takes the rollup lock (waits for a running rollup)."""
    from expkit.rollup import rollup_lock

    done: list[Compacted] = []
    with rollup_lock(wh):
        finish_compactions(wh, day)
        for table in EVENT_TABLES:
            done += _compact_table(wh, table, day, min_files)
    return done


def _compact_table(wh: Warehouse, table: str, day: dt.date, min_files: int) -> list[Compacted]:
    part = wh.event_partition(table, day)
    minutes = {p.name: file_minute(p.name) for p in wh.event_files(table, day)}
    stream = {n: m for n, m in minutes.items() if m is not None}
    if not stream:
        return []
    last_hour = max(stream.values()) // 60
    hours: dict[int, list[str]] = {}
    for n, m in sorted(stream.items()):
        if m // 60 < last_hour:
            hours.setdefault(m // 60, []).append(n)
    out = []
    for hour, names in sorted(hours.items()):
        target = f"live-h{hour:02d}.parquet"
        if len(names) < min_files or (part / target).exists():
            continue
        data = pa.concat_tables([pq.read_table(part / n, schema=EVENT_TABLES[table]) for n in names])
        tmp = part / f".{target}.tmp"
        pq.write_table(data, tmp, compression="snappy", use_dictionary=_STRING_COLUMNS[table],
                       write_statistics=["timestamp_ms", "ingest_ms"], store_schema=False)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        record = ledger(wh, table, day)
        record[target] = names
        atomic_write_json(ledger_path(wh, table, day), record)  # the commit point
        os.replace(tmp, part / target)
        for n in names:
            with contextlib.suppress(FileNotFoundError):
                (part / n).unlink()
        out.append(Compacted(table, target, len(names), data.num_rows))
    return out

