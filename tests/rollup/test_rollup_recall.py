"""Recall@K of a window from the played pairs of its days equals its definition.

The definition (docs/metrics.md, "Outcome metrics"; the fragment ``recall_ctes``): over a window,
plays = distinct (user, item) pairs played in it, hits = those shown at position <= K before their
first play in the window. The statistics evaluate it incrementally: each day's ``played_items``
(template ``played_items``) keeps the pairs played that day with what the window needs, and a
window reads only those of its days (the fragment ``window_recall``). Checked here three ways on
the same per (user, item) facts: a brute-force Python reading of the definition, the definition's
SQL over the window's facts, and the incremental path; on hand-written cases whose counts are
worked out in the comments, and on random ones (hypothesis).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expkit.engines.duckdb_engine import DuckDBEngine
from expkit.rollup_schema import USER_ITEMS_SCHEMA
from expkit.templates import FRAGMENTS, TEMPLATES
from expkit.warehouse import DAY_MS, day_bounds_ms

START = dt.date(2026, 11, 1)
T0 = day_bounds_ms(START)[0]
HOUR = 3_600_000

Facts = dict[tuple[int, int], tuple[int | None, int | None]]
"""One day's per (user, item) facts: (user, item) → (first play, first top-K impression), epoch ms."""


def _fragment_query(name: str) -> str:
    return f"WITH {FRAGMENTS[name].rstrip().rstrip(',')} SELECT user_id, plays, hits FROM recall"


def _write(folder: Path, name: str, facts: Facts) -> Path:
    rows = [(u, i, p, s) for (u, i), (p, s) in sorted(facts.items())]
    table = pa.Table.from_pylist([dict(zip(USER_ITEMS_SCHEMA.names, r, strict=True)) for r in rows],
                                 schema=USER_ITEMS_SCHEMA)
    path = folder / f"{name}.parquet"
    pq.write_table(table, path)
    return path


def brute_force(days: list[Facts], first: int, last: int) -> dict[int, tuple[int, int]]:
    """user → (plays, hits) over days ``first``..``last`` straight from the definition."""
    play: dict[tuple[int, int], int] = {}
    shown: dict[tuple[int, int], int] = {}
    for facts in days[first:last + 1]:
        for pair, (p, s) in facts.items():
            if p is not None:
                play[pair] = min(play.get(pair, p), p)
            if s is not None:
                shown[pair] = min(shown.get(pair, s), s)
    out: dict[int, tuple[int, int]] = {}
    for (user, item), p in play.items():
        plays, hits = out.get(user, (0, 0))
        out[user] = (plays + 1, hits + int((user, item) in shown and shown[(user, item)] < p))
    return out


def _rows(table: pa.Table) -> dict[int, tuple[int, int]]:
    d = table.to_pydict()
    return {u: (p, h) for u, p, h in zip(d["user_id"], d["plays"], d["hits"], strict=True) if p}


def definition_sql(engine: DuckDBEngine, files: list[Path]) -> dict[int, tuple[int, int]]:
    """The fragment recall_ctes over the window's per (user, item) facts."""
    sources = {"user_items": files or USER_ITEMS_SCHEMA}
    return _rows(engine.query(TEMPLATES["user_items"], {}, sources, sql=_fragment_query("recall_ctes")).read_all())


def incremental(engine: DuckDBEngine, folder: Path, files: list[Path], first: int, last: int,
                start_ms: int) -> dict[int, tuple[int, int]]:
    """Each day's played pairs (looking back to the first day), then the fragment window_recall over
    the window's days from ``start_ms``."""
    played = []
    for d in range(last + 1):
        path = folder / f"played-{d}.parquet"
        sources = {"day_items": [files[d]], "earlier_items": files[:d] or USER_ITEMS_SCHEMA}
        engine.write_parquet(TEMPLATES["played_items"], {}, sources, path)
        played.append(path)
    sources = {"played_items": played[first:last + 1]}
    got = engine.query(TEMPLATES["ratio_stats"], {"window_start_ms": start_ms}, sources,
                       sql=_fragment_query("window_recall"))
    return _rows(got.read_all())


def check(tmp: Path, days: list[Facts], first: int, last: int) -> dict[int, tuple[int, int]]:
    files = [_write(tmp, f"items-{d}", facts) for d, facts in enumerate(days)]
    engine = DuckDBEngine(threads=1)
    try:
        want = brute_force(days, first, last)
        assert definition_sql(engine, files[first:last + 1]) == want
        assert incremental(engine, tmp, files, first, last, T0 + first * DAY_MS) == want
    finally:
        engine.close()
    return want


def at(day: int, hour: int) -> int:
    return T0 + day * DAY_MS + hour * HOUR


# User 1 over three days (worked out by hand from the definition):
#   item 10: shown day 0, played day 2            -> a hit in days 0-2, not in day 2 alone (shown before it)
#   item 11: played day 1 (never shown before), shown day 2 08:00, played again day 2 09:00
#            -> days 0-2: first play day 1, unshown before it: a play, no hit;
#               day 2 alone: first play 09:00, shown 08:00: a hit
#   item 12: played day 2 10:00, shown day 2 11:00 (after the play) -> a play, no hit in both
#   item 13: shown day 1 only, never played -> not a play
# User 2: item 20 shown day 0 12:00 and played day 0 12:00 (the same instant: not before) -> no hit.
HAND: list[Facts] = [
    {(1, 10): (None, at(0, 5)), (2, 20): (at(0, 12), at(0, 12))},
    {(1, 11): (at(1, 3), None), (1, 13): (None, at(1, 4))},
    {(1, 10): (at(2, 7), None), (1, 11): (at(2, 9), at(2, 8)), (1, 12): (at(2, 10), at(2, 11))},
]


def test_hand_worked_windows(tmp_path: Path) -> None:
    # days 0-2: user 1 plays 10, 11, 12 -> 3 plays, hits {10} -> 1; user 2: 1 play, 0 hits
    assert check(tmp_path, HAND, 0, 2) == {1: (3, 1), 2: (1, 0)}
    # day 2 alone: user 1 plays 10, 11, 12 -> 3 plays, hits {11} -> 1
    assert check(tmp_path, HAND, 2, 2) == {1: (3, 1)}
    # days 1-2: item 10's impression (day 0) is outside the window -> no hit; 11's first play is day 1 -> no hit
    assert check(tmp_path, HAND, 1, 2) == {1: (3, 0)}


def test_a_last_hour_reads_no_earlier_day(tmp_path: Path) -> None:
    """The 1h window: the day's last-hour facts alone, started at the hour (expkit.rollup.build_played)."""
    hour: Facts = {(1, 10): (at(2, 23) + 60_000, at(2, 23)), (1, 11): (at(2, 23) + 5, None)}
    last = _write(tmp_path, "hour", hour)
    engine = DuckDBEngine(threads=1)
    try:
        path = tmp_path / "played-hour.parquet"
        engine.write_parquet(TEMPLATES["played_items"], {}, {"day_items": [last], "earlier_items": USER_ITEMS_SCHEMA},
                             path)
        got = engine.query(TEMPLATES["ratio_stats"], {"window_start_ms": at(2, 23)}, {"played_items": [path]},
                           sql=_fragment_query("window_recall"))
        # 10: shown 23:00, played 23:01 -> a hit; 11: played, never shown -> a play
        assert _rows(got.read_all()) == {1: (2, 1)} == definition_sql(engine, [last])
    finally:
        engine.close()


pair = st.tuples(st.integers(1, 3), st.integers(1, 4))
minute = st.integers(0, 24 * 60 - 1)
day_facts = st.dictionaries(pair, st.tuples(st.none() | minute, st.none() | minute), max_size=8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=st.lists(day_facts, min_size=1, max_size=5), data=st.data())
def test_random_windows_match_the_definition(tmp_path: Path, days: list[dict], data: st.DataObject) -> None:
    facts = [{k: tuple(None if m is None else T0 + d * DAY_MS + m * 60_000 for m in v) for k, v in f.items()}
             for d, f in enumerate(days)]
    last = data.draw(st.integers(0, len(days) - 1), label="last day")
    first = data.draw(st.integers(0, last), label="first day")
    check(tmp_path, facts, first, last)
