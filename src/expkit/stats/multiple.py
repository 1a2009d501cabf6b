"""Multiple-comparison adjustment of p-values over slices and metrics (docs/statistics.md).

A thin wrapper around statsmodels' ``multipletests`` with R's ``p.adjust``
names and R's NaN handling: NaN p-values (undefined comparisons) pass through as
NaN and are excluded from the family, so they neither count towards ``m`` nor
get adjusted.

=============  =========================================  ======================
method         controls                                   statsmodels name
=============  =========================================  ======================
bonferroni     FWER                                       ``bonferroni``
holm           FWER (step-down)                           ``holm``
hochberg       FWER (step-up; independence/PRDS)          ``simes-hochberg``
bh             FDR (Benjamini–Hochberg; independence/PRDS) ``fdr_bh``
by             FDR under any dependence (Benjamini–Yekutieli) ``fdr_by``
=============  =========================================  ======================

>>> adjust_pvalues([0.01, 0.04, np.nan, 0.03, 0.005], "holm")
array([0.03, 0.06,  nan, 0.06, 0.02])
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from statsmodels.stats.multitest import multipletests

from ._common import FloatArray, as_float

__all__ = ["ADJUST_METHODS", "adjust_pvalues"]

ADJUST_METHODS = {
    "bonferroni": "bonferroni",
    "holm": "holm",
    "hochberg": "simes-hochberg",
    "bh": "fdr_bh",
    "by": "fdr_by",
}


def adjust_pvalues(pvalues: ArrayLike, method: str = "bh", axis: int | None = None) -> FloatArray:
    """Adjusted p-values; the family is the whole array (``axis=None``) or each
    1-D lane along ``axis`` (e.g. ``axis=-1`` for one family per row).

    >>> np.round(adjust_pvalues([0.01, 0.04, 0.03, 0.005], "bh"), 4)
    array([0.02, 0.04, 0.04, 0.02])
    """
    if method not in ADJUST_METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {sorted(ADJUST_METHODS)}")
    p = as_float(pvalues)
    finite = p[~np.isnan(p)]
    if np.any((finite < 0) | (finite > 1)):
        raise ValueError("p-values must lie in [0, 1] (or be NaN)")
    if axis is not None:
        return np.apply_along_axis(_adjust_family, axis, p, ADJUST_METHODS[method])
    return _adjust_family(p.ravel(), ADJUST_METHODS[method]).reshape(p.shape)[()]


def _adjust_family(p: FloatArray, sm_method: str) -> FloatArray:
    out = np.full(p.shape, np.nan)
    keep = ~np.isnan(p)
    if keep.any():
        out[keep] = multipletests(p[keep], method=sm_method, is_sorted=False)[1]
    return out
