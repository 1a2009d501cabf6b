"""What every tile shares: validated parameters, a typed result, status rules, the sidecar.

A tile is a function ``tile(params: TileParams) -> TileResult``. Its notebook only declares
the parameters, calls :func:`expkit.run_tile` and shows the result; the daily report reads
the JSON sidecar the result writes (docs/reports.md, "The tile side of the contract"), never
the HTML.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from expkit.atomic import atomic_write_json
from expkit.catalogue import Target
from expkit.config import WINDOWS, default_params_file, load_experiment
from expkit.errors import ExpkitError
from expkit.names import STATUSES, TO_DATE_TILES, WAREHOUSE_ENV, Status
from expkit.readers import ReadScope
from expkit.schema import SLICE_COLUMNS, SLICE_VALUE_CHARS, is_slice_value
from expkit.tiles.rendered import RenderedTile
from expkit.warehouse import Warehouse, parse_date

WAREHOUSE_FIX = (
    'set the parameter warehouse (in a notebook: warehouse = "/path/to/warehouse" in the parameters cell; '
    f"expkit tile: --warehouse; anywhere: ${WAREHOUSE_ENV})"
)
"""How a tile's user points it at another warehouse (ends the missing-warehouse error)."""


@dataclass(frozen=True)
class TileParams(ReadScope):
    """Validated tile parameters: what the tile reads (a :class:`~expkit.readers.ReadScope`),
    plus the tile's own fields.

    Attributes:
        tile: tile id.
        event_date: the report date; windows end at the end of this UTC day.
        window: ``1h``, ``24h``, ``7d`` or ``30d``.
        slice: ``bucket`` (per arm only) or another slice column the tile supports.
        filters: slice column → allowed values (values are bound, never pasted into SQL).
        buckets: arms to show (default: every arm of the experiment).
        config: the experiment definition.
        params_file: where ``config`` came from.
        warehouse: the warehouse folder.
        alert_limits: alert rule name → its threshold (docs/alerts.md): a health tile breaches on
            the per-bin condition the rule fires on; a rule missing here falls back to the
            tile's default limit. Gathered by :func:`expkit.run_tile`, never read by a tile.
        checks: the day's stored validation results (``summary.json`` check shape), ``None``
            when the day was not validated. Gathered by :func:`expkit.run_tile`.
        alerts: the day's alert timeline as last evaluated (``summary.json`` alert shape),
            ``None`` when the alert rules were not evaluated for the day. Gathered likewise.
    """

    tile: str
    params_file: Path
    alert_limits: Mapping[str, float] = field(default_factory=dict)
    checks: tuple[Mapping[str, Any], ...] | None = None
    alerts: tuple[Mapping[str, Any], ...] | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-friendly parameters for the page header and the sidecar."""
        return {
            "event_date": self.event_date.isoformat(),
            "window": "cum" if self.tile in TO_DATE_TILES else self.window,
            "slice": self.slice,
            "filters": self.filters,
            "buckets": self.buckets,
            "params_file": str(self.params_file),
            "warehouse": str(self.warehouse.root),
            "experiment_id": self.config.experiment_id,
        }


def _parse_filters(filters: Any) -> dict[str, list[str]]:
    if filters is None or filters == "":
        return {}
    if isinstance(filters, str):
        import yaml

        from expkit.yamlio import StrictLoader

        try:
            filters = yaml.load(filters, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at column {mark.column + 1}" if mark else ""
            raise ExpkitError(
                f"parameter filters: not valid JSON/YAML{where} ({getattr(err, 'problem', None) or 'parse error'}); "
                'write a mapping such as {"region": ["eu"]}'
            ) from None
        if filters is None:
            return {}
    if not isinstance(filters, dict):
        raise ExpkitError(
            'parameter filters must map a slice column to a list of values, e.g. {"region": ["eu"]}'
        )
    out: dict[str, list[str]] = {}
    for col, values in filters.items():
        if col not in SLICE_COLUMNS:
            raise ExpkitError(
                f"parameter filters: unknown column {col!r}; filter on one of {list(SLICE_COLUMNS)}"
            )
        vals = values if isinstance(values, list | tuple) else [values]
        if not vals:
            raise ExpkitError(f"parameter filters: {col!r} has an empty list of values")
        out[col] = [str(v) for v in vals]
    return out


def check_filter_characters(filters: dict[str, list[str]]) -> None:
    """Refuse filter values that cannot be slice values (quotes, semicolons, bidi controls ...).

    Values are bound parameters either way; this turns a mistyped or injected value into a
    clear error instead of an empty tile. The same rule (:func:`expkit.schema.is_slice_value`)
    checks experiment ids and bucket names in the parameters file.

    >>> check_filter_characters({"region": ["eu", "na"]})
    >>> check_filter_characters({"region": ["eu' OR 1=1 --"]})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    expkit.errors.ExpkitError: parameter filters: value "eu' OR 1=1 --" of 'region' is not a slice value ...
    """
    for col, values in filters.items():
        for v in values:
            if not is_slice_value(str(v)):
                raise ExpkitError(
                    f"parameter filters: value {v!r} of {col!r} is not a slice value (only {SLICE_VALUE_CHARS} "
                    "occur); use a value as shown in the tile's table"
                )


def resolve_params(
    tile: str,
    supported_slices: tuple[str, ...],
    event_date: str | dt.date | None = None,
    window: str = "24h",
    slice: str = "bucket",  # noqa: A002 - the spec's parameter name
    filters: Any = None,
    buckets: list[str] | str | None = None,
    params_file: str | Path | None = None,
    warehouse: str | Path | None = None,
) -> TileParams:
    """Check and normalize a tile's raw parameters; every error names the parameter and the fix."""
    config_path = Path(params_file) if params_file else default_params_file()
    config = load_experiment(config_path)
    if window not in WINDOWS:
        raise ExpkitError(f"parameter window={window!r} is not a window; choose one of {list(WINDOWS)}")
    if slice not in SLICE_COLUMNS:
        raise ExpkitError(f"parameter slice={slice!r} is not a slice column; choose one of {list(SLICE_COLUMNS)}")
    if slice not in supported_slices:
        raise ExpkitError(
            f"tile {tile} does not support slice={slice!r}; it supports {list(supported_slices)}"
        )
    flt = _parse_filters(filters)
    if isinstance(buckets, str):
        buckets = [b.strip() for b in buckets.split(",") if b.strip()]
    arms = list(config.buckets) if not buckets else list(buckets)
    unknown = [b for b in arms if b not in config.buckets]
    if unknown:
        raise ExpkitError(f"parameter buckets: unknown bucket(s) {unknown}; the experiment has {list(config.buckets)}")
    wh = Warehouse.open(warehouse, fix=WAREHOUSE_FIX)
    if event_date in (None, ""):
        days = wh.rollup_dates("health_bins") or wh.event_dates()
        if not days:
            raise ExpkitError(f"no data in warehouse {wh.root}; pass event_date or run 'expkit rollup'")
        day = days[-1]
    else:
        day = parse_date(event_date, "parameter event_date")
    return TileParams(event_date=day, window=window, slice=slice, filters=flt, buckets=arms, config=config,
                      warehouse=wh, tile=tile, params_file=config_path.resolve())


@dataclass
class TileResult:
    """The outcome of one tile run.

    Attributes:
        tile, section, title: which tile.
        status: ``ok`` | ``warn`` | ``breach`` | ``no_data``.
        headline: the headline numbers (JSON-friendly; per arm for outcome tiles).
        summary: one line for the index card.
        table: the numbers shown in the tile's table.
        charts: Altair charts.
        params: the parameters used (:meth:`TileParams.describe`).
        as_of: ISO time of the newest data used, or None.
        experiment_id: the experiment.
        notes: caveats shown under the headline (e.g. "untrustworthy: SRM").
        result: the typed result of the tile's compute step (a dataclass of its kind, e.g.
            :class:`expkit.tiles.allocation.Allocation`), whose :func:`headline_of` is
            ``headline``; ``None`` for a no-data result.
    """

    tile: str
    section: str
    title: str
    status: Status
    headline: dict[str, Any]
    summary: str
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    charts: list[Any] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    as_of: str | None = None
    experiment_id: str = ""
    notes: list[str] = field(default_factory=list)
    result: Any = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} not in {STATUSES}")

    def sidecar(self) -> dict[str, Any]:
        """The machine-readable headline document (docs/reports.md, "The tile side of the contract")."""
        return {
            "tile": self.tile,
            "section": self.section,
            "title": self.title,
            "status": self.status,
            "headline": _json_safe(self.headline),
            "summary": self.summary,
            "params": _json_safe(self.params),
            "as_of": self.as_of,
            "experiment_id": self.experiment_id,
            "notes": self.notes,
        }

    def save_sidecar(self, path: str | Path | None) -> None:
        """Write the sidecar JSON atomically (nothing when ``path`` is None)."""
        if path:
            atomic_write_json(path, self.sidecar())

    def outputs(self, svg: bool = True) -> list[dict[str, Any]]:
        """What the notebook shows, as MIME bundles: headline, charts, table.

        Each chart carries its Vega-Lite spec, plus a static SVG when ``svg`` (see
        :func:`expkit.charts.chart_bundle`).
        """
        from expkit.tiles.display import result_outputs

        return result_outputs(self, svg=svg)

    def rendered(self, parameters: dict[str, Any] | None = None, svg: bool = True) -> RenderedTile:
        """This result rendered for display (see :mod:`expkit.tiles.rendered`).

        ``parameters``: the :data:`~expkit.names.TILE_ARGUMENTS` it was computed
        with (recorded so a notebook can check it is showing what it asked for). ``svg``:
        charts also as static SVG (the daily report's pages draw the specs themselves).
        """
        return RenderedTile(self.tile, self.sidecar(), tuple(self.outputs(svg=svg)), dict(parameters or {}))

    def show(self) -> None:
        """Display headline, charts and table (in a notebook)."""
        self.rendered().show()


SHOWN_ONLY = {"headline": False}
"""``field(metadata=SHOWN_ONLY)``: a field of a typed tile result that the render step draws
(frames for charts and tables) but that is not part of the headline."""
OMIT_NONE = {"omit_none": True}
"""``field(metadata=OMIT_NONE)``: a headline key present only when the field is not ``None`` (e.g.
a metric's ``cap``, only for a capped metric)."""
INLINE = {"inline": True}
"""``field(metadata=INLINE)``: a mapping (or dataclass) field whose entries stand in the headline
in its place: keys named by the data (a ratio metric's ``clicks`` and ``impressions``), or a
health tile's own values among the fields every health tile has."""


def headline_of(result: Any) -> dict[str, Any]:
    """The JSON headline of a typed tile result: its fields in order, nested dataclasses as
    mappings, without the fields marked :data:`SHOWN_ONLY` (nor those marked :data:`OMIT_NONE`
    that are ``None``), the entries of a field marked :data:`INLINE` in its place.

    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Arm:
    ...     estimate: float
    ...     sums: dict[str, int] = field(default_factory=dict, metadata=INLINE)
    ...     cap: float | None = field(default=None, metadata=OMIT_NONE)
    >>> @dataclass
    ... class Example:
    ...     arms: dict[str, Arm]
    ...     frame: object = field(default=None, metadata=SHOWN_ONLY)
    >>> headline_of(Example({"control": Arm(0.5, {"clicks": 3})}))
    {'arms': {'control': {'estimate': 0.5, 'clicks': 3}}}
    >>> headline_of(Arm(0.5, cap=41.0))
    {'estimate': 0.5, 'cap': 41.0}
    """
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return headline_of(value)
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    out: dict[str, Any] = {}
    for f in dataclasses.fields(result):
        value = getattr(result, f.name)
        if not f.metadata.get("headline", True) or (f.metadata.get("omit_none") and value is None):
            continue
        if f.metadata.get("inline"):
            out.update(plain(value))
        else:
            out[f.name] = plain(value)
    return out


def _json_safe(obj: Any) -> Any:
    """Convert numpy scalars and NaN to JSON values (NaN → null)."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj


def status_vs_floor(value: float, floor: float, low: float | None = None) -> Status:
    """Status of a higher-is-better value against its target ``floor``.

    ``breach`` when the estimate is below the floor, ``warn`` when only the interval's low end
    is, ``ok`` otherwise; ``no_data`` for NaN.

    >>> status_vs_floor(0.03, 0.01), status_vs_floor(0.012, 0.01, low=0.008), status_vs_floor(0.004, 0.01)
    ('ok', 'warn', 'breach')
    """
    if value is None or not math.isfinite(value):
        return "no_data"
    if value < floor:
        return "breach"
    if low is not None and math.isfinite(low) and low < floor:
        return "warn"
    return "ok"


def worst(statuses: Sequence[str]) -> Status:
    """The most severe status of a list (``no_data`` only when all are ``no_data``).

    >>> worst(["ok", "warn", "no_data"]), worst(["no_data"]), worst([])
    ('warn', 'no_data', 'no_data')
    """
    real = [s for s in statuses if s != "no_data"]
    if not real:
        return "no_data"
    order: dict[str, Status] = {"ok": "ok", "warn": "warn", "breach": "breach", "failed": "failed"}
    return order[max(real, key=list(order).index)]


def fmt_json(obj: Any) -> str:
    return json.dumps(_json_safe(obj), indent=2)


def status_vs_target(value: float, target: Target | None, low: float, high: float) -> Status:
    """Status of an estimate against a ``{min: x}`` or ``{max: x}`` target (``ok`` without one).

    >>> cap = Target(max=0.001)
    >>> cases = [(5e-4, 3e-4, 8e-4), (8e-4, 5e-4, 1.2e-3), (2e-3, 1e-3, 3e-3)]  # estimate, low, high
    >>> [status_vs_target(v, cap, lo, hi) for v, lo, hi in cases]
    ['ok', 'warn', 'breach']
    >>> status_vs_target(0.03, Target(min=0.01), 0.02, 0.04), status_vs_target(0.03, None, 0.02, 0.04)
    ('ok', 'ok')
    """
    if target is None:
        return "ok" if np.isfinite(value) else "no_data"
    if target.min is not None:
        return status_vs_floor(value, target.min, low)
    return status_vs_floor(-value, -target.value, -high)
