"""Run every benchmark once and append its figures to docs/benchmarks.md (``make bench``).

    python benchmarks/run_all.py --record            # 1M and 10M impressions/day
    python benchmarks/run_all.py --record --large    # also the 100M-impression runs (long, ~10 GB disk)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", action="store_true", help="append the figures to docs/benchmarks.md")
    ap.add_argument("--large", action="store_true", help="include the 100M-impression runs")
    args = ap.parse_args(argv)
    rec = ["--record"] if args.record else []
    runs = [
        ["bench_synth.py", "--size", "1m", "10m", *(["100m"] if args.large else [])],
        ["bench_rollup.py", "--size", "1m"],
        ["bench_rollup.py", "--size", "10m"],
        *([["bench_rollup.py", "--size", "100m", "--repeat", "1"]] if args.large else []),
        ["bench_tiles.py", *(["--with-100x"] if args.large else [])],
        ["bench_report.py", "--repeat", "3", "--size", "10m"],
        ["bench_stats.py"],
        ["bench_naive.py", "--size", "1m"],
    ]
    failed = 0
    for run in runs:
        print(f"== {' '.join(run)}", flush=True)
        failed += subprocess.run([sys.executable, str(HERE / run[0]), *run[1:], *rec]).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
