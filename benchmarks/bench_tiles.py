"""Tile compute time against event volume: the same window at 1×, 10× (and 100×) users.

Tiles read rollups only, so their time should not grow with events. For each size this
generates one day, rolls it up, then times every tile's compute function (what its notebook
calls; kernel start excluded — see bench_report.py for that) and prints the per-tile medians
and the 10×/1× ratio.

    python benchmarks/bench_tiles.py                 # 1× = 1M impressions/day, 10×
    python benchmarks/bench_tiles.py --with-100x --record
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from expkit.api import run_tile
from expkit.config import load_experiment
from expkit.rollup import build_rollups
from expkit.synth import generate
from expkit.tiles.registry import TILES

from _common import REPO, SIZES, record

DAY = dt.date(2026, 11, 14)
PARAMS = REPO / "params" / "experiment.yaml"


def time_tiles(wh: Path, repeat: int) -> dict[str, float]:
    """Median seconds of each tile's compute on ``wh`` (one warm-up run first)."""
    out = {}
    for tile in TILES:
        run_tile(tile, warehouse=wh, event_date=DAY, params_file=PARAMS)
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            run_tile(tile, warehouse=wh, event_date=DAY, params_file=PARAMS)
            runs.append(time.perf_counter() - t0)
        out[tile] = statistics.median(runs)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--with-100x", action="store_true", help="also 100× (about 100M impressions; minutes)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--record", action="store_true", help="append the figures to docs/benchmarks.md")
    args = ap.parse_args(argv)
    sizes = ["1m", "10m"] + (["100m"] if args.with_100x else [])
    cfg = load_experiment(PARAMS)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="expkit-bench-tiles-") as tmp:
        for size in sizes:
            wh = Path(tmp) / size
            generate(wh, days=1, end=DAY, users=SIZES[size], seed=3)
            build_rollups(wh, DAY, cfg)
            results[size] = time_tiles(wh, args.repeat)
    base = results["1m"]
    lines = []
    for size in sizes[1:]:
        ratios = {t: results[size][t] / base[t] for t in base}
        total = sum(results[size].values()) / sum(base.values())
        lines.append(
            f"tiles at {size} vs 1m impressions/day: all tiles {sum(results[size].values()):.2f} s vs "
            f"{sum(base.values()):.2f} s (ratio {total:.2f}); worst tile "
            f"{max(ratios, key=ratios.get)} {max(ratios.values()):.2f}×"
        )
    lines.append("per tile (s, " + " / ".join(sizes) + "): " + ", ".join(
        f"{t} " + "/".join(f"{results[s][t]:.3f}" for s in sizes) for t in base))
    for line in lines:
        print(line)
    if args.record:
        record("tiles vs event volume", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
