"""Build the rollups of a date: raw events in, sufficient statistics and mergeable summaries out.

``build_rollups(warehouse, day, config)`` runs every template of :data:`RAW_ROLLUPS` over the
day's event partitions, then :data:`STATS_ROLLUP` (``outcome_stats``) over the per-user and
per (user, item) facts of each window ending that day (:func:`stats_sources`). Each rollup's
day partition is written to a temporary folder and swapped in, so rerunning a date replaces
exactly that date's partitions and a killed run leaves the previous partitions intact. A
manifest per date (``state/rollups/<date>.json``), written last, records what each of the
date's two artifacts read: its raw rollups the day's event files (``sources``), its statistics
every per-user partition of its windows, absent ones included (``stats.inputs``), and the
digests of the metric catalogue they were built with (``catalogue``, ``stats.catalogue``:
changing a metric's definition makes them stale, see :func:`rollup_graph`).
:func:`stale_dates` applies the one staleness rule of :mod:`expkit.lineage` to them, and
:func:`refresh` rebuilds what is stale in date order (docs/architecture.md, "Lineage").

Tiles and statistics read only these tables, never raw events.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from expkit import lineage
from expkit.atomic import FileLock, atomic_write_json, building_dir, clean_stale_temps
from expkit.catalogue import LEGACY_FACTS_DIGEST, LEGACY_STATS_DIGEST, Catalogue
from expkit.compaction import finish_compactions
from expkit.config import WINDOWS, ExperimentConfig
from expkit.engines import Engine, EngineSpec, engine_spec, get_engine, write_parquet, write_reader
from expkit.histogram import LN_GAMMA, MIN_VALUE
from expkit.metrics_sql import (
    exposure_ages_schema,
    exposure_stats_query,
    query,
    ratio_stats_query,
    user_facts_schema,
    user_pre_query,
    user_pre_schema,
)
from expkit.names import HOUR_MS
from expkit.rollup_schema import PLAYED_ITEMS_SCHEMA, USER_FIRST_SCHEMA, USER_ITEMS_SCHEMA
from expkit.schema import EVENT_TABLES, OPTIONAL_TABLES, require_schema
from expkit.templates import TEMPLATES, Template
from expkit.warehouse import BIN_MS, DAY_MS, Warehouse, day_bounds_ms


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
    RawRollup("user_latency", "user_latency_hist"),
    RawRollup("user_latency_last_hour", "user_latency_hist", span="last_hour"),
)
STATS_ROLLUP = "outcome_stats"
"""Per-window sufficient statistics of every outcome metric (windows of :data:`STATS_WINDOWS`)."""
STATS_WINDOWS = (*WINDOWS, "cum")
"""``cum`` is the experiment to date (start_date through the day)."""
ROLLUP_NAMES = tuple(r.name for r in RAW_ROLLUPS) + (STATS_ROLLUP,)
PRE_ROLLUP = "user_pre"
"""Each user's CUPED pre-period sums per ratio metric (template ``user_pre``): one partition per
experiment, named by its start date, built once from the per-user rollups of the
``cuped.lookback_days`` days before it (:func:`build_pre_period`)."""
PLAYED_ROLLUPS = ("played_items", "played_items_last_hour")
"""The pairs played on a day, and in its last hour, with what Recall@K needs to count them in any window
(template ``played_items``): part of a day's statistics artifact, read from its own day's ``user_items``
(``user_items_last_hour``) and the earlier experiment days' ``user_items`` (:func:`build_played`)."""
STATS_INPUTS: dict[str, tuple[str, str]] = {
    "user_facts": ("user_day", "user_last_hour"),
    "played_items": PLAYED_ROLLUPS,
}
"""Views that ``ratio_stats`` reads → (rollup of whole days, rollup of a day's last hour)."""
CUM_ROLLUP = "user_cum"
"""Each user's facts over the experiment to date, in the schema of ``user_day`` (template ``user_cum``):
part of a day's statistics artifact, read from the previous day's ``user_cum`` and the day's own
``user_day`` (:func:`build_user_cum`). The windows that hold every experiment day to date (``cum``, and
the 7d and 30d ones while the experiment is younger) read it instead of each ``user_day`` since the start,
so their cost follows the number of users, not the experiment's age."""
SPAN_ROLLUPS: dict[int, str] = {2: "user_span_2d", 4: "user_span_4d", 8: "user_span_8d", 16: "user_span_16d"}
"""Each user's facts over an aligned span of days, in the schema of ``user_day`` (template ``user_cum``, the
same merge), by its length in days; a partition is named by the span's last day. A span of n days starts
a multiple of n days after the experiment's start (never on the start itself: those spans are the running
totals :data:`CUM_ROLLUP` of their last day) and is part of the statistics artifact of its last day, merged
from its two halves (:func:`build_spans`). A sliding window reads the few spans that tile its days
(:func:`span_pieces`) instead of one ``user_day`` per day (docs/architecture.md, "Spans for sliding
windows")."""
SPAN_SIZES = tuple(sorted(SPAN_ROLLUPS))
ITEMS_INPUTS = ("user_items", "user_items_last_hour")
"""The per (user, item) facts (of whole days, of a day's last hour) that the played pairs read."""
FIRST_ROLLUP = "user_first"
"""The users first exposed on each day of the experiment (template ``user_first``): part of a day's
statistics artifact, read from its own day's ``user_day`` and the earlier days' ``user_first``."""
EXPOSURE_ROLLUP = "exposure_stats"
"""Per arm, metric and pair of exposure ages, the experiment-to-date sums of the lift by days since
first exposure and of its trend (template ``exposure_stats``; docs/statistics.md, "Novelty and primacy")."""
AGES_ROLLUP = "exposure_ages"
"""Each user's sums per exposure-age bucket over the experiment to date (template ``exposure_ages``): part
of a day's statistics artifact, read from the previous day's and the day's own ``user_day``
(:func:`build_exposure`); ``exposure_stats`` is computed from it, so its cost follows the number of users,
not the experiment's age."""
EXPOSURE_TAIL_DAYS = 7
"""Exposure ages from this many days on are one bucket (``7+``)."""
LATENCY_INPUTS = ("user_latency", "user_latency_last_hour")
"""Per-user latency histograms (template ``user_latency_hist``): of whole days, of a day's last hour."""
EXPOSED_ROLLUPS = ("user_day", "user_last_hour", "user_latency", "user_latency_last_hour")
"""Per-user rollups keyed by experiment: on a day with an ``exposures`` table (several experiments
at once), each user's rows are repeated for every experiment she was exposed to (template
``exposed_facts``; docs/metrics.md, "Several experiments")."""


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
    q = query(template, config.catalogue)
    return q.bind(**{k: values[k] for k in q.template.params})


def _write_partition(path: Path, write: Callable[[Path], int]) -> int:
    """Build one rollup partition atomically: ``write(file)`` fills it; return the row count."""
    with building_dir(path) as tmp:
        return write(tmp / "part-00000.parquet")


def event_file_lists(wh: Warehouse, day: dt.date) -> dict[str, list[Path]]:
    """The event files of ``day`` per table (the optional ones too), listed once: a build reads and
    records these very lists, so a file the stream lands meanwhile is neither read nor recorded (it
    makes the day stale) instead of read but not recorded (counted twice by the next live update)."""
    return {t: wh.event_files(t, day) for t in (*EVENT_TABLES, *OPTIONAL_TABLES)}


def _event_sources(wh: Warehouse, day: dt.date,
                   files: dict[str, list[Path]] | None = None) -> dict[str, list[Path] | pa.Schema]:
    files = event_file_lists(wh, day) if files is None else files
    return {t: (files[t] or schema) for t, schema in EVENT_TABLES.items()}


def source_fingerprint(wh: Warehouse, day: dt.date,
                       files: dict[str, list[Path]] | None = None) -> dict[str, list[list[Any]]]:
    """Fingerprint (:func:`expkit.lineage.fingerprint_files`) of every event file of ``day`` (or of the
    lists ``files`` of :func:`event_file_lists`), per table: the recorded inputs of the day's raw
    rollups (``sources`` in its manifest); an optional table (``exposures``) when the day has it."""
    files = event_file_lists(wh, day) if files is None else files
    out = {t: lineage.fingerprint_files(files[t]) for t in EVENT_TABLES}
    out |= {t: lineage.fingerprint_files(files[t]) for t in OPTIONAL_TABLES if files[t]}
    return out


def _exposed_writer(
    eng: Engine, template: Template, values: dict[str, Any], sources: dict[str, list[Path] | pa.Schema],
    exposures: list[Path],
) -> Callable[[Path], int]:
    """A partition writer that runs ``template``, then repeats its rows per exposed experiment
    (template ``exposed_facts``); the intermediate file stays inside the partition being built."""
    def write(f: Path) -> int:
        raw = f.with_name(".facts-" + f.name)
        write_parquet(eng, template, values, sources, raw)
        rekey = TEMPLATES["exposed_facts"]
        rows = write_parquet(eng, rekey, rekey.bind(), {"facts": [raw], "exposures": exposures}, f)
        raw.unlink()
        return rows
    return write


def rollup_input(name: str, day: dt.date) -> str:
    """The lineage name of a rollup partition (relative to the warehouse root)."""
    return f"rollups/{name}/event_date={day.isoformat()}"


def manifest_path(wh: Warehouse, day: dt.date) -> Path:
    return wh.state / "rollups" / f"{day.isoformat()}.json"


def window_days(day: dt.date, window: str, start_date: dt.date | None = None) -> list[dt.date]:
    """The UTC days of the experiment a window ending at the end of ``day`` touches.

    ``cum`` runs from ``start_date``; the other windows are clipped at it, so traffic before
    the experiment (a CUPED pre-period) never dilutes an outcome window, and a day before the
    start has no window at all (docs/metrics.md, "Windows").

    >>> [d.day for d in window_days(dt.date(2026, 11, 3), "7d", dt.date(2026, 11, 1))]
    [1, 2, 3]
    >>> window_days(dt.date(2026, 10, 30), "24h", dt.date(2026, 11, 1))
    []
    """
    if window == "cum":
        first = start_date or day
        return [first + dt.timedelta(days=i) for i in range((day - first).days + 1)]
    n = max(1, WINDOWS[window] // DAY_MS)
    days = [day - dt.timedelta(days=i) for i in range(n - 1, -1, -1)]
    return [d for d in days if start_date is None or d >= start_date]


def stats_sources(
    wh: Warehouse, day: dt.date, window: str, start_date: dt.date | None = None,
    catalogue: Catalogue | None = None,
) -> dict[str, list[Path] | pa.Schema]:
    """The views of ``ratio_stats`` for ``window`` ending at the end of ``day``.

    Each view of :data:`STATS_INPUTS` is read from the window's day partitions (``1h``: the
    day's last-hour rollup); a view with no partition yet is an empty table of its schema (with
    the metric columns of ``catalogue``, default: the project's). A window holding every experiment
    day to date (:func:`holds_experiment`) reads the day's running totals (:data:`CUM_ROLLUP`) as
    its ``user_facts`` once they are built: the same numbers from one partition.
    """
    from expkit.catalogue import catalogue_for

    facts = user_facts_schema(catalogue if catalogue is not None else catalogue_for(None))
    schemas = {"user_facts": facts, "played_items": PLAYED_ITEMS_SCHEMA}
    out: dict[str, list[Path] | pa.Schema] = {}
    for view, inputs in STATS_INPUTS.items():
        out[view] = window_files(wh, day, window, inputs, start_date) or schemas[view]
    if holds_experiment(day, window, start_date):
        out["user_facts"] = wh.rollup_files(CUM_ROLLUP, [day]) or out["user_facts"]
    elif window != "1h" and start_date is not None and out["user_facts"] is not facts:
        days = window_days(day, window, start_date)
        out["user_facts"] = [f for first, n in span_pieces(days[0], days[-1], start_date)
                             for f in span_files(wh, first, n, facts)]
    pre = wh.rollup_files(PRE_ROLLUP, [start_date]) if start_date is not None and day >= start_date else []
    out[PRE_ROLLUP] = pre or user_pre_schema(catalogue if catalogue is not None else catalogue_for(None))
    return out


def holds_experiment(day: dt.date, window: str, start_date: dt.date | None) -> bool:
    """Whether ``window`` ending at the end of ``day`` holds every day of the experiment to date:
    ``cum``, and the 24h, 7d and 30d windows while the experiment is no older than they are.

    >>> holds_experiment(dt.date(2026, 11, 3), "7d", dt.date(2026, 11, 1))
    True
    >>> holds_experiment(dt.date(2026, 11, 9), "7d", dt.date(2026, 11, 1))
    False
    """
    if window == "1h" or start_date is None:
        return False
    days = window_days(day, window, start_date)
    return bool(days) and days[0] == start_date


def span_pieces(first: dt.date, last: dt.date, start_date: dt.date) -> list[tuple[dt.date, int]]:
    """The aligned spans (first day, days) that tile ``first`` .. ``last`` in order, longest first
    where they fit: a span of n days (:data:`SPAN_SIZES`) starts a multiple of n days after
    ``start_date`` and never on it; 1 day is that day's ``user_day``. A 30-day window is at most 8 pieces.

    >>> start = dt.date(2026, 11, 1)
    >>> [(d.day, n) for d, n in span_pieces(dt.date(2026, 11, 2), dt.date(2026, 12, 1), start)]
    [(2, 1), (3, 2), (5, 4), (9, 8), (17, 8), (25, 4), (29, 2), (1, 1)]
    """
    out: list[tuple[dt.date, int]] = []
    x = first
    while x <= last:
        offset = (x - start_date).days
        n = max([k for k in SPAN_SIZES if offset > 0 and offset % k == 0 and (last - x).days + 1 >= k],
                default=1)
        out.append((x, n))
        x += dt.timedelta(days=n)
    return out


def spans_ending(day: dt.date, start_date: dt.date) -> list[tuple[dt.date, int]]:
    """The spans (first day, days) whose last day is ``day``, shortest first (each merges its halves,
    the later of which ends on ``day`` too).

    >>> [(d.day, n) for d, n in spans_ending(dt.date(2026, 11, 16), dt.date(2026, 11, 1))]
    [(15, 2), (13, 4), (9, 8)]
    """
    age = (day - start_date).days + 1
    return [(day - dt.timedelta(days=n - 1), n) for n in SPAN_SIZES if age % n == 0 and age > n]


def built_in_schema(files: list[Path], schema: pa.Schema) -> bool:
    """Whether ``files`` exist and all have the columns of ``schema``: a chained partition (running
    totals, spans, exposure ages) built with other metrics is read from its days instead."""
    import pyarrow.parquet as pq

    return bool(files) and all(pq.read_schema(f).names == schema.names for f in files)


def span_files(wh: Warehouse, first: dt.date, days: int, facts: pa.Schema) -> list[Path]:
    """The files holding the per-user facts of ``days`` days from ``first``: their span (:data:`SPAN_ROLLUPS`)
    when it is built in the schema ``facts``, else the ``user_day`` of each of those days (the same numbers)."""
    last = first + dt.timedelta(days=days - 1)
    span = wh.rollup_files(SPAN_ROLLUPS[days], [last]) if days > 1 else []
    if built_in_schema(span, facts):
        return span
    return wh.rollup_files("user_day", [first + dt.timedelta(days=i) for i in range(days)])


def window_files(wh: Warehouse, day: dt.date, window: str, inputs: tuple[str, str],
                 start_date: dt.date | None = None) -> list[Path]:
    """The partitions of a per-user rollup pair ``inputs`` (of whole days, of a day's last hour)
    that ``window`` ending at the end of ``day`` reads (``1h``: the day's last-hour rollup)."""
    days_rollup, hour_rollup = inputs
    if window == "1h":
        return wh.rollup_files(hour_rollup, window_days(day, "24h", start_date))
    return wh.rollup_files(days_rollup, window_days(day, window, start_date))


def stats_inputs(day: dt.date, start_date: dt.date | None = None) -> list[str]:
    """Every rollup partition that the statistics of ``day`` read, present or not: the per-user rollups
    of its windows' days, the played pairs of the earlier ones, the ``user_items`` that the day's own
    played pairs read (:func:`build_played`), the previous day's running totals (:func:`build_user_cum`)
    and the CUPED pre-period sums.

    Recording the absent ones too is what makes a window stale once a day of it is rolled up.
    """
    days = sorted({d for w in STATS_WINDOWS if w != "1h" for d in window_days(day, w, start_date)})
    facts = STATS_INPUTS["user_facts"]
    hour = [rollup_input(r, day) for r in (facts[1], ITEMS_INPUTS[1])]
    per_day = [rollup_input(r, d) for d in days for r in (facts[0], ITEMS_INPUTS[0])]
    played = [rollup_input(PLAYED_ROLLUPS[0], d) for d in days if d < day]
    cum = window_days(day, "cum", start_date) if start_date is not None else []
    totals = [rollup_input(CUM_ROLLUP, d) for d in cum[-2:-1]]
    pre = [rollup_input(PRE_ROLLUP, start_date)] if start_date is not None and day >= start_date else []
    return hour + per_day + played + totals + pre + _span_inputs(day, start_date)


def _span_inputs(day: dt.date, start_date: dt.date | None) -> list[str]:
    """The spans that the statistics of ``day`` read, present or not: those tiling its sliding windows
    and the earlier halves of the spans it builds (those ending on ``day`` are its own outputs)."""
    if start_date is None or day < start_date:
        return []
    pieces = {p for w in STATS_WINDOWS if w != "1h" and not holds_experiment(day, w, start_date)
              for p in span_pieces(window_days(day, w, start_date)[0], day, start_date)}
    pieces |= {(first, n // 2) for first, n in spans_ending(day, start_date)}
    return sorted(rollup_input(SPAN_ROLLUPS[n], first + dt.timedelta(days=n - 1))
                  for first, n in pieces if n > 1 and first + dt.timedelta(days=n - 1) < day)


def pre_period_days(config: ExperimentConfig) -> list[dt.date]:
    """The CUPED pre-period: the ``cuped.lookback_days`` days before the experiment's start."""
    n = config.cuped.lookback_days
    return [config.start_date - dt.timedelta(days=n - i) for i in range(n)]


def pre_period_inputs(config: ExperimentConfig) -> list[str]:
    """The rollup partitions the pre-period sums read (the per-user rollups of its days), present or not."""
    days_rollups = (STATS_INPUTS["user_facts"][0], ITEMS_INPUTS[0])
    return [rollup_input(r, d) for d in pre_period_days(config) for r in days_rollups]


def pre_manifest_path(wh: Warehouse, start_date: dt.date) -> Path:
    return wh.state / "rollups" / "pre_period" / f"{start_date.isoformat()}.json"


def build_pre_period(
    wh: Warehouse, eng: Engine, config: ExperimentConfig, progress: Callable[[str], None] | None = None,
) -> bool:
    """Under the rollup lock: make the experiment's pre-period sums (``user_pre``) current.

    First the raw rollups of every pre-period day with events that are missing or stale (days
    without events contribute nothing), then ``user_pre`` itself when it is stale (the lineage
    rule, or built with another look-back). Computed once per experiment: the pre-period is
    fixed. Returns whether anything was built.
    """
    built = False
    graph = rollup_graph(wh, config.catalogue)
    for d in pre_period_days(config):
        if wh.event_files("requests", d) and graph.staleness(artifact_name(RAW_ARTIFACT, d)).stale:
            require_schema({t: wh.event_files(t, d) for t in EVENT_TABLES})
            _build_day(wh, eng, d, config, True, progress)
            built = True
    path = pre_manifest_path(wh, config.start_date)
    art = artifact_name(PRE_ARTIFACT, config.start_date)
    recorded = _read_manifest(path)
    graph.forget()
    if not built and recorded is not None and sorted(recorded.get("inputs", {})) == sorted(pre_period_inputs(config)) \
            and not graph.staleness(art).stale:
        return False
    clean_stale_temps(wh.rollups / PRE_ROLLUP)
    read = lineage.fingerprint(wh.root, pre_period_inputs(config))
    days = pre_period_days(config)
    facts = user_facts_schema(config.catalogue)
    sources: dict[str, list[Path] | pa.Schema] = {
        "user_facts": wh.rollup_files("user_day", days) or facts,
        "user_items": wh.rollup_files("user_items", days) or USER_ITEMS_SCHEMA,
    }
    q = user_pre_query(config.catalogue)
    rows = _write_partition(wh.rollup_partition(PRE_ROLLUP, config.start_date),
                            lambda f: write_parquet(eng, q.template, q.bind(), sources, f))
    atomic_write_json(path, {"start_date": config.start_date.isoformat(), "built_at_ms": int(time.time() * 1000),
                             "lookback_days": config.cuped.lookback_days, "rows": rows, "inputs": read,
                             "catalogue": config.catalogue.stats_digest()})
    if progress:
        progress(f"{PRE_ROLLUP} (pre-period {days[0]} to {days[-1]}): {rows:,} users")
    return True


def window_start_ms(day: dt.date, window: str, start_date: dt.date | None = None) -> int:
    """The first instant (epoch ms) of ``window`` ending at the end of ``day``: the start of its first
    day (:func:`window_days`), of the day's last hour for ``1h``; the day's end when it has no day.

    >>> window_start_ms(dt.date(2026, 11, 3), "7d", dt.date(2026, 11, 1)) == day_bounds_ms(dt.date(2026, 11, 1))[0]
    True
    """
    end = day_bounds_ms(day)[1]
    if window == "1h":
        return end - HOUR_MS
    days = window_days(day, window, start_date)
    return day_bounds_ms(days[0])[0] if days else end


def build_played(wh: Warehouse, engine: Engine, day: dt.date, config: ExperimentConfig) -> dict[str, int]:
    """Write the played pairs of ``day`` and of its last hour (:data:`PLAYED_ROLLUPS`); return their row counts.

    The day's reads its own ``user_items`` and those of the experiment's earlier days (before its start:
    none): each day's statistics look back once, and every window then reads only the played pairs of
    its days. The last hour's reads ``user_items_last_hour`` alone (the ``1h`` window holds no earlier day).
    """
    q = query("played_items", config.catalogue)
    earlier = [d for d in window_days(day, "cum", config.start_date) if d < day]
    periods: list[tuple[str, str, list[dt.date]]] = [
        (PLAYED_ROLLUPS[0], ITEMS_INPUTS[0], earlier), (PLAYED_ROLLUPS[1], ITEMS_INPUTS[1], [])]
    rows = {}
    for name, items, before in periods:
        sources: dict[str, list[Path] | pa.Schema] = {
            "day_items": wh.rollup_files(items, [day]) or USER_ITEMS_SCHEMA,
            "earlier_items": wh.rollup_files(ITEMS_INPUTS[0], before) or USER_ITEMS_SCHEMA,
        }

        def write(f: Path, sources: dict[str, list[Path] | pa.Schema] = sources) -> int:
            return write_parquet(engine, q.template, q.bind(), sources, f)

        rows[name] = _write_partition(wh.rollup_partition(name, day), write)
    return rows


def build_user_cum(wh: Warehouse, engine: Engine, day: dt.date, config: ExperimentConfig) -> int:
    """Write the running totals of ``day`` (:data:`CUM_ROLLUP`; empty before the experiment's start);
    return their row count.

    They read the previous day's totals and the day's ``user_day``, or, when the previous day has no
    totals in the schema of the catalogue (not rolled up yet, or built with other metrics), the
    ``user_day`` of every experiment day to date: the same numbers either way. The previous day's
    totals are an input of the day's statistics (:func:`stats_inputs`), so rebuilding them, or their
    first appearance, makes this day stale: a change on day 1 reaches every later day.
    """
    facts = user_facts_schema(config.catalogue)
    days = window_days(day, "cum", config.start_date)
    previous = wh.rollup_files(CUM_ROLLUP, days[-2:-1])
    if built_in_schema(previous, facts):
        files = previous + wh.rollup_files("user_day", [day])
    else:
        files = wh.rollup_files("user_day", days)
    q = query(CUM_ROLLUP, config.catalogue)
    sources: dict[str, list[Path] | pa.Schema] = {"user_facts": files or facts}
    return _write_partition(wh.rollup_partition(CUM_ROLLUP, day),
                            lambda f: write_parquet(engine, q.template, q.bind(), sources, f))


def build_spans(wh: Warehouse, engine: Engine, day: dt.date, config: ExperimentConfig) -> dict[str, int]:
    """Write the spans ending on ``day`` (:func:`spans_ending`), each merged from its two halves
    (:func:`span_files`: a half not built, or built with other metrics, is read day by day); return
    their row counts. Sums and the earliest exposure do not depend on the grouping of the days, so a
    span holds the same numbers as its days' ``user_day`` (as the running totals do)."""
    facts = user_facts_schema(config.catalogue)
    q = query(CUM_ROLLUP, config.catalogue)
    rows = {}
    for first, n in spans_ending(day, config.start_date):
        half = first + dt.timedelta(days=n // 2)
        sources: dict[str, list[Path] | pa.Schema] = {
            "user_facts": span_files(wh, first, n // 2, facts) + span_files(wh, half, n // 2, facts) or facts}

        def write(f: Path, sources: dict[str, list[Path] | pa.Schema] = sources) -> int:
            return write_parquet(engine, q.template, q.bind(), sources, f)

        rows[SPAN_ROLLUPS[n]] = _write_partition(wh.rollup_partition(SPAN_ROLLUPS[n], day), write)
    return rows


def build_stats(
    wh: Warehouse, engine: Engine, day: dt.date, config: ExperimentConfig
) -> tuple[int, lineage.Fingerprint, dict[str, int]]:
    """Write the played pairs of ``day`` (:func:`build_played`) and its running totals
    (:func:`build_user_cum`) and spans (:func:`build_spans`), then ``outcome_stats``: ratio statistics for
    every window ending that day.

    Returns the row count of ``outcome_stats``, the fingerprint of the inputs read
    (:func:`stats_inputs`) and the row counts of the played pairs and running totals. Windows that read the very same
    rollup files from the same first instant (e.g. ``24h``, ``7d``, ``30d`` and ``cum`` on an
    experiment's first day) have the same statistics: they are computed once.
    """
    read = lineage.fingerprint(wh.root, stats_inputs(day, config.start_date))
    written = build_played(wh, engine, day, config)
    written[CUM_ROLLUP] = build_user_cum(wh, engine, day, config)
    written |= build_spans(wh, engine, day, config)
    q = ratio_stats_query(config.catalogue)
    tables = []
    done: dict[tuple[Any, ...], pa.Table] = {}
    for window in STATS_WINDOWS:
        sources = stats_sources(wh, day, window, config.start_date, config.catalogue)
        start_ms = window_start_ms(day, window, config.start_date)
        key = (start_ms, *((view, tuple(map(str, src)) if isinstance(src, list) else None)
                           for view, src in sources.items()))
        if key not in done:
            done[key] = engine.query(q.template, q.bind(window_start_ms=start_ms), sources).read_all()
        t = done[key]
        tables.append(t.append_column("window_name", pa.array([window] * t.num_rows, pa.string())))
    table = pa.concat_tables(tables)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    rows = _write_partition(wh.rollup_partition(STATS_ROLLUP, day), lambda f: write_reader(reader, f))
    return rows, read, written


def exposure_inputs(day: dt.date, start_date: dt.date) -> list[str]:
    """The partitions ``user_first``, ``exposure_ages`` and ``exposure_stats`` of ``day`` read, present or
    not: the ``user_day`` of every experiment day to ``day`` (the day's own, or all when the previous day
    has no ages), the ``user_first`` of those before it (the day's own is their output) and the previous
    day's ``exposure_ages``."""
    days = window_days(day, "cum", start_date) if day >= start_date else []
    return ([rollup_input("user_day", d) for d in days] + [rollup_input(FIRST_ROLLUP, d) for d in days if d < day]
            + [rollup_input(AGES_ROLLUP, d) for d in days[-2:-1]])


def build_exposure(
    wh: Warehouse, engine: Engine, day: dt.date, config: ExperimentConfig
) -> tuple[dict[str, int], lineage.Fingerprint]:
    """Write ``user_first`` and ``exposure_stats`` of ``day`` (empty before the experiment's start).

    ``user_first``: the users of the day's ``user_day`` absent from every earlier day's
    ``user_first``, so the cost of a day is its own users plus one row per earlier user.
    ``exposure_ages``: the previous day's plus the day's ``user_day`` per user and age bucket (when the
    previous day has none in the schema of the catalogue, every ``user_day`` since the start: the same
    sums). ``exposure_stats``: from the day's ``exposure_ages``. Returns the row counts and the
    fingerprint of the inputs read (:func:`exposure_inputs`).
    """
    read = lineage.fingerprint(wh.root, exposure_inputs(day, config.start_date))
    started = day >= config.start_date
    days = window_days(day, "cum", config.start_date) if started else []
    facts = user_facts_schema(config.catalogue)
    rows: dict[str, int] = {}
    first = query(FIRST_ROLLUP, config.catalogue)
    first_sources: dict[str, list[Path] | pa.Schema] = {
        "user_facts": (wh.rollup_files("user_day", [day]) if started else []) or facts,
        "earlier_first": wh.rollup_files(FIRST_ROLLUP, [d for d in days if d < day]) or USER_FIRST_SCHEMA,
    }
    rows[FIRST_ROLLUP] = _write_partition(
        wh.rollup_partition(FIRST_ROLLUP, day),
        lambda f: write_parquet(engine, first.template, first.bind(), first_sources, f))
    ages_schema = exposure_ages_schema(config.catalogue)
    previous = wh.rollup_files(AGES_ROLLUP, days[-2:-1])
    chained = built_in_schema(previous, ages_schema)
    ages = query(AGES_ROLLUP, config.catalogue)
    ages_sources: dict[str, list[Path] | pa.Schema] = {
        "user_facts": wh.rollup_files("user_day", days[-1:] if chained else days) or facts,
        "user_first": wh.rollup_files(FIRST_ROLLUP, days) or USER_FIRST_SCHEMA,
        "earlier_ages": previous if chained else ages_schema,
    }
    values = ages.bind(tail=EXPOSURE_TAIL_DAYS, day_ms=DAY_MS)
    rows[AGES_ROLLUP] = _write_partition(
        wh.rollup_partition(AGES_ROLLUP, day),
        lambda f: write_parquet(engine, ages.template, values, ages_sources, f))
    q = exposure_stats_query(config.catalogue)
    sources: dict[str, list[Path] | pa.Schema] = {"ages": wh.rollup_files(AGES_ROLLUP, [day]) or ages_schema}
    rows[EXPOSURE_ROLLUP] = _write_partition(
        wh.rollup_partition(EXPOSURE_ROLLUP, day), lambda f: write_parquet(engine, q.template, q.bind(), sources, f))
    return rows, read


def open_engine(name: str | EngineSpec, wh: Warehouse) -> Engine:
    """The engine ``name`` (a name, or an :class:`~expkit.engines.EngineSpec`) set up for rollups of ``wh``.

    DuckDB spills what outgrows its memory limit into ``state/spill/`` of the warehouse (not
    into the working directory, which may be read-only or on a small disk).
    """
    spec = engine_spec(name)
    if spec.name == "duckdb":
        return get_engine(spec.name, temp_dir=wh.state / "spill")
    return get_engine(spec.name, **spec.options())


def rollup_lock(wh: Warehouse) -> FileLock:
    """The warehouse's rollup lock: held by every rollup write, and by a live update while it reads
    (so a page never shows a day whose rollups are half rebuilt)."""
    return FileLock(wh.state / "locks" / "rollup.lock", what=f"rollups of {wh.root}")


def _build_day(
    wh: Warehouse, eng: Engine, day: dt.date, config: ExperimentConfig, raw: bool,
    progress: Callable[[str], None] | None,
) -> RollupResult:
    """Under the rollup lock: the raw rollups of ``day`` (when ``raw``), then its statistics, then
    its manifest (last, atomically: a run killed before it leaves the day detectably stale)."""
    result = RollupResult(day=day, engine=eng.name)
    t0 = time.perf_counter()
    path = manifest_path(wh, day)
    manifest: dict[str, Any] = {}
    if not raw:
        manifest = _read_manifest(path) or {}
    if raw:
        finish_compactions(wh, day)  # a compaction killed half-way must not count rows twice
        for name in ROLLUP_NAMES:  # leftovers of killed runs sit beside each table's partitions
            clean_stale_temps(wh.rollups / name)
        files = event_file_lists(wh, day)
        fingerprint = source_fingerprint(wh, day, files)
        start, end = day_bounds_ms(day)
        sources = _event_sources(wh, day, files)
        exposures = files["exposures"]
        for r in RAW_ROLLUPS:
            lo = end - HOUR_MS if r.span == "last_hour" else start
            template, values = query(r.template, config.catalogue).template, _params(r.template, lo, end, config)
            rekey = exposures and r.name in EXPOSED_ROLLUPS
            write = (_exposed_writer(eng, template, values, sources, exposures) if rekey
                     else lambda f: write_parquet(eng, template, values, sources, f))  # noqa: B023
            result.rows[r.name] = _write_partition(wh.rollup_partition(r.name, day), write)
            if progress:
                progress(f"{day} {r.name}: {result.rows[r.name]:,} rows")
        manifest = {"date": day.isoformat(), "engine": eng.name, "built_at_ms": int(time.time() * 1000),
                    "sources": fingerprint, "catalogue": config.catalogue.facts_digest()}
    for name in STATS_TABLES:
        clean_stale_temps(wh.rollups / name)
    if day >= config.start_date:
        build_pre_period(wh, eng, config, progress)
    result.rows[STATS_ROLLUP], read, played_rows = build_stats(wh, eng, day, config)
    exposure_rows, exposure_read = build_exposure(wh, eng, day, config)
    if progress and not raw:
        progress(f"{day} {STATS_ROLLUP} refreshed")
    result.seconds = time.perf_counter() - t0
    manifest["rows"] = {**manifest.get("rows", {}), **result.rows}
    if raw:
        manifest["seconds"] = round(result.seconds, 3)
    manifest["stats"] = {"built_at_ms": int(time.time() * 1000), "inputs": {**read, **exposure_read},
                         "catalogue": config.catalogue.stats_digest(), "rows": {**played_rows, **exposure_rows}}
    atomic_write_json(path, manifest)
    return result


def build_rollups(
    warehouse: Warehouse | str | Path,
    day: dt.date,
    config: ExperimentConfig,
    engine: str | EngineSpec | Engine = "duckdb",
    progress: Callable[[str], None] | None = None,
) -> RollupResult:
    """Build (or rebuild) every rollup of ``day``; idempotent.

    Only ``day`` is built: later days whose statistics read it become stale (see
    :func:`stale_dates`); :func:`build_range` refreshes them.
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse.open(warehouse)
    wh.require_events(day)
    # Footers only: a missing column or a wrong type is named before any partition is replaced.
    require_schema({t: wh.event_files(t, day) for t in EVENT_TABLES})
    own = isinstance(engine, str | EngineSpec)
    eng = open_engine(engine, wh) if isinstance(engine, str | EngineSpec) else engine
    try:
        with rollup_lock(wh):
            return _build_day(wh, eng, day, config, True, progress)
    finally:
        if own:
            eng.close()


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def raw_built_at_ms(wh: Warehouse, day: dt.date) -> int | None:
    """When the raw rollups of ``day`` were last built (wall clock; None: never)."""
    m = _read_manifest(manifest_path(wh, day))
    return int(m["built_at_ms"]) if m and m.get("built_at_ms") is not None else None


STATS_OUTPUTS = (*PLAYED_ROLLUPS, CUM_ROLLUP, FIRST_ROLLUP, AGES_ROLLUP, EXPOSURE_ROLLUP)
"""Tables a day's statistics artifact writes beside ``outcome_stats`` (recorded in ``stats.rows``), and
the spans ending that day (:data:`SPAN_ROLLUPS`, recorded too; the other days have none)."""
STATS_TABLES = (STATS_ROLLUP, *STATS_OUTPUTS, *SPAN_ROLLUPS.values())
"""Every table a day's statistics artifact may write."""
RAW_ARTIFACT, STATS_ARTIFACT, PRE_ARTIFACT = "raw", "stats", "pre"
"""A day's two artifacts: its raw rollups (inputs: its event files) and ``outcome_stats``
(inputs: the per-user rollups of its windows' days and the experiment's ``user_pre``); and an
experiment's pre-period sums, named by its start date (inputs: the per-user rollups of the
pre-period days)."""


def artifact_name(kind: str, day: dt.date) -> str:
    """The lineage name of one of a day's artifacts (``raw/2026-11-14``, ``stats/2026-11-14``)."""
    return f"{kind}/{day.isoformat()}"


def rollup_graph(wh: Warehouse, catalogue: Catalogue | None = None) -> lineage.Graph:
    """The rollup artifacts of ``wh`` as a :class:`expkit.lineage.Graph` (records from the manifests).

    With ``catalogue``, an artifact built with other metric definitions (its recorded digest,
    :meth:`~expkit.catalogue.Catalogue.facts_digest` for the raw rollups,
    :meth:`~expkit.catalogue.Catalogue.stats_digest` for the statistics) is stale; manifests
    written before the catalogue count as built with the built-in metrics alone.
    """
    def load(artifact: str) -> lineage.Record | None:
        kind, day = artifact.split("/", 1)
        if kind == PRE_ARTIFACT:
            p = _read_manifest(pre_manifest_path(wh, dt.date.fromisoformat(day)))
            if p is None:
                return None
            gone = () if (wh.rollups / PRE_ROLLUP / f"event_date={day}").is_dir() else (PRE_ROLLUP,)
            built = p.get("catalogue")
            changed = ("metric catalogue",) if catalogue is not None and built != catalogue.stats_digest() else ()
            return lineage.Record(inputs=p["inputs"], missing_outputs=gone, built_at_ms=p.get("built_at_ms"),
                                  settings_changed=changed)
        m = _read_manifest(wh.state / "rollups" / f"{day}.json")
        if m is None:
            return None
        rows = m.get("rows", {})
        if kind == RAW_ARTIFACT:
            names = [r.name for r in RAW_ROLLUPS]
            inputs = {f"events/{t}/event_date={day}": list(files) for t, files in m.get("sources", {}).items()}
            for t in OPTIONAL_TABLES:  # recorded when present: one that appears later makes the day stale
                inputs.setdefault(f"events/{t}/event_date={day}", [])
            built_with = m.get("catalogue", LEGACY_FACTS_DIGEST)
            now = catalogue.facts_digest() if catalogue is not None else built_with
        else:
            if "stats" not in m:
                return None  # built before statistics recorded their inputs
            names, inputs = [STATS_ROLLUP], m["stats"]["inputs"]
            rows = {**rows, **m["stats"].get("rows", {})}
            names += list(STATS_OUTPUTS) + [n for n in SPAN_ROLLUPS.values() if n in rows]
            built_with = m["stats"].get("catalogue", LEGACY_STATS_DIGEST)
            now = catalogue.stats_digest() if catalogue is not None else built_with
        missing = tuple(n for n in names if n not in rows or not (wh.rollups / n / f"event_date={day}").is_dir())
        settings = ("metric catalogue",) if now != built_with else ()
        return lineage.Record(inputs=inputs, missing_outputs=missing, built_at_ms=m.get("built_at_ms"),
                              settings_changed=settings)

    def producer(name: str) -> str | None:
        parts = name.split("/")
        if len(parts) != 3 or parts[0] != "rollups":
            return None
        day = parts[2].split("=", 1)[1]
        kind = {PRE_ROLLUP: PRE_ARTIFACT, **dict.fromkeys(STATS_TABLES, STATS_ARTIFACT)}.get(parts[1], RAW_ARTIFACT)
        return f"{kind}/{day}"

    return lineage.Graph(wh.root, load, producer)


@dataclass(frozen=True)
class DayStaleness:
    """Why a day's rollups must be rebuilt: its raw rollups, its statistics, or both."""

    day: dt.date
    raw: lineage.Staleness
    stats: lineage.Staleness

    @property
    def stale(self) -> bool:
        return self.raw.stale or self.stats.stale

    def reason(self) -> str:
        """One line naming what is stale and why."""
        parts = [f"{s.artifact}: {s.reason()}" for s in (self.raw, self.stats) if s.stale]
        return "; ".join(parts)


def day_staleness(
    wh: Warehouse, day: dt.date, graph: lineage.Graph | None = None, catalogue: Catalogue | None = None
) -> DayStaleness:
    """The staleness of ``day``'s raw rollups and statistics (:mod:`expkit.lineage`'s rule; with
    ``catalogue``, built with other metric definitions counts too)."""
    g = graph or rollup_graph(wh, catalogue)
    return DayStaleness(day, g.staleness(artifact_name(RAW_ARTIFACT, day)),
                        g.staleness(artifact_name(STATS_ARTIFACT, day)))


def stale_dates(
    wh: Warehouse, days: list[dt.date], config: ExperimentConfig | None = None
) -> list[dt.date]:
    """The dates among ``days`` whose rollups must be (re)built, in date order.

    A date is stale when it was never rolled up, its event files changed (late data), a rollup
    table of it is missing, or its statistics read a rollup partition that changed, appeared or
    disappeared since or that is itself stale (transitively; :mod:`expkit.lineage`), or (with
    ``config``) it was built with other definitions of the metrics of its catalogue.
    """
    graph = rollup_graph(wh, config.catalogue if config is not None else None)
    return [d for d in sorted(set(days)) if day_staleness(wh, d, graph).stale]


def _rolled_up_after(wh: Warehouse, day: dt.date) -> list[dt.date]:
    out = []
    for p in (wh.state / "rollups").glob("????-??-??.json"):
        try:
            d = dt.date.fromisoformat(p.stem)
        except ValueError:
            continue
        if d > day:
            out.append(d)
    return sorted(out)


def rebuild_stale_day(
    wh: Warehouse, eng: Engine, day: dt.date, config: ExperimentConfig,
    progress: Callable[[str], None] | None = None,
) -> RollupResult | None:
    """Rebuild what is stale of ``day`` alone (:func:`day_staleness`): its raw rollups and
    statistics, or its statistics only; ``None`` when the day is fresh. Later days are left to
    :func:`refresh`; callers going through several days go oldest first."""
    state = day_staleness(wh, day, catalogue=config.catalogue)
    if not state.stale:
        return None
    if state.raw.stale:
        wh.require_events(day)
        require_schema({t: wh.event_files(t, day) for t in EVENT_TABLES})
    with rollup_lock(wh):
        return _build_day(wh, eng, day, config, state.raw.stale, progress)


def refresh(
    wh: Warehouse, eng: Engine, days: list[dt.date], config: ExperimentConfig,
    progress: Callable[[str], None] | None = None, force: bool = False,
) -> list[RollupResult]:
    """Rebuild the stale artifacts of ``days``, of the rolled-up days their windows read and of
    every later rolled-up day, in date order.

    Each date gets only what is stale: its raw rollups and statistics, or its statistics alone
    (e.g. a later day whose 7-day, 30-day or experiment-to-date window reads a rebuilt day). An
    earlier day since ``start_date`` that was rolled up but is stale (late data, other metric
    definitions) is rebuilt first, so that the statistics of ``days`` never sum stale per-user
    facts. With ``force`` every date of ``days`` is rebuilt whole. Dates are handled in order,
    so a date's statistics are computed after every earlier date it reads.
    """
    results = []
    todo = sorted(set(days))
    later = [d for d in _rolled_up_after(wh, todo[-1]) if wh.event_files("requests", d)] if todo else []
    read = [d for d in _rolled_up_after(wh, config.start_date - dt.timedelta(days=1))
            if todo and d < todo[0] and wh.event_files("requests", d)]
    graph = rollup_graph(wh, config.catalogue)
    with rollup_lock(wh):
        for day in [*read, *todo, *later]:
            state = day_staleness(wh, day, graph)
            if not (force and day in days) and not state.stale:
                continue
            raw = (force and day in days) or state.raw.stale
            if raw:
                require_schema({t: wh.event_files(t, day) for t in EVENT_TABLES})
            results.append(_build_day(wh, eng, day, config, raw, progress))
            graph.forget([artifact_name(RAW_ARTIFACT, day), artifact_name(STATS_ARTIFACT, day),
                          artifact_name(PRE_ARTIFACT, config.start_date)])
    return results


def build_range(
    warehouse: Warehouse | str | Path,
    start: dt.date,
    end: dt.date,
    config: ExperimentConfig,
    engine: str | EngineSpec = "duckdb",
    backfill: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[RollupResult]:
    """Build the rollups of every date from ``start`` to ``end`` (in order: windows look back).

    With ``backfill``, only the dates of the range that are stale (:func:`stale_dates`: never
    built, late data, or statistics whose inputs changed) are rebuilt. Either way, every later
    rolled-up date whose statistics became stale (its 7d, 30d or experiment-to-date window
    reads a rebuilt date, however far back) gets them refreshed, in date order.
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse.open(warehouse)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    if backfill:
        days = [d for d in days if wh.event_files("requests", d)]
    else:
        for d in days:
            wh.require_events(d)
    eng = open_engine(engine, wh)
    try:
        return refresh(wh, eng, days, config, progress, force=not backfill)
    finally:
        eng.close()


REPORT_LOOKBACK_DAYS = 7
"""Days before the report's date whose rollups the health tiles read (the anomaly baseline)."""


def report_inputs(wh: Warehouse, day: dt.date, start_date: dt.date | None = None) -> list[str]:
    """The rollup partitions a report of ``day`` reads, present or not: every table of the
    :data:`REPORT_LOOKBACK_DAYS` days before it and of the day, ``outcome_stats`` of every day
    since the experiment's start (the timeline), the per-user latency histograms of those days
    (the latency guardrail of the readout) and the per-user rollups of its windows (filters)."""
    back = [day - dt.timedelta(days=i) for i in range(REPORT_LOOKBACK_DAYS, -1, -1)]
    out = {rollup_input(n, d) for n in ROLLUP_NAMES for d in back}
    cum = window_days(day, "cum", start_date)
    out |= {rollup_input(n, d) for n in (STATS_ROLLUP, LATENCY_INPUTS[0]) for d in cum}
    out |= set(stats_inputs(day, start_date))
    out |= {rollup_input(EXPOSURE_ROLLUP, day), rollup_input(CUM_ROLLUP, day)}
    return sorted(out)


def record_report(
    warehouse: Warehouse | str | Path, day: dt.date, folder: Path, start_date: dt.date | None = None
) -> None:
    """Write ``inputs.json`` in a report's folder: the fingerprint of :func:`report_inputs`
    (a warehouse without rollups records them all as absent)."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse.open(warehouse, must_exist=False)
    lineage.write_inputs(folder / "inputs.json", wh.root, report_inputs(wh, day, start_date), int(time.time() * 1000))


def report_staleness(wh: Warehouse, folder: Path) -> lineage.Staleness:
    """Whether the report in ``folder`` is stale: the same rule as the rollups (never recorded: stale)."""
    return rollup_graph(wh).check(f"report/{folder.name}", lineage.read_inputs(folder / "inputs.json"))
