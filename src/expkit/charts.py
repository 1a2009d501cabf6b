"""Altair chart builders shared by the tiles: interval bars, series with bands and threshold lines.

Charts render offline as static SVG (vl-convert) in notebooks and reports: call
:func:`enable_offline` once per kernel.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

STATUS_COLORS = {"ok": "#2e7d32", "warn": "#f9a825", "breach": "#c62828", "no_data": "#757575", "failed": "#6a1b9a"}


def enable_offline() -> None:
    """Render Altair charts as inline SVG (no JavaScript, no CDN)."""
    alt.data_transformers.disable_max_rows()
    alt.renderers.enable("svg")


def _threshold_layer(thresholds: Sequence[tuple[str, float]], axis: str = "y") -> alt.Chart:
    df = pd.DataFrame({"label": [t[0] for t in thresholds], "value": [t[1] for t in thresholds]})
    base = alt.Chart(df)
    enc = {axis: alt.Y("value:Q") if axis == "y" else alt.X("value:Q")}
    rule = base.mark_rule(strokeDash=[6, 4], color="#c62828").encode(**enc, tooltip=["label", "value"])
    text = base.mark_text(align="left", dx=4, dy=-6, color="#c62828", fontSize=10).encode(
        **enc, text="label:N"
    )
    return rule + text


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
    base = alt.Chart(df)
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
) -> alt.Chart:
    """A line per series over time, an optional interval band, threshold lines.

    ``flag`` names a boolean column: those points are marked in red (e.g. bins that breach or
    anomalies). ``dash`` names a column whose values get different dash patterns (e.g. a
    baseline drawn dashed beside the observed series).
    """
    base = alt.Chart(df)
    enc_color = {"color": alt.Color(f"{color}:N")} if color else {}
    enc_dash = {"strokeDash": alt.StrokeDash(f"{dash}:N", title=None)} if dash else {}
    line = base.mark_line(point=len(df) <= 60).encode(
        x=alt.X(f"{x}:{x_type}", title=None),
        y=alt.Y(f"{y}:Q", title=title or y, axis=alt.Axis(format=value_format)),
        tooltip=[c for c in (x, y, color, dash) if c],
        **enc_color,
        **enc_dash,
    )
    chart = line
    if low and high:
        band = base.mark_area(opacity=0.2).encode(x=f"{x}:{x_type}", y=f"{low}:Q", y2=f"{high}:Q", **enc_color)
        chart = band + line
    if flag:
        marks = base.transform_filter(f"datum['{flag}']").mark_point(
            color=STATUS_COLORS["breach"], filled=True, size=40
        ).encode(x=f"{x}:{x_type}", y=f"{y}:Q", tooltip=[c for c in (x, y, color) if c])
        chart = chart + marks
    if thresholds:
        chart = chart + _threshold_layer(thresholds, axis="y")
    return chart.properties(width=620, height=220, title=title)


def stacked_area_chart(
    df: pd.DataFrame,
    x: str,
    y: str,
    color: str,
    title: str = "",
    value_format: str = ".1%",
    x_type: str = "T",
) -> alt.Chart:
    """Shares (or counts) per category stacked over time, e.g. fallback levels or error components."""
    chart = alt.Chart(df).mark_area(opacity=0.85).encode(
        x=alt.X(f"{x}:{x_type}", title=None),
        y=alt.Y(f"sum({y}):Q", stack="zero", title=title or y, axis=alt.Axis(format=value_format)),
        color=alt.Color(f"{color}:N"),
        tooltip=[x, color, alt.Tooltip(f"sum({y}):Q", format=value_format, title=y)],
    )
    return chart.properties(width=620, height=220, title=title)


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
    chart = alt.Chart(df).mark_bar().encode(
        y=alt.Y(f"{category}:N", title=None),
        x=alt.X(f"{value}:Q", title=title or value, axis=alt.Axis(format=value_format)),
        tooltip=[c for c in (category, color) if c] + [alt.Tooltip(f"{value}:Q", format=value_format)],
        **enc_color,
        **y_off,
    )
    return chart.properties(width=520, height=alt.Step(18), title=title)
