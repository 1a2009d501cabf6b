"""Benchmark of the synthetic warehouse generator: impressions written per second, peak RSS.

Each case generates one day into a temporary folder, in a fresh child process (so peak RSS
is the case's own), and reports impressions/s and per CPU-second of the ``generate`` call.
The Monte-Carlo truth (a fixed cost of about a CPU-second per arm, cached per process) is
computed first and timed apart. The machine's load average is printed too: on a shared
machine, wall-clock figures scale with the cores actually free.

    .venv/bin/python benchmarks/bench_synth.py                 # ~1M impressions
    .venv/bin/python benchmarks/bench_synth.py --size 10m      # ~10M impressions
    .venv/bin/python benchmarks/bench_synth.py --size 1m 10m --record
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import SIZES, record


def child(users: int, seed: int) -> dict:
    """Generate one day and return the figures (run in a fresh process)."""
    from expkit.synth import Model, generate
    from expkit.synth.truth import monte_carlo

    # The Monte-Carlo truth is a fixed cost per arm, cached per process: time it apart.
    t0, c0 = time.perf_counter(), time.process_time()
    for multiplier in (1.0, 1.05):  # control and the default treatment lift
        monte_carlo(Model(), multiplier, 0.02)
    truth_s, truth_cpu = time.perf_counter() - t0, time.process_time() - c0

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_synth_") as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        truth = generate(Path(tmp) / "wh", days=1, end=dt.date(2026, 11, 14), users=users,
                         seed=seed)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        size = sum(f.stat().st_size for f in (Path(tmp) / "wh").rglob("*.parquet"))
    imps = truth["tables"]["impressions"]
    return {"users": users, "impressions": imps, "rows": sum(truth["tables"].values()),
            "wall_s": wall, "cpu_s": cpu, "truth_s": truth_s, "truth_cpu_s": truth_cpu,
            "imps_per_s": imps / wall, "imps_per_cpu_s": imps / cpu,
            "parquet_mb": size / 1e6, "load_before": load,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark cases and print (and optionally record) the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", nargs="+", choices=sorted(SIZES), default=["1m"],
                    help="cases to run (default: 1m)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--record", action="store_true",
                    help="append the figures to docs/benchmarks.md")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.seed)))
        return 0
    lines = []
    for size in args.size:
        out = subprocess.run([sys.executable, __file__, "--child", str(SIZES[size]),
                              "--seed", str(args.seed)], check=True, capture_output=True,
                             text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        line = (f"{size}: {r['impressions']:,} impressions ({r['rows']:,} rows, "
                f"{r['parquet_mb']:.0f} MB) written in {r['wall_s']:.2f} s = "
                f"{r['imps_per_s'] / 1e6:.2f}M impressions/s "
                f"({r['imps_per_cpu_s'] / 1e6:.2f}M per CPU-second, {r['cpu_s']:.2f} s CPU); "
                f"truth Monte-Carlo {r['truth_s']:.2f} s ({r['truth_cpu_s']:.2f} s CPU); "
                f"peak RSS {r['peak_rss_mb']:.0f} MB; load average before {r['load_before']:.1f}")
        print(line, flush=True)
        lines.append(line)
    if args.record:
        record("synth", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
