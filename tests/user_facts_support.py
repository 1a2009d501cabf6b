"""Independent readings of per-user facts (``user_day`` and the partitions merged from it: running totals,
spans), shared by the rollup tests. They restate the definition with pandas, never the code under test."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from expkit.warehouse import Warehouse

KEY = ["experiment_id", "user_id", "slice", "slice_value"]
ATTRIBUTES = ["bucket", "cohort", "region", "client"]
STATS_KEY = ["experiment_id", "metric", "bucket", "slice", "slice_value"]


def read(files: list[Path]) -> pd.DataFrame:
    """The rows of rollup partition files (their folder's ``event_date=`` is not a column)."""
    return pd.concat([pq.read_table(f, partitioning=None).to_pandas() for f in files], ignore_index=True)


def facts_over(root: Path, days: list[dt.date]) -> pd.DataFrame:
    """Per (experiment, user, slice, value) over the ``user_day`` of ``days``: the sums summed, ``first_ms``
    the earliest, the arm and attributes those of the row holding it."""
    rows = read(Warehouse.open(root).rollup_files("user_day", days))
    sums = [c for c in rows.columns if c not in KEY + ATTRIBUTES + ["first_ms"]]
    groups = rows.groupby(KEY, dropna=False, sort=False)
    out = groups[sums].sum()
    first = rows.loc[groups["first_ms"].idxmin()].set_index(KEY)[[*ATTRIBUTES, "first_ms"]]
    return out.join(first).reset_index()


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame, key: list[str]) -> None:
    """The same rows: integers and strings equal, floats up to rounding (the same values summed in
    another grouping)."""
    assert len(got) == len(want) > 0
    got, want = (df[list(got.columns)].sort_values(key, na_position="first").reset_index(drop=True)
                 for df in (got, want))
    assert got[key].equals(want[key])
    for column in got.columns:
        if pd.api.types.is_float_dtype(got[column]) or pd.api.types.is_float_dtype(want[column]):
            np.testing.assert_allclose(got[column].astype(float), want[column].astype(float), rtol=1e-12,
                                       err_msg=column)
        else:
            assert got[column].equals(want[column]), column
