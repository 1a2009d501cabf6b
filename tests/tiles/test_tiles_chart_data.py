"""Chart data: the fast records transformer gives Altair's own values (rounded), and the
vectorized rounding agrees with Python's ``format(v, ".6g")``."""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd
from altair.vegalite.data import default_data_transformer
from hypothesis import given
from hypothesis import strategies as st

from expkit.charts import CHART_DIGITS, VEGALITE_MIME, chart_bundle, chart_records, round_significant


def _reference(df: pd.DataFrame) -> list[dict]:
    """Altair's default transformer, then each float rounded by string formatting."""
    rows = default_data_transformer(df, max_rows=None)["values"]
    return [{k: float(format(v, f".{CHART_DIGITS}g")) if type(v) is float else v for k, v in r.items()} for r in rows]


def test_records_equal_altairs_values_for_every_column_kind() -> None:
    df = pd.DataFrame({
        "f": [0.1234567891, np.nan, np.inf, -2.5e-9],
        "i": np.array([1, 2, 3, 4], dtype=np.int32),
        "b": [True, False, True, False],
        "s": pd.array(["a", None, "c", "d"], dtype="string"),
        "o": ["x", None, np.nan, "y"],
        "c": pd.Categorical(["u", "v", None, "u"]),
        "n": pd.array([1, None, 3, 4], dtype="Int64"),
        "t": pd.to_datetime(["2026-11-14 00:05", "2026-11-14 00:10", None, "2026-11-14 00:20"]),
        "mixed": [True, None, False, True],
    })
    got = chart_records(df)["values"]
    # times differ on purpose: Altair writes naive ISO strings, which a browser reads as its
    # own local time; ours say UTC (test_times_are_utc_with_a_z below)
    assert [{k: v for k, v in r.items() if k != "t"} for r in got] == [
        {k: v for k, v in r.items() if k != "t"} for r in _reference(df)]
    assert [r["t"] for r in got] == [v + "Z" if v else None for v in (r["t"] for r in _reference(df))]
    assert chart_records(df.iloc[:0])["values"] == []


def test_times_are_utc_with_a_z_and_time_axes_and_tooltips_say_utc() -> None:
    """Naive times are UTC; aware ones are converted; the spec's time scale and tooltip are UTC."""
    from expkit.charts import UTC_TOOLTIP_UNIT, series_chart

    df = pd.DataFrame({"t": pd.to_datetime(["2026-11-14 14:00"]).tz_localize("America/New_York"), "v": [1.0]})
    assert chart_records(df)["values"] == [{"t": "2026-11-14T19:00:00Z", "v": 1.0}]
    spec = chart_bundle(series_chart(df, "t", "v"), svg=False)[VEGALITE_MIME]
    assert spec["encoding"]["x"]["scale"] == {"type": "utc"}
    (tip,) = [t for t in spec["encoding"]["tooltip"] if t["field"] == "t"]
    assert tip["timeUnit"] == UTC_TOOLTIP_UNIT


def test_a_chart_spec_carries_the_rounded_records() -> None:
    df = pd.DataFrame({"x": [1, 2, 3], "y": [1 / 3, 2 / 3, math.pi]})
    chart = alt.Chart(df).mark_line().encode(x="x:Q", y="y:Q")
    spec = chart_bundle(chart + chart.mark_point(), svg=False)[VEGALITE_MIME]
    (rows,) = spec["datasets"].values()  # layers share one dataset
    assert rows == [{"x": 1, "y": 0.333333}, {"x": 2, "y": 0.666667}, {"x": 3, "y": 3.14159}]
    assert alt.data_transformers.active != "expkit"  # the transformer is only used for the bundle


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300), max_size=50))
def test_round_significant_matches_string_formatting(values: list[float]) -> None:
    got = round_significant(values)
    for v, g in zip(values, got.tolist(), strict=True):
        want = float(format(v, f".{CHART_DIGITS}g"))
        # the same decimal, or at an exact tie of the binary value the neighbouring one
        assert g == want or math.isclose(g, want, rel_tol=1.01 * 10 ** (1 - CHART_DIGITS))
        assert len(repr(abs(g)).split("e")[0].replace(".", "").strip("0")) <= CHART_DIGITS


def test_the_fast_view_hash_leaves_every_builders_spec_unchanged() -> None:
    """``_Chart`` names layers by hashing their values, not Altair's printed frame: each chart
    builder's spec (layered, faceted, with thresholds and flags) is exactly the one Altair's own
    naming gives, and two frames that differ in one value still get different names."""
    from expkit import charts

    n = 100
    t = pd.date_range("2026-11-14", periods=n, freq="5min", tz="UTC")
    df = pd.DataFrame({"t": t, "v": np.linspace(0, 1, n), "s": ["a", "b"] * (n // 2), "flag": [False, True] * (n // 2),
                       "lo": 0.1, "hi": 0.9, "lo2": 0.05, "hi2": 0.95, "ref": 0.5, "facet": ["x"] * n})
    arms = pd.DataFrame({"arm": ["control", "treatment"], "est": [0.01, 0.02], "lo": [0.0, 0.01], "hi": [0.02, 0.03],
                         "olo": [-0.01, 0.0], "ohi": [0.03, 0.04], "flag": [False, True]})
    built = [
        lambda: charts.series_chart(df, "t", "v", color="s", low="lo", high="hi", flag="flag",
                                    thresholds=[("slo", 0.8)], title="series"),
        lambda: charts.series_chart(df.iloc[:10], "t", "v", dash="s", title="short"),
        lambda: charts.bands_chart(df, "t", "v", bands=[("lo2", "hi2"), ("lo", "hi")], color="s", flag="flag",
                                   thresholds=[("target", 0.5)], reference="ref", facet="facet", title="bands"),
        lambda: charts.interval_chart(arms, "arm", "est", "lo", "hi", color="arm", thresholds=[("mde", 0.015)]),
        lambda: charts.forest_chart(arms, "arm", "est", "lo", "hi", outer_low="olo", outer_high="ohi", flag="flag"),
        lambda: charts.stacked_area_chart(df, "t", "v", "s", title="stack"),
        lambda: charts.bar_chart(arms, "arm", "est", color="arm", title="bars"),
    ]
    fast = [chart_bundle(b(), svg=False)[VEGALITE_MIME] for b in built]
    ours = charts._Chart._compute_hash
    try:
        del charts._Chart._compute_hash  # Altair's own naming
        stock = [chart_bundle(b(), svg=False)[VEGALITE_MIME] for b in built]
    finally:
        charts._Chart._compute_hash = ours
    assert fast == stock
    other = df.assign(v=df["v"].where(df.index != 7, 2.0))
    assert charts._Chart(df).mark_line()._compute_hash() != charts._Chart(other).mark_line()._compute_hash()
