"""Spans ``user_span_<n>d``: each user's facts over n aligned days, merged from their halves
(expkit.rollup.build_spans), read by the sliding windows instead of one ``user_day`` per day.

The references are independent: the tiling rules are checked by brute force over many ages, the
spans against a pandas reading of the ``user_day`` of their days, and a window's statistics against
the same template over the window's ``user_day`` partitions.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from user_facts_support import KEY, STATS_KEY, assert_same_rows, facts_over, read

from expkit.config import ExperimentConfig, load_experiment
from expkit.engines.duckdb_engine import DuckDBEngine
from expkit.metrics_sql import ratio_stats_query, user_facts_schema
from expkit.rollup import (
    SPAN_ROLLUPS,
    SPAN_SIZES,
    STATS_ROLLUP,
    build_range,
    build_rollups,
    day_staleness,
    rollup_input,
    span_files,
    span_pieces,
    spans_ending,
    stale_dates,
    stats_inputs,
    stats_sources,
    window_days,
    window_files,
    window_start_ms,
)
from expkit.synth import generate
from expkit.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[2]
FIRST = dt.date(2026, 11, 1)  # the experiment's start_date in params/experiment.yaml
DAYS = [FIRST + dt.timedelta(days=i) for i in range(9)]
END = DAYS[-1]


def day(offset: int) -> dt.date:
    return FIRST + dt.timedelta(days=offset)


@pytest.mark.parametrize("length", [7, 30])
def test_the_pieces_tile_every_sliding_window_with_aligned_spans(length: int) -> None:
    """At every age up to 400 days: the pieces cover the window's days once, in order; a span of n days
    starts a multiple of n days after the start and never on it; a 30-day window takes at most 8 pieces;
    and every span read is one that the day of its last day builds."""
    for age in range(1, 401):
        last = day(age - 1)
        first = max(FIRST, last - dt.timedelta(days=length - 1))
        pieces = span_pieces(first, last, FIRST)
        covered = [p + dt.timedelta(days=i) for p, n in pieces for i in range(n)]
        assert covered == [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        assert len(pieces) <= 8
        for p, n in pieces:
            offset = (p - FIRST).days
            assert n == 1 or (n in SPAN_SIZES and offset > 0 and offset % n == 0)
            if n > 1:
                assert (p, n) in spans_ending(p + dt.timedelta(days=n - 1), FIRST)


def test_a_day_builds_its_spans_from_halves_ending_before_it_or_on_it() -> None:
    for age in range(1, 200):
        for first, n in spans_ending(day(age - 1), FIRST):
            assert first > FIRST and (first - FIRST).days % n == 0
            if n > 2:  # the later half ends on the same day and is built first (shortest first)
                assert (first + dt.timedelta(days=n // 2), n // 2) in spans_ending(day(age - 1), FIRST)


def test_a_long_window_reads_far_fewer_partitions() -> None:
    pieces = span_pieces(day(40), day(69), FIRST)
    assert sum(n for _, n in pieces) == 30 and len(pieces) <= 8


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ExperimentConfig]:
    """9 days from the experiment's start: the events alone, and rolled up in order."""
    tmp = tmp_path_factory.mktemp("spans")
    config = load_experiment(REPO / "params" / "experiment.yaml")
    assert config.start_date == FIRST
    events = tmp / "events"
    generate(events, days=len(DAYS), end=END, users=300, seed=5)
    built = Path(shutil.copytree(events, tmp / "built"))
    build_range(built, FIRST, END, config)
    return events, built, config


def test_every_span_is_the_user_day_of_its_days_merged(setup) -> None:
    _, built, config = setup
    wh = Warehouse.open(built)
    spans = [(first, n) for d in DAYS for first, n in spans_ending(d, FIRST)]
    assert {n for _, n in spans} == {2, 4}  # 9 days: spans of 2 and 4 days
    for first, n in spans:
        files = wh.rollup_files(SPAN_ROLLUPS[n], [first + dt.timedelta(days=n - 1)])
        schema = pq.read_schema(files[0])
        assert [(f.name, f.type) for f in schema] == [(f.name, f.type) for f in user_facts_schema(config.catalogue)]
        assert_same_rows(read(files), facts_over(built, [first + dt.timedelta(days=i) for i in range(n)]), KEY)


def statistics(wh: Warehouse, d: dt.date, window: str, config: ExperimentConfig, user_day: bool = False):
    """``ratio_stats`` of ``window`` ending on ``d``: from the sources the rollup reads, or (``user_day``)
    from the window's ``user_day`` partitions."""
    sources = stats_sources(wh, d, window, config.start_date, config.catalogue)
    if user_day:
        sources["user_facts"] = window_files(wh, d, window, ("user_day", "user_last_hour"), config.start_date)
    q = ratio_stats_query(config.catalogue)
    engine = DuckDBEngine()
    try:
        return engine.query(q.template, q.bind(window_start_ms=window_start_ms(d, window, config.start_date)),
                            sources).read_pandas()
    finally:
        engine.close()


@pytest.mark.parametrize("d", DAYS[-2:])
def test_a_sliding_window_reads_spans_with_the_statistics_of_its_days(setup, d: dt.date) -> None:
    """Day 8's 7d window reads a 2-day span, the 4-day span built that day and a user_day; day 9's two
    spans and a user_day. Their statistics equal those from the window's seven user_day."""
    _, built, config = setup
    wh = Warehouse.open(built)
    files = stats_sources(wh, d, "7d", config.start_date, config.catalogue)["user_facts"]
    assert [f.parent.parent.name for f in files] == (
        ["user_day", "user_span_2d", "user_span_4d"] if d == DAYS[-2] else ["user_span_2d", "user_span_4d", "user_day"])
    ours, reference = statistics(wh, d, "7d", config), statistics(wh, d, "7d", config, user_day=True)
    assert {"ctr", "recall"} <= set(ours.metric)
    assert_same_rows(ours, reference, STATS_KEY)
    stored = read(wh.rollup_files(STATS_ROLLUP, [d]))
    stored = stored[stored.window_name == "7d"].drop(columns="window_name")
    assert_same_rows(stored, reference, STATS_KEY)


def test_the_spans_read_are_inputs_of_the_day_and_those_built_are_its_outputs() -> None:
    inputs = stats_inputs(DAYS[-1], FIRST)
    assert rollup_input(SPAN_ROLLUPS[2], day(3)) in inputs and rollup_input(SPAN_ROLLUPS[4], day(7)) in inputs
    inputs = stats_inputs(day(7), FIRST)  # builds the 4-day span of days 4..7 from days 4..5 and 6..7
    assert rollup_input(SPAN_ROLLUPS[2], day(5)) in inputs
    assert rollup_input(SPAN_ROLLUPS[4], day(7)) not in inputs and rollup_input(SPAN_ROLLUPS[2], day(7)) not in inputs


def test_a_span_not_built_or_built_with_other_metrics_is_read_day_by_day(setup, tmp_path: Path) -> None:
    _, built, config = setup
    wh = Warehouse.open(Path(shutil.copytree(built, tmp_path / "wh")))
    facts = user_facts_schema(config.catalogue)
    span = wh.rollup_files(SPAN_ROLLUPS[4], [day(7)])[0]
    assert span_files(wh, day(4), 4, facts) == [span]
    table = pq.read_table(span)
    pq.write_table(table.drop_columns([table.column_names[-1]]), span)
    assert span_files(wh, day(4), 4, facts) == wh.rollup_files("user_day", [day(i) for i in range(4, 8)])
    shutil.rmtree(span.parent)
    assert span_files(wh, day(4), 4, facts) == wh.rollup_files("user_day", [day(i) for i in range(4, 8)])
    assert_same_rows(statistics(wh, END, "7d", config), statistics(Warehouse.open(built), END, "7d", config),
                     STATS_KEY)


def test_out_of_order_builds_end_where_the_in_order_build_ends(setup, tmp_path: Path) -> None:
    """The last day first (no spans yet: its 7d window reads user_day), then the others one by one: the
    last day is stale because spans it reads appeared; the backfill ends with the in-order statistics."""
    events, built, config = setup
    wh = Warehouse.open(Path(shutil.copytree(events, tmp_path / "wh")))
    build_rollups(wh, END, config)
    assert [f.parent.parent.name for f in stats_sources(wh, END, "7d", FIRST, config.catalogue)["user_facts"]] == [
        "user_day"]  # the only day rolled up: the 7d window has no span and no other day yet
    for d in DAYS[:-1]:
        build_rollups(wh, d, config)
    state = day_staleness(wh, END, catalogue=config.catalogue)
    assert any(c.input == rollup_input(SPAN_ROLLUPS[4], day(7)) and c.change == "new" for c in state.stats.changes)
    build_range(wh, FIRST, END, config, backfill=True)
    assert stale_dates(wh, DAYS, config) == []
    for d in DAYS[-2:]:
        ours = read(wh.rollup_files(STATS_ROLLUP, [d]))
        reference = read(Warehouse.open(built).rollup_files(STATS_ROLLUP, [d]))
        assert_same_rows(ours, reference, [*STATS_KEY, "window_name"])


def test_a_late_change_reaches_the_spans_holding_its_day(setup, tmp_path: Path) -> None:
    _, built, config = setup
    wh = Warehouse.open(Path(shutil.copytree(built, tmp_path / "wh")))
    late = wh.event_files("clicks", day(4))[0]
    table = pq.read_table(late)
    pq.write_table(table.slice(0, table.num_rows // 2), late)  # half of day 5's clicks withdrawn
    build_range(wh, FIRST, END, config, backfill=True)
    span = read(wh.rollup_files(SPAN_ROLLUPS[4], [day(7)]))
    assert_same_rows(span, facts_over(wh.root, [day(i) for i in range(4, 8)]), KEY)
    assert span.clicks.sum() < read(Warehouse.open(built).rollup_files(SPAN_ROLLUPS[4], [day(7)])).clicks.sum()
    assert_same_rows(statistics(wh, END, "7d", config), statistics(wh, END, "7d", config, user_day=True),
                     STATS_KEY)
    assert window_days(END, "7d", FIRST)[0] == day(2)
