"""Running totals ``user_cum``: each user's facts over the experiment to date, built from the previous
day's totals and the day's ``user_day`` (expkit.rollup.build_user_cum), read by the windows that hold
the whole experiment instead of every ``user_day`` since the start; and the novelty sums per exposure age
``exposure_ages``, built the same way (expkit.rollup.build_exposure).

The reference is an independent reading of their definition (docs/architecture.md, "Experiment-to-date
running totals") with pandas over every ``user_day`` since the start, never the code under test.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from user_facts_support import ATTRIBUTES, KEY, assert_same_rows, facts_over, read

from expkit.catalogue import load_catalogue, parse_catalogue
from expkit.config import ExperimentConfig, load_experiment
from expkit.engines.duckdb_engine import DuckDBEngine
from expkit.metrics_sql import exposure_ages_schema, ratio_stats_query, user_facts_schema
from expkit.rollup import (
    AGES_ROLLUP,
    CUM_ROLLUP,
    FIRST_ROLLUP,
    STATS_ROLLUP,
    build_range,
    build_rollups,
    build_user_cum,
    day_staleness,
    rollup_input,
    stale_dates,
    stats_sources,
    window_files,
    window_start_ms,
)
from expkit.synth import generate
from expkit.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "params" / "experiment.yaml"
FIRST = dt.date(2026, 11, 1)  # the experiment's start_date in params/experiment.yaml
DAYS = [FIRST + dt.timedelta(days=i) for i in range(4)]
END = DAYS[-1]


def catalogue_with_a_double_sum(tmp: Path) -> ExperimentConfig:
    """The test catalogue plus a metric summing a floating-point column (its running totals stay doubles)."""
    import yaml

    spec = yaml.safe_load((REPO / "tests" / "catalogue" / "metrics.yaml").read_text(encoding="utf-8"))
    spec["metrics"]["latency_per_request"] = {
        "title": "Latency per request", "direction": "decrease", "format": "number",
        "numerator": {"table": "requests", "agg": "sum:latency_ms"},
        "denominator": {"table": "requests", "agg": "count"},
    }
    path = tmp / "metrics.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    parse_catalogue(spec, path)  # a typo in the spec fails here, by name
    return load_experiment(PARAMS).with_catalogue(load_catalogue(path))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ExperimentConfig]:
    """4 days from the experiment's start: the events alone, and rolled up in order."""
    tmp = tmp_path_factory.mktemp("cum")
    config = catalogue_with_a_double_sum(tmp)
    events = tmp / "events"
    generate(events, days=len(DAYS), end=END, users=400, seed=21)
    # users move on day 3 (the synthetic users never do): their totals keep the attributes of day 1 or 2
    wh = Warehouse.open(events)
    for f in wh.event_files("requests", DAYS[2]):
        t = pq.read_table(f)
        i = t.schema.get_field_index("region")
        pq.write_table(t.set_column(i, "region", pa.array(["moved"] * t.num_rows, t.schema.field(i).type)), f)
    built = Path(shutil.copytree(events, tmp / "built"))
    build_range(built, FIRST, END, config)
    return events, built, config


def definition(root: Path, day: dt.date) -> pd.DataFrame:
    """Per (experiment, user, slice, value) over every ``user_day`` from the start through ``day``."""
    return facts_over(root, [d for d in DAYS if d <= day])


def assert_same_totals(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert_same_rows(got, want, KEY)


@pytest.mark.parametrize("day", DAYS)
def test_the_running_totals_are_every_day_since_the_start_summed(setup, day: dt.date) -> None:
    _, built, config = setup
    files = Warehouse.open(built).rollup_files(CUM_ROLLUP, [day])
    schema = pq.read_schema(files[0])
    want = user_facts_schema(config.catalogue)
    assert [(f.name, f.type) for f in schema] == [(f.name, f.type) for f in want]  # user_day's, doubles included
    assert want.field("m_latency_per_request_num").type == "double"
    assert_same_totals(read(files), definition(built, day))


def test_the_checks_above_are_not_idle(setup) -> None:
    """The floating-point metric has non-integer totals, and users first seen before day 3 keep their
    region while those first seen on it have moved."""
    _, built, _ = setup
    totals = read(Warehouse.open(built).rollup_files(CUM_ROLLUP, [END]))
    assert (totals["m_latency_per_request_num"] % 1 != 0).any()
    first_day = pd.to_datetime(totals.first_ms, unit="ms").dt.date
    assert (totals.region[first_day < DAYS[2]] != "moved").all()
    assert (totals.region[first_day == DAYS[2]] == "moved").all() and (first_day == DAYS[2]).any()
    days = read(Warehouse.open(built).rollup_files("user_day", DAYS))
    assert days[days.region == "moved"].user_id.isin(totals.user_id[totals.region != "moved"]).any()


def test_without_the_previous_totals_every_day_is_read_and_the_day_goes_stale_when_they_come(
    setup, tmp_path: Path
) -> None:
    events, built, config = setup
    wh = Warehouse.open(Path(shutil.copytree(events, tmp_path / "wh")))
    build_rollups(wh, END, config)  # the last day first: no earlier totals, no earlier user_day
    assert_same_totals(read(wh.rollup_files(CUM_ROLLUP, [END])), definition(wh.root, END))
    for day in DAYS[:-1]:
        build_rollups(wh, day, config)  # one day at a time, no refresh of the later ones
    state = day_staleness(wh, END, catalogue=config.catalogue)
    assert state.stats.stale
    assert any(c.input == rollup_input(CUM_ROLLUP, DAYS[-2]) and c.change == "new" for c in state.stats.changes)
    build_range(wh, FIRST, END, config, backfill=True)
    assert stale_dates(wh, DAYS, config) == []
    assert_same_totals(read(wh.rollup_files(CUM_ROLLUP, [END])), read(Warehouse.open(built).rollup_files(
        CUM_ROLLUP, [END])))


def test_rebuilding_a_day_reaches_every_later_days_totals(setup, tmp_path: Path) -> None:
    _, built, config = setup
    wh = Warehouse.open(Path(shutil.copytree(built, tmp_path / "wh")))
    late = wh.event_files("clicks", DAYS[1])[0]
    table = pq.read_table(late)
    pq.write_table(table.slice(0, table.num_rows // 2), late)  # late correction: half the clicks withdrawn
    assert stale_dates(wh, DAYS, config) == DAYS[1:]
    build_range(wh, FIRST, END, config, backfill=True)
    got = read(wh.rollup_files(CUM_ROLLUP, [END]))
    assert_same_totals(got, definition(wh.root, END))
    before = read(Warehouse.open(built).rollup_files(CUM_ROLLUP, [END]))
    assert got.clicks.sum() < before.clicks.sum()


def test_a_previous_day_built_with_other_metrics_is_not_added_in(setup, tmp_path: Path) -> None:
    """Totals of another catalogue lack this one's columns: the day is summed from every ``user_day`` instead."""
    _, built, config = setup
    wh = Warehouse.open(Path(shutil.copytree(built, tmp_path / "wh")))
    previous = wh.rollup_files(CUM_ROLLUP, [DAYS[-2]])[0]
    table = pq.read_table(previous)
    pq.write_table(table.drop_columns(["m_latency_per_request_num", "m_latency_per_request_den"]), previous)
    engine = DuckDBEngine()
    try:
        build_user_cum(wh, engine, END, config)
    finally:
        engine.close()
    assert_same_totals(read(wh.rollup_files(CUM_ROLLUP, [END])), definition(built, END))


@pytest.mark.parametrize("window", ["7d", "cum"])
def test_the_windows_holding_the_experiment_read_the_totals_with_the_same_statistics(setup, window: str) -> None:
    """On day 4 of an experiment, 7d and cum hold every day: their statistics from the totals equal those
    from the four ``user_day`` partitions (floating-point sums up to rounding)."""
    _, built, config = setup
    wh = Warehouse.open(built)
    sources = stats_sources(wh, END, window, config.start_date, config.catalogue)
    assert sources["user_facts"] == wh.rollup_files(CUM_ROLLUP, [END])
    days = window_files(wh, END, window, ("user_day", "user_last_hour"), config.start_date)
    assert len(days) == len(DAYS)
    q = ratio_stats_query(config.catalogue)
    values = q.bind(window_start_ms=window_start_ms(END, window, config.start_date))
    engine = DuckDBEngine()
    try:
        ours = engine.query(q.template, values, sources).read_pandas()
        reference = engine.query(q.template, values, {**sources, "user_facts": days}).read_pandas()
    finally:
        engine.close()
    key = ["experiment_id", "metric", "bucket", "slice", "slice_value"]
    ours, reference = (df.sort_values(key, na_position="first").reset_index(drop=True) for df in (ours, reference))
    assert ours[key].equals(reference[key]) and len(ours) > 0
    assert set(ours.metric) >= {"ctr", "recall", "latency_per_request"}
    for column in ours.columns.difference(key):
        np.testing.assert_allclose(ours[column].astype(float), reference[column].astype(float), rtol=1e-12,
                                   err_msg=column)
    stored = pq.read_table(wh.rollup_files(STATS_ROLLUP, [END])).to_pandas()
    assert len(stored[stored.window_name == window]) == len(ours)


def ages_definition(root: Path, day: dt.date) -> pd.DataFrame:
    """Per (experiment, user, arm at first exposure, exposure-age bucket) over every ``user_day`` (slice
    'all') from the start through ``day``: the facts summed as doubles, ``users`` the days counted; the age
    is the whole days from the day of her first exposure (``user_first``), 7 and more in one bucket."""
    wh = Warehouse.open(root)
    days = [d for d in DAYS if d <= day]
    facts = read(wh.rollup_files("user_day", days))
    facts = facts[facts.slice == "all"]
    first = read(wh.rollup_files(FIRST_ROLLUP, days))[["experiment_id", "user_id", "bucket", "first_ms"]]
    rows = facts.drop(columns="bucket").merge(first, on=["experiment_id", "user_id"], suffixes=("", "_first"))
    day_ms = 86_400_000
    rows["age"] = ((rows.first_ms // day_ms) - (rows.first_ms_first // day_ms)).clip(upper=7).astype("int64")
    rows["users"] = 1.0
    values = [c for c in rows.columns if c not in KEY + ATTRIBUTES + ["first_ms", "first_ms_first", "age"]]
    rows[values] = rows[values].astype(float)
    return rows.groupby(["experiment_id", "user_id", "bucket", "age"], as_index=False)[values].sum()


@pytest.mark.parametrize("day", DAYS)
def test_the_exposure_ages_are_every_day_since_the_start_by_age(setup, day: dt.date) -> None:
    _, built, config = setup
    got = read(Warehouse.open(built).rollup_files(AGES_ROLLUP, [day]))
    assert list(got.columns) == exposure_ages_schema(config.catalogue).names
    want = ages_definition(built, day)
    assert_same_rows(got, want[list(got.columns)], ["experiment_id", "user_id", "bucket", "age"])
    assert set(got.age) == set(range((day - FIRST).days + 1))


def test_exposure_ages_without_the_previous_day_or_of_other_metrics_are_the_same(setup, tmp_path: Path) -> None:
    """The last day first reads every user_day; once the earlier days are built it is stale (the previous
    day's ages are new) and the backfill ends with the in-order ages; ages lacking this catalogue's columns
    are not added in."""
    events, built, config = setup
    key = ["experiment_id", "user_id", "bucket", "age"]
    reference = read(Warehouse.open(built).rollup_files(AGES_ROLLUP, [END]))
    wh = Warehouse.open(Path(shutil.copytree(events, tmp_path / "wh")))
    for d in [END, *DAYS[:-1]]:
        build_rollups(wh, d, config)
    state = day_staleness(wh, END, catalogue=config.catalogue)
    assert any(c.input == rollup_input(AGES_ROLLUP, DAYS[-2]) and c.change == "new" for c in state.stats.changes)
    build_range(wh, FIRST, END, config, backfill=True)
    assert_same_rows(read(wh.rollup_files(AGES_ROLLUP, [END])), reference, key)
    previous = wh.rollup_files(AGES_ROLLUP, [DAYS[-2]])[0]
    table = pq.read_table(previous)
    pq.write_table(table.drop_columns(["m_latency_per_request_num", "m_latency_per_request_den"]), previous)
    build_rollups(wh, END, config)
    assert_same_rows(read(wh.rollup_files(AGES_ROLLUP, [END])), reference, key)
