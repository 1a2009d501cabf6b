"""Read rollups for tiles: small aggregates out, with bound parameters only.

Tiles call these functions; they open DuckDB over the rollup Parquet (never raw events) and
return pandas frames of sufficient statistics or per-bin counts. Every query is a named
template of :mod:`expkit.templates` (:func:`run_template`): user-supplied values (dates,
filter values, bucket names) are bound parameters, and the only columns a filter can name
are those its template allows.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from expkit.config import WINDOWS, ExperimentConfig
from expkit.engines.duckdb_engine import quiet
from expkit.errors import ExpkitError
from expkit.histogram import LN_GAMMA, quantile_from_counts
from expkit.metrics_sql import ratio_stats_query
from expkit.rollup import (
    EXPOSURE_ROLLUP,
    LATENCY_INPUTS,
    STATS_ROLLUP,
    stats_sources,
    window_files,
    window_start_ms,
)
from expkit.schema import SLICE_COLUMNS
from expkit.stats._common import quantile
from expkit.stats.cuped import RATIO_COVARIATE_KEYS
from expkit.stats.guardrails import QUANTILE_KEYS
from expkit.templates import TEMPLATES
from expkit.warehouse import Warehouse, day_bounds_ms

USER_ATTRIBUTES = ("cohort", "region", "client")
"""Slices that are attributes of the user (taken at first exposure in the window)."""
EVENT_ATTRIBUTES = ("surface", "genre", "provider")
"""Slices that are attributes of each impression: a user contributes to several values."""
STAT_COLUMNS = ["n", "sum_num", "sum_den", "sum_num2", "sum_den2", "sum_numden"]
PRE_STAT_COLUMNS = list(RATIO_COVARIATE_KEYS)
"""The CUPED sums of ``outcome_stats`` (each user's window sums crossed with her pre-period sums,
docs/statistics.md, "CUPED from the rollups"); readers return them after :data:`STAT_COLUMNS`
(NaN in rows of rollups built before they existed)."""
ALL_STAT_COLUMNS = [*STAT_COLUMNS, *PRE_STAT_COLUMNS]


def _with_pre(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every column of :data:`PRE_STAT_COLUMNS` (NaN where the rollup has none)."""
    missing = [c for c in PRE_STAT_COLUMNS if c not in df.columns]
    return df.assign(**{c: np.nan for c in missing}) if missing else df




@dataclass(frozen=True)
class ReadScope:
    """What a read covers: the experiment, the warehouse, the day, the window and the population.

    Attributes:
        event_date: the report date; windows end at the end of this UTC day.
        window: ``1h``, ``24h``, ``7d``, ``30d`` (or ``cum`` where the rollups keep it).
        slice: ``bucket`` (per arm only) or another slice column.
        filters: slice column → allowed values (bound, never pasted into SQL).
        buckets: arms to read.
        config: the experiment definition.
        warehouse: the warehouse.

    Tiles pass their :class:`~expkit.tiles.base.TileParams` (a ``ReadScope`` with the tile's own
    fields); other readers (the alert sources) build one.
    """

    event_date: dt.date
    window: str
    slice: str
    filters: dict[str, list[str]]
    buckets: list[str]
    config: ExperimentConfig
    warehouse: Warehouse


_shared: tuple[int, duckdb.DuckDBPyConnection] | None = None
_shared_lock = threading.Lock()

def connect() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for reading rollups; close it after use.

    It is a cursor on one in-memory database per process: opening a database costs about
    25 ms, a cursor 0.2 ms, and a tile runs a few queries. Cursors are independent
    connections (their registered views and errors are their own), safe to use one per thread.
    """
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():  # a forked child opens its own
            con = duckdb.connect(config={"threads": 2})
            quiet(con)
            _shared = (os.getpid(), con)
        return _shared[1].cursor()


def _register(con: duckdb.DuckDBPyConnection, name: str, files: Sequence[Path]) -> bool:
    if not files:
        return False
    con.register(name, con.read_parquet([str(f) for f in files], union_by_name=True))
    return True


def run_template(
    con: duckdb.DuckDBPyConnection, name: str, filters: Mapping[str, str | Sequence[str]] | None = None,
    **values: Any,
) -> duckdb.DuckDBPyConnection:
    """Execute template ``name`` on ``con`` (its tables registered) with bound ``values`` and
    ``filters`` (:meth:`expkit.templates.Template.render`); fetch the rows from the result."""
    return con.execute(*TEMPLATES[name].render(filters, **values))


def _query_template(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows of template ``name`` with bound ``params`` over the views registered on ``con``."""
    return run_template(con, name, **params).fetchall()


def window_bounds(day: dt.date, window: str) -> tuple[int, int]:
    """[start, end) epoch ms of ``window`` ending at the end of ``day``."""
    _, end = day_bounds_ms(day)
    return end - WINDOWS[window], end


def _slice_key(slice_: str) -> str:
    return "all" if slice_ == "bucket" else slice_


def ratio_stats(p: ReadScope, metric: str, window: str | None = None, day: dt.date | None = None) -> pd.DataFrame:
    """Sufficient statistics of ``metric`` per arm and slice value for the tile's window.

    Returns columns ``bucket, slice_value``, :data:`STAT_COLUMNS` and :data:`PRE_STAT_COLUMNS`. Without filters (or with
    filters only on the sliced column or on ``bucket``) it reads the precomputed
    ``outcome_stats``; filters on user attributes (cohort, region, client) re-aggregate the
    per-user and per (user, item) facts of the window (still rollups, never events).
    """
    window = window or p.window
    day = day or p.event_date
    slice_ = _slice_key(p.slice)
    attr_filters = _attribute_filters(p, metric, slice_)
    con = connect()
    try:
        if attr_filters:
            df = _stats_from_user_facts(con, p, metric, slice_, window, day, attr_filters)
        else:
            rows = _stats_rows(con, p, [metric], slice_, [window], [day])
            if rows is None:
                return pd.DataFrame(columns=["bucket", "slice_value", *ALL_STAT_COLUMNS])
            df = _with_pre(rows)[["bucket", "slice_value", *ALL_STAT_COLUMNS]]
    finally:
        con.close()
    return _narrow(df, p, slice_).sort_values(["slice_value", "bucket"]).reset_index(drop=True)


def _stats_rows(
    con: duckdb.DuckDBPyConnection, p: ReadScope, metrics: Sequence[str], slice_: str, windows: Sequence[str],
    days: Sequence[dt.date],
) -> pd.DataFrame | None:
    """The precomputed statistics of ``metrics`` and ``windows`` of ``days`` (template ``stats_rows``):
    ``event_date`` (the day, from the partition folder), ``window_name``, ``metric``, ``bucket``,
    ``slice_value`` and :data:`STAT_COLUMNS`; ``None`` when no day has a rollup."""
    files = p.warehouse.rollup_files(STATS_ROLLUP, list(days))
    if not files:
        return None
    con.register("outcome_stats", con.read_parquet([str(f) for f in files], union_by_name=True,
                                                   hive_partitioning=True))
    return run_template(con, "stats_rows", windows=list(windows), metrics=list(metrics), slice=slice_,
                        experiment_id=p.config.experiment_id).df()


def _attribute_filters(p: ReadScope, metric: str, slice_: str) -> dict[str, list[str]]:
    """Check that ``metric`` can be read for the tile's slice and filters; return the
    user-attribute filters that need the per-user facts (the others apply to the result)."""
    cat = p.config.catalogue
    if metric not in cat or cat[metric].kind != "ratio":
        raise ExpkitError(f"unknown outcome metric {metric!r}; the catalogue {cat.source} defines "
                          f"{', '.join(cat.ratio_ids)}")
    if not cat[metric].event_slices and slice_ in EVENT_ATTRIBUTES:
        raise ExpkitError(
            f"{metric} is a per-user metric and cannot be sliced by {p.slice}; "
            f"use one of bucket, {', '.join(USER_ATTRIBUTES)}"
        )
    attr_filters = {k: v for k, v in p.filters.items() if k in USER_ATTRIBUTES and k != slice_}
    event_filters = {k: v for k, v in p.filters.items() if k in EVENT_ATTRIBUTES and k != slice_}
    if event_filters:
        raise ExpkitError(
            f"filters on {list(event_filters)} need slice={list(event_filters)[0]}: per-user sums are "
            "stored per single impression attribute; slice by it and filter its values instead"
        )
    return attr_filters


def _narrow(df: pd.DataFrame, p: ReadScope, slice_: str) -> pd.DataFrame:
    """Keep the tile's arms, and the filtered values of ``bucket`` and of the sliced column."""
    df = df[df["bucket"].isin(p.buckets)]
    if "bucket" in p.filters:
        df = df[df["bucket"].isin(p.filters["bucket"])]
    if slice_ in p.filters:
        df = df[df["slice_value"].isin(p.filters[slice_])]
    return df


def ratio_stats_table(
    p: ReadScope,
    metrics: Sequence[str],
    windows: Sequence[str] | None = None,
    days: Sequence[dt.date] | None = None,
) -> pd.DataFrame:
    """:func:`ratio_stats` of several metrics, windows (including ``cum``) and report days at once.

    Returns columns ``day, window, metric, bucket, slice_value``, :data:`STAT_COLUMNS` and
    :data:`PRE_STAT_COLUMNS`, one
    row per combination present. Without user-attribute filters this is one query over the
    ``outcome_stats`` partitions of ``days``; with them, one re-aggregation per day, window and
    metric (as in :func:`ratio_stats`).
    """
    windows = [p.window] if windows is None else list(windows)
    days = [p.event_date] if days is None else list(days)
    slice_ = _slice_key(p.slice)
    attr_filters = [_attribute_filters(p, m, slice_) for m in metrics][-1] if metrics else {}
    key = ["day", "window", "metric", "bucket", "slice_value"]
    if attr_filters:
        parts = [
            ratio_stats(p, m, w, d).assign(day=d, window=w, metric=m)
            for d in days for w in windows for m in metrics
        ]
        df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    else:
        con = connect()
        try:
            df = _stats_rows(con, p, metrics, slice_, windows, days)
        finally:
            con.close()
        if df is None:
            return pd.DataFrame(columns=[*key, *ALL_STAT_COLUMNS])
        df = _narrow(df.rename(columns={"event_date": "day", "window_name": "window"}), p, slice_)
    if df.empty:
        return pd.DataFrame(columns=[*key, *ALL_STAT_COLUMNS])
    df = _with_pre(df)
    df["day"] = pd.to_datetime(df["day"]).dt.date
    return df[[*key, *ALL_STAT_COLUMNS]].sort_values(key).reset_index(drop=True)


@dataclass(frozen=True)
class CapApplied:
    """A capped metric's threshold over a window (docs/metrics.md, "Capping per-user values").

    Attributes:
        value: the threshold each user's numerator was capped at (the pooled quantile of the
            window's users, both arms, or the catalogue's fixed value).
        capped_users: users of the window (every arm) whose numerator was above it.
    """

    value: float
    capped_users: int


def metric_caps(
    p: ReadScope, metrics: Sequence[str], window: str | None = None, day: dt.date | None = None
) -> dict[str, CapApplied]:
    """The thresholds of the capped ones of ``metrics`` over the window (``outcome_stats`` rows of the
    whole population, template ``stats_rows``); a metric without a cap, or whose statistics were built
    before it had one (stale, rebuilt by the next rollup), or without users, has no entry."""
    cat = p.config.catalogue
    capped = [m for m in metrics if m in cat and cat[m].cap is not None]
    if not capped:
        return {}
    con = connect()
    try:
        df = _stats_rows(con, p, capped, "all", [window or p.window], [day or p.event_date])
    finally:
        con.close()
    if df is None or "cap_value" not in df.columns:
        return {}
    out = {}
    for metric, rows in df.groupby("metric"):
        value = rows["cap_value"].max()
        if pd.notna(value):
            out[str(metric)] = CapApplied(float(value), int(rows["capped_users"].fillna(0).sum()))
    return out


def latency_quantile_stats(p: ReadScope, window: str | None = None, nu: float = 0.95) -> pd.DataFrame:
    """Per arm, the sufficient statistics of the user-clustered latency quantile ``nu`` over the
    window (:func:`expkit.stats.guardrails.quantile_arm`; template ``latency_quantile_stats`` over
    the per-user latency histograms of the window's days).

    Returns ``bucket`` and :data:`~expkit.stats.guardrails.QUANTILE_KEYS`, one row per arm with
    requests, in ``p.buckets``. Quantiles are read log-linearly inside the 1%-resolution histogram
    buckets of :mod:`expkit.histogram` (docs/readout.md, "Guardrails"). No rollup: no row.
    """
    window = window or p.window
    files = window_files(p.warehouse, p.event_date, window, LATENCY_INPUTS, p.config.start_date)
    columns = ["bucket", *QUANTILE_KEYS]
    if not files:
        return pd.DataFrame(columns=columns)
    con = connect()
    try:
        _register(con, "user_latency", files)
        df = run_template(con, "latency_quantile_stats", experiment_id=p.config.experiment_id, nu=float(nu),
                          z=float(quantile(0.975)), ln_gamma=LN_GAMMA).df()
    finally:
        con.close()
    df["nu"] = float(nu)
    df = df[df["bucket"].isin(p.buckets)]
    return df[columns].sort_values("bucket").reset_index(drop=True)


def arm_users(
    p: ReadScope, windows: Sequence[str] | None = None, days: Sequence[dt.date] | None = None
) -> pd.DataFrame:
    """Users per arm (and slice value) of each window and day: ``day, window, bucket, slice_value, users``.

    Every exposed user has a row in every metric's statistics (with zero sums when she has no
    events of the metric), so ``n`` of any metric (the catalogue's first) counts the users of the
    window, each once, in the arm of her first exposure.
    """
    df = ratio_stats_table(p, p.config.catalogue.ratio_ids[:1], windows, days)
    return df.rename(columns={"n": "users"})[["day", "window", "bucket", "slice_value", "users"]]


def slice_values(p: ReadScope, column: str) -> list[str]:
    """The values of slice ``column`` seen in the experiment up to the tile's day (``bucket``: its arms).

    Read from the experiment-to-date (``cum``) statistics of ``event_date`` (template
    ``slice_values``); empty when that day has no rollup.
    """
    if column == "bucket":
        return list(p.config.buckets)
    if column not in SLICE_COLUMNS:
        raise ExpkitError(f"unknown slice column {column!r}; choose one of {list(SLICE_COLUMNS)}")
    con = connect()
    try:
        if not _register(con, "outcome_stats", p.warehouse.rollup_files(STATS_ROLLUP, [p.event_date])):
            return []
        rows = _query_template(con, "slice_values", slice_column=column, experiment_id=p.config.experiment_id)
    finally:
        con.close()
    return [r[0] for r in rows]


EXPOSURE_COLUMNS = ["metric", "bucket", "age", "age2", "n", "sum_num", "sum_den", "sum_nn", "sum_nd", "sum_dn",
                    "sum_dd"]
"""The columns of :func:`exposure_stats`."""


def exposure_stats(p: ReadScope, metrics: Sequence[str]) -> pd.DataFrame:
    """The experiment-to-date sums by exposure age of ``metrics`` on ``event_date`` (rollup
    ``exposure_stats``, template ``exposure_rows``): :data:`EXPOSURE_COLUMNS`, one row per arm and
    pair of age buckets ``age <= age2``; empty when the day has no such rollup."""
    con = connect()
    try:
        if not _register(con, "exposure_stats", p.warehouse.rollup_files(EXPOSURE_ROLLUP, [p.event_date])):
            return pd.DataFrame(columns=EXPOSURE_COLUMNS)
        df = run_template(con, "exposure_rows", metrics=list(metrics), experiment_id=p.config.experiment_id).df()
    finally:
        con.close()
    return df[EXPOSURE_COLUMNS].sort_values(["metric", "bucket", "age", "age2"]).reset_index(drop=True)


def experiment_users(wh: Warehouse, day: dt.date) -> dict[str, int] | None:
    """Experiment id → users exposed up to ``day``, from that day's statistics rollup (template
    ``experiment_ids``); ``None`` when the day has no rollup."""
    con = connect()
    try:
        if not _register(con, "outcome_stats", wh.rollup_files(STATS_ROLLUP, [day])):
            return None
        rows = _query_template(con, "experiment_ids")
    finally:
        con.close()
    return {str(e): int(n) for e, n in rows}


def _stats_from_user_facts(
    con: duckdb.DuckDBPyConnection,
    p: ReadScope,
    metric: str,
    slice_: str,
    window: str,
    day: dt.date,
    attr_filters: dict[str, list[str]],
) -> pd.DataFrame:
    for view, source in stats_sources(p.warehouse, day, window, p.config.start_date, p.config.catalogue).items():
        if isinstance(source, pa.Schema):
            con.register(view, con.from_arrow(source.empty_table()))
        else:
            _register(con, view, source)
    # every metric and slice of the filtered users; the filters on metric, slice and experiment
    # (allowed by the template at its last step) spare computing the others
    filters: dict[str, str | list[str]] = {"metric": metric, "slice": slice_, "experiment_id": p.config.experiment_id}
    filters.update({col: [str(v) for v in values] for col, values in attr_filters.items()})
    start_ms = window_start_ms(day, window, p.config.start_date)
    return con.execute(*ratio_stats_query(p.config.catalogue).render(filters, window_start_ms=start_ms)).df()[
        ["bucket", "slice_value", *ALL_STAT_COLUMNS]]


def ingest_watermark(wh: Warehouse, day: dt.date) -> int | None:
    """The newest ingest time (epoch ms) of ``day``'s events, from its ``ingest_bins`` rollup (template
    ``check_rollup_watermark``); ``None`` when the day has no rollup or no rows."""
    con = connect()
    try:
        if not _register(con, "ingest_bins", wh.rollup_files("ingest_bins", [day])):
            return None
        start, end = day_bounds_ms(day)
        rows = _query_template(con, "check_rollup_watermark", start_ms=start, end_ms=end)
    finally:
        con.close()
    marks = [int(w) for _, _, w in rows if w is not None]
    return max(marks) if marks else None


ARM_HEALTH_COLUMNS = ["experiment_id", "bucket", "users", "requests", "errors", "latency_p95_ms"]
"""The columns of :func:`arm_health`."""


def arm_health(wh: Warehouse, day: dt.date) -> pd.DataFrame:
    """Per experiment and arm, ``day``'s users, requests, failed requests and latency p95 (ms), from
    the day's per-user rollups keyed by experiment (templates ``arm_latency`` and ``arm_errors``;
    docs/reports.md, "The portfolio"). ``requests`` and the p95 come from the latency histograms
    (the p95 within 1%, :func:`expkit.histogram.quantile_from_counts`); ``errors`` is NaN when the
    catalogue defines no ``error_rate`` metric. No rollup of ``day``: no row.
    """
    latency_files = wh.rollup_files("user_latency", [day])
    fact_files = wh.rollup_files("user_day", [day])
    if not latency_files:
        return pd.DataFrame(columns=ARM_HEALTH_COLUMNS)
    con = connect()
    try:
        _register(con, "user_latency", latency_files)
        hist = run_template(con, "arm_latency").df()
        errors = pd.DataFrame(columns=["experiment_id", "bucket", "users", "errors"])
        if _register(con, "user_facts", fact_files) and "m_error_rate_num" in con.table("user_facts").columns:
            errors = run_template(con, "arm_errors").df()
    finally:
        con.close()
    rows = []
    for (exp, bucket), h in hist.groupby(["experiment_id", "bucket"], sort=True):
        p95 = quantile_from_counts(h["idx"].to_numpy(), h["n"].to_numpy(dtype=float), 0.95)
        rows.append({"experiment_id": str(exp), "bucket": str(bucket), "requests": int(h["n"].sum()),
                     "latency_p95_ms": float(p95)})
    out = pd.DataFrame(rows, columns=["experiment_id", "bucket", "requests", "latency_p95_ms"])
    out = out.merge(errors[["experiment_id", "bucket", "users", "errors"]], on=["experiment_id", "bucket"],
                    how="left")
    return out[ARM_HEALTH_COLUMNS].reset_index(drop=True)


def platform_health_id(wh: Warehouse, day: dt.date, experiment_id: str) -> str:
    """The experiment id whose requests stand for the platform's health on ``day``, seen from
    ``experiment_id``: its own when the day's requests carry it (or carry none: no rollup), else
    the id the most requests carry. With an ``exposures`` table the requests carry one
    experiment's id and the others' assignments are exposures (docs/synthetic.md, "Several
    experiments"): their health is the platform's, read through that id."""
    carried = request_experiments(wh, day)
    if not carried or experiment_id in carried:
        return experiment_id
    return max(sorted(carried), key=lambda e: carried[e])


def request_experiments(wh: Warehouse, day: dt.date) -> dict[str, int]:
    """Experiment id → ``day``'s non-shadow requests carrying it, from the day's ``health_bins``
    rollup (template ``request_experiments``); empty when the day has no rollup."""
    con = connect()
    try:
        if not _register(con, "health_bins", wh.rollup_files("health_bins", [day])):
            return {}
        rows = _query_template(con, "request_experiments")
    finally:
        con.close()
    return {str(e): int(n) for e, n in rows if n}
