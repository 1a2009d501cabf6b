"""Does a day's rollup cost grow with the experiment's age? Day 2 vs day 30 at the same daily volume.

Generates ``--days`` days (default 30; ``--size``, default 10M impressions a day) ending ``--end``, rolls
them up in order, then times the rollup of day 2, of day 30 and of the last day when later (alternating,
``--repeat`` times each, medians) and the peak RSS of a separate ``expkit rollup`` process for the last
day. From day 31 on the 30d window slides (it no longer holds the whole experiment), so ``--days 31``
also measures a day in the steady state. The goal of docs/benchmarks.md: day 30 ≤ 1.2 × day 2, peak
RSS ≤ 3 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench_rollup import separate_process_rss

from expkit.config import load_experiment
from expkit.rollup import STATS_WINDOWS, build_range, build_rollups, open_engine, stats_sources
from expkit.synth import generate
from expkit.templates import TEMPLATES
from expkit.warehouse import Warehouse

from _common import REPO, SIZES, record

PARAMS = REPO / "params" / "experiment.yaml"


def breakdown(root: Path, days: list[dt.date], start: dt.date, repeat: int) -> list[str]:
    """Where a day's statistics spend their time: ``ratio_stats`` per window, and its Recall@K
    part alone (the hit join over the window's per (user, item) rows), medians of ``repeat``."""
    wh = Warehouse.open(root)
    eng = open_engine("duckdb", wh)
    recall_only = TEMPLATES["ratio_stats"].sql.split("recall AS (")[0] + "SELECT count(*) FROM hit"
    lines = []
    try:
        for day in days:
            parts = []
            for window in STATS_WINDOWS:
                sources = stats_sources(wh, day, window, start)
                for name, sql in (("all", None), ("recall", recall_only)):
                    times = []
                    for _ in range(repeat):
                        t = time.perf_counter()
                        if sql is None:
                            eng.query(TEMPLATES["ratio_stats"], {}, sources).read_all()
                        else:
                            eng.query(TEMPLATES["ratio_stats"], {}, sources, sql=sql).read_all()
                        times.append(time.perf_counter() - t)
                    parts.append(f"{window} {name} {statistics.median(times):.2f}")
            lines.append(f"ratio_stats of {day} (day {(day - start).days + 1}), seconds: " + "; ".join(parts))
    finally:
        eng.close()
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="10m", help="impressions per day")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(2026, 11, 30))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()), help="where the warehouse goes")
    ap.add_argument("--record", action="store_true", help="append the figures to docs/benchmarks.md")
    ap.add_argument("--breakdown", type=Path, metavar="WAREHOUSE",
                    help="only time ratio_stats per window on day 2 and the last day of this rolled-up warehouse")
    args = ap.parse_args(argv)
    if args.breakdown:
        start = args.end - dt.timedelta(days=args.days - 1)
        lines = breakdown(args.breakdown, [start + dt.timedelta(days=1), args.end], start, args.repeat)
        for line in lines:
            print(line, flush=True)
        if args.record:
            record(f"rollup statistics by window and experiment age ({args.breakdown})", lines)
        return 0
    cfg = load_experiment(PARAMS)
    start = args.end - dt.timedelta(days=args.days - 1)
    cfg = cfg.model_copy(update={"start_date": start})
    timed = sorted({start + dt.timedelta(days=1), start + dt.timedelta(days=min(args.days, 30) - 1), args.end})
    last = args.end
    root = Path(tempfile.mkdtemp(prefix="expkit-bench-age-", dir=args.tmp)) / "wh"
    try:
        t0 = time.perf_counter()
        generate(root, days=args.days, end=args.end, users=SIZES[args.size], seed=1)
        gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        build_range(root, start, args.end, cfg)
        all_s = time.perf_counter() - t0
        wh = Warehouse.open(root)
        # first, on the in-order build: the repeated rebuilds below leave the later days stale, and
        # `expkit rollup --date D` refreshes stale earlier days before D
        proc_s, rss = separate_process_rss(root, last)
        runs: dict[dt.date, list[float]] = {day: [] for day in timed}
        for _ in range(args.repeat):
            for day, out in runs.items():
                t = time.perf_counter()
                build_rollups(wh, day, cfg)
                out.append(time.perf_counter() - t)
        size = sum(f.stat().st_size for f in (root / "events").rglob("*.parquet")) / 1e9
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)
    medians = {(day - start).days + 1: statistics.median(out) for day, out in runs.items()}
    m2 = medians[2]
    lines = [
        f"{args.days} days at {args.size} impressions/day ({size:.2f} GB of events): generated in {gen_s:.0f} s, "
        f"rolled up in order in {all_s:.0f} s",
        "rollup of " + ", ".join(f"day {n}: {m:.2f} s" for n, m in medians.items())
        + f" (medians of {args.repeat}; runs " + " / ".join(", ".join(f"{x:.2f}" for x in out) for out in runs.values())
        + "); ratio to day 2: " + ", ".join(f"day {n} {m / m2:.2f}" for n, m in medians.items() if n != 2)
        + " (goal for day 30 ≤ 1.2)",
        f"separate `expkit rollup` process for day {args.days}: {proc_s:.2f} s wall, peak RSS {rss:.0f} MB "
        "(goal ≤ 3 GB)",
    ]
    for line in lines:
        print(line, flush=True)
    if args.record:
        record(f"rollup cost by experiment age ({args.size}/day)", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
