"""Altair chart builders shared by the tiles: interval bars, series with bands and threshold lines.

A chart is shown as a MIME bundle (:func:`chart_bundle`): its Vega-Lite spec, which report
pages draw in the browser from one inline copy of the chart library
(:mod:`expkit.report.vega`) and JupyterLab draws natively, plus, for notebooks run by hand,
a static SVG (vl-convert) for front ends without a Vega-Lite renderer. Nothing is loaded
from a CDN.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, TypeVar

import altair as alt
import numpy as np
import pandas as pd
from altair.utils.core import sanitize_pandas_dataframe
from altair.vegalite.data import default_data_transformer

# Altair validates every channel object as it is built ("debug mode"), which costs more than
# building the tiles' charts; their specs are checked by the tests (to_dict(validate=True))
# and by rendering them instead.
alt.utils.schemapi.disable_debug_mode()

_CHANNELS = {
    "x": alt.X, "y": alt.Y, "x2": alt.X2, "y2": alt.Y2, "color": alt.Color, "tooltip": alt.Tooltip,
    "text": alt.Text, "yOffset": alt.YOffset, "strokeDash": alt.StrokeDash,
}


def _channel(name: str, value: Any) -> Any:
    if isinstance(value, str) and name in _CHANNELS:
        return _CHANNELS[name](value)
    if isinstance(value, list):
        return [_channel(name, v) for v in value]
    return value


class _Chart(alt.Chart):
    """``alt.Chart`` whose ``encode`` takes shorthand strings the fast way.

    Altair turns a plain string such as ``"value:Q"`` into its channel object by matching
    it against its whole schema, hashing every class each time (about 5 ms a string, most
    of the time spent building a tile's charts); constructing the channel class directly
    gives the same object.
    """

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        return super().encode(*args, **{k: _channel(k, v) for k, v in kwargs.items()})

    def _compute_hash(self) -> str:
        """The view name Altair gives a layer whose data it lifts to the layered chart.

        Altair hashes the JSON of the layer's mark, encoding, transforms and data, where a
        DataFrame turns into its printed text: formatting a frame costs more than the rest of
        building the chart. The name is only written for selection parameters, which these
        charts do not use; hashing the frame's values instead gives as distinct a name, fast.
        """
        data = self._kwds.get("data")
        if self._kwds.get("_cached_hash") is not None or not isinstance(data, pd.DataFrame):
            return str(super()._compute_hash())
        spec = {k: self._kwds.get(k) for k in ("mark", "encoding", "transform")}
        values = pd.util.hash_pandas_object(data, index=False).to_numpy()
        text = json.dumps({"class": type(self).__name__, "spec": spec, "columns": [str(c) for c in data.columns]},
                          sort_keys=True, default=str)
        return "view_" + hashlib.sha256(text.encode() + values.tobytes()).hexdigest()[:16]


_DEFER: contextvars.ContextVar[bool] = contextvars.ContextVar("expkit_defer_charts", default=False)
_F = TypeVar("_F", bound=Callable[..., Any])


class DeferredChart:
    """A chart not built yet: built (once) when drawn by :func:`chart_bundle` or first used.

    The live page shows one chart of each tile and the tiles build several; building an
    Altair chart costs more than the numbers it shows, so inside :func:`deferred` the chart
    builders return this instead. Any attribute (``to_dict``, ``properties``…) builds it.
    """

    def __init__(self, build: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._build, self._args, self._kwargs = build, args, kwargs
        self._chart: Any = None

    def build(self) -> Any:
        """The chart (built on the first call)."""
        if self._chart is None:
            with no_deferral():
                self._chart = self._build(*self._args, **self._kwargs)
            self._args, self._kwargs = (), {}
        return self._chart

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.build(), name)

    def __add__(self, other: Any) -> Any:
        return self.build() + other

    def __or__(self, other: Any) -> Any:
        return self.build() | other

    def __and__(self, other: Any) -> Any:
        return self.build() & other


def deferrable(fn: _F) -> _F:
    """Make chart builder ``fn`` return a :class:`DeferredChart` inside :func:`deferred`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _DEFER.get():
            return DeferredChart(fn, args, kwargs)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within the block, chart builders return :class:`DeferredChart` (built when drawn)."""
    token = _DEFER.set(True)
    try:
        yield
    finally:
        _DEFER.reset(token)


@contextlib.contextmanager
def no_deferral() -> Iterator[None]:
    """Within the block, chart builders build at once (a deferred builder calling others)."""
    token = _DEFER.set(False)
    try:
        yield
    finally:
        _DEFER.reset(token)


def built(chart: Any) -> Any:
    """``chart`` itself, or the chart a :class:`DeferredChart` stands for."""
    return chart.build() if isinstance(chart, DeferredChart) else chart


STATUS_COLORS = {"ok": "#2e7d32", "warn": "#f9a825", "breach": "#c62828", "no_data": "#757575", "failed": "#6a1b9a"}


VEGALITE_MIME = f"application/vnd.vegalite.{alt.SCHEMA_VERSION.split('.')[0]}+json"
"""The MIME type of a chart's Vega-Lite spec (the major version Altair writes, e.g. v6)."""


def enable_offline() -> None:
    """Let Altair inline any number of rows and render charts as static SVG (no JavaScript, no CDN)."""
    alt.data_transformers.disable_max_rows()
    alt.renderers.enable("svg")


def chart_bundle(chart: alt.TopLevelMixin, svg: bool = True) -> dict[str, Any]:
    """``chart`` as the MIME bundle a notebook shows.

    Always the Vega-Lite spec (:data:`VEGALITE_MIME`) and a ``text/plain`` line; with ``svg``
    also a static SVG drawn by vl-convert (20–90 ms a chart), for front ends that cannot draw
    Vega-Lite. The daily report leaves the SVG out: its pages draw the spec in the browser.
    The spec is not validated against the Vega-Lite schema again (the builders here are
    tested; validation costs about a fifth of an SVG conversion).

    >>> import pandas as pd
    >>> b = chart_bundle(alt.Chart(pd.DataFrame({"x": [1, 2]})).mark_point().encode(x="x:Q"), svg=False)
    >>> sorted(b) == sorted([VEGALITE_MIME, "text/plain"]), b[VEGALITE_MIME]["mark"]["type"]
    (True, 'point')
    """
    enable_offline()
    chart = built(chart)
    with alt.data_transformers.enable(CHART_DATA):
        spec = chart.to_dict(validate=False)
    title = spec.get("title")
    title = title.get("text") if isinstance(title, dict) else title
    bundle: dict[str, Any] = {VEGALITE_MIME: spec, "text/plain": f"<chart: {title or 'untitled'}>"}
    if svg:
        render = alt.renderers.get()
        assert render is not None, "enable_offline() enables the svg renderer"
        drawn = render(spec)
        assert isinstance(drawn, dict), "the svg renderer returns a plain MIME bundle"
        bundle.update({k: v for k, v in drawn.items() if k == "image/svg+xml"})
    return bundle


CHART_DIGITS = 6
"""Significant digits of the numbers a chart's data carries (far below a pixel; tables show more)."""


def round_significant(values: Any, digits: int = CHART_DIGITS) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (NaN and ±inf unchanged), vectorized.

    Each value becomes the double nearest to its rounded decimal, so it prints with at most
    ``digits`` digits (ties may round either way).

    >>> round_significant([0.9830676757131829, 123456789.0, -0.000123456789, 0.0, np.nan]).tolist()
    [0.983068, 123457000.0, -0.000123457, 0.0, nan]
    """
    x = np.asarray(values, dtype=float)
    out = x.copy()
    ok = np.isfinite(x) & (x != 0)
    with np.errstate(divide="ignore"):
        decimals = digits - 1 - np.floor(np.log10(np.abs(np.where(ok, x, 1.0)))).astype(int)
    for d in np.unique(decimals[ok]):
        sel = ok & (decimals == d)
        if abs(d) > 22:  # 10**d is no longer exact: format one by one (rare magnitudes)
            out[sel] = [float(f"{v:.{digits}g}") for v in x[sel]]
        elif d >= 0:  # 10**d is exact, so k / 10**d is the double nearest k·10⁻ᵈ
            out[sel] = np.rint(x[sel] * 10.0**d) / 10.0**d
        else:
            out[sel] = np.rint(x[sel] / 10.0**-d) * 10.0**-d
    return out


def utc_iso(col: pd.Series) -> list[str | None]:
    """Times as ISO-8601 strings in UTC with a ``Z`` (naive times are taken as UTC).

    A browser parses an ISO date-time without an offset as *its own* local time, so every
    time a chart carries says UTC explicitly (docs/reports.md, "Times on charts").

    >>> utc_iso(pd.Series(pd.to_datetime(["2026-11-14 14:00", None])))
    ['2026-11-14T14:00:00Z', None]
    >>> utc_iso(pd.Series(pd.to_datetime(["2026-11-14T09:00:00-05:00"])))
    ['2026-11-14T14:00:00Z']
    """
    t = col.dt.tz_localize("UTC") if col.dt.tz is None else col.dt.tz_convert("UTC")
    text = t.dt.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    return [None if missing else v for v, missing in zip(text.tolist(), t.isna().tolist(), strict=True)]


UTC_SCALE = alt.Scale(type="utc")
"""The scale of every time axis: ticks and labels in UTC whatever the viewer's time zone."""
UTC_TOOLTIP_UNIT: Final = "utcyearmonthdatehoursminutes"
"""A time shown in a tooltip: to the minute, in UTC (a tooltip has no scale to say so)."""


TIME_LABELS: Final = {"minutes": "%H:%M"}
"""Labels of minute ticks on a 24-hour clock (Vega's default, ``%I:%M``, reads 13:40 as "01:40");
the other tick levels keep Vega's defaults ("02 PM", "Sat 14")."""


def _time_x(field: str, x_type: str, **kwargs: Any) -> alt.X:
    """The x channel of ``field``; a time (``x_type`` ``T``) gets the UTC scale and, unless an
    axis is given, :data:`TIME_LABELS`."""
    if x_type == "T":
        scale = kwargs.pop("scale", None)
        domain = scale.to_dict().get("domain") if scale is not None else None
        kwargs["scale"] = alt.Scale(type="utc", domain=domain) if domain else UTC_SCALE
        kwargs.setdefault("axis", alt.Axis(format=TIME_LABELS))
    return alt.X(f"{field}:{x_type}", **kwargs)


def _tooltips(df: pd.DataFrame, fields: Sequence[Any]) -> list[Any]:
    """Tooltip entries: time columns shown in UTC, others unchanged."""
    out = []
    for f in fields:
        if isinstance(f, str) and f in df.columns and pd.api.types.is_datetime64_any_dtype(df[f].dtype):
            out.append(alt.Tooltip(f"{f}:T", timeUnit=UTC_TOOLTIP_UNIT, title=f"{f} (UTC)"))
        else:
            out.append(f)
    return out


def _column_values(col: pd.Series) -> list[Any] | None:
    """One column as JSON-ready values (None for missing), or None for a kind left to Altair."""
    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype) and not col.hasnans:
        return col.to_numpy(dtype=bool).tolist()
    if pd.api.types.is_integer_dtype(dtype) and not col.hasnans:
        return col.to_numpy(dtype=np.int64).tolist()
    if pd.api.types.is_float_dtype(dtype):
        x = round_significant(col.to_numpy(dtype=float, na_value=np.nan))
        values = x.tolist()
        if not np.isfinite(x).all():
            values = [v if f else None for v, f in zip(values, np.isfinite(x).tolist(), strict=True)]
        return values
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return utc_iso(col)
    if pd.api.types.is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        obj = col.astype(object)
        if not all(v is None or isinstance(v, (str, float)) for v in obj.head(1000)):
            return None  # lists, arrays, timestamps… in an object column: Altair's rules
        return obj.where(obj.notna(), None).tolist()
    return None


def chart_records(data: Any) -> Any:
    """Altair data transformer (:data:`CHART_DATA`): a DataFrame as inline records, fast.

    The values are those of Altair's default transformer (missing values as null), except
    that floats are rounded to :data:`CHART_DIGITS` significant digits: specs travel through
    notebooks and pages as JSON, where 17-digit floats double their size. Columns of other
    kinds (dates, mixed objects) go through Altair's own conversion.

    >>> chart_records(pd.DataFrame({"x": [0.9830676757131829, None], "n": [3, 4], "s": ["a", None]}))
    {'values': [{'x': 0.983068, 'n': 3, 's': 'a'}, {'x': None, 'n': 4, 's': None}]}
    """
    if not isinstance(data, pd.DataFrame) or isinstance(data.columns, pd.MultiIndex):
        # max_rows=None (no limit) works at run time; Altair's overloads only admit an int.
        return default_data_transformer(data, max_rows=None)  # type: ignore[call-overload]
    names, columns = [], []
    for name in data.columns:
        values = _column_values(data[name]) if isinstance(name, str) else None
        if values is None:
            values = sanitize_pandas_dataframe(data[[name]])[name].tolist()
        names.append(str(name))
        columns.append(values)
    return {"values": [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]}


CHART_DATA = "expkit"
"""The name of :func:`chart_records` among Altair's data transformers (used by :func:`chart_bundle`)."""
alt.data_transformers.register(CHART_DATA, chart_records)


def _threshold_layer(thresholds: Sequence[tuple[str, float]], axis: str = "y") -> alt.Chart:
    df = pd.DataFrame({"label": [t[0] for t in thresholds], "value": [t[1] for t in thresholds]})
    base = _Chart(df)
    enc = {axis: alt.Y("value:Q") if axis == "y" else alt.X("value:Q")}
    rule = base.mark_rule(strokeDash=[6, 4], color="#c62828").encode(**enc, tooltip=["label", "value"])
    text = base.mark_text(align="left", dx=4, dy=-6, color="#c62828", fontSize=10).encode(
        **enc, text="label:N"
    )
    return rule + text


@deferrable
def interval_chart(
    df: pd.DataFrame,
    category: str,
    estimate: str,
    low: str,
    high: str,
    color: str | None = None,
    thresholds: Sequence[tuple[str, float]] = (),
    title: str = "",
    value_format: str = ".2%",
) -> alt.Chart:
    """Point estimates with interval bars per category (horizontal), threshold lines across."""
    base = _Chart(df)
    y = alt.Y(f"{category}:N", title=None)
    enc_color = {"color": alt.Color(f"{color}:N")} if color else {}
    y_off = {"yOffset": alt.YOffset(f"{color}:N")} if color and color != category else {}
    bars = base.mark_rule(strokeWidth=2).encode(
        y=y, x=alt.X(f"{low}:Q", title=None, axis=alt.Axis(format=value_format)),
        x2=f"{high}:Q", **enc_color, **y_off,
    )
    tooltip = [category, alt.Tooltip(f"{estimate}:Q", format=value_format),
               alt.Tooltip(f"{low}:Q", format=value_format), alt.Tooltip(f"{high}:Q", format=value_format)]
    points = base.mark_point(filled=True, size=60).encode(
        y=y, x=f"{estimate}:Q", tooltip=tooltip, **enc_color, **y_off
    )
    chart = bars + points
    if thresholds:
        chart = chart + _threshold_layer(thresholds, axis="x")
    return chart.properties(width=520, height=alt.Step(22), title=title)


@deferrable
def series_chart(
    df: pd.DataFrame,
    x: str,
    y: str,
    color: str | None = None,
    low: str | None = None,
    high: str | None = None,
    thresholds: Sequence[tuple[str, float]] = (),
    title: str = "",
    value_format: str = ",.3~f",
    x_type: str = "T",
    flag: str | None = None,
    dash: str | None = None,
    y_title: str | None = None,
) -> alt.Chart:
    """A line per series over time, an optional interval band, threshold lines.

    ``flag`` names a boolean column: those points are marked in red (e.g. bins that breach or
    anomalies). ``dash`` names a column whose values get different dash patterns (e.g. a
    baseline drawn dashed beside the observed series). ``y_title`` is the y axis title
    (default: ``title``, or ``y``).
    """
    base = _Chart(df)
    enc_color = {"color": alt.Color(f"{color}:N")} if color else {}
    enc_dash = {"strokeDash": alt.StrokeDash(f"{dash}:N", title=None)} if dash else {}
    xenc = _time_x(x, x_type, title=None)
    line = base.mark_line(point=len(df) <= 60).encode(
        x=xenc,
        y=alt.Y(f"{y}:Q", title=y_title or title or y, axis=alt.Axis(format=value_format)),
        tooltip=_tooltips(df, [c for c in (x, y, color, dash) if c]),
        **enc_color,
        **enc_dash,
    )
    chart = line
    if low and high:
        band = base.mark_area(opacity=0.2).encode(x=xenc, y=f"{low}:Q", y2=f"{high}:Q", **enc_color)
        chart = band + line
    if flag:
        marks = base.transform_filter(f"datum['{flag}']").mark_point(
            color=STATUS_COLORS["breach"], filled=True, size=40
        ).encode(x=xenc, y=f"{y}:Q", tooltip=_tooltips(df, [c for c in (x, y, color) if c]))
        chart = chart + marks
    if thresholds:
        chart = chart + _threshold_layer(thresholds, axis="y")
    return chart.properties(width=620, height=220, title=title)


DAY_AXIS = alt.Axis(format="%b %d", tickCount="day", labelOverlap=True)
"""A time axis labelled by day, never finer (for one point per day)."""


def _flag_layer(base: alt.Chart, flag: str, **encoding: object) -> alt.Chart:
    """Red rings on the rows where ``flag`` is true (e.g. an arm or a day with sample ratio mismatch)."""
    return base.transform_filter(alt.datum[flag]).mark_point(
        shape="circle", size=180, strokeWidth=2, color="#c62828", filled=False
    ).encode(**encoding)


@deferrable
def bands_chart(
    df: pd.DataFrame,
    x: str,
    y: str,
    bands: Sequence[tuple[str, str]] = (),
    color: str | None = None,
    flag: str | None = None,
    thresholds: Sequence[tuple[str, float]] = (),
    title: str = "",
    value_format: str = ",.3~f",
    x_type: str = "T",
    reference: str | None = None,
    facet: str | None = None,
    x_axis: alt.Axis | None = None,
) -> alt.Chart:
    """A line per series over time with nested interval bands (widest drawn lightest).

    ``bands`` lists ``(low, high)`` column pairs from the widest (e.g. always-valid) to the
    narrowest (e.g. fixed-horizon 95%); ``flag`` marks rows with a red ring; ``thresholds`` are
    fixed horizontal lines (targets, planned shares). With ``facet`` the chart has one row per
    value of that column, each with its own y scale; reference lines then come from the
    ``reference`` column (e.g. each metric's target), since facets share one data set.
    ``x_axis`` overrides the x axis (e.g. :data:`DAY_AXIS` for one point per day).
    """
    base = _Chart(df)
    enc_color = {"color": alt.Color(f"{color}:N")} if color else {}
    xenc = _time_x(x, x_type, title=None, **({"axis": x_axis} if x_axis is not None else {}))
    layers = [
        base.mark_area(opacity=0.12 + 0.13 * i).encode(x=xenc, y=f"{lo}:Q", y2=f"{hi}:Q", **enc_color)
        for i, (lo, hi) in enumerate(bands)
    ]
    tooltip = _tooltips(df, [c for c in (x, color) if c]) + [alt.Tooltip(f"{c}:Q", format=value_format)
                                              for pair in ((y,), *bands) for c in pair]
    yenc = alt.Y(f"{y}:Q", title=None, axis=alt.Axis(format=value_format), scale=alt.Scale(zero=False))
    layers.append(base.mark_line(point=len(df) <= 240).encode(x=xenc, y=yenc, tooltip=tooltip, **enc_color))
    if flag:
        layers.append(_flag_layer(base, flag, x=xenc, y=yenc, tooltip=tooltip))
    if reference:
        layers.append(base.mark_rule(strokeDash=[6, 4], color="#c62828").encode(y=f"{reference}:Q"))
    chart = alt.layer(*layers)
    if thresholds:
        chart = chart + _threshold_layer(thresholds, axis="y")
    if facet:
        return chart.properties(width=620, height=160).facet(row=alt.Row(f"{facet}:N", title=None)).resolve_scale(
            y="independent").properties(title=title)
    return chart.properties(width=620, height=220, title=title)


@deferrable
def forest_chart(
    df: pd.DataFrame,
    label: str,
    estimate: str,
    low: str,
    high: str,
    outer_low: str | None = None,
    outer_high: str | None = None,
    color: str | None = None,
    flag: str | None = None,
    reference: float = 0.0,
    title: str = "",
    value_format: str = ".1%",
) -> alt.Chart:
    """A forest plot: one row per ``label`` (offset by ``color``), the estimate with its interval
    (thick) inside an optional wider interval (thin, e.g. always-valid), a line at ``reference``;
    rows where ``flag`` is true get a red ring."""
    base = _Chart(df)
    y = alt.Y(f"{label}:N", title=None, sort=None)
    enc = {"color": alt.Color(f"{color}:N")} if color else {}
    off = {"yOffset": alt.YOffset(f"{color}:N")} if color else {}
    xfmt = alt.Axis(format=value_format)
    tooltip = [label, *([color] if color else [])] + [
        alt.Tooltip(f"{c}:Q", format=value_format) for c in (estimate, low, high, outer_low, outer_high) if c
    ]
    layers = []
    if outer_low and outer_high:
        layers.append(base.mark_rule(strokeWidth=1, opacity=0.6).encode(
            y=y, x=alt.X(f"{outer_low}:Q", title=None, axis=xfmt), x2=f"{outer_high}:Q", **enc, **off))
    layers.append(base.mark_rule(strokeWidth=4).encode(
        y=y, x=alt.X(f"{low}:Q", title=None, axis=xfmt), x2=f"{high}:Q", **enc, **off))
    point_x = alt.X(f"{estimate}:Q", title=None, axis=xfmt)
    layers.append(base.mark_point(filled=True, size=60, shape="diamond").encode(
        y=y, x=point_x, tooltip=tooltip, **enc, **off))
    if flag:
        layers.append(_flag_layer(base, flag, y=y, x=point_x, tooltip=tooltip, **off))
    ref = pd.DataFrame({"value": [reference]})
    layers.append(_Chart(ref).mark_rule(color="#424242", strokeDash=[4, 3]).encode(x="value:Q"))
    return alt.layer(*layers).properties(width=520, height=alt.Step(26), title=title)


@deferrable
def stacked_area_chart(
    df: pd.DataFrame,
    x: str,
    y: str,
    color: str,
    title: str = "",
    value_format: str = ".1%",
    x_type: str = "T",
    bars: bool = False,
    x_domain: tuple[str, str] | None = None,
) -> alt.Chart:
    """Shares (or counts) per category stacked over time, e.g. fallback levels or error components.

    ``bars`` stacks bars instead of areas: right for sparse data (rows only where something
    happened), which an area would interpolate across. ``x_domain`` fixes the time axis (e.g.
    to the whole window when only a few bins have rows).
    """
    base = _Chart(df)
    scale = {"scale": alt.Scale(domain=list(x_domain))} if x_domain else {}
    chart = (base.mark_bar() if bars else base.mark_area(opacity=0.85)).encode(
        x=_time_x(x, x_type, title=None, **scale),
        y=alt.Y(f"sum({y}):Q", stack="zero", title=y, axis=alt.Axis(format=value_format)),
        color=alt.Color(f"{color}:N"),
        tooltip=[*_tooltips(df, [x]), color, alt.Tooltip(f"sum({y}):Q", format=value_format, title=y)],
    )
    return chart.properties(width=620, height=220, title=title)


@deferrable
def bar_chart(
    df: pd.DataFrame,
    category: str,
    value: str,
    color: str | None = None,
    title: str = "",
    value_format: str = ".2%",
) -> alt.Chart:
    """Horizontal bars of one value per category (grouped by ``color`` when given)."""
    enc_color = {"color": alt.Color(f"{color}:N")} if color else {}
    y_off = {"yOffset": alt.YOffset(f"{color}:N")} if color and color != category else {}
    chart = _Chart(df).mark_bar().encode(
        y=alt.Y(f"{category}:N", title=None),
        x=alt.X(f"{value}:Q", title=value, axis=alt.Axis(format=value_format)),
        tooltip=[c for c in (category, color) if c] + [alt.Tooltip(f"{value}:Q", format=value_format)],
        **enc_color,
        **y_off,
    )
    return chart.properties(width=520, height=alt.Step(18), title=title)
