"""Health metric series per 5-minute bin, read from the rollups (spec §3, health).

Shared by the health tiles, the anomaly scores and the alert rules, so a metric means the
same thing everywhere: ``coverage = covered / requests``, ``topk_fill = k_returned /
k_requested``, ``error_rate = errors / requests``, ``cache_hit_rate = cache_hits / requests``,
latency quantiles from merged log-scale histograms (within 1% of the exact quantile).

Every function takes a time range ``[start_ms, end_ms)`` and an optional slice column and
filters; values are bound parameters, identifiers come from :mod:`expkit.schema`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from expkit.errors import ExpkitError
from expkit.histogram import bucket_value
from expkit.readers import connect
from expkit.schema import REQUEST_SLICES
from expkit.warehouse import DAY_MS, Warehouse

COUNT_COLUMNS = (
    "requests", "covered", "k_returned", "k_requested", "errors", "cache_hits",
    "fallback_0", "fallback_1", "fallback_2", "fallback_3", "latency_sum_ms",
)
QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def days_between(start_ms: int, end_ms: int) -> list[dt.date]:
    """UTC days overlapping ``[start_ms, end_ms)``."""
    first = dt.datetime.fromtimestamp(start_ms / 1000, dt.timezone.utc).date()
    last = dt.datetime.fromtimestamp((end_ms - 1) / 1000, dt.timezone.utc).date()
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _check_slice(slice_: str | None, allowed: Sequence[str]) -> str | None:
    if slice_ in (None, "", "all"):
        return None
    if slice_ not in allowed:
        raise ExpkitError(f"slice {slice_!r} is not available here; choose one of {list(allowed)}")
    return slice_


def _filter_sql(filters: Mapping[str, Sequence[str]], allowed: Sequence[str]) -> tuple[str, dict]:
    clauses, params = [], {}
    for i, (col, values) in enumerate(sorted(filters.items())):
        if col not in allowed:
            raise ExpkitError(f"cannot filter on {col!r} here; filter on one of {list(allowed)}")
        clauses.append(f"list_contains($f{i}, {col})")
        params[f"f{i}"] = [str(v) for v in values]
    return (" AND " + " AND ".join(clauses)) if clauses else "", params


def add_rates(df: pd.DataFrame) -> pd.DataFrame:
    """Derive the health rates from the additive counts (NaN where a bin has no requests)."""
    req = df["requests"].astype(float).where(df["requests"] > 0)
    df["coverage"] = df["covered"] / req
    df["topk_fill"] = df["k_returned"] / df["k_requested"].astype(float).where(df["k_requested"] > 0)
    df["error_rate"] = df["errors"] / req
    df["cache_hit_rate"] = df["cache_hits"] / req
    df["latency_mean_ms"] = df["latency_sum_ms"] / req
    for level in range(4):
        df[f"fallback_{level}_share"] = df[f"fallback_{level}"] / req
    return df


def health_counts(
    wh: Warehouse,
    start_ms: int,
    end_ms: int,
    slice_: str | None = None,
    filters: Mapping[str, Sequence[str]] | None = None,
    experiment_id: str | None = None,
    per_bin: bool = True,
) -> pd.DataFrame:
    """Additive health counts (and rates) per bin (or for the whole range) and slice value.

    Columns: ``bin_ms`` (when ``per_bin``), ``slice_value``, :data:`COUNT_COLUMNS`, rates.
    """
    slice_ = _check_slice(slice_, REQUEST_SLICES)
    where, params = _filter_sql(filters or {}, REQUEST_SLICES)
    params.update({"lo": start_ms, "hi": end_ms})
    if experiment_id:
        where += " AND experiment_id = $e"
        params["e"] = experiment_id
    con = connect()
    try:
        files = wh.rollup_files("health_bins", days_between(start_ms, end_ms))
        if not files:
            return pd.DataFrame(columns=["bin_ms", "slice_value", *COUNT_COLUMNS])
        con.register("h", con.read_parquet([str(f) for f in files], union_by_name=True))
        sv = slice_ if slice_ else "'all'"
        keys = (["bin_ms"] if per_bin else []) + [f"{sv}"]
        sums = ", ".join(
            f"sum({c}) AS {c}" if c == "latency_sum_ms" else f"CAST(sum({c}) AS BIGINT) AS {c}"
            for c in COUNT_COLUMNS
        )
        sql = (
            f"SELECT {', '.join(keys[:-1] + [f'{sv} AS slice_value'])}, {sums} FROM h "
            f"WHERE bin_ms >= $lo AND bin_ms < $hi{where} GROUP BY {', '.join(keys)} ORDER BY 1"
        )
        df = con.execute(sql, params).df()
    finally:
        con.close()
    return add_rates(df)


def latency_quantiles(
    wh: Warehouse,
    start_ms: int,
    end_ms: int,
    slice_: str | None = None,
    filters: Mapping[str, Sequence[str]] | None = None,
    experiment_id: str | None = None,
    per_bin: bool = True,
    bin_ms: int | None = None,
) -> pd.DataFrame:
    """Latency p50/p95/p99 from merged histograms: overall, warm (cache hit) and cold.

    Columns: ``bin_ms`` (when ``per_bin``; bins of ``bin_ms`` ms, default 5 minutes),
    ``slice_value``, ``cache`` (``all``/``warm``/``cold``), ``n``, ``p50``, ``p95``, ``p99``.
    Histograms are stored per single slice column, so a filter must be on the sliced column
    (or, unsliced, on one column).
    """
    slice_ = _check_slice(slice_, REQUEST_SLICES)
    filters = dict(filters or {})
    if len(filters) > 1 or (filters and slice_ and set(filters) != {slice_}):
        raise ExpkitError(
            "latency histograms are kept per single slice column: filter only on the sliced column "
            f"(slice={slice_ or 'bucket'}, filters on {sorted(filters)})"
        )
    hist_slice = slice_ or (next(iter(filters)) if filters else "all")
    params: dict = {"lo": start_ms, "hi": end_ms, "s": hist_slice}
    where = ""
    if filters:
        where = " AND list_contains($vals, slice_value)"
        params["vals"] = [str(v) for v in next(iter(filters.values()))]
    if experiment_id:
        where += " AND experiment_id = $e"
        params["e"] = experiment_id
    group_bin = "bin_ms - (bin_ms % $g)" if per_bin else "0"
    if per_bin:
        params["g"] = int(bin_ms or 300_000)
    sv = "slice_value" if slice_ else "'all'"
    files = wh.rollup_files("latency_hist", days_between(start_ms, end_ms))
    cols = ["bin_ms", "slice_value", "cache", "n", *QUANTILES]
    if not files:
        return pd.DataFrame(columns=cols)
    quant_sql = ", ".join(
        f"min(CASE WHEN cum >= greatest(ceil({q} * tot), 1) THEN idx END) AS {name}"
        for name, q in QUANTILES.items()
    )
    sql = f"""
        WITH h AS (
            SELECT {group_bin} AS bin_ms, {sv} AS slice_value, cache_hit, idx, sum(n) AS n
            FROM t WHERE slice = $s AND bin_ms >= $lo AND bin_ms < $hi{where}
            GROUP BY 1, 2, 3, 4
        ),
        split AS (
            SELECT bin_ms, slice_value, CASE WHEN cache_hit THEN 'warm' ELSE 'cold' END AS cache, idx, n FROM h
            UNION ALL
            SELECT bin_ms, slice_value, 'all' AS cache, idx, sum(n) FROM h GROUP BY 1, 2, 3, 4
        ),
        c AS (
            SELECT *, sum(n) OVER (PARTITION BY bin_ms, slice_value, cache ORDER BY idx) AS cum,
                      sum(n) OVER (PARTITION BY bin_ms, slice_value, cache) AS tot
            FROM (SELECT bin_ms, slice_value, cache, idx, sum(n) AS n FROM split GROUP BY 1, 2, 3, 4)
        )
        SELECT bin_ms, slice_value, cache, CAST(max(tot) AS BIGINT) AS n, {quant_sql}
        FROM c GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    """
    con = connect()
    try:
        con.register("t", con.read_parquet([str(f) for f in files], union_by_name=True))
        df = con.execute(sql, params).df()
    finally:
        con.close()
    for name in QUANTILES:
        df[name] = bucket_value(df[name].to_numpy(dtype=float))
    if not per_bin:
        df = df.drop(columns=["bin_ms"])
    return df


def bin_times(df: pd.DataFrame, column: str = "bin_ms") -> pd.Series:
    """Bin start times as UTC timestamps (for charts and tables)."""
    return pd.to_datetime(df[column].astype("int64"), unit="ms", utc=True)


def full_bins(start_ms: int, end_ms: int, bin_ms: int = 300_000) -> np.ndarray:
    """Every bin start in ``[start_ms, end_ms)`` (to show missing bins as gaps, not zeros)."""
    return np.arange(start_ms - start_ms % bin_ms, end_ms, bin_ms, dtype=np.int64)


__all__ = ["DAY_MS", "add_rates", "bin_times", "days_between", "full_bins", "health_counts", "latency_quantiles"]
