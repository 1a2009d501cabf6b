"""Build the rollups of a date: raw events in, sufficient statistics and mergeable summaries out.

``build_rollups(warehouse, day, config)`` runs every template of :data:`RAW_ROLLUPS` over the
day's event partitions, then :data:`STATS_ROLLUP` (``outcome_stats``) over the per-user and
per (user, item) facts of each window ending that day (:func:`stats_sources`). Each rollup's
day partition is written to a temporary folder and swapped in, so rerunning a date replaces
exactly that date's partitions and a killed run leaves the previous partitions intact. A
manifest per date (``state/rollups/<date>.json``) records what the rollup read, for late-data
detection and backfill.

Tiles and statistics read only these tables, never raw events.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from expkit.atomic import FileLock, atomic_write_json, building_dir, clean_stale_temps
from expkit.config import WINDOWS, ExperimentConfig
from expkit.engines import Engine, get_engine, write_parquet, write_reader
from expkit.histogram import LN_GAMMA, MIN_VALUE
from expkit.rollup_schema import USER_FACTS_SCHEMA, USER_ITEMS_SCHEMA
from expkit.schema import EVENT_TABLES, require_schema
from expkit.templates import TEMPLATES
from expkit.warehouse import BIN_MS, DAY_MS, Warehouse, day_bounds_ms

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class RawRollup:
    """A rollup computed from one day's raw events.

    Attributes:
        name: rollup table name (``rollups/<name>/``).
        template: the SQL template it runs.
        span: ``"day"`` (the whole UTC day) or ``"last_hour"`` (the day's last hour).
    """

    name: str
    template: str
    span: str = "day"


RAW_ROLLUPS: tuple[RawRollup, ...] = (
    RawRollup("health_bins", "health_bins"),
    RawRollup("error_bins", "error_bins"),
    RawRollup("latency_hist", "latency_hist"),
    RawRollup("engagement_bins", "engagement_bins"),
    RawRollup("ingest_bins", "ingest_bins"),
    RawRollup("item_hours", "item_hours"),
    RawRollup("user_day", "user_facts"),
    RawRollup("user_last_hour", "user_facts", span="last_hour"),
    RawRollup("user_items", "user_items"),
    RawRollup("user_items_last_hour", "user_items", span="last_hour"),
)
STATS_ROLLUP = "outcome_stats"
"""Per-window sufficient statistics of every outcome metric (windows of :data:`STATS_WINDOWS`)."""
STATS_WINDOWS = (*WINDOWS, "cum")
"""``cum`` is the experiment to date (start_date through the day)."""
ROLLUP_NAMES = tuple(r.name for r in RAW_ROLLUPS) + (STATS_ROLLUP,)
STATS_INPUTS: dict[str, tuple[str, str]] = {
    "user_facts": ("user_day", "user_last_hour"),
    "user_items": ("user_items", "user_items_last_hour"),
}
"""Views that ``ratio_stats`` reads → (rollup of whole days, rollup of a day's last hour)."""


@dataclass
class RollupResult:
    """What one date's rollup produced: rows per table and seconds taken."""

    day: dt.date
    engine: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _params(template: str, start_ms: int, end_ms: int, config: ExperimentConfig) -> dict[str, Any]:
    values: dict[str, Any] = {
        "start_ms": start_ms,
        "end_ms": end_ms,
        "bin_ms": BIN_MS,
        "ln_gamma": LN_GAMMA,
        "min_ms": MIN_VALUE,
        "top_k": config.top_k,
    }
    t = TEMPLATES[template]
    return t.bind(**{k: values[k] for k in t.params})


def _write_partition(path: Path, write: Callable[[Path], int]) -> int:
    """Build one rollup partition atomically: ``write(file)`` fills it; return the row count."""
    with building_dir(path) as tmp:
        return write(tmp / "part-00000.parquet")


def _event_sources(wh: Warehouse, day: dt.date) -> dict[str, list[Path] | pa.Schema]:
    return {t: (wh.event_files(t, day) or schema) for t, schema in EVENT_TABLES.items()}


def source_fingerprint(wh: Warehouse, day: dt.date) -> dict[str, list[list[Any]]]:
    """Name, size and modification time (ns) of every event file of ``day`` (for late-data checks).

    Nanoseconds, not seconds: a file rewritten with the same size in the second of the build
    would otherwise look unchanged.
    """
    out = {}
    for t in EVENT_TABLES:
        out[t] = [[p.name, (st := p.stat()).st_size, st.st_mtime_ns] for p in wh.event_files(t, day)]
    return out


_SECONDS_BELOW = 10**12
"""Manifests written before fingerprints held nanoseconds recorded whole seconds (< 10¹²)."""


def fingerprint_changes(
    recorded: dict[str, list[list[Any]]], current: dict[str, list[list[Any]]]
) -> list[tuple[str, str, str]]:
    """``(table, file name, "new" | "removed" | "changed")`` between two :func:`source_fingerprint`."""
    out = []
    for table in EVENT_TABLES:
        before = {str(e[0]): (int(e[1]), int(e[2])) for e in recorded.get(table, [])}
        now = {str(e[0]): (int(e[1]), int(e[2])) for e in current.get(table, [])}
        out += [(table, n, "new") for n in sorted(now.keys() - before.keys())]
        out += [(table, n, "removed") for n in sorted(before.keys() - now.keys())]
        for n in sorted(now.keys() & before.keys()):
            (size0, mtime0), (size1, mtime1) = before[n], now[n]
            if mtime0 < _SECONDS_BELOW:
                mtime1 //= 10**9
            if (size0, mtime0) != (size1, mtime1):
                out.append((table, n, "changed"))
    return out


def newest_source_ms(fingerprint: dict[str, list[list[Any]]]) -> int | None:
    """The newest modification time in a :func:`source_fingerprint`, in epoch ms (None: no files)."""
    return max((int(e[2]) // 10**6 for files in fingerprint.values() for e in files), default=None)


def manifest_path(wh: Warehouse, day: dt.date) -> Path:
    return wh.state / "rollups" / f"{day.isoformat()}.json"


def window_days(day: dt.date, window: str, start_date: dt.date | None = None) -> list[dt.date]:
    """The UTC days a window ending at the end of ``day`` touches (``cum``: from ``start_date``)."""
    if window == "cum":
        first = min(start_date or day, day)
        return [first + dt.timedelta(days=i) for i in range((day - first).days + 1)]
    n = max(1, WINDOWS[window] // DAY_MS)
    return [day - dt.timedelta(days=i) for i in range(n - 1, -1, -1)]


def stats_sources(
    wh: Warehouse, day: dt.date, window: str, start_date: dt.date | None = None
) -> dict[str, list[Path] | pa.Schema]:
    """The views of ``ratio_stats`` for ``window`` ending at the end of ``day``.

    Each view of :data:`STATS_INPUTS` is read from the window's day partitions (``1h``: the
    day's last-hour rollup); a view with no partition yet is an empty table of its schema.
    """
    schemas = {"user_facts": USER_FACTS_SCHEMA, "user_items": USER_ITEMS_SCHEMA}
    out: dict[str, list[Path] | pa.Schema] = {}
    for view, (days_rollup, hour_rollup) in STATS_INPUTS.items():
        if window == "1h":
            files = wh.rollup_files(hour_rollup, [day])
        else:
            files = wh.rollup_files(days_rollup, window_days(day, window, start_date))
        out[view] = files or schemas[view]
    return out


def build_stats(wh: Warehouse, engine: Engine, day: dt.date, config: ExperimentConfig) -> int:
    """Write ``outcome_stats`` for ``day``: ratio statistics for every window ending that day.

    Windows that read the very same rollup files (e.g. ``24h``, ``7d``, ``30d`` and ``cum`` on
    an experiment's first day) have the same statistics: they are computed once.
    """
    template = TEMPLATES["ratio_stats"]
    tables = []
    done: dict[tuple[Any, ...], pa.Table] = {}
    for window in STATS_WINDOWS:
        sources = stats_sources(wh, day, window, config.start_date)
        key = tuple((view, tuple(map(str, src)) if isinstance(src, list) else None) for view, src in sources.items())
        if key not in done:
            done[key] = engine.query(template, {}, sources).read_all()
        t = done[key]
        tables.append(t.append_column("window_name", pa.array([window] * t.num_rows, pa.string())))
    table = pa.concat_tables(tables)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    return _write_partition(wh.rollup_partition(STATS_ROLLUP, day), lambda f: write_reader(reader, f))


def open_engine(name: str, wh: Warehouse) -> Engine:
    """The engine called ``name`` set up for rollups of ``wh``.

    DuckDB spills what outgrows its memory limit into ``state/spill/`` of the warehouse (not
    into the working directory, which may be read-only or on a small disk).
    """
    if name == "duckdb":
        return get_engine(name, temp_dir=wh.state / "spill")
    return get_engine(name)


def build_rollups(
    warehouse: Warehouse | str | Path,
    day: dt.date,
    config: ExperimentConfig,
    engine: str | Engine = "duckdb",
    progress: Callable[[str], None] | None = None,
) -> RollupResult:
    """Build (or rebuild) every rollup of ``day``; idempotent."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse.open(warehouse)
    wh.require_events(day)
    # Footers only: a missing column or a wrong type is named before any partition is replaced.
    require_schema({t: wh.event_files(t, day) for t in EVENT_TABLES})
    eng = open_engine(engine, wh) if isinstance(engine, str) else engine
    result = RollupResult(day=day, engine=eng.name)
    t0 = time.perf_counter()
    with FileLock(wh.state / "locks" / "rollup.lock", what=f"rollups of {wh.root}"):
        for name in ROLLUP_NAMES:  # leftovers of killed runs sit beside each table's partitions
            clean_stale_temps(wh.rollups / name)
        fingerprint = source_fingerprint(wh, day)
        start, end = day_bounds_ms(day)
        sources = _event_sources(wh, day)
        for r in RAW_ROLLUPS:
            lo = end - HOUR_MS if r.span == "last_hour" else start
            template, values = TEMPLATES[r.template], _params(r.template, lo, end, config)
            result.rows[r.name] = _write_partition(
                wh.rollup_partition(r.name, day), lambda f: write_parquet(eng, template, values, sources, f)  # noqa: B023
            )
            if progress:
                progress(f"{day} {r.name}: {result.rows[r.name]:,} rows")
        result.rows[STATS_ROLLUP] = build_stats(wh, eng, day, config)
        result.seconds = time.perf_counter() - t0
        atomic_write_json(
            manifest_path(wh, day),
            {
                "date": day.isoformat(),
                "engine": eng.name,
                "built_at_ms": int(time.time() * 1000),
                "seconds": round(result.seconds, 3),
                "rows": result.rows,
                "sources": fingerprint,
            },
        )
    if isinstance(engine, str):
        eng.close()
    return result


def stale_dates(wh: Warehouse, days: list[dt.date]) -> list[dt.date]:
    """Dates whose event files changed since their rollup was built (late data), never built, or
    built before one of :data:`ROLLUP_NAMES` existed (e.g. ``user_items``: rebuilt by ``--backfill``)."""
    import json

    out = []
    for day in days:
        path = manifest_path(wh, day)
        if not path.is_file():
            out.append(day)
            continue
        manifest = json.loads(path.read_text())
        if fingerprint_changes(manifest["sources"], source_fingerprint(wh, day)) or (
            set(ROLLUP_NAMES) - set(manifest.get("rows", {}))
        ):
            out.append(day)
    return out


def build_range(
    warehouse: Warehouse | str | Path,
    start: dt.date,
    end: dt.date,
    config: ExperimentConfig,
    engine: str = "duckdb",
    backfill: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[RollupResult]:
    """Build the rollups of every date from ``start`` to ``end`` (in order: windows look back).

    With ``backfill``, only dates whose events changed since their rollup (late data) are
    rebuilt, and the window statistics of the 30 days after each are refreshed.
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse.open(warehouse)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    days = [d for d in days if wh.event_files("requests", d)] if backfill else days
    targets = stale_dates(wh, days) if backfill else days
    eng = open_engine(engine, wh)
    results = []
    try:
        for day in targets:
            results.append(build_rollups(wh, day, config, eng, progress))
        if backfill and targets:
            later = sorted(
                {t + dt.timedelta(days=i) for t in targets for i in range(1, 31)}
                - set(targets)
            )
            for day in later:
                if wh.rollup_dates(STATS_ROLLUP) and manifest_path(wh, day).is_file():
                    with FileLock(wh.state / "locks" / "rollup.lock", what=f"rollups of {wh.root}"):
                        build_stats(wh, eng, day, config)
                    if progress:
                        progress(f"{day} outcome_stats refreshed")
    finally:
        eng.close()
    return results
