"""Rollup time and peak memory for one day, next to hand-run reference queries.

The reference runs the very same SQL text directly in DuckDB (``COPY (...) TO parquet`` with
literal values and the Parquet settings expkit writes with), in the same process, right before
or after expkit's rollup — so the ratio measures what expkit adds (engine layer, typed binding,
Arrow streaming, atomic swap, manifest), independent of the machine's mood. Peak RSS is that of a separate
``expkit rollup`` process.

    python benchmarks/bench_rollup.py --size 1m            # generates a 1M-impression day
    python benchmarks/bench_rollup.py --size 10m --record
    python benchmarks/bench_rollup.py --warehouse W --date D
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from expkit.config import load_experiment
from expkit.engines.duckdb_engine import parquet_options
from expkit.histogram import LN_GAMMA, MIN_VALUE
from expkit.rollup import HOUR_MS, RAW_ROLLUPS, STATS_INPUTS, STATS_WINDOWS, build_rollups, window_days
from expkit.schema import EVENT_TABLES
from expkit.synth import generate
from expkit.templates import TEMPLATES
from expkit.warehouse import BIN_MS, Warehouse, day_bounds_ms

from _common import REPO, SIZES, record

PARAMS = REPO / "params" / "experiment.yaml"


def literal_sql(sql: str, values: dict) -> str:
    """The template with its parameters written in as literals (the hand-written form)."""
    for key in sorted(values, key=len, reverse=True):
        sql = sql.replace(f"${key}", repr(values[key]))
    return sql


def reference(wh: Warehouse, day: dt.date, out: Path, top_k: int, start_date: dt.date) -> float:
    """Run every rollup query by hand: views over the day's files, COPY ... TO parquet."""
    t0 = time.perf_counter()
    con = duckdb.connect()
    for table in EVENT_TABLES:
        files = [str(p) for p in wh.event_files(table, day)]
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({files!r}, union_by_name=true)")
    start, end = day_bounds_ms(day)
    for r in RAW_ROLLUPS:
        lo = end - HOUR_MS if r.span == "last_hour" else start
        values = {"start_ms": lo, "end_ms": end, "bin_ms": BIN_MS, "ln_gamma": LN_GAMMA,
                  "min_ms": MIN_VALUE, "top_k": top_k}
        sql = literal_sql(TEMPLATES[r.template].sql, {k: values[k] for k in TEMPLATES[r.template].params})
        options = parquet_options([c[1] for c in con.execute(f"DESCRIBE {sql}").fetchall()])  # as expkit writes
        con.execute(f"COPY ({sql}) TO '{out / (r.name + '.parquet')}' ({options})")
    for window in STATS_WINDOWS:
        for view, (days_rollup, hour_rollup) in STATS_INPUTS.items():
            if window == "1h":
                files = [str(out / f"{hour_rollup}.parquet")]
            else:  # earlier days come from the warehouse's rollups, the day itself from this run
                earlier = [d for d in window_days(day, window, start_date) if d != day]
                files = [str(p) for p in wh.rollup_files(days_rollup, earlier)] + [str(out / f"{days_rollup}.parquet")]
            con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet({files!r})")
        con.execute(f"COPY ({TEMPLATES['ratio_stats'].sql}) TO '{out / f'stats_{window}.parquet'}' (FORMAT parquet)")
    con.close()
    return time.perf_counter() - t0


def expkit_rollup(wh: Warehouse, day: dt.date) -> float:
    t0 = time.perf_counter()
    build_rollups(wh, day, load_experiment(PARAMS))
    return time.perf_counter() - t0


def separate_process_rss(wh: Path, day: dt.date) -> tuple[float, float]:
    """(seconds, peak RSS MB) of ``expkit rollup`` in its own process, via /usr/bin/time -v if present."""
    cmd = [sys.executable, "-m", "expkit.cli", "rollup", "--warehouse", str(wh), "--date", day.isoformat(),
           "--quiet"]
    script = ("import resource, subprocess, sys, time; t=time.perf_counter(); "
              "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
              "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024)")
    out = subprocess.run([sys.executable, "-c", script, *cmd], capture_output=True, text=True, check=True)
    seconds, rss = out.stdout.split()
    return float(seconds), float(rss)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="1m", help="impressions per day to generate")
    ap.add_argument("--warehouse", type=Path, help="use this warehouse instead of generating one")
    ap.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2026, 11, 14))
    ap.add_argument("--repeat", type=int, default=3, help="alternating runs of each (medians reported)")
    ap.add_argument("--record", action="store_true", help="append the figures to docs/benchmarks.md")
    args = ap.parse_args(argv)
    cfg = load_experiment(PARAMS)
    with tempfile.TemporaryDirectory(prefix="expkit-bench-rollup-") as tmp:
        root = args.warehouse or Path(tmp) / "wh"
        if args.warehouse is None:
            generate(root, days=1, end=args.date, users=SIZES[args.size], seed=1)
        wh = Warehouse.open(root)
        files = [str(p) for p in wh.event_files("impressions", args.date)]
        impressions = duckdb.sql(f"SELECT count(*) FROM read_parquet({files!r})").fetchall()[0][0]
        build_rollups(wh, args.date, cfg)  # warm the file cache and create the rollups the windows read
        ours, ref = [], []
        for i in range(args.repeat):
            ref_dir = Path(tmp) / f"ref{i}"
            ref_dir.mkdir()
            ref.append(reference(wh, args.date, ref_dir, cfg.top_k, cfg.start_date))
            ours.append(expkit_rollup(wh, args.date))
        proc_s, rss = separate_process_rss(root, args.date)
    med_ours, med_ref = statistics.median(ours), statistics.median(ref)
    ratios = [o / r for o, r in zip(ours, ref, strict=True)]
    lines = [
        f"rollup of one day, {impressions:,} impressions: expkit {med_ours:.2f} s, reference queries "
        f"{med_ref:.2f} s (median of {args.repeat}); ratio expkit/reference median {statistics.median(ratios):.2f} "
        f"(pairs: {', '.join(f'{r:.2f}' for r in ratios)})",
        f"separate `expkit rollup` process: {proc_s:.2f} s wall, peak RSS {rss:.0f} MB",
    ]
    for line in lines:
        print(line)
    if args.record:
        record(f"rollup ({args.size if args.warehouse is None else args.warehouse})", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
