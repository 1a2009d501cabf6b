"""The naive alternative, for reference: pandas computing CTR by slice from the raw Parquet.

Next to it, expkit's path for the same answer: the day's rollup (once per day, shared by every
tile and slice) and the CTR tile's read of the rollup (per view). Each runs in its own process
so the peak memory figures are separate.

    python benchmarks/bench_naive.py --size 1m
    python benchmarks/bench_naive.py --size 10m --record
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from expkit.synth import generate

from _common import REPO, SIZES, record

DAY = dt.date(2026, 11, 14)
SLICES = ("bucket", "region", "genre")

NAIVE = """
import json, resource, sys, time
import pandas as pd
wh, day = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
imp = pd.read_parquet(f"{wh}/events/impressions/event_date={day}")
clk = pd.read_parquet(f"{wh}/events/clicks/event_date={day}", columns=["request_id", "item_id", "shadow"])
imp, clk = imp[~imp.shadow], clk[~clk.shadow]
n = clk.groupby(["request_id", "item_id"]).size().rename("clicks").reset_index()
df = imp.merge(n, on=["request_id", "item_id"], how="left").fillna({"clicks": 0})
out = {s: (df.groupby(["bucket", s] if s != "bucket" else ["bucket"])["clicks"].sum()
           / df.groupby(["bucket", s] if s != "bucket" else ["bucket"]).size()).to_dict() for s in SLICES}
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

EXPKIT = """
import json, resource, sys, time, datetime as dt
from expkit.config import load_experiment
from expkit.rollup import build_rollups
from expkit.tiles import run_tile
wh, day, params = sys.argv[1], dt.date.fromisoformat(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter()
build_rollups(wh, day, load_experiment(params))
t1 = time.perf_counter()
for s in SLICES:
    run_tile("ctr", warehouse=wh, event_date=day, params_file=params, slice=s)
t2 = time.perf_counter()
print(json.dumps({"rollup_s": t1 - t0, "tiles_s": t2 - t1,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(code: str, *args: str) -> dict:
    prog = f"SLICES = {SLICES!r}\n" + code
    out = subprocess.run([sys.executable, "-c", prog, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["1m", "10m"], default="1m")
    ap.add_argument("--record", action="store_true", help="append the figures to docs/benchmarks.md")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="expkit-bench-naive-") as tmp:
        wh = Path(tmp) / "wh"
        generate(wh, days=1, end=DAY, users=SIZES[args.size], seed=5)
        naive = run(NAIVE, str(wh), DAY.isoformat())
        ours = run(EXPKIT, str(wh), DAY.isoformat(), str(REPO / "params" / "experiment.yaml"))
    lines = [
        f"CTR by {len(SLICES)} slices from one day ({args.size} impressions): pandas over raw Parquet "
        f"{naive['seconds']:.2f} s, peak RSS {naive['rss_mb']:.0f} MB (point estimates only, no valid interval); "
        f"expkit rollup {ours['rollup_s']:.2f} s once per day + CTR tile reads {ours['tiles_s']:.2f} s "
        f"for the {len(SLICES)} slices, peak RSS {ours['rss_mb']:.0f} MB",
    ]
    for line in lines:
        print(line)
    if args.record:
        record(f"naive pandas vs expkit ({args.size})", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
