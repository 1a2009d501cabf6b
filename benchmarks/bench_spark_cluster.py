"""A day's rollup on a 2-worker standalone Spark cluster versus DuckDB, on the same machine.

Starts a master and two workers on 127.0.0.1 from the pyspark distribution (the launcher of the
cluster tests, tests/engines/spark/cluster_support.py), generates a synthetic day per size, and times
``build_rollups`` of that day with each engine, per template (each query's result read in full,
for both engines). The two sizes give each engine's fixed cost per day and its marginal cost
per impression (a straight line through the medians), from which docs/spark.md extrapolates.
Not a test: a run takes tens of minutes on 2 cores.

    python benchmarks/bench_spark_cluster.py --sizes 1m 10m --repeat 2 --record
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from expkit.config import load_experiment
from expkit.engines import Engine, get_engine
from expkit.rollup import build_rollups
from expkit.synth import generate
from expkit.templates import Template
from expkit.warehouse import Warehouse, day_bounds_ms

from _common import REPO, SIZES, record

sys.path.insert(0, str(REPO / "tests" / "engines" / "spark"))
from cluster_support import base_env, client_settings, start_cluster  # noqa: E402

PARAMS = REPO / "params" / "experiment.yaml"
DAY = dt.date(2026, 11, 14)


class TimedEngine:
    """Times each query of ``inner`` (the rows read in full) under the template's name."""

    def __init__(self, inner: Engine, day: dt.date):
        self.inner, self.name = inner, inner.name
        self.day_start = day_bounds_ms(day)[0]
        self.seconds: dict[str, float] = defaultdict(float)

    def query(self, template: Template, params: Mapping[str, Any], sources: Mapping[str, Sequence[Path] | pa.Schema],
              sql: str | None = None) -> pa.RecordBatchReader:
        t0 = time.perf_counter()
        table = self.inner.query(template, params, sources, sql).read_all()
        key = template.name
        if "start_ms" in params and params["start_ms"] > self.day_start:
            key += " (last hour)"
        self.seconds[key] += time.perf_counter() - t0
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())

    def close(self) -> None:
        pass


def run(wh: Warehouse, engine: Engine) -> tuple[float, dict[str, float]]:
    timed = TimedEngine(engine, DAY)
    t0 = time.perf_counter()
    build_rollups(wh, DAY, load_experiment(PARAMS), engine=timed)
    return time.perf_counter() - t0, dict(timed.seconds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["1m", "10m"])
    ap.add_argument("--repeat", type=int, default=2, help="alternating runs of each engine per size (medians)")
    ap.add_argument("--executor-memory", default="2g")
    ap.add_argument("--record", action="store_true", help="append the figures to docs/benchmarks.md")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the cluster's JVMs on the way out
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="expkit-bench-spark-") as tmp:
        cluster = start_cluster(Path(tmp) / "cluster", workers=2, cores=1, memory=args.executor_memory,
                                daemon_memory="512m")
        try:
            os.environ.update({k: v for k, v in base_env(Path(tmp) / "conf").items()
                               if k in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON", "SPARK_HOME")})
            conf = client_settings(cluster, executor_memory=args.executor_memory, java_opts="-XX:+UseParallelGC")
            conf.update({"spark.driver.memory": "3g", "spark.driver.extraJavaOptions": "-XX:+UseParallelGC"})
            spark = get_engine("spark", master=cluster.url, conf=conf)
            duck = get_engine("duckdb", temp_dir=Path(tmp) / "spill")
            fits: dict[str, list[tuple[int, float]]] = {"duckdb": [], "spark": []}
            for n, size in enumerate(args.sizes):
                root = Path(tmp) / f"wh-{size}"
                generate(root, days=1, end=DAY, users=SIZES[size], seed=1)
                wh = Warehouse.open(root)
                files = [str(p) for p in wh.event_files("impressions", DAY)]
                impressions = int(duckdb.sql(f"SELECT count(*) FROM read_parquet({files!r})").fetchall()[0][0])
                run(wh, duck)  # warm-up: the file cache
                if n == 0:
                    run(wh, spark)  # warm-up: executors started, JIT-compiled
                totals: dict[str, list[float]] = {"duckdb": [], "spark": []}
                per: dict[str, list[dict[str, float]]] = {"duckdb": [], "spark": []}
                for _ in range(args.repeat):
                    for name, eng in (("duckdb", duck), ("spark", spark)):
                        seconds, parts = run(wh, eng)
                        totals[name].append(seconds)
                        per[name].append(parts)
                        loads.append(os.getloadavg()[0])
                        print(f"{size} {name}: {seconds:.1f} s", flush=True)
                med = {k: statistics.median(v) for k, v in totals.items()}
                for name in med:
                    fits[name].append((impressions, med[name]))
                keys = sorted(per["spark"][0], key=lambda k: -statistics.median(p[k] for p in per["spark"]))
                breakdown = ", ".join(
                    f"{k} {statistics.median(p[k] for p in per['spark']):.1f} / "
                    f"{statistics.median(p.get(k, 0.0) for p in per['duckdb']):.2f}" for k in keys)
                lines = [
                    f"{size} ({impressions:,} impressions, one day): Spark on 2 workers (1 core, "
                    f"{args.executor_memory} each) {med['spark']:.1f} s, DuckDB {med['duckdb']:.1f} s "
                    f"(medians of {args.repeat}: Spark {', '.join(f'{s:.1f}' for s in totals['spark'])}; "
                    f"DuckDB {', '.join(f'{s:.1f}' for s in totals['duckdb'])}); Spark/DuckDB "
                    f"{med['spark'] / med['duckdb']:.1f}x",
                    f"{size} per template, seconds Spark / DuckDB (medians): {breakdown}",
                    f"load average (1 min) during the runs: {min(loads):.1f}-{max(loads):.1f}",
                ]
                report(f"rollup on a 2-worker Spark cluster vs DuckDB, {size}", lines, args.record)
                loads = [os.getloadavg()[0]]
            if len(args.sizes) > 1:
                lines = []
                for name, points in fits.items():
                    (v0, t0), (v1, t1) = points[0], points[-1]
                    slope = (t1 - t0) / (v1 - v0)
                    fixed = t0 - slope * v0
                    lines.append(f"{name}: fixed {fixed:.1f} s per day, marginal {slope * 1e6:.2f} s per million "
                                 f"impressions ({1 / slope / 1e6:.2f}M impressions/s) through the medians")
                report(f"rollup on a 2-worker Spark cluster vs DuckDB, {' and '.join(args.sizes)}", lines,
                       args.record)
            spark.close()
            duck.close()
        finally:
            from expkit.engines.spark_engine import stop_session

            stop_session()
            cluster.stop()
    return 0


def report(title: str, lines: list[str], keep: bool) -> None:
    """Print the figures of one size (and append them to docs/benchmarks.md with ``keep``)."""
    for line in lines:
        print(line, flush=True)
    if keep:
        record(title, lines)


if __name__ == "__main__":
    raise SystemExit(main())
