"""Per-day cache of derived per-bin series (latency and ingest-delay quantiles).

A quantile per 5-minute bin is not additive, so it cannot be a rollup; but over a range of
days it is the concatenation of its days, and a day's values only change when that day's
rollup files do. :func:`by_day` therefore keeps each whole day of a series, except the
newest day of the request (the one being looked at, the likeliest to get late data), in
``<warehouse>/state/cache/series/<series>/<key>/<date>.parquet``. The file records the
fingerprint (names, sizes, nanosecond modification times) of the rollup files it was
computed from, the parameters and :data:`CACHE_VERSION`; a day whose rollup was rebuilt is
computed again; only the newest :data:`KEEP_DAYS` days of each are kept. The cache is only an
accelerator: a warehouse that cannot be written, or an unreadable entry, means computing as
before, and the folder can be deleted at any time.

The anomaly tile reads 8 days of these series every day; with the cache it computes one
or two of them.

A long-running process (``expkit live``) also keeps them in memory, finer grained, inside
:func:`session`: per *segment* of a rollup partition, i.e. each hour file of a partition kept
live (``part-h14.parquet``, see :mod:`expkit.incremental`) or all files of any other partition.
A per-bin series of a range is then the concatenation of its segments' series, cut to the
range, and an update that rewrote one hour file computes that hour only: the cost of a
24-hour view no longer depends on the time of day. :func:`by_segment` does the same for any
per-bin series (the health counts), without the files on disk.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from expkit import lineage
from expkit.names import HOUR_MS
from expkit.warehouse import DAY_MS, Warehouse, day_bounds_ms

CACHE_VERSION = 1
"""Bump when a cached series' computation changes (entries of other versions are recomputed)."""

KEEP_DAYS = 45
"""Entries kept per series and parameters (the newest days; enough for a 30-day window's baseline)."""

_META_KEY = b"expkit.series_cache"


def cache_folder(wh: Warehouse) -> Path:
    """Where the derived series of ``wh`` are cached."""
    return wh.state / "cache" / "series"


def _read(path: Path, stamp: str) -> pd.DataFrame | None:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException):
        return None
    meta = table.schema.metadata or {}
    if meta.get(_META_KEY) != stamp.encode():
        return None
    return table.to_pandas()


def _write(path: Path, df: pd.DataFrame, stamp: str) -> None:
    try:
        table = pa.Table.from_pandas(df, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: stamp.encode()})
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        for old in sorted(path.parent.glob("????-??-??.parquet"))[:-KEEP_DAYS]:
            old.unlink(missing_ok=True)
    except (OSError, pa.ArrowException):
        pass  # a read-only or full warehouse: the series is simply computed next time too


def _day_of(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).date()


@dataclass
class SegmentCache:
    """Per-bin series of rollup segments kept in memory across updates (see the module doc).

    An entry holds the fingerprint of its segment's files (name, size, modification time,
    inode) and the frame; a rewritten file is computed again. :meth:`sweep` drops the entries
    not used since the previous sweep, so the cache holds only what one update reads (the
    days of the windows shown), not a growing history.
    """

    entries: dict[tuple[str, ...], tuple[str, pd.DataFrame]] = field(default_factory=dict)
    used: set[tuple[str, ...]] = field(default_factory=set)
    computed: int = 0
    values: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    used_values: set[tuple[Any, ...]] = field(default_factory=set)

    def keep(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """``compute()``, or its value kept since an earlier call with ``key`` (which must name
        everything the value depends on); swept like the series."""
        self.used_values.add(key)
        if key not in self.values:
            self.values[key] = compute()
        return self.values[key]

    def sweep(self) -> None:
        """Forget the entries not used since the last sweep."""
        for k in [k for k in self.entries if k not in self.used]:
            del self.entries[k]
        for v in [v for v in self.values if v not in self.used_values]:
            del self.values[v]
        self.used.clear()
        self.used_values.clear()


_SESSION: contextvars.ContextVar[SegmentCache | None] = contextvars.ContextVar("expkit_segments", default=None)


def current() -> SegmentCache | None:
    """The cache of the enclosing :func:`session` (``None`` outside one)."""
    return _SESSION.get()


@contextlib.contextmanager
def session(cache: SegmentCache) -> Iterator[SegmentCache]:
    """Within the block, per-bin series are kept in (and read from) ``cache``."""
    token = _SESSION.set(cache)
    try:
        yield cache
    finally:
        _SESSION.reset(token)


@dataclass(frozen=True)
class _Segment:
    day: dt.date
    hour: int | None  # None: every file of the day's partition
    lo: int
    hi: int
    files: list[Path]


def _segments(wh: Warehouse, rollup: str, day: dt.date) -> list[_Segment]:
    """The segments of ``day``'s partition of ``rollup``: its hour files, or all its files."""
    files = wh.rollup_files(rollup, [day])
    lo, hi = day_bounds_ms(day)
    hours: dict[int, Path] = {}
    for f in files:
        name = f.name
        if not (name.startswith("part-h") and name[6:8].isdigit() and name[8:] == ".parquet"):
            return [_Segment(day, None, lo, hi, files)] if files else []
        hours[int(name[6:8])] = f
    return [_Segment(day, h, lo + h * HOUR_MS, lo + (h + 1) * HOUR_MS, [f]) for h, f in sorted(hours.items())]


def files_for(wh: Warehouse, rollup: str, start_ms: int, end_ms: int) -> list[Path]:
    """The files of ``rollup`` that can hold bins of ``[start_ms, end_ms)``: every file of the
    days it overlaps, except hour files of other hours (all of them when none is left: a query
    over them then has the columns of the rollup and no row)."""
    first, last = _day_of(start_ms), _day_of(end_ms - 1)
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    files = [f for d in days for s in _segments(wh, rollup, d) if s.lo < end_ms and s.hi > start_ms for f in s.files]
    return files or wh.rollup_files(rollup, days)


def _stamp(files: list[Path]) -> str | None:
    out = []
    for f in files:
        try:
            st = f.stat()
        except OSError:
            return None
        out.append([f.name, st.st_size, st.st_mtime_ns, st.st_ino])
    return json.dumps(out)


def _from_segments(
    cache: SegmentCache,
    wh: Warehouse,
    rollup: str,
    series: str,
    key_json: str,
    start_ms: int,
    end_ms: int,
    compute: Callable[[int, int], pd.DataFrame],
    disk: Callable[[_Segment], pd.DataFrame | None] | None = None,
    store: Callable[[_Segment, pd.DataFrame], None] | None = None,
) -> pd.DataFrame | None:
    """The series of ``[start_ms, end_ms)`` from whole segments (``None``: the range has no
    rollup file; the caller computes it)."""
    first, last = _day_of(start_ms), _day_of(end_ms - 1)
    segs = [s for i in range((last - first).days + 1)
            for s in _segments(wh, rollup, first + dt.timedelta(days=i)) if s.lo < end_ms and s.hi > start_ms]
    if not segs:
        return None
    frames: dict[int, pd.DataFrame] = {}
    missing: list[int] = []
    for i, seg in enumerate(segs):
        k = (series, key_json, rollup, seg.day.isoformat(), str(seg.hour))
        stamp = _stamp(seg.files)
        hit = cache.entries.get(k)
        cache.used.add(k)
        if stamp is not None and hit is not None and hit[0] == stamp:
            frames[i] = hit[1]
            continue
        on_disk = disk(seg) if disk is not None and stamp is not None else None
        if on_disk is not None:
            frames[i] = on_disk
            cache.entries[k] = (stamp or "", on_disk)
            continue
        missing.append(i)
    runs: list[list[int]] = []
    for i in missing:  # consecutive segments missing from the cache: one computation
        if runs and segs[runs[-1][-1]].hi == segs[i].lo:
            runs[-1].append(i)
        else:
            runs.append([i])
    for run in runs:
        lo, hi = segs[run[0]].lo, segs[run[-1]].hi
        df = compute(lo, hi)
        cache.computed += 1
        b = df["bin_ms"].to_numpy() if not df.empty else None
        for i in run:
            seg = segs[i]
            part = df if b is None else df[(b >= seg.lo) & (b < seg.hi)].reset_index(drop=True)
            frames[i] = part
            stamp = _stamp(seg.files)
            if stamp is not None:
                cache.entries[(series, key_json, rollup, seg.day.isoformat(), str(seg.hour))] = (stamp, part)
            if store is not None and not part.empty:
                store(seg, part)
    parts = [frames[i] for i in range(len(segs)) if not frames[i].empty]
    if not parts:
        return None
    # a new frame: callers may add columns, the cached ones must stay as they are
    df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].copy()
    b = df["bin_ms"].to_numpy()
    inside = (b >= start_ms) & (b < end_ms)
    return df if inside.all() else df[inside].reset_index(drop=True)


def by_segment(
    wh: Warehouse,
    rollup: str,
    series: str,
    key: Mapping[str, Any],
    start_ms: int,
    end_ms: int,
    compute: Callable[[int, int], pd.DataFrame],
) -> pd.DataFrame:
    """``compute(start_ms, end_ms)``; inside :func:`session`, from the in-memory segments.

    ``compute`` must return a frame with an integer ``bin_ms`` column, sorted by it, whose rows
    for a bin depend only on the rollup files holding that bin (true for per-bin series).
    """
    cache = _SESSION.get()
    if cache is None:
        return compute(start_ms, end_ms)
    key_json = json.dumps(dict(key), sort_keys=True, default=str)
    out = _from_segments(cache, wh, rollup, series, key_json, start_ms, end_ms, compute)
    return compute(start_ms, end_ms) if out is None else out


def by_day(
    wh: Warehouse,
    rollup: str,
    series: str,
    key: Mapping[str, Any],
    start_ms: int,
    end_ms: int,
    compute: Callable[[int, int], pd.DataFrame],
    bin_ms: int = DAY_MS,
) -> pd.DataFrame:
    """``compute(start_ms, end_ms)``, with its whole days but the newest read from the cache.

    ``compute`` must return a frame with an integer ``bin_ms`` column, sorted by it, whose rows
    for a day depend only on that day's files of rollup ``rollup`` (true for per-bin series
    whose bins divide a day). ``series`` and ``key`` (JSON-serializable parameters of the
    computation) name the entry. Days not in the cache are computed together, in as few calls
    as there are runs of consecutive days, and stored. Inside :func:`session`, when the bins
    (``bin_ms`` long) divide an hour, the series is assembled from in-memory segments.
    """
    first, last = _day_of(start_ms), _day_of(end_ms - 1)
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    key_json = json.dumps(dict(key), sort_keys=True, default=str)
    folder = cache_folder(wh) / series / hashlib.sha256(key_json.encode()).hexdigest()[:16]

    cache = _SESSION.get()
    if cache is not None and HOUR_MS % bin_ms == 0:
        def stamp(seg: _Segment) -> str | None:
            files = lineage.fingerprint_files(seg.files)
            if seg.hour is not None or seg.day == last or not files:
                return None  # only whole days before the newest are kept on disk
            return json.dumps({"version": CACHE_VERSION, "series": series, "key": key_json, "files": files})

        def disk(seg: _Segment) -> pd.DataFrame | None:
            st = stamp(seg)
            return None if st is None else _read(folder / f"{seg.day.isoformat()}.parquet", st)

        def store(seg: _Segment, df: pd.DataFrame) -> None:
            st = stamp(seg)
            if st is not None and day_bounds_ms(seg.day)[0] >= start_ms and day_bounds_ms(seg.day)[1] <= end_ms:
                _write(folder / f"{seg.day.isoformat()}.parquet", df, st)

        out = _from_segments(cache, wh, rollup, series, key_json, start_ms, end_ms, compute, disk, store)
        return compute(start_ms, end_ms) if out is None else out

    frames: dict[dt.date, pd.DataFrame] = {}
    stamps: dict[dt.date, str] = {}
    for day in days[:-1]:
        lo, hi = day_bounds_ms(day)
        if lo < start_ms or hi > end_ms:
            continue  # a partial day is never cached
        files = lineage.fingerprint_files(wh.rollup_files(rollup, [day]))
        if not files:
            continue  # no rollup (yet): nothing worth keeping
        stamps[day] = json.dumps({"version": CACHE_VERSION, "series": series, "key": key_json, "files": files})
        hit = _read(folder / f"{day.isoformat()}.parquet", stamps[day])
        if hit is not None:
            frames[day] = hit

    # compute each run of consecutive days missing from the cache in one call
    runs: list[list[dt.date]] = []
    for day in days:
        if day in frames:
            continue
        if runs and (day - runs[-1][-1]).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    empty: pd.DataFrame | None = None
    for run in runs:
        lo = max(start_ms, day_bounds_ms(run[0])[0])
        hi = min(end_ms, day_bounds_ms(run[-1])[1])
        df = compute(lo, hi)
        if df.empty:
            empty = df
            continue
        day_ms = df["bin_ms"].to_numpy() // DAY_MS * DAY_MS
        for day in run:
            part = df[day_ms == day_bounds_ms(day)[0]].reset_index(drop=True)
            frames[day] = part
            if day in stamps and not part.empty:
                _write(folder / f"{day.isoformat()}.parquet", part, stamps[day])

    parts = [frames[d] for d in days if d in frames and not frames[d].empty]
    if not parts:
        return empty if empty is not None else compute(start_ms, end_ms)
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
