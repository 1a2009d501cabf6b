"""Late data: rows that landed after their day was rolled up.

A day's rollup records what it read in its manifest (``state/rollups/D.json``: every event
file's name, size and modification time). Data is late for day D when, since that build,

* event files of D were added, changed or removed (the manifest's fingerprint differs), and
* rows of D carry an ``ingest_ms`` above the newest one the rollup saw of that table (its
  watermark, read back from D's ``ingest_bins`` partition).

Watermarks compare event-clock times with event-clock times, so the test also holds for
synthetic or replayed data whose ``ingest_ms`` is far from the wall clock of the build.
Which days changed is the lineage rule of the rollups (:func:`expkit.rollup.day_staleness`);
``expkit rollup --backfill`` rebuilds exactly the days listed here, then refreshes the
statistics of every later day whose windows read them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from expkit.engines import Engine
from expkit.rollup import day_staleness, raw_built_at_ms, rollup_graph
from expkit.schema import EVENT_TABLES
from expkit.validation.query import event_sources, rows, run_template
from expkit.warehouse import Warehouse, day_bounds_ms


@dataclass(frozen=True)
class FileChange:
    """An event file that differs from what the rollup read: ``new``, ``changed`` or ``removed``."""

    table: str
    name: str
    change: str


@dataclass(frozen=True)
class LateDay:
    """A rolled-up day whose events changed since the rollup.

    Attributes:
        day: the event date.
        built_at_ms: when its rollup was built (wall clock).
        files: event files added, changed or removed since.
        late_rows: per table, rows above the rollup's watermark.
        watermarks: per table, the newest ``ingest_ms`` the rollup saw (None: it saw no rows).
    """

    day: dt.date
    built_at_ms: int | None
    files: tuple[FileChange, ...]
    late_rows: dict[str, int] = field(default_factory=dict)
    watermarks: dict[str, int | None] = field(default_factory=dict)

    @property
    def total_late_rows(self) -> int:
        return sum(self.late_rows.values())

    def to_dict(self) -> dict[str, object]:
        return {
            "date": self.day.isoformat(),
            "built_at_ms": self.built_at_ms,
            "late_rows": self.late_rows,
            "watermarks": self.watermarks,
            "files": [{"table": f.table, "name": f.name, "change": f.change} for f in self.files],
        }


@dataclass(frozen=True)
class LateScan:
    """What a late-data scan over some days found."""

    days: tuple[dt.date, ...]
    late: tuple[LateDay, ...]
    not_rolled_up: tuple[dt.date, ...]

    @property
    def affected_dates(self) -> list[dt.date]:
        """Days whose rollups are out of date (late rows or changed files)."""
        return [d.day for d in self.late]


def _watermarks(wh: Warehouse, engine: Engine, day: dt.date) -> dict[str, int | None]:
    start, end = day_bounds_ms(day)
    files = wh.rollup_files("ingest_bins", [day])
    if not files:
        return dict.fromkeys(EVENT_TABLES)
    got = {r["event_table"]: r["watermark_ms"]
           for r in rows(run_template(engine, "check_rollup_watermark", {"ingest_bins": files},
                                      start_ms=start, end_ms=end))}
    return {t: (int(got[t]) if got.get(t) is not None else None) for t in EVENT_TABLES}


def late_rows(wh: Warehouse, engine: Engine, day: dt.date, watermarks: dict[str, int | None]) -> dict[str, int]:
    """Rows of ``day`` per table whose ``ingest_ms`` is above the table's watermark."""
    start, end = day_bounds_ms(day)
    params = {f"wm_{t}": -1 if (wm := watermarks.get(t)) is None else int(wm) for t in EVENT_TABLES}
    got = {r["event_table"]: int(r["late_rows"] or 0)
           for r in rows(run_template(engine, "check_late_rows", event_sources(wh, [day]),
                                      start_ms=start, end_ms=end, **params))}
    return {t: got.get(t, 0) for t in EVENT_TABLES}


def scan_late_data(wh: Warehouse, engine: Engine, days: list[dt.date]) -> LateScan:
    """Look for late data on ``days``: only days whose raw rollups are stale by the lineage rule
    (:func:`expkit.rollup.day_staleness`: event files changed since the build) are queried."""
    late, never = [], []
    graph = rollup_graph(wh)
    for day in days:
        raw = day_staleness(wh, day, graph).raw
        if not raw.built:
            if wh.event_files("requests", day):
                never.append(day)
            continue
        changes = [FileChange(c.input.split("/")[1], c.name, c.change) for c in raw.changes]
        if not changes:
            continue
        marks = _watermarks(wh, engine, day)
        late.append(LateDay(day, raw_built_at_ms(wh, day), tuple(changes), late_rows(wh, engine, day, marks), marks))
    return LateScan(tuple(days), tuple(late), tuple(never))
