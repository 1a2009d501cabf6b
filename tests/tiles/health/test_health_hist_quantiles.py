"""hist_quantiles against numpy's inverted_cdf quantile of the expanded bucket indices: rows in
any order, repeated buckets, and a missing (NULL) key value forming a group of its own."""

from __future__ import annotations

import numpy as np
import pandas as pd

from expkit.histogram import bucket_value
from expkit.series import QUANTILES, hist_quantiles


def test_hist_quantiles_match_numpy_inverted_cdf() -> None:
    rng = np.random.default_rng(7)
    rows = pd.DataFrame({
        "bin_ms": rng.choice([0, 300_000, 600_000], 400),
        "slice_value": rng.choice(np.array(["eu", "na", None], dtype=object), 400),
        "idx": rng.integers(-3, 60, 400),
        "n": rng.integers(1, 9, 400),
    })
    out = hist_quantiles(rows, ["bin_ms", "slice_value"])
    assert len(out) == rows.groupby(["bin_ms", "slice_value"], dropna=False).ngroups
    for rec in out.to_dict("records"):
        same_slice = (rows["slice_value"].isna() if rec["slice_value"] is None or pd.isna(rec["slice_value"])
                      else rows["slice_value"] == rec["slice_value"])
        part = rows[(rows["bin_ms"] == rec["bin_ms"]) & same_slice]
        values = np.repeat(part["idx"].to_numpy(), part["n"].to_numpy())
        assert rec["n"] == len(values)
        for name, q in QUANTILES.items():
            # reference: numpy's inverted_cdf order statistic of the expanded indices
            expected = bucket_value(np.quantile(values, q, method="inverted_cdf"))
            assert np.isclose(rec[name], expected), (rec, name)
