"""Planned allocation shares: the one tolerance on their sum, and their normalization.

A parameters file may write a three-way split as ``0.3333333`` three times; the shares are
accepted when they sum to 1 within :data:`SHARE_SUM_TOLERANCE` and are then divided by their
sum, so every later use (the SRM test, the synthetic generator, the allocation tile) sees
shares that sum to 1 up to rounding. See docs/reliability.md.

>>> shares = normalized_shares({"a": 0.3333333, "b": 0.3333333, "c": 0.3333333})
>>> abs(sum(shares.values()) - 1) < 1e-15, round(shares["a"], 12)
(True, 0.333333333333)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

SHARE_SUM_TOLERANCE = 1e-6
"""How far from 1 planned shares may sum (seven decimals per share leave up to 1e-7 per arm)."""


def shares_sum_to_one(total: float) -> bool:
    """Whether a sum of planned shares is 1 within :data:`SHARE_SUM_TOLERANCE`."""
    return math.isclose(total, 1.0, rel_tol=0.0, abs_tol=SHARE_SUM_TOLERANCE)


def normalized_shares(shares: Mapping[str, float]) -> dict[str, float]:
    """``shares`` divided by their sum (the caller has checked :func:`shares_sum_to_one`)."""
    total = math.fsum(shares.values())
    return {k: v / total for k, v in shares.items()}
