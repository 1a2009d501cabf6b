"""Benchmark of the report layer: the Papermill floor versus the real daily run.

The floor is 15 trivial notebooks (a parameters cell and a sidecar write) through the
same runner, pool, nbconvert pages, index and summary as the daily job: what a report
costs when the tiles themselves cost nothing (kernel starts dominate). With
``--warehouse`` (or ``--size`` to generate one) the 15 real tiles are timed through the same
runner, and the ratio printed; then the whole daily job.

    python benchmarks/bench_report.py
    python benchmarks/bench_report.py --size 10m --record
    python benchmarks/bench_report.py --warehouse warehouse --date 2026-11-05
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
import papermill
from nbformat.v4 import new_code_cell, new_notebook

from expkit.config import load_experiment
from expkit.daily import daily
from expkit.report import DailyResult, Tile, run_daily
from expkit.rollup import build_range
from expkit.series_cache import cache_folder
from expkit.synth import generate
from expkit.warehouse import Warehouse

from _common import REPO, SIZES, record

N_TILES = 15

TRIVIAL_PARAMETERS = """event_date = None
warehouse = None
params_file = None
window = "24h"
slice = "bucket"
filters = {}
sidecar_path = None"""

TRIVIAL_BODY = """import json, os
if sidecar_path:
    with open(sidecar_path + ".tmp", "w") as fh:
        json.dump({"tile": "trivial", "section": "health", "title": "Trivial", "status": "ok",
                   "headline": {}, "summary": "trivial", "params": {}, "as_of": None,
                   "experiment_id": "bench"}, fh)
    os.replace(sidecar_path + ".tmp", sidecar_path)"""


def trivial_notebook(folder: Path) -> Path:
    """Write the trivial tile notebook into ``folder`` and return its path."""
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [
        new_code_cell(TRIVIAL_PARAMETERS, metadata={"tags": ["parameters"]}),
        new_code_cell(TRIVIAL_BODY),
    ]
    path = folder / "trivial.ipynb"
    nbformat.write(nb, path)
    return path


def bare_papermill(notebook: Path, folder: Path, repeat: int) -> float:
    """Median seconds for one notebook through plain ``papermill.execute_notebook``."""
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        papermill.execute_notebook(str(notebook), str(folder / f"bare-{i}.ipynb"), progress_bar=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def floor(params_file: Path, workers: int, repeat: int) -> tuple[float, float, DailyResult]:
    """Run the floor; returns (median seconds of the report, seconds per bare notebook, last result)."""
    with tempfile.TemporaryDirectory(prefix="expkit-bench-") as tmp:
        folder = Path(tmp)
        nb = trivial_notebook(folder)
        tiles = [Tile(f"t{i:02d}", "health" if i < 8 else "outcomes", f"Trivial {i}", notebook_file=nb)
                 for i in range(N_TILES)]
        bare = bare_papermill(nb, folder, 3)
        times = []
        result = None
        for _ in range(repeat + 1):  # the first run warms up (as for the real tiles) and is not counted
            t0 = time.perf_counter()
            result = run_daily(
                folder / "wh",
                dt.date(2026, 1, 1),
                folder / "out",
                params_file,
                workers=workers,
                tiles=tiles,
            )
            times.append(time.perf_counter() - t0)
            assert result.ok, result.failed_tiles
        return statistics.median(times[1:]), bare, result


def real(
    warehouse: Path, day: dt.date, out: Path, params_file: Path, workers: int, repeat: int
) -> tuple[list[float], float, DailyResult]:
    """Time the 15 real tiles through the same runner (no steps), then the whole daily job; returns
    the seconds of each run of the tiles (the first is the warm-up), of the daily job, and the
    last result.

    Like the floor, the tiles run once to warm up (it starts the tile worker processes) and then
    ``repeat`` times into the same folder; the median of those is kept. Before each run the
    per-day series cache loses the day before ``day``, so every run computes what a report
    does on the morning after the previous one (that day and ``day``, which is never cached)
    rather than reusing the previous run's work.
    """
    times = []
    for _ in range(repeat + 1):
        forget_yesterday(warehouse, day)
        t0 = time.perf_counter()
        result = run_daily(warehouse, day, out / "tiles-only", params_file, workers=workers)
        times.append(time.perf_counter() - t0)
    forget_yesterday(warehouse, day)
    t0 = time.perf_counter()
    daily(warehouse, day, out / "daily", params_file, workers=workers)
    return times, time.perf_counter() - t0, result


def forget_yesterday(warehouse: Path, day: dt.date) -> None:
    """Drop the cached series of the day before ``day`` (see :mod:`expkit.series_cache`)."""
    folder = cache_folder(Warehouse(Path(warehouse)))
    for entry in folder.glob(f"*/*/{(day - dt.timedelta(days=1)).isoformat()}.parquet"):
        entry.unlink()


def warehouse_of(size: str, day: dt.date, folder: Path, params_file: Path) -> Path:
    """A synthetic warehouse of 8 days ending ``day`` at ``size`` impressions a day, rolled up."""
    wh = folder / f"wh-{size}"
    generate(wh, days=8, end=day, users=SIZES[size], seed=4)
    build_range(wh, day - dt.timedelta(days=7), day, load_experiment(params_file))
    return wh


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=Path, default=REPO / "params" / "experiment.yaml")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of the floor and of the real tiles after one warm-up run of each (medians kept)")
    ap.add_argument("--warehouse", type=Path, help="time the real daily run on this warehouse")
    ap.add_argument("--size", choices=sorted(SIZES), help="or generate one (8 days) of this many impressions/day")
    ap.add_argument("--date", type=dt.date.fromisoformat, help="the day of the real run (default 2026-11-14)")
    ap.add_argument("--out", type=Path, help="report folder of the real run (default: a temp dir)")
    ap.add_argument("--record", action="store_true", help="append the figures to docs/benchmarks.md")
    args = ap.parse_args(argv)
    if args.warehouse is not None and args.size is not None:
        ap.error("--warehouse and --size exclude each other")
    day = args.date or dt.date(2026, 11, 14)

    lines = []
    floor_s, bare_s, _ = floor(args.params, args.workers, args.repeat)
    serial = N_TILES * bare_s
    lines.append(
        f"floor: {N_TILES} trivial notebooks, {args.workers} workers: {floor_s:.2f} s "
        f"({floor_s / N_TILES:.2f} s/notebook, pages and index included); bare papermill "
        f"{bare_s:.2f} s/notebook, {serial:.2f} s for {N_TILES} one by one "
        f"(floor/bare-serial {floor_s / serial:.2f})"
    )
    if args.warehouse is not None or args.size is not None:
        with tempfile.TemporaryDirectory(prefix="expkit-bench-real-") as tmp:
            wh = args.warehouse or warehouse_of(args.size, day, Path(tmp), args.params)
            out = args.out or Path(tmp)
            times, daily_s, result = real(wh, day, out, args.params, args.workers, args.repeat)
            tiles_s = statistics.median(times[1:])
            lines.append(
                f"real: the {len(result.tiles)} tiles of {day} ({args.size or wh} impressions/day; "
                f"{'ok' if result.ok else 'failed: ' + ', '.join(result.failed_tiles)}) through the same runner: "
                f"{tiles_s:.2f} s (median of {', '.join(f'{t:.2f}' for t in times[1:])}, after a first run of "
                f"{times[0]:.2f} s that starts the tile worker processes, which the later runs reuse, and fills the "
                f"series cache of the days before the day before {day}); ratio real/floor {tiles_s / floor_s:.2f}; "
                f"the whole daily job (rollup check, validation, alert replay, tiles, report) {daily_s:.2f} s"
            )
    for line in lines:
        print(line)
    if args.record:
        record("daily report vs Papermill floor", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
