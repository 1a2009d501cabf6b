"""Cost of one minute of the live tier (rollups + alerts + page) early and late in the day,
next to the full-day rollup of the same day.

A streamed day is prepared as the stream and hourly compaction leave it: one file per
table for each complete hour, one per minute for the current hour; the day before (the same
rows a day earlier) is complete and rolled up, as the daily job leaves it. At 00:10 and at 23:55 one
new minute lands, scaled to ``--per-minute`` impressions (default 70,000: 100M a day), with
the other tables in the same proportion (the minute's rows repeated). Then one live tick
runs (``expkit.live.tick``): incremental rollups, the monitor's evaluation, the 16 tile cells
and the page. Repeated ``--repeat`` times on successive minutes; medians are reported, with
the ratio late / early, and the full-day rollup (``build_rollups``) of the day as landed at
23:58 (``--users`` sets the day's volume; the health bins' row counts saturate with traffic, so
their size, not the day's volume, is what a tick rewrites).

    python benchmarks/bench_live.py                    # 20,000 users, 70k impressions a minute
    python benchmarks/bench_live.py --record
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from expkit.compaction import minute_file, write_events
from expkit.config import load_experiment
from expkit.live import tick
from expkit.rollup import build_rollups
from expkit.synth.stream import by_minute, day_rows, stream_config
from expkit.synth.warehouse import day_start_ms
from expkit.warehouse import DAY_MS, Warehouse

from _common import REPO, peak_rss_mb, record

PARAMS = REPO / "params" / "experiment.yaml"
DAY = dt.date(2026, 11, 14)


def land(wh: Warehouse, minutes: list[tuple[int, dict[str, pa.Table]]], until: int, day: dt.date = DAY) -> None:
    """The files of every minute before ``until``: complete hours in one file each (compacted)."""
    hours: dict[int, dict[str, list[pa.Table]]] = {}
    for m, tables in minutes:
        if m >= until:
            break
        if m // 60 < until // 60:
            for t, tab in tables.items():
                hours.setdefault(m // 60, {}).setdefault(t, []).append(tab)
        else:
            write(wh, minute_file(m), tables, day)
    for h, parts in hours.items():
        write(wh, f"live-h{h:02d}.parquet", {t: pa.concat_tables(v) for t, v in parts.items()}, day)


def write(wh: Warehouse, name: str, tables: dict[str, pa.Table], day: dt.date = DAY) -> None:
    shift = (DAY - day).days * DAY_MS
    for t, tab in tables.items():
        if shift:
            for col in ("timestamp_ms", "ingest_ms"):
                tab = tab.set_column(tab.schema.get_field_index(col), col, pc.subtract(tab[col], shift))
        folder = wh.event_partition(t, day)
        folder.mkdir(parents=True, exist_ok=True)
        write_events(t, tab, folder / name)


def scaled(tables: dict[str, pa.Table], impressions: int) -> dict[str, pa.Table]:
    k = max(1, math.ceil(impressions / max(1, tables["impressions"].num_rows)))
    return {t: pa.concat_tables([tab] * k) for t, tab in tables.items()}


def probe(root: Path, minutes: list[tuple[int, dict[str, pa.Table]]], at: int, repeat: int,
          per_minute: int) -> tuple[list[dict[str, float]], int]:
    """Land the day before (rolled up, as by the daily job) and the day up to minute ``at``,
    catch up once (untimed), then time ``repeat`` ticks."""
    wh = Warehouse.open(root, must_exist=False)
    yesterday = DAY - dt.timedelta(days=1)
    land(wh, minutes, 24 * 60 + 30, yesterday)
    build_rollups(wh, yesterday, load_experiment(PARAMS))
    land(wh, minutes, at)
    ds = day_start_ms(DAY)
    out = root / "page"
    tick(wh, out, PARAMS, now_ms=ds + at * 60_000)  # first tick: rebuild + monitor catch-up
    by = dict(minutes)
    runs = []
    landed = 0
    for i in range(repeat):
        m = at + i
        new = scaled(by[m], per_minute)
        landed = new["impressions"].num_rows
        write(wh, minute_file(m), new)
        t0 = time.perf_counter()
        r = tick(wh, out, PARAMS, now_ms=ds + (m + 1) * 60_000)
        runs.append({**r.seconds, "total": time.perf_counter() - t0})
    return runs, landed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--per-minute", type=int, default=70_000, help="impressions landing per minute")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        cfg = stream_config(Path(tmp) / "cfg", DAY, users=args.users, seed=1)
        rows = day_rows(cfg)
        minutes = list(by_minute(rows, day_start_ms(DAY)))
        day_impressions = rows["impressions"].num_rows
        del rows
        print(f"day generated: {day_impressions:,} impressions ({time.perf_counter() - t0:.1f} s)", flush=True)
        results = {}
        for label, at in (("00:10", 10), ("23:55", 23 * 60 + 55)):
            runs, landed = probe(Path(tmp) / label.replace(":", ""), minutes, at, args.repeat, args.per_minute)
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            results[label] = med
            print(label, f"{landed:,} impressions landed;",
                  ", ".join(f"{k} {v:.2f} s" for k, v in med.items()), flush=True)
        config = load_experiment(PARAMS)
        wh = Warehouse.open(Path(tmp) / "2355")
        t1 = time.perf_counter()
        build_rollups(wh, DAY, config)
        full = time.perf_counter() - t1
        print(f"full-day rollup of the day landed by 23:58: {full:.2f} s", flush=True)
    early, late = results["00:10"], results["23:55"]
    ratio = late["total"] / early["total"]
    parts = ("rollups", "alerts", "tiles", "page")
    lines = [
        f"day: {args.users:,} users, {day_impressions:,} impressions; each timed minute lands {args.per_minute:,} "
        "impressions (the minute's rows repeated, other tables in proportion); complete hours compacted",
        *(f"tick at {label} (median of {args.repeat}): total {r['total']:.2f} s = "
          + ", ".join(f"{k} {r[k]:.2f}" for k in parts if k in r) for label, r in results.items()),
        f"ratio 23:55 / 00:10: {ratio:.2f} (total), {late['rollups'] / early['rollups']:.2f} (rollups only)",
        f"full-day rollup (`build_rollups`, every table) of the day as landed by 23:58: {full:.2f} s; "
        f"one minute's incremental rollups at 23:55 are {late['rollups'] / full:.1%} of it",
        f"peak RSS {peak_rss_mb():.0f} MB (whole benchmark, including the day held in memory)",
    ]
    for line in lines:
        print(line)
    if args.record:
        record("live tier: one minute's update early and late in the day", lines)


if __name__ == "__main__":
    main()
