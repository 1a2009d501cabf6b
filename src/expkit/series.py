"""Health metric series per 5-minute bin, read from the rollups (docs/metrics.md, "Health metrics").

Shared by the health tiles, the anomaly scores and the alert rules, so a metric means the
same thing everywhere: ``coverage = covered / requests``, ``topk_fill = k_returned /
k_requested``, ``error_rate = errors / requests``, ``cache_hit_rate = cache_hits / requests``,
latency quantiles from merged log-scale histograms (within 1% of the exact quantile).

Every function takes a time range ``[start_ms, end_ms)`` and an optional slice column and
filters, and runs named templates (``health_series``, ``latency_rows``, ...; see
:mod:`expkit.templates`): values are bound parameters, and the columns that group or filter
are chosen among those the template allows, never pasted in.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from expkit.errors import ExpkitError
from expkit.histogram import bucket_value, quantile_from_counts
from expkit.names import HOUR_MS
from expkit.readers import connect, run_template
from expkit.schema import EVENT_TABLES, REQUEST_SLICES
from expkit.series_cache import by_day, by_segment, files_for
from expkit.templates import TEMPLATES
from expkit.warehouse import BIN_MS, DAY_MS, Warehouse, day_bounds_ms

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


def _filters(
    filters: Mapping[str, Sequence[str]], allowed: Sequence[str], experiment_id: str | None = None
) -> dict[str, str | list[str]]:
    """Template filters: the values of each (allowed) slice column, and the experiment."""
    out: dict[str, str | list[str]] = {}
    for col, values in filters.items():
        if col not in allowed:
            raise ExpkitError(f"cannot filter on {col!r} here; filter on one of {list(allowed)}")
        out[col] = [str(v) for v in values]
    if experiment_id:
        out["experiment_id"] = experiment_id
    return out


def _query(
    files: Sequence[Path], template: str, filters: Mapping[str, str | Sequence[str]] | None = None,
    numpy: bool = False, **values: Any,
) -> Any:
    """Run ``template`` over rollup ``files`` (the table it reads) with bound ``values`` and ``filters``.

    Returns a DataFrame, or with ``numpy`` a dict of numpy arrays (much cheaper for many rows).
    """
    memo = _MEMO.get()
    key = repr((tuple(map(str, files)), template, sorted((filters or {}).items()), sorted(values.items()), numpy))
    if memo is not None and key in memo:
        hit = memo[key]
        return hit.copy() if isinstance(hit, pd.DataFrame) else {k: v.copy() for k, v in hit.items()}
    con = connect()
    try:
        (table,) = TEMPLATES[template].reads
        con.register(table, con.read_parquet([str(f) for f in files], union_by_name=True))
        result = run_template(con, template, filters, **values)
        out = result.fetchnumpy() if numpy else result.df()
    finally:
        con.close()
    if memo is not None:
        memo[key] = out.copy() if isinstance(out, pd.DataFrame) else {k: v.copy() for k, v in out.items()}
    return out


_MEMO: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("expkit_series_memo", default=None)


@contextlib.contextmanager
def memoized() -> Iterator[None]:
    """Within the block, a rollup query asked again with the same files and parameters is answered
    from memory (the live page's tiles read the same series several times in one update, while
    the rollup files stay as they are)."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def memo(key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """``compute()``, answered from memory when asked again with ``key`` inside :func:`memoized`
    (``key`` must name everything the value depends on, given that rollup files do not change
    within the block)."""
    store = _MEMO.get()
    if store is None:
        return compute()
    k = repr(("memo", *key))
    if k not in store:
        store[k] = compute()
    return store[k]


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
    where = _filters(filters or {}, REQUEST_SLICES, experiment_id)
    if not wh.rollup_files("health_bins", days_between(start_ms, end_ms)):
        return pd.DataFrame(columns=["bin_ms", "slice_value", *COUNT_COLUMNS])

    def compute(lo: int, hi: int) -> pd.DataFrame:
        df = _query(files_for(wh, "health_bins", lo, hi), "health_series", where, start_ms=lo, end_ms=hi,
                    slice=slice_ or "all", per_bin=per_bin)
        return add_rates(df if per_bin else df.drop(columns=["bin_ms"]))

    if not per_bin:
        return compute(start_ms, end_ms)
    key = {"where": where, "slice": slice_}
    return by_segment(wh, "health_bins", "health_series", key, start_ms, end_ms, compute)


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
    (or, unsliced, on one column). Per bin, whole days before the newest day of the range are
    read from the per-day cache when their rollup is unchanged (:mod:`expkit.series_cache`).
    """
    slice_ = _check_slice(slice_, REQUEST_SLICES)
    filters = dict(filters or {})
    if len(filters) > 1 or (filters and slice_ and set(filters) != {slice_}):
        raise ExpkitError(
            "latency histograms are kept per single slice column: filter only on the sliced column "
            f"(slice={slice_ or 'bucket'}, filters on {sorted(filters)})"
        )
    g = int(bin_ms or BIN_MS)
    if per_bin and DAY_MS % g == 0:
        key = {"slice": slice_, "filters": {k: sorted(map(str, v)) for k, v in filters.items()},
               "experiment_id": experiment_id, "bin_ms": g}
        return by_day(wh, "latency_hist", "latency_quantiles", key, start_ms, end_ms,
                      lambda lo, hi: _latency_quantiles(wh, lo, hi, slice_, filters, experiment_id, True, g), g)
    return _latency_quantiles(wh, start_ms, end_ms, slice_, filters, experiment_id, per_bin, g)


def _latency_quantiles(
    wh: Warehouse,
    start_ms: int,
    end_ms: int,
    slice_: str | None,
    filters: Mapping[str, Sequence[str]],
    experiment_id: str | None,
    per_bin: bool,
    bin_ms: int,
) -> pd.DataFrame:
    """:func:`latency_quantiles` computed from the histograms (arguments checked)."""
    hist_slice = slice_ or (next(iter(filters)) if filters else "all")
    where: dict[str, str | list[str]] = {}
    if filters:
        where["slice_value"] = [str(v) for v in next(iter(filters.values()))]
    if experiment_id:
        where["experiment_id"] = experiment_id
    files = files_for(wh, "latency_hist", start_ms, end_ms)
    cols = ["bin_ms", "slice_value", "cache", "n", *QUANTILES]
    if not files:
        return pd.DataFrame(columns=cols)
    # bucket counts from SQL, quantiles of cold, warm and both in numpy (hist_quantiles); rows
    # are one per bucket at the rollup's 5-minute grain, so only coarser grains aggregate first
    values = {"start_ms": start_ms, "end_ms": end_ms, "slice": hist_slice, "sliced": slice_ is not None}
    if per_bin and bin_ms == BIN_MS:
        rows = _query(files, "latency_rows", where, numpy=True, **values)
    else:
        rows = _query(files, "latency_rows_binned", where, numpy=True, bin_ms=bin_ms, per_bin=per_bin, **values)
    keys = ["bin_ms", "slice_value"] if slice_ else ["bin_ms"]
    if not slice_:  # one merged value, left unnamed (NULL) by the template: named on the result rows
        rows.pop("slice_value")
    hist = pd.DataFrame(rows)
    if hist.empty:
        return pd.DataFrame(columns=cols if per_bin else cols[1:])
    split = hist_quantiles(hist, [*keys, "cache_hit"])
    merged = hist_quantiles(hist, keys)
    if not slice_:
        split.insert(1, "slice_value", "all")
        merged.insert(1, "slice_value", "all")
    split.insert(2, "cache", np.where(split.pop("cache_hit").to_numpy(dtype=bool), "warm", "cold"))
    merged.insert(2, "cache", "all")
    df = pd.concat([merged, split], ignore_index=True).sort_values(
        ["bin_ms", "slice_value", "cache"], kind="stable", ignore_index=True)[cols]
    if not per_bin:
        df = df.drop(columns=["bin_ms"])
    return df


def hist_quantiles(hist: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """:data:`QUANTILES` and counts of log-scale histograms given as rows ``keys…, idx, n``.

    Rows may come in any order and repeat a bucket (they merge by adding counts). The rows are
    ordered by one integer sort key (dense codes of the keys and ``idx``, cheaper than a
    multi-column sort in SQL or numpy), then the order statistic of rank ``ceil(q N)``
    (numpy's ``inverted_cdf``) is found with one cumulative sum. Returns one row per key
    combination, sorted by the keys.
    """
    keys = list(keys)
    if hist.empty:
        return pd.DataFrame(columns=[*keys, "n", *QUANTILES])
    # a missing key value (e.g. a NULL slice value) is a group of its own, not an error
    codes = [pd.factorize(hist[k], sort=True, use_na_sentinel=False) for k in keys]
    raw_idx = hist["idx"].to_numpy().astype(np.int64)
    idx_span = int(raw_idx.max() - raw_idx.min()) + 1
    sort_key = np.asarray(np.ravel_multi_index(
        [c for c, _ in codes] + [raw_idx - raw_idx.min()], [len(u) for _, u in codes] + [idx_span]
    ))
    order = np.argsort(sort_key)
    sort_key = sort_key[order]
    idx = raw_idx[order]
    n = hist["n"].to_numpy(dtype=float)[order]
    group = sort_key // idx_span
    change = np.r_[True, group[1:] != group[:-1]]
    starts = np.flatnonzero(change)
    cum = np.cumsum(n)
    before = np.r_[0.0, cum[starts[1:] - 1]]
    total = np.add.reduceat(n, starts)
    out = hist.iloc[order[starts]][keys].reset_index(drop=True)
    out["n"] = total.astype(np.int64)
    for name, q in QUANTILES.items():
        rank = np.maximum(np.ceil(q * total), 1)
        # the running count over all groups is nondecreasing: the first bucket reaching the
        # group's start plus the rank lies inside the group
        pos = np.searchsorted(cum, before + rank, side="left")
        out[name] = bucket_value(idx[np.minimum(pos, len(idx) - 1)])
    return out


def ingest_quantiles(
    wh: Warehouse,
    start_ms: int,
    end_ms: int,
    per_bin: bool = True,
    bin_ms: int | None = None,
    as_of_ms: int | None = None,
) -> pd.DataFrame:
    """Ingest delay (``ingest_ms - timestamp_ms``, ms) per event table from merged histograms.

    Columns: ``bin_ms`` (when ``per_bin``; bins of ``bin_ms`` ms, default 5 minutes, by event
    time), ``event_table``, ``n`` (rows), ``p50``, ``p95``, ``p99`` (within 1%, as latency),
    ``max_delay_ms``, ``max_ingest_ms`` and ``newest_ingest_ms``: the newest ingest time not
    after ``as_of_ms`` (the report time; the rollup keeps the newest ingest per bin and delay
    bucket, so rows that landed after ``as_of_ms`` are left out at that grain). Per bin, whole
    days before the newest come from the per-day cache, as for :func:`latency_quantiles`.
    """
    g = int(bin_ms or BIN_MS)
    if per_bin and DAY_MS % g == 0:
        key = {"bin_ms": g, "as_of_ms": as_of_ms}
        return by_day(wh, "ingest_bins", "ingest_quantiles", key, start_ms, end_ms,
                      lambda lo, hi: _ingest_quantiles(wh, lo, hi, True, g, as_of_ms), g)
    return _ingest_quantiles(wh, start_ms, end_ms, per_bin, g, as_of_ms)


def _ingest_quantiles(
    wh: Warehouse, start_ms: int, end_ms: int, per_bin: bool, bin_ms: int, as_of_ms: int | None
) -> pd.DataFrame:
    """:func:`ingest_quantiles` computed from the histograms."""
    files = files_for(wh, "ingest_bins", start_ms, end_ms)
    keys = (["bin_ms"] if per_bin else []) + ["event_table"]
    cols = [*keys, "n", *QUANTILES, "max_delay_ms", "max_ingest_ms", "newest_ingest_ms"]
    if not files:
        return pd.DataFrame(columns=cols)
    # integer table codes (strings would cost more than the quantiles); rows are already
    # one per bucket at the rollup's 5-minute grain, so only coarser grains aggregate
    values: dict[str, Any] = {"start_ms": start_ms, "end_ms": end_ms, "tables": list(EVENT_TABLES)}
    binned: dict[str, Any] = {"bin_ms": bin_ms, "per_bin": per_bin}
    con = connect()
    try:
        con.register("ingest_bins", con.read_parquet([str(f) for f in files], union_by_name=True))
        if per_bin and bin_ms == BIN_MS:
            hist = run_template(con, "ingest_rows", **values).fetchnumpy()
        else:
            hist = run_template(con, "ingest_rows_binned", **values, **binned).fetchnumpy()
        as_of = int(as_of_ms if as_of_ms is not None else 2**62)
        extremes = pd.DataFrame(run_template(con, "ingest_extremes", **values, **binned, as_of_ms=as_of).fetchnumpy())
    finally:
        con.close()
    hist = pd.DataFrame(hist)
    if hist.empty:
        return pd.DataFrame(columns=cols)
    out = hist_quantiles(hist, ["bin_ms", "code"]).merge(extremes, on=["bin_ms", "code"])
    out.insert(1, "event_table", np.asarray(list(EVENT_TABLES), dtype=object)[out.pop("code").to_numpy() - 1])
    return out[cols]


def error_counts(
    wh: Warehouse,
    start_ms: int,
    end_ms: int,
    slice_: str | None = None,
    filters: Mapping[str, Sequence[str]] | None = None,
    experiment_id: str | None = None,
    per_bin: bool = True,
) -> pd.DataFrame:
    """Failed requests per bin (or for the whole range), slice value, component and severity.

    Columns: ``bin_ms`` (when ``per_bin``), ``slice_value``, ``error_component``,
    ``error_severity``, ``errors``. Divide by :func:`health_counts` ``requests`` for rates.
    """
    slice_ = _check_slice(slice_, REQUEST_SLICES)
    where = _filters(filters or {}, REQUEST_SLICES, experiment_id)
    cols = (["bin_ms"] if per_bin else []) + ["slice_value", "error_component", "error_severity", "errors"]
    if not wh.rollup_files("error_bins", days_between(start_ms, end_ms)):
        return pd.DataFrame(columns=cols)

    def compute(lo: int, hi: int) -> pd.DataFrame:
        return _query(files_for(wh, "error_bins", lo, hi), "error_series", where, start_ms=lo, end_ms=hi,
                      slice=slice_ or "all", per_bin=per_bin)[cols]

    if not per_bin:
        return compute(start_ms, end_ms)
    return by_segment(wh, "error_bins", "error_series", {"where": where, "slice": slice_}, start_ms, end_ms, compute)


def engagement_counts(
    wh: Warehouse,
    start_ms: int,
    end_ms: int,
    buckets: Sequence[str] | None = None,
    experiment_id: str | None = None,
    per_bin: bool = True,
    bin_ms: int | None = None,
) -> pd.DataFrame:
    """Impressions, clicks and saves per bin, arm and fallback level of the serving request.

    Columns: ``bin_ms`` (when ``per_bin``; bins of ``bin_ms`` ms, default 5 minutes), ``bucket``,
    ``fallback_level`` (-1: impressions whose request was not logged), ``impressions``,
    ``clicks``, ``saves``. The rollup is kept per arm only: other slices and filters do not apply.
    """
    where = _filters({"bucket": buckets} if buckets else {}, ("bucket",), experiment_id)
    cols = (["bin_ms"] if per_bin else []) + ["bucket", "fallback_level", "impressions", "clicks", "saves"]
    files = wh.rollup_files("engagement_bins", days_between(start_ms, end_ms))
    if not files:
        return pd.DataFrame(columns=cols)
    return _query(files, "engagement_series", where, start_ms=start_ms, end_ms=end_ms,
                  bin_ms=int(bin_ms or BIN_MS), per_bin=per_bin)[cols]


def items_shown(
    wh: Warehouse,
    start_ms: int,
    end_ms: int,
    buckets: Sequence[str] | None = None,
    experiment_id: str | None = None,
    by_bucket: bool = False,
) -> pd.DataFrame:
    """Distinct items shown in the whole hours of ``[start_ms, end_ms)`` (exact, from ``item_hours``).

    Columns: ``bucket`` (``all`` unless ``by_bucket``), ``items``, ``impressions``. Empty when the
    rollup is missing (warehouses rolled up before ``item_hours`` existed: rebuild them).
    """
    where = _filters({"bucket": buckets} if buckets else {}, ("bucket",), experiment_id)
    files = wh.rollup_files("item_hours", days_between(start_ms, end_ms))
    if not files:
        return pd.DataFrame(columns=["bucket", "items", "impressions"])
    return _query(files, "items_shown", where, start_ms=start_ms, end_ms=end_ms, by_bucket=by_bucket)


def bin_times(df: pd.DataFrame, column: str = "bin_ms") -> pd.Series:
    """Bin start times as UTC timestamps (for charts and tables)."""
    return pd.to_datetime(df[column].astype("int64"), unit="ms", utc=True)


def full_bins(start_ms: int, end_ms: int, bin_ms: int = 300_000) -> np.ndarray:
    """Every bin start in ``[start_ms, end_ms)`` (to show missing bins as gaps, not zeros)."""
    return np.arange(start_ms - start_ms % bin_ms, end_ms, bin_ms, dtype=np.int64)


MISSING_HOUR_GRACE_MS = 15 * 60_000
"""An hour counts as missing once it ended this long ago without rows (the freshness SLO)."""
FRESHNESS_LOOKBACK_MS = DAY_MS


def ingest_freshness(
    wh: Warehouse,
    eval_ms: Sequence[int],
    tables: Sequence[str] = tuple(EVENT_TABLES),
    lookback_ms: int = FRESHNESS_LOOKBACK_MS,
    grace_ms: int = MISSING_HOUR_GRACE_MS,
    arrival_window_ms: int = BIN_MS,
) -> pd.DataFrame:
    """Freshness of each event table as of each evaluation time, from ``ingest_bins``.

    The rollup keeps, per table, 5-minute event bin and delay bucket, the row count and the
    newest ingest time. As of time ``t``:

    * ``staleness_ms`` = ``t`` − the newest ingest time of a group that had fully landed by
      ``t`` (the grain of ``series.ingest_quantiles(as_of_ms=t)``). It is never below the
      exact staleness, and at most the exact staleness as of ``t − Δ`` plus ``Δ``, with
      ``Δ`` = one bin + 2% of the delay (a group's rows land within that span). When nothing
      landed in the lookback, it counts from the newest ingest of the last earlier day that
      has an ``ingest_bins`` partition (a pipeline silent for more than a day is still stale);
      NaN when nothing landed by ``t`` at all;
    * ``arrival_p95_ms`` = p95 ingest delay of the rows landing in ``(t − 5 min, t]`` (a
      group's landing time is estimated as bin middle + its delay, capped by its newest
      ingest); NaN when none landed;
    * ``arrived_rows`` = how many rows that was;
    * ``missing_hours`` = hours in the ``lookback`` before ``t`` that ended at least
      ``grace_ms`` before ``t``, on days whose rollups exist, with no row landed by ``t``
      (a missing partition makes every hour missing).

    Returns one row per evaluation time and table: ``t_ms, table, staleness_ms,
    arrival_p95_ms, arrived_rows, missing_hours``.
    """
    evals = np.asarray(sorted({int(t) for t in eval_ms}), dtype=np.int64)
    cols = ["t_ms", "table", "staleness_ms", "arrival_p95_ms", "arrived_rows", "missing_hours"]
    if evals.size == 0:
        return pd.DataFrame(columns=cols)
    days = days_between(int(evals[0]) - lookback_ms, int(evals[-1]))
    present = [d for d in days if wh.rollup_files("ingest_bins", [d])]
    if present:  # every row of the present days (a partition holds its day's event bins)
        def compute(lo: int, hi: int) -> pd.DataFrame:
            return _query(files_for(wh, "ingest_bins", lo, hi), "ingest_landings", start_ms=lo, end_ms=hi,
                          tables=list(tables))

        # the rows of a bin live in one segment, and what follows does not depend on their order
        df = by_segment(wh, "ingest_bins", "ingest_landings", {"tables": list(tables)},
                        day_bounds_ms(present[0])[0], day_bounds_ms(present[-1])[1], compute)
    else:
        df = pd.DataFrame(columns=["bin_ms", "code", "idx", "n", "max_ingest_ms"])
    hours = np.asarray([day_bounds_ms(d)[0] + h * HOUR_MS for d in present for h in range(24)], dtype=np.int64)
    out = []
    for code, table in enumerate(tables, start=1):
        sub = df[df["code"] == code]
        out.append(_table_freshness(table, evals, sub, hours, lookback_ms, grace_ms, arrival_window_ms))
    res = pd.concat(out, ignore_index=True)[cols]
    earlier = [d for d in wh.rollup_dates("ingest_bins") if d < days[0]]
    if earlier and res["staleness_ms"].isna().any():
        _stale_since_earlier(wh, res, earlier[-1], tables)
    return res


def _stale_since_earlier(wh: Warehouse, res: pd.DataFrame, day: dt.date, tables: Sequence[str]) -> None:
    """Fill the NaN staleness of ``res`` (nothing landed in the lookback) from ``day``'s newest ingest."""
    lo, hi = day_bounds_ms(day)
    old = _query(files_for(wh, "ingest_bins", lo, hi), "ingest_landings", start_ms=lo, end_ms=hi, tables=list(tables))
    for code, table in enumerate(tables, start=1):
        newest = np.sort(old.loc[old["code"] == code, "max_ingest_ms"].to_numpy(np.int64))
        rows = res.index[res["staleness_ms"].isna() & (res["table"] == table)]
        if newest.size == 0 or rows.empty:
            continue
        t = res.loc[rows, "t_ms"].to_numpy(np.int64)
        pos = np.searchsorted(newest, t, side="right")
        landed = pos > 0
        res.loc[rows[landed], "staleness_ms"] = (t - newest[np.maximum(pos - 1, 0)])[landed].astype(float)


def _table_freshness(table: str, evals: np.ndarray, sub: pd.DataFrame, hours: np.ndarray, lookback_ms: int,
                     grace_ms: int, arrival_window_ms: int) -> pd.DataFrame:
    n_eval = evals.size
    staleness = np.full(n_eval, np.nan)
    arrival = np.full(n_eval, np.nan)
    arrived = np.zeros(n_eval, dtype=np.int64)
    first_landed = np.full(hours.size, np.inf)
    if not sub.empty:
        newest = sub["max_ingest_ms"].to_numpy(np.int64)
        bins = sub["bin_ms"].to_numpy(np.int64)
        idx = sub["idx"].to_numpy(np.int64)
        counts = sub["n"].to_numpy(np.int64)
        landed = np.minimum(newest, bins + BIN_MS // 2 + bucket_value(idx)).astype(np.int64)
        # Staleness: newest ingest among groups fully landed by t.
        newest_sorted = np.sort(newest)
        pos = np.searchsorted(newest_sorted, evals, side="right")
        last = np.where(pos > 0, newest_sorted[np.maximum(pos - 1, 0)], np.iinfo(np.int64).min)
        ok = pos > 0
        staleness[ok] = (evals - last)[ok]
        # Arrival delay of what landed in the window before t.
        order = np.argsort(landed, kind="stable")
        landed_s, idx_s, counts_s = landed[order], idx[order], counts[order]
        lo = np.searchsorted(landed_s, evals - arrival_window_ms, side="right")
        hi = np.searchsorted(landed_s, evals, side="right")
        for i in np.flatnonzero(hi > lo):
            arrival[i] = quantile_from_counts(idx_s[lo[i]:hi[i]], counts_s[lo[i]:hi[i]], 0.95)
            arrived[i] = counts_s[lo[i]:hi[i]].sum()
        # First landing per hour of event time.
        hour_of = bins - bins % HOUR_MS
        firsts = pd.Series(landed).groupby(hour_of).min()
        where = np.searchsorted(hours, firsts.index.to_numpy(np.int64))
        inside = (where < hours.size) & (hours[np.minimum(where, hours.size - 1)] == firsts.index.to_numpy())
        first_landed[where[inside]] = firsts.to_numpy()[inside]
    ends = hours[None, :] + HOUR_MS
    due = (ends + grace_ms <= evals[:, None]) & (ends > evals[:, None] - lookback_ms)
    missing = (due & (first_landed[None, :] > evals[:, None])).sum(axis=1)
    return pd.DataFrame({
        "t_ms": evals, "table": table, "staleness_ms": staleness, "arrival_p95_ms": arrival,
        "arrived_rows": arrived, "missing_hours": missing,
    })


__all__ = [
    "DAY_MS", "add_rates", "bin_times", "days_between", "engagement_counts", "error_counts", "full_bins",
    "health_counts", "hist_quantiles", "ingest_freshness", "ingest_quantiles", "items_shown", "latency_quantiles",
]
