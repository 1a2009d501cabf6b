"""The readers' and series' templates: filters and slices are bound values or allow-listed names.

Real DuckDB over the rollup Parquet of the small warehouse; a hostile value must come back as
data (it matches nothing), a hostile column name must be refused before any SQL runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from expkit import readers, series
from expkit.errors import ExpkitError
from expkit.templates import TEMPLATES
from expkit.tiles.base import resolve_params
from expkit.warehouse import Warehouse, day_bounds_ms

END = dt.date(2026, 11, 14)  # the last day of the session warehouse (conftest)

HOSTILE = "eu' OR '1'='1"
DROP = "eu'); DROP TABLE health_bins; --"


@pytest.fixture(scope="module")
def wh(small_wh: Path) -> Warehouse:
    return Warehouse.open(small_wh)


@pytest.fixture(scope="module")
def day_ms() -> tuple[int, int]:
    return day_bounds_ms(END)


def test_render_puts_each_filter_in_its_slot_as_a_bound_parameter() -> None:
    sql, binding = TEMPLATES["ratio_stats"].render({"cohort": ["new"], "metric": "ctr", "experiment_id": HOSTILE},
                                                   window_start_ms=0)
    assert "AND list_contains($filter_cohort, a.cohort)" in sql
    assert "AND s.experiment_id = $filter_experiment_id AND m.metric = $filter_metric" in sql
    assert binding == {"window_start_ms": 0, "filter_cohort": ["new"], "filter_metric": "ctr",
                       "filter_experiment_id": HOSTILE}
    assert HOSTILE not in sql
    plain, none = TEMPLATES["ratio_stats"].render(window_start_ms=0)
    assert "$filter" not in plain and "/*attr_filter*/" not in plain and none == {"window_start_ms": 0}


@pytest.mark.parametrize("column", ["region) OR (1=1", "user_id", "a.cohort", "genre"])
def test_render_refuses_a_column_the_template_does_not_allow(column: str) -> None:
    with pytest.raises(ExpkitError, match="cannot filter on"):
        TEMPLATES["health_series"].render({column: ["x"]}, start_ms=0, end_ms=1, slice="all", per_bin=True)


@pytest.mark.parametrize("value", [1, [1, 2], None, {"eu": 1}])
def test_render_refuses_a_filter_value_that_is_not_text(value: object) -> None:
    with pytest.raises(ExpkitError, match="filter region must be a string or a list of strings"):
        TEMPLATES["health_series"].render({"region": value}, start_ms=0, end_ms=1, slice="all", per_bin=True)


def test_render_checks_the_parameters_as_bind_does() -> None:
    with pytest.raises(ExpkitError, match="parameter per_bin must be bool"):
        TEMPLATES["health_series"].render(start_ms=0, end_ms=1, slice="all", per_bin=1)


def test_a_hostile_filter_value_is_data(wh: Warehouse, day_ms: tuple[int, int]) -> None:
    lo, hi = day_ms
    eu = series.health_counts(wh, lo, hi, filters={"region": ["eu"]}, per_bin=False)
    assert eu["requests"].sum() > 0
    for value in (HOSTILE, DROP):
        assert series.health_counts(wh, lo, hi, filters={"region": [value]}, per_bin=False).empty
        assert series.error_counts(wh, lo, hi, "region", {"region": [value]}).empty
        assert series.latency_quantiles(wh, lo, hi, "region", {"region": [value]}, per_bin=False).empty
        assert series.engagement_counts(wh, lo, hi, [value]).empty
        assert series.items_shown(wh, lo, hi, [value], by_bucket=True).empty
        both = series.health_counts(wh, lo, hi, filters={"region": ["eu", value]}, per_bin=False)
        assert both["requests"].tolist() == eu["requests"].tolist()
    # and the table it named is still there
    assert series.health_counts(wh, lo, hi, per_bin=False)["requests"].sum() > eu["requests"].sum()


def test_a_hostile_slice_cannot_name_a_column(wh: Warehouse, day_ms: tuple[int, int]) -> None:
    lo, hi = day_ms
    with pytest.raises(ExpkitError, match="not available here"):
        series.health_counts(wh, lo, hi, "region, user_id")
    # below the allow-list of expkit.series, the template's CASE is one: an unknown name is a value
    con = readers.connect()
    try:
        con.register("health_bins", con.read_parquet([str(f) for f in wh.rollup_files("health_bins", [END])]))
        hostile = readers.run_template(con, "health_series", start_ms=lo, end_ms=hi, slice="region) OR (1=1",
                                       per_bin=False).df()
        by_region = readers.run_template(con, "health_series", start_ms=lo, end_ms=hi, slice="region",
                                         per_bin=False).df()
    finally:
        con.close()
    assert hostile["slice_value"].tolist() == ["all"]
    assert sorted(by_region["slice_value"]) == ["apac", "eu", "latam", "na"]
    assert hostile["requests"].sum() == by_region["requests"].sum()


def test_hostile_values_reach_the_outcome_readers_as_data(small_wh: Path) -> None:
    p = resolve_params("ctr", ("bucket", "cohort", "region"), warehouse=str(small_wh), event_date=END.isoformat())
    assert not readers.ratio_stats(p, "ctr").empty
    by_attribute = dataclasses.replace(p, filters={"cohort": [HOSTILE]})  # re-aggregates user facts
    assert readers.ratio_stats(by_attribute, "ctr").empty
    assert readers.ratio_stats_table(by_attribute, ["ctr"], ["24h"]).empty
    other_experiment = dataclasses.replace(p, config=p.config.model_copy(update={"experiment_id": HOSTILE}))
    assert readers.ratio_stats(other_experiment, "ctr").empty
    assert readers.slice_values(other_experiment, "region") == []
    with pytest.raises(ExpkitError, match="unknown slice column"):
        readers.slice_values(p, "region) OR (1=1")


def test_ingest_watermark_is_the_newest_ingest_of_the_day(wh: Warehouse) -> None:
    files = wh.rollup_files("ingest_bins", [END])
    newest = max(pc.max(pq.read_table(f, columns=["max_ingest_ms"])["max_ingest_ms"]).as_py() for f in files)
    assert readers.ingest_watermark(wh, END) == newest
    assert readers.ingest_watermark(wh, END + dt.timedelta(days=1)) is None
