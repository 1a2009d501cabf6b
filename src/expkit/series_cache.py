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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from expkit import lineage
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


def by_day(
    wh: Warehouse,
    rollup: str,
    series: str,
    key: Mapping[str, Any],
    start_ms: int,
    end_ms: int,
    compute: Callable[[int, int], pd.DataFrame],
) -> pd.DataFrame:
    """``compute(start_ms, end_ms)``, with its whole days but the newest read from the cache.

    ``compute`` must return a frame with an integer ``bin_ms`` column, sorted by it, whose rows
    for a day depend only on that day's files of rollup ``rollup`` (true for per-bin series
    whose bins divide a day). ``series`` and ``key`` (JSON-serializable parameters of the
    computation) name the entry. Days not in the cache are computed together, in as few calls
    as there are runs of consecutive days, and stored.
    """
    first, last = _day_of(start_ms), _day_of(end_ms - 1)
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    key_json = json.dumps(dict(key), sort_keys=True, default=str)
    folder = cache_folder(wh) / series / hashlib.sha256(key_json.encode()).hexdigest()[:16]

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
