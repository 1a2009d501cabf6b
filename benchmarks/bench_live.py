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

The ticks run as in the long-running ``expkit live`` process: one series cache
(:class:`expkit.series_cache.SegmentCache`) carried from the catch-up tick through the timed
ones. Each step's wall seconds are reported, and the process's CPU seconds for the whole tick
(the machine is shared: wall time rises with the load average, CPU time much less).

``--day-rss`` also replays two days in a separate process, one tick after each landed hour (48
ticks, the same rows each day), and reports its resident memory after each tick: the caches hold
only what the current windows read, so after the first day (the warm-up: the 24-hour window moves
from the rolled-up day before to hour files) the curve must stay flat.

    python benchmarks/bench_live.py                    # 20,000 users, 70k impressions a minute
    python benchmarks/bench_live.py --record --day-rss
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from expkit.alerts.rules import default_rules_file, load_alerts
from expkit.compaction import minute_file, write_events
from expkit.config import load_experiment
from expkit.live import tick
from expkit.rollup import build_rollups, open_engine
from expkit.series_cache import SegmentCache
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
    # as the long-running process (expkit.live.run) keeps them: one engine, the rules, one series cache
    eng = open_engine("duckdb", wh)
    rules = load_alerts(default_rules_file(PARAMS))
    cache = SegmentCache()
    tick(wh, out, PARAMS, rules, now_ms=ds + at * 60_000, engine=eng, cache=cache)  # first: rebuild + catch-up
    by = dict(minutes)
    runs = []
    landed = 0
    for i in range(repeat):
        m = at + i
        new = scaled(by[m], per_minute)
        landed = new["impressions"].num_rows
        write(wh, minute_file(m), new)
        t0, c0 = time.perf_counter(), time.process_time()
        r = tick(wh, out, PARAMS, rules, now_ms=ds + (m + 1) * 60_000, engine=eng, cache=cache)
        runs.append({**r.seconds, "total": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                     "load": os.getloadavg()[0]})
    eng.close()
    return runs, landed


RSS_CHILD = """
import datetime as dt, json, os, sys, time
from pathlib import Path
from expkit.alerts.rules import default_rules_file, load_alerts
from expkit.live import tick
from expkit.rollup import open_engine
from expkit.series_cache import SegmentCache
from expkit.warehouse import Warehouse

root, stage, params, day, ds, days = (Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]),
                                      dt.date.fromisoformat(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
wh = Warehouse.open(root)
eng = open_engine("duckdb", wh)  # as expkit.live.run keeps them
rules = load_alerts(default_rules_file(params))
cache = SegmentCache()

def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")

for step in range(24 * days):
    d = (day + dt.timedelta(days=step // 24)).isoformat()
    for f in sorted(stage.glob(f"events/*/event_date={d}/live-h{step % 24:02d}.parquet")):
        dest = root / f.relative_to(stage)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(f, dest)
    t0, c0 = time.perf_counter(), time.process_time()
    t = tick(wh, root / "page", params, rules, now_ms=ds + step * 3_600_000 + 59 * 60_000, engine=eng, cache=cache)
    peak = status_mb("VmHWM")  # not ru_maxrss: it keeps the forking parent's peak across exec
    kept = sum(int(df.memory_usage(deep=True).sum()) for _, df in cache.entries.values()) / 2**20
    print(json.dumps({"hour": step, "rss_mb": status_mb("VmRSS"), "peak_mb": peak, "seconds": time.perf_counter() - t0,
                      "cache_entries": len(cache.entries), "cache_mb": kept, "cpu": time.process_time() - c0,
                      "steps": {k: round(v, 2) for k, v in t.seconds.items()}, "load": os.getloadavg()[0]}), flush=True)
eng.close()
"""


def day_rss(root: Path, minutes: list[tuple[int, dict[str, pa.Table]]], days: int = 2) -> list[dict[str, float]]:
    """A live process through ``days`` days (a tick at hh:59 after each landed hour; every day
    lands the same rows): its RSS per tick. The first day warms up (the 24-hour window moves
    from the day before, rolled up as one segment, to hour files); from the second on, each
    update holds what the one a day earlier held."""
    wh = Warehouse.open(root / "wh", must_exist=False)
    yesterday = DAY - dt.timedelta(days=1)
    land(wh, minutes, 24 * 60 + 30, yesterday)
    build_rollups(wh, yesterday, load_experiment(PARAMS))
    stage = Warehouse.open(root / "stage", must_exist=False)
    for i in range(days):
        land(stage, minutes, 24 * 60 + 30, DAY + dt.timedelta(days=i))  # one file per landing hour
    run = subprocess.run([sys.executable, "-c", RSS_CHILD, str(root / "wh"), str(root / "stage"), str(PARAMS),
                          DAY.isoformat(), str(day_start_ms(DAY)), str(days)], capture_output=True, text=True,
                         check=True)
    return [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--per-minute", type=int, default=70_000, help="impressions landing per minute")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--day-rss", action="store_true", help="also replay the whole day in a live process (RSS)")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
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
                  ", ".join(f"{k} {v:.2f}" + ("" if k == "load" else " s") for k, v in med.items()), flush=True)
        config = load_experiment(PARAMS)
        wh = Warehouse.open(Path(tmp) / "2355")
        t1 = time.perf_counter()
        build_rollups(wh, DAY, config)
        full = time.perf_counter() - t1
        print(f"full-day rollup of the day landed by 23:58: {full:.2f} s", flush=True)
        curve = day_rss(Path(tmp) / "rss", minutes) if args.day_rss else []
    early, late = results["00:10"], results["23:55"]
    ratio = late["total"] / early["total"]
    parts = ("rollups", "alerts", "tiles", "page")
    lines = [
        f"day: {args.users:,} users, {day_impressions:,} impressions; each timed minute lands {args.per_minute:,} "
        "impressions (the minute's rows repeated, other tables in proportion); complete hours compacted; "
        "ticks as in the long-running `expkit live` (one series cache across ticks)",
        *(f"tick at {label} (median of {args.repeat}): total {r['total']:.2f} s wall = "
          + ", ".join(f"{k} {r[k]:.2f}" for k in parts if k in r)
          + f"; {r['cpu']:.2f} CPU-s; load average {r['load']:.1f}" for label, r in results.items()),
        f"ratio 23:55 / 00:10: {ratio:.2f} (wall), {late['cpu'] / early['cpu']:.2f} (CPU), "
        f"{late['rollups'] / early['rollups']:.2f} (rollups only)",
        f"full-day rollup (`build_rollups`, every table) of the day as landed by 23:58: {full:.2f} s; "
        f"one minute's incremental rollups at 23:55 are {late['rollups'] / full:.1%} of it",
        f"peak RSS {peak_rss_mb():.0f} MB (whole benchmark, including the day held in memory)",
        f"load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at the end (the machine is shared "
        "with other engineers' runs)",
    ]
    if curve:
        def rss_at(day: int, hours: range) -> float:
            return statistics.median(c["rss_mb"] for c in curve if c["hour"] // 24 == day and c["hour"] % 24 in hours)

        last = len(curve) // 24 - 1
        lines.append(
            f"a live process through {last + 1} days (a tick at hh:59 after each landed hour, the same rows each day, "
            "one engine and series cache): RSS after the tick "
            + "; ".join(f"day {d + 1}: " + ", ".join(f"{c['hour'] % 24:02d}:59 {c['rss_mb']:.0f}" for c in curve
                                                      if c["hour"] // 24 == d and c["hour"] % 6 == 5)
                        for d in range(last + 1))
            + f" MB; peak {max(c['peak_mb'] for c in curve):.0f} MB")
        first_h, last_h = rss_at(last, range(0, 4)), rss_at(last, range(20, 24))
        lines.append(
            f"after the first day (warm-up): median RSS of day {last + 1}'s first 4 ticks {first_h:.0f} MB, "
            f"last 4 ticks {last_h:.0f} MB ({last_h / first_h - 1:+.1%}); "
            f"day 1's first 4 ticks {rss_at(0, range(0, 4)):.0f} MB; "
            f"series cache {curve[-1]['cache_entries']} entries ({curve[-1]['cache_mb']:.1f} MB of frames) at the end; "
            f"CPU per tick (a whole landed hour each) {min(c['cpu'] for c in curve):.2f}–"
            f"{max(c['cpu'] for c in curve):.2f} s")
    for line in lines:
        print(line)
    if args.record:
        record("live tier: one minute's update early and late in the day", lines)


if __name__ == "__main__":
    main()
