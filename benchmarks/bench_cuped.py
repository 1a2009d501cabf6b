"""Benchmark: how much CUPED narrows the lift intervals on a rolled-up warehouse (the demo's).

For every outcome metric of the experiment and a few windows of one report day, the relative
lift's 95% interval (delta method) is computed twice from the same ``outcome_stats`` rows: with
the CUPED sums (``compare_ratios(..., covariate=True)``, as the tiles do when the rollups carry
pre-period data) and without them. Reported: the adjusted width over the unadjusted width and
the variance reduction, per metric and window (overall rows, treatment vs control).

    .venv/bin/python benchmarks/bench_cuped.py --warehouse warehouse            # print only
    .venv/bin/python benchmarks/bench_cuped.py --warehouse warehouse --record   # also docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from expkit.cli_options import DEMO_END
from expkit.config import default_params_file
from expkit.estimates import compare_frame
from expkit.readers import PRE_STAT_COLUMNS, ratio_stats_table
from expkit.tiles import check_params

from _common import record


def widths(warehouse: Path, day: dt.date, windows: list[str], params_file: Path) -> list[str]:
    """One line per metric and window: relative CI width with CUPED over without, and the variance reduction."""
    p = check_params("lift", event_date=day, warehouse=warehouse, params_file=params_file, slice="bucket")
    cfg = p.config
    metrics = cfg.outcome_metrics
    stats = ratio_stats_table(p, metrics, windows)
    stats = stats[stats["slice_value"] == "all"]
    treatments = [a for a in cfg.buckets if a != cfg.control]
    key = ("window", "metric", "slice_value")
    adj = compare_frame(stats, cfg.control, treatments, cfg.sequential_tuning_n, key).set_index(
        ["bucket", "window", "metric"])
    raw = compare_frame(stats.drop(columns=PRE_STAT_COLUMNS), cfg.control, treatments, cfg.sequential_tuning_n,
                        key).set_index(["bucket", "window", "metric"])
    lines = []
    for (arm, window, metric), row in adj.iterrows():
        plain = raw.loc[(arm, window, metric)]
        ratio = (row["rel_high"] - row["rel_low"]) / (plain["rel_high"] - plain["rel_low"])
        lines.append(f"{arm} {metric} {window}: CUPED {'on' if row['cuped'] else 'off'}, relative CI width "
                     f"{plain['rel_high'] - plain['rel_low']:.4f} → {row['rel_high'] - row['rel_low']:.4f} "
                     f"({ratio:.2f}×, {1 - ratio:.0%} narrower), variance reduction {row['variance_reduction']:.0%}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warehouse", type=Path, required=True, help="a rolled-up warehouse (e.g. the demo's)")
    ap.add_argument("--date", type=dt.date.fromisoformat, default=DEMO_END, help="report day (default: the demo's)")
    ap.add_argument("--windows", default="24h,7d,cum", help="comma-separated windows")
    ap.add_argument("--params", type=Path, default=None, help="experiment parameters (default: the project's)")
    ap.add_argument("--record", action="store_true", help="append the figures to docs/benchmarks.md")
    args = ap.parse_args()
    lines = widths(args.warehouse, args.date, args.windows.split(","), args.params or default_params_file())
    print("\n".join(lines))
    if args.record:
        record(f"CUPED interval widths ({args.date})", lines)


if __name__ == "__main__":
    main()
