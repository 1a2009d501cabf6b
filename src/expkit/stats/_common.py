"""Plumbing shared by the ``expkit.stats`` modules (private).

Array coercion, the per-slice ``reason`` strings, normal/Student quantiles that
accept ``df = inf``, and the base class of the typed results.

Output convention (all public functions): every field has the broadcast shape of
the inputs; scalar inputs give numpy scalars (``np.float64`` is a ``float``,
``reason`` is a ``str``), exactly as numpy ufuncs do.

>>> reasons = Reasons((3,))
>>> reasons.add(np.array([False, True, True]), "empty arm")
>>> reasons.add(np.array([True, True, False]), "zero variance")
>>> reasons.array.tolist()
['zero variance', 'empty arm', 'empty arm']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

FloatArray = NDArray[np.float64]
Sums = Mapping[str, Any]
_R = TypeVar("_R", bound="Result")


def as_float(x: ArrayLike) -> FloatArray:
    """``x`` as a float64 array (0-d for scalars); ``None`` becomes NaN."""
    if x is None:
        return np.array(np.nan)
    return np.asarray(x, dtype=np.float64)


def scalarize(x: Any) -> Any:
    """0-d arrays become numpy scalars (``str`` for object arrays); others pass through."""
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return x[()]
    return x


class Reasons:
    """Collects why each slice's result is NaN; the first reason recorded wins."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.array = np.full(shape, "", dtype=object)

    def add(self, mask: ArrayLike, message: str) -> None:
        mask = np.broadcast_to(np.asarray(mask, dtype=bool), self.array.shape)
        if mask.any():
            self.array[mask & (self.array == "")] = message

    def merge(self, other: NDArray[np.object_], prefix: str = "") -> None:
        """Adopt another reason array (e.g. an arm's), prefixed, where still empty."""
        other = np.broadcast_to(other, self.array.shape)
        has = (other != "") & (self.array == "")
        if has.any():
            self.array[has] = [prefix + str(r) for r in other[has]]


def quantile(p: ArrayLike, df: ArrayLike = np.inf) -> FloatArray:
    """Student-t quantile; ``df = inf`` gives the normal quantile."""
    return special.stdtrit(as_float(df), as_float(p))


def two_sided_pvalue(stat: ArrayLike, df: ArrayLike = np.inf) -> FloatArray:
    """``2 * P(T > |stat|)`` for Student's t with ``df`` (normal when ``df = inf``)."""
    return 2.0 * special.stdtr(as_float(df), -np.abs(as_float(stat)))


def errstate() -> np.errstate:
    """Silence numpy's floating-point warnings: NaN plus a reason is the contract."""
    return np.errstate(all="ignore")


@dataclasses.dataclass(frozen=True)
class Result:
    """Base of the typed results: frozen, with dict and DataFrame views."""

    def asdict(self) -> dict[str, Any]:
        """Fields as a dict (field order kept)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_frame(self) -> Any:
        """The result as a ``pandas.DataFrame``, one row per slice.

        Per-arm 2-D fields (slices x arms) become one column per arm.
        """
        import pandas as pd

        cols: dict[str, Any] = {}
        for name, value in self.asdict().items():
            arr = np.asarray(value)
            if arr.ndim == 2:
                for j in range(arr.shape[1]):
                    cols[f"{name}_{j}"] = arr[:, j]
            else:
                cols[name] = arr[()] if arr.ndim == 0 else arr
        scalar_only = all(np.ndim(v) == 0 for v in cols.values())
        return pd.DataFrame(cols, index=[0] if scalar_only else None)

    @classmethod
    def build(cls: type[_R], **fields: Any) -> _R:
        """Construct with 0-d arrays turned into numpy scalars."""
        return cls(**{k: scalarize(v) for k, v in fields.items()})
