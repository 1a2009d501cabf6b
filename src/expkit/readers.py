"""Read rollups for tiles: small aggregates out, with bound parameters only.

Tiles call these functions; they open DuckDB over the rollup Parquet (never raw events) and
return pandas frames of sufficient statistics or per-bin counts. User-supplied values (dates,
filter values, bucket names) are bound parameters; identifiers (slice columns) come from the
allow-list of :mod:`expkit.schema`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from expkit.config import WINDOWS
from expkit.errors import ExpkitError
from expkit.rollup import STATS_ROLLUP, window_days
from expkit.rollup_schema import USER_FACTS_SCHEMA
from expkit.schema import SLICE_COLUMNS
from expkit.templates import TEMPLATES
from expkit.tiles.base import TileParams
from expkit.warehouse import Warehouse, day_bounds_ms

USER_ATTRIBUTES = ("cohort", "region", "client")
"""Slices that are attributes of the user (taken at first exposure in the window)."""
EVENT_ATTRIBUTES = ("surface", "genre", "provider")
"""Slices that are attributes of each impression: a user contributes to several values."""
STAT_COLUMNS = ["n", "sum_num", "sum_den", "sum_num2", "sum_den2", "sum_numden"]


def connect() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for reading rollups."""
    return duckdb.connect(config={"threads": 2})


def _register(con: duckdb.DuckDBPyConnection, name: str, files: Sequence[Path]) -> bool:
    if not files:
        return False
    con.register(name, con.read_parquet([str(f) for f in files], union_by_name=True))
    return True


def window_bounds(day: dt.date, window: str) -> tuple[int, int]:
    """[start, end) epoch ms of ``window`` ending at the end of ``day``."""
    _, end = day_bounds_ms(day)
    return end - WINDOWS[window], end


def _slice_key(slice_: str) -> str:
    return "all" if slice_ == "bucket" else slice_


def ratio_stats(p: TileParams, metric: str, window: str | None = None, day: dt.date | None = None) -> pd.DataFrame:
    """Sufficient statistics of ``metric`` per arm and slice value for the tile's window.

    Returns columns ``bucket, slice_value`` and :data:`STAT_COLUMNS`. Without filters (or with
    filters only on the sliced column or on ``bucket``) it reads the precomputed
    ``outcome_stats``; filters on user attributes (cohort, region, client) re-aggregate the
    per-user facts of the window (still rollups, never events).
    """
    window = window or p.window
    day = day or p.event_date
    slice_ = _slice_key(p.slice)
    if metric in ("recall", "session_depth") and slice_ in EVENT_ATTRIBUTES:
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
    con = connect()
    try:
        if attr_filters:
            df = _stats_from_user_facts(con, p, metric, slice_, window, day, attr_filters)
        else:
            files = p.warehouse.rollup_files(STATS_ROLLUP, [day])
            if not _register(con, "outcome_stats", files):
                return pd.DataFrame(columns=["bucket", "slice_value", *STAT_COLUMNS])
            df = con.execute(
                "SELECT bucket, slice_value, " + ", ".join(STAT_COLUMNS) + " FROM outcome_stats "
                "WHERE window_name = $w AND metric = $m AND slice = $s AND experiment_id = $e",
                {"w": window, "m": metric, "s": slice_, "e": p.config.experiment_id},
            ).df()
    finally:
        con.close()
    df = df[df["bucket"].isin(p.buckets)]
    if "bucket" in p.filters:
        df = df[df["bucket"].isin(p.filters["bucket"])]
    if slice_ in p.filters:
        df = df[df["slice_value"].isin(p.filters[slice_])]
    return df.sort_values(["slice_value", "bucket"]).reset_index(drop=True)


def _stats_from_user_facts(
    con: duckdb.DuckDBPyConnection,
    p: TileParams,
    metric: str,
    slice_: str,
    window: str,
    day: dt.date,
    attr_filters: dict[str, list[str]],
) -> pd.DataFrame:
    if window == "1h":
        files = p.warehouse.rollup_files("user_last_hour", [day])
    else:
        files = p.warehouse.rollup_files("user_day", window_days(day, window, p.config.start_date))
    if not _register(con, "user_facts", files):
        con.register("user_facts", con.from_arrow(USER_FACTS_SCHEMA.empty_table()))
    clauses, params = [], {"m": metric, "s": slice_, "e": p.config.experiment_id}
    for i, (col, values) in enumerate(sorted(attr_filters.items())):
        if col not in SLICE_COLUMNS:  # identifiers only from the allow-list
            raise ExpkitError(f"unknown filter column {col!r}")
        clauses.append(f"AND list_contains($f{i}, a.{col})")
        params[f"f{i}"] = list(values)
    sql = TEMPLATES["ratio_stats"].sql.replace("/*attr_filter*/", " ".join(clauses))
    return con.execute(
        "SELECT bucket, slice_value, " + ", ".join(STAT_COLUMNS) + f" FROM ({sql}) AS q "
        "WHERE metric = $m AND slice = $s AND experiment_id = $e",
        params,
    ).df()


def read_bins(
    wh: Warehouse, rollup: str, days: Sequence[dt.date], where: str = "", params: dict[str, Any] | None = None,
    select: str = "*",
) -> pd.DataFrame:
    """Rows of a per-bin rollup for ``days`` (``where`` uses only bound ``$params``)."""
    con = connect()
    try:
        if not _register(con, "t", wh.rollup_files(rollup, list(days))):
            return pd.DataFrame()
        sql = f"SELECT {select} FROM t" + (f" WHERE {where}" if where else "")
        return con.execute(sql, params or {}).df()
    finally:
        con.close()
