"""Helpers for the synthetic generator tests: small warehouses, queried with DuckDB."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from expkit.schema import EVENT_TABLES
from expkit.synth import generate

END = dt.date(2026, 11, 14)
USERS = 6000  # night 5-minute bins hold ~70-250 requests
SEED = 7
BIN_MS = 300_000


class Warehouse:
    """A generated warehouse plus helpers to query its events with DuckDB."""

    def __init__(self, path: Path, truth: dict) -> None:
        self.path = path
        self.truth = truth
        self.con = duckdb.connect()
        for t in EVENT_TABLES:
            self.con.execute(
                f"create view {t} as select * from read_parquet("
                f"'{path}/events/{t}/*/*.parquet', hive_partitioning = true)")

    def df(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run a query over the views requests, impressions, clicks, saves, plays."""
        return self.con.execute(sql, params or []).df()

    def day_ms(self, day: dt.date = END) -> int:
        """Epoch ms of 00:00 UTC of ``day``."""
        return (day - dt.date(1970, 1, 1)).days * 86_400_000

    def health_bins(self, day: dt.date = END) -> pd.DataFrame:
        """Health metrics (docs/metrics.md) per 5-minute bin of ``day`` (non-shadow requests)."""
        return self.df(f"""
            select timestamp_ms // {BIN_MS} * {BIN_MS} as bin_ms, count(*) as n,
              quantile_cont(latency_ms, 0.95) as p95,
              quantile_cont(latency_ms, 0.95) filter (where cache_hit) as p95_warm,
              quantile_cont(latency_ms, 0.95) filter (where not cache_hit) as p95_cold,
              avg((status = 'ok' and k_returned >= 1)::int) as coverage,
              sum(k_returned) / sum(k_requested) as fill,
              avg((status = 'error')::int) as error_rate,
              avg(cache_hit::int) as cache_hit
            from requests where not shadow and event_date = ?
            group by all order by 1""", [day])

    def freshness_bins(self, day: dt.date = END) -> pd.DataFrame:
        """p95 ingest delay (minutes) per table and 5-minute bin of ``day``."""
        parts = " union all ".join(
            f"select '{t}' as tbl, timestamp_ms, ingest_ms from {t} "
            f"where not shadow and event_date = $1" for t in EVENT_TABLES)
        return self.df(f"""
            select tbl, timestamp_ms // {BIN_MS} * {BIN_MS} as bin_ms, count(*) as n,
              quantile_cont(ingest_ms - timestamp_ms, 0.95) / 60000 as p95_min
            from ({parts}) group by all order by 1, 2""", [day])


# SLO (docs/metrics.md) per metric: (column, passes(value)). Error rate is held to the 1% alert
# threshold per bin (a single error in a bin of < 1000 requests exceeds 0.1%); the 0.1% SLO
# is checked on the whole day.
HEALTH_SLOS = {
    "p95": lambda v: v < 100,
    "p95_warm": lambda v: v < 50,
    "p95_cold": lambda v: v < 200,
    "coverage": lambda v: v >= 0.95,
    "fill": lambda v: v >= 0.99,
    "error_rate": lambda v: v <= 0.01,
    "cache_hit": lambda v: v >= 0.85,
}


def breaches(bins: pd.DataFrame) -> dict[str, list[int]]:
    """Bins (start ms) where each health metric misses its SLO."""
    out = {}
    for col, ok in HEALTH_SLOS.items():
        vals = bins[["bin_ms", col]].dropna()
        bad = vals.loc[~vals[col].map(ok), "bin_ms"].tolist()
        if bad:
            out[col] = bad
    return out


def make(tmp_path_factory: pytest.TempPathFactory, name: str, **kw) -> Warehouse:
    """Generate a warehouse with the test defaults (overridable) into a fresh folder."""
    path = tmp_path_factory.mktemp(name) / "wh"
    args = {"days": 1, "end": END, "users": USERS, "seed": SEED} | kw
    return Warehouse(path, generate(path, **args))
