"""The metric catalogue (``params/metrics.yaml``): every metric defined once, as data.

Each entry names a metric by id with its title, which way is good (``direction``), how its
values read (``format``), an optional ``target`` and an optional tile page (``tile``). A metric
is either *declarative*, a ratio of two aggregates over one event table each::

    top3_ctr:
      title: CTR in the top 3 positions
      numerator:   {table: impressions, agg: count, where: {clicked: true, position: [1, 2, 3]}}
      denominator: {table: impressions, agg: count, where: {position: [1, 2, 3]}}
      direction: increase
      format: percent

or *built in* (``builtin: <name>``), for a definition the format cannot express (Recall@K
with its first-play rule, session depth, the health guardrails). The unit of every ratio
metric is the user: the rollups keep per-user sums of its numerator and denominator, so the
delta method, the windows, the slices and Spark serve a new metric with no code
(:mod:`expkit.metrics_sql` writes the SQL; docs/metrics.md, "The metric catalogue").

The catalogue is strict: an unknown key, table, column, aggregate or a value of the wrong type
is a :class:`~expkit.errors.ConfigError` naming the file and the key (exit 2).

>>> cat = parse_catalogue({"metrics": {"plays_per_user": {"title": "Plays per user",
...     "numerator": {"table": "plays", "agg": "count"}, "denominator": "users",
...     "direction": "increase", "format": "number"}}})
>>> m = cat.metrics["plays_per_user"]
>>> m.kind, m.per_user_mean, m.event_slices
('ratio', True, False)
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from expkit.errors import ConfigError
from expkit.schema import IMPRESSIONS, PLAYS, REQUESTS
from expkit.yamlio import read_yaml

CATALOGUE_FILE = "metrics.yaml"
"""The catalogue's file name, beside the experiment parameters (``params/metrics.yaml``)."""

TABLES: dict[str, pa.Schema] = {"requests": REQUESTS, "impressions": IMPRESSIONS, "plays": PLAYS}
"""Event tables a declarative metric may aggregate (columns from :mod:`expkit.schema`)."""
FLAGS: dict[str, dict[str, pa.DataType]] = {"impressions": {"clicked": pa.bool_(), "saved": pa.bool_()}}
"""Columns derived per row: an impression is ``clicked`` / ``saved`` when a click / save of the
window is attributed to it (same request and item), as the per-user facts attribute them."""
HIDDEN = frozenset({"shadow"})
"""Columns a metric cannot name (shadow traffic is never counted)."""
EVENT_SLICE_TABLE = "impressions"
"""The table whose rows carry the event-attribute slices (surface, genre, provider)."""
METRIC_ID = re.compile(r"[a-z][a-z0-9_]{0,47}")


@dataclass(frozen=True)
class Builtin:
    """A metric whose definition is code.

    Attributes:
        kind: ``ratio`` (per-user sums in the rollups, compared between arms) or ``health``
            (read by the health tiles and alerts from their own rollups).
        numerator: for a ratio, the per-user fact summed as numerator (``clicks``, ``hits``...).
        denominator: the per-user fact summed as denominator.
        event_slices: whether it exists per surface, genre and provider (impression attributes).
        value_format: how its tile prints values (d3 format), when not the default of its format.
    """

    kind: Literal["ratio", "health"]
    numerator: str = ""
    denominator: str = ""
    event_slices: bool = False
    value_format: str | None = None


BUILTINS: dict[str, Builtin] = {
    "ctr": Builtin("ratio", "clicks", "impressions", True, ".2%"),
    "save_rate": Builtin("ratio", "saves", "impressions", True, ".3%"),
    "saves_per_click": Builtin("ratio", "saves", "clicks", True, ".2%"),
    "recall": Builtin("ratio", "hits", "plays", False, ".3f"),
    "session_depth": Builtin("ratio", "depth", "sessions", False, ".2f"),
    "coverage": Builtin("health"),
    "error_rate": Builtin("health"),
    "latency_p95": Builtin("health"),
}
"""The built-in definitions (docs/metrics.md, "Outcome metrics" and "Health metrics"): per-user
facts of ``user_facts.sql`` / ``ratio_stats.sql``, or the health rollups."""

DEFAULT_FORMATS = {"percent": ".2%", "number": ".3f", "ms": ".0f"}

Scalar = bool | int | float | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _column_type(table: str, column: str) -> pa.DataType | None:
    if column in FLAGS.get(table, {}):
        return FLAGS[table][column]
    schema = TABLES[table]
    if column in HIDDEN or column not in schema.names:
        return None
    return schema.field(column).type


def _columns(table: str) -> list[str]:
    return [c for c in TABLES[table].names if c not in HIDDEN] + list(FLAGS.get(table, {}))


def _value_fits(value: Any, t: pa.DataType) -> bool:
    if pa.types.is_boolean(t):
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if pa.types.is_integer(t):
        return isinstance(value, int)
    if pa.types.is_floating(t):
        return isinstance(value, (int, float))
    return isinstance(value, str)


class Range(_Strict):
    """A range condition of ``where`` on a numeric column: ``{min: a}``, ``{max: b}`` or both,
    bounds included (``{k_returned: {min: 1}}``: at least one item returned)."""

    min: int | float | None = Field(default=None, allow_inf_nan=False)
    max: int | float | None = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _some(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("a range is {min: a}, {max: b} or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"a range's min ({self.min}) is above its max ({self.max})")
        return self

    def bounds(self) -> list[tuple[str, int | float]]:
        """``(">=", min)`` and ``("<=", max)``, the bounds given."""
        return [(op, v) for op, v in ((">=", self.min), ("<=", self.max)) if v is not None]


Condition = Scalar | list[Scalar] | Range


class Aggregate(_Strict):
    """One side of a declarative ratio: an aggregate over the rows of one event table.

    Attributes:
        table: ``requests``, ``impressions`` or ``plays``.
        agg: ``count`` (rows), ``sum:<column>`` or ``count_distinct:<column>``.
        where: column → value, list of values (any of them) or, for a numeric column, a range
            ``{min: a, max: b}`` (bounds included, either optional); always bound parameters.
    """

    table: Literal["requests", "impressions", "plays"]
    agg: str
    where: dict[str, Condition] = Field(default_factory=dict)

    @field_validator("agg")
    @classmethod
    def _agg(cls, v: str, info: ValidationInfo) -> str:
        table = info.data.get("table")
        func, _, column = v.partition(":")
        if v == "count":
            return v
        if func not in ("sum", "count_distinct") or not column:
            raise ValueError(f"unknown aggregate {v!r}; use count, sum:<column> or count_distinct:<column>")
        if table is None:
            return v
        t = _column_type(table, column)
        if t is None:
            raise ValueError(f"unknown column {column!r} of table {table}; its columns: {', '.join(_columns(table))}")
        if func == "sum" and not (pa.types.is_integer(t) or pa.types.is_floating(t)):
            raise ValueError(f"sum:{column} needs a numeric column; {column} of {table} is {t}")
        return v

    @field_validator("where", mode="before")
    @classmethod
    def _ranges(cls, v: Any) -> Any:
        """Read a mapping value as a :class:`Range` here, so that its errors read as such."""
        if not isinstance(v, dict):
            return v
        out = {}
        for column, value in v.items():
            if isinstance(value, dict):
                try:
                    value = Range.model_validate(value)
                except ValidationError as err:
                    e = err.errors()[0]
                    key = ".".join(str(x) for x in e["loc"])
                    msg = e["msg"].removeprefix("Value error, ")
                    if e["type"] == "extra_forbidden":
                        msg = "unknown key (a range has min and max)"
                    raise ValueError(f"{column}: {key + ': ' if key else ''}{msg}") from None
            out[column] = value
        return out

    @field_validator("where")
    @classmethod
    def _where(cls, v: dict[str, Condition], info: ValidationInfo) -> dict[str, Condition]:
        table = info.data.get("table")
        if table is None:
            return v
        for column, value in v.items():
            t = _column_type(table, column)
            if t is None:
                raise ValueError(f"unknown column {column!r} of table {table}; "
                                 f"its columns: {', '.join(_columns(table))}")
            if isinstance(value, Range):
                if not (pa.types.is_integer(t) or pa.types.is_floating(t)):
                    raise ValueError(f"{column} is {t}; a range {{min, max}} needs a numeric column")
                bad_bound = [b for _, b in value.bounds() if pa.types.is_integer(t) and not isinstance(b, int)]
                if bad_bound:
                    raise ValueError(f"{column} is {t}; the bound {bad_bound[0]!r} does not fit it")
                continue
            values = value if isinstance(value, list) else [value]
            if not values:
                raise ValueError(f"{column}: an empty list matches no row; give at least one value")
            bad = [x for x in values if not _value_fits(x, t)]
            if bad:
                raise ValueError(f"{column} is {t}; the value {bad[0]!r} does not fit it")
        return v

    @property
    def function(self) -> str:
        """``count``, ``sum`` or ``count_distinct``."""
        return self.agg.partition(":")[0]

    @property
    def column(self) -> str | None:
        """The aggregated column (``None`` for ``count``)."""
        return self.agg.partition(":")[2] or None

    def conditions(self) -> list[tuple[str, list[Scalar] | Range]]:
        """``where`` as (column, values or range) pairs in file order."""
        return [(c, v if isinstance(v, (list, Range)) else [v]) for c, v in self.where.items()]

    def arrow_type(self) -> pa.DataType:
        """The type of its per-user sums: 64-bit counts, or the summed column's family."""
        if self.function == "sum" and self.column is not None:
            t = _column_type(self.table, self.column)
            if t is not None and pa.types.is_floating(t):
                return pa.float64()
        return pa.int64()


class Target(_Strict):
    """A target: ``{min: x}`` (the metric should stay at or above x) or ``{max: x}``."""

    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one(self) -> Target:
        if (self.min is None) == (self.max is None):
            raise ValueError("a target is either {min: x} or {max: x}")
        return self

    @property
    def value(self) -> float:
        """The bound, whichever side it is on."""
        return float(self.min if self.min is not None else self.max)  # type: ignore[arg-type]


class Cap(_Strict):
    """A cap on each user's numerator (winsorization; docs/metrics.md, "Capping per-user values"):
    ``{quantile: q}``, the pooled quantile ``q`` of the window's users (both arms), or ``{value: x}``.

    Attributes:
        quantile: the quantile level, 0.5 ≤ q < 1 (``0.999``: the 99.9th percentile).
        value: a fixed threshold, > 0, in the numerator's units per user and window.
    """

    quantile: float | None = Field(default=None, ge=0.5, lt=1.0, allow_inf_nan=False)
    value: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one(self) -> Cap:
        if (self.quantile is None) == (self.value is None):
            raise ValueError("a cap is either {quantile: q} or {value: x}")
        return self

    def describe(self) -> str:
        """How the threshold was chosen: ``99.9th percentile`` or ``fixed value``.

        >>> Cap(quantile=0.999).describe(), Cap(quantile=0.99).describe(), Cap(value=20).describe()
        ('99.9th percentile', '99th percentile', 'fixed value')
        >>> Cap(quantile=0.92).describe(), Cap(quantile=0.51).describe()
        ('92nd percentile', '51st percentile')
        """
        if self.quantile is None:
            return "fixed value"
        level = f"{self.quantile * 100:.10g}"
        suffix = {"1": "st", "2": "nd", "3": "rd"}.get(level[-1], "th") if "." not in level else "th"
        return f"{level}{suffix} percentile"


CAPPABLE_BUILTINS = frozenset({"session_depth"})
"""Built-in metrics whose numerator is an unbounded per-user count (a mean per session): a ``cap`` is
allowed. The others are shares of their denominator's units (CTR, save rate, saves per click,
Recall@K), bounded per unit, or health metrics."""


def cap_refusal(builtin: str | None, numerator: Aggregate | None, denominator: Aggregate | str | None) -> str | None:
    """Why a metric cannot be capped (None: it can): caps are for the per-user numerators of mean-like
    metrics (``denominator: users``, ``session_depth``, or a ratio whose numerator is not a share of its
    denominator's rows: another table or another aggregate)."""
    if builtin is not None:
        if builtin in CAPPABLE_BUILTINS:
            return None
        kind = BUILTINS[builtin]
        what = "a health metric" if kind.kind == "health" else (
            f"a share ({kind.numerator} / {kind.denominator}), bounded per unit")
        return f"builtin {builtin} is {what}"
    if isinstance(numerator, Aggregate) and isinstance(denominator, Aggregate) and (
            numerator.table == denominator.table and numerator.agg == denominator.agg):
        return (f"its numerator is a share of its denominator's rows ({numerator.agg} of {numerator.table} "
                "over the same), bounded per unit")
    return None


class TilePage(_Strict):
    """Options of a metric's tile page: metrics shown beside it (rows of its table, headline)."""

    beside: list[str] = Field(default_factory=list)


class Metric(_Strict):
    """One catalogue entry (see the module docstring for the format)."""

    title: str = Field(min_length=1)
    numerator: Aggregate | None = None
    denominator: Aggregate | Literal["users"] | None = None
    builtin: str | None = None
    direction: Literal["increase", "decrease"]
    format: Literal["percent", "number", "ms"]
    target: Target | None = None
    tile: bool | TilePage = False
    cap: Cap | None = None

    @field_validator("builtin")
    @classmethod
    def _builtin(cls, v: str | None) -> str | None:
        if v is not None and v not in BUILTINS:
            raise ValueError(f"unknown builtin {v!r}; the built-in metrics are {', '.join(BUILTINS)}")
        return v

    @field_validator("cap")
    @classmethod
    def _cap(cls, v: Cap | None, info: ValidationInfo) -> Cap | None:
        if v is None:
            return v
        why = cap_refusal(info.data.get("builtin"), info.data.get("numerator"), info.data.get("denominator"))
        if why:
            raise ValueError(f"cap applies to the per-user numerators of mean-like metrics (denominator: users, "
                             f"session_depth, a count or sum per other unit); {why}: remove the cap")
        return v

    @model_validator(mode="after")
    def _definition(self) -> Metric:
        declared = self.numerator is not None or self.denominator is not None
        if self.builtin is not None and declared:
            raise ValueError("a builtin metric has no numerator or denominator; keep one of the two forms")
        if self.builtin is None and (self.numerator is None or self.denominator is None):
            raise ValueError("needs a numerator and a denominator (or builtin: <name>)")
        if self.tile and self.kind != "ratio":
            raise ValueError(f"tile: only ratio metrics have a tile page; {self.builtin} is a health metric")
        return self

    @property
    def kind(self) -> Literal["ratio", "health"]:
        """``ratio`` (per-user sums, compared between arms) or ``health``."""
        return BUILTINS[self.builtin].kind if self.builtin else "ratio"

    @property
    def declarative(self) -> bool:
        return self.builtin is None

    @property
    def per_user_mean(self) -> bool:
        """``denominator: users``: the mean of the numerator over the users."""
        return self.denominator == "users"

    @property
    def tables(self) -> tuple[str, ...]:
        """The event tables of a declarative metric."""
        return tuple(a.table for a in (self.numerator, self.denominator) if isinstance(a, Aggregate))

    @property
    def event_slices(self) -> bool:
        """Whether the metric exists per surface, genre and provider: built-ins say so; a declarative
        metric does when every table it reads is ``impressions`` (the rows that carry them)."""
        if self.builtin:
            return BUILTINS[self.builtin].event_slices
        return all(t == EVENT_SLICE_TABLE for t in self.tables)

    @property
    def value_format(self) -> str:
        """How values print (d3 / Python format spec)."""
        own = BUILTINS[self.builtin].value_format if self.builtin else None
        return own or DEFAULT_FORMATS[self.format]

    @property
    def beside(self) -> list[str]:
        """Metrics shown beside this one on its tile page."""
        return self.tile.beside if isinstance(self.tile, TilePage) else []


class Catalogue(_Strict):
    """The metric catalogue: id → :class:`Metric`, in file order."""

    metrics: dict[str, Metric]
    _source: str = PrivateAttr(default="<catalogue>")

    @field_validator("metrics")
    @classmethod
    def _ids(cls, v: dict[str, Metric]) -> dict[str, Metric]:
        bad = [k for k in v if not METRIC_ID.fullmatch(k)]
        if bad:
            raise ValueError(f"metric id {bad[0]!r} must be lower-case letters, digits and '_' "
                             "(a letter first, at most 48)")
        for mid, m in v.items():
            for other in m.beside:
                if other not in v or v[other].kind != "ratio":
                    raise ValueError(f"{mid}.tile.beside: {other!r} is not a ratio metric of the catalogue")
        return v

    @property
    def source(self) -> str:
        """The file it was read from."""
        return self._source

    def __getitem__(self, metric_id: str) -> Metric:
        return self.metrics[metric_id]

    def __contains__(self, metric_id: object) -> bool:
        return metric_id in self.metrics

    @property
    def ratio_ids(self) -> list[str]:
        """The ratio metrics, in catalogue order (one ``outcome_stats`` row set each)."""
        return [k for k, m in self.metrics.items() if m.kind == "ratio"]

    @property
    def declarative_ids(self) -> list[str]:
        """The declarative metrics (per-user sums generated in ``user_facts``)."""
        return [k for k, m in self.metrics.items() if m.declarative]

    @property
    def tile_ids(self) -> list[str]:
        """The metrics that ask for a tile page, in catalogue order."""
        return [k for k, m in self.metrics.items() if m.tile]

    def facts_digest(self) -> str:
        """A digest of what the per-user facts compute (the declarative definitions): the raw
        rollups built with another digest are stale (:mod:`expkit.rollup`)."""
        return _digest({k: self.metrics[k].model_dump(include={"numerator", "denominator"})
                        for k in sorted(self.declarative_ids)})

    @property
    def capped_ids(self) -> list[str]:
        """The ratio metrics with a ``cap``, in catalogue order."""
        return [k for k in self.ratio_ids if self.metrics[k].cap is not None]

    def stats_digest(self) -> str:
        """A digest of what ``outcome_stats`` holds (every ratio metric's definition, its cap included;
        a metric without a cap has the digest it had before caps existed)."""
        def definition(m: Metric) -> dict[str, Any]:
            d = m.model_dump(include={"numerator", "denominator", "builtin"})
            if m.cap is not None:
                d["cap"] = m.cap.model_dump(exclude_none=True)
            return d

        return _digest({k: definition(self.metrics[k]) for k in sorted(self.ratio_ids)})


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


LEGACY_FACTS_DIGEST = _digest({})
"""The facts digest of rollups built before the catalogue: no declarative metric."""
LEGACY_STATS_DIGEST = _digest({k: {"numerator": None, "denominator": None, "builtin": k}
                               for k in sorted(("ctr", "save_rate", "saves_per_click", "recall", "session_depth"))})
"""The statistics digest of rollups built before the catalogue: the five built-in ratio metrics."""


def _first_errors(err: ValidationError) -> list[ErrorDetails]:
    """The errors worth showing: a mapping given for ``denominator`` is not also told it is not 'users'."""
    errors = list(err.errors())
    real = [e for e in errors if not (e["type"] == "literal_error" and isinstance(e["input"], dict))
            and not (e["type"] in ("model_type", "dict_type") and isinstance(e["input"], str))]
    return real or errors


def _error_text(source: str, err: ValidationError) -> str:
    parts = []
    for e in _first_errors(err):
        loc = ".".join(str(x) for x in e["loc"] if not (isinstance(x, str) and (x[:1].isupper() or "[" in x)))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden" and len(e["loc"]) >= 4 and e["loc"][2] == "cap":
            msg = "unknown key (a cap has quantile or value)"
        elif e["type"] == "extra_forbidden":
            msg = ("unknown key (a metric has title, numerator, denominator or builtin, direction, format, "
                   "target, tile, cap; an aggregate has table, agg, where)")
        parts.append(f"key '{loc or '(top level)'}': {msg}")
    return f"{source}: {parts[0]}" + (f" (and {len(parts) - 1} more problem(s))" if len(parts) > 1 else "")


def parse_catalogue(data: Any, source: Path | str = "<catalogue>") -> Catalogue:
    """Validate an already-parsed catalogue mapping; errors name ``source`` and the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with the key 'metrics', got {type(data).__name__}")
    try:
        cat = Catalogue.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_error_text(str(source), err)) from None
    cat._source = str(source)
    return cat


def load_catalogue(path: str | Path) -> Catalogue:
    """Read and validate a catalogue file."""
    return parse_catalogue(read_yaml(path, "metric catalogue", "params/metrics.yaml"), path)


def catalogue_file_for(params_file: str | Path | None) -> Path:
    """The catalogue of an experiment: ``metrics.yaml`` beside its parameters file (or above its
    ``experiments/`` folder, :func:`expkit.project.shared_file`), else the
    project's ``params/metrics.yaml``: of the working folder, else of the project root above it
    (:func:`expkit.project.project_root`), else of the checkout expkit runs from (the search of
    :func:`expkit.config.default_params_file`)."""
    from expkit.project import project_root, shared_file

    if params_file is not None:
        beside = shared_file(params_file, CATALOGUE_FILE)
        if beside.is_file():
            return beside

    root = project_root()
    for parent in [Path.cwd(), *([root] if root else []), *Path(__file__).resolve().parents]:
        candidate = parent / "params" / CATALOGUE_FILE
        if candidate.is_file():
            return candidate
    return Path("params") / CATALOGUE_FILE


@functools.lru_cache(maxsize=8)
def _cached(path: str, mtime_ns: int, size: int) -> Catalogue:
    return load_catalogue(path)


def catalogue_for(params_file: str | Path | None = None) -> Catalogue:
    """The catalogue of the experiment whose parameters are ``params_file`` (None: the project's);
    read once per file version."""
    path = catalogue_file_for(params_file)
    try:
        st = path.stat()
    except OSError:
        return load_catalogue(path)  # names the missing file
    return _cached(str(path), st.st_mtime_ns, st.st_size)
