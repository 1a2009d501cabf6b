"""Order independence: any sequence of rollups, late rewrites, backfills and daily runs ends where a
clean in-order build of the same events does (the lineage rule of docs/architecture.md).

The reference is a clean in-order build of the final events; the raw rollups it compares are
checked against independent per-user queries in test_rollup_build.py, the statistics in tests/outcomes.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from expkit.config import load_experiment
from expkit.daily import daily, ensure_rollups
from expkit.rollup import STATS_ROLLUP, build_range, report_staleness, stale_dates
from expkit.synth import generate
from expkit.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "params" / "experiment.yaml"
END = dt.date(2026, 11, 14)
N_DAYS = 3
DAYS = [END - dt.timedelta(days=N_DAYS - 1 - i) for i in range(N_DAYS)]
COMPARED = [STATS_ROLLUP, "health_bins", "error_bins", "engagement_bins", "user_day", "user_items", "played_items",
            "played_items_last_hour", "user_first", "exposure_ages", "exposure_stats"]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 days of events of 120 users (never rolled up; copied for every example)."""
    out = tmp_path_factory.mktemp("order") / "wh"
    generate(out, days=N_DAYS, end=END, users=120, seed=4)
    return out


def rewrite(root: Path, base: Path, day: dt.date, version: int) -> None:
    """Late data, version ``version`` of ``day``: its clicks rewritten without every row whose
    position modulo 5 is below ``version`` (version 0: as generated)."""
    src = Warehouse.open(base).event_files("clicks", day)[0]
    table = pq.read_table(src)
    keep = pa.array([i % 5 >= version for i in range(table.num_rows)])
    pq.write_table(table.filter(keep), Warehouse.open(root).event_partition("clicks", day) / src.name)


def table(root: Path, name: str, day: dt.date):
    files = Warehouse.open(root).rollup_files(name, [day])
    if not files:
        return None
    df = pq.read_table(files).to_pandas()
    return df.sort_values(list(df.columns), na_position="first").reset_index(drop=True)


_clean: dict[tuple[int, ...], Path] = {}


def clean_build(base: Path, versions: tuple[int, ...], workdir: Path) -> Path:
    """The same events (each day at its version) rolled up in order, once per version tuple."""
    if versions not in _clean:
        root = Path(shutil.copytree(base, workdir / f"clean-{'-'.join(map(str, versions))}"))
        for day, v in zip(DAYS, versions, strict=True):
            if v:
                rewrite(root, base, day, v)
        build_range(root, DAYS[0], DAYS[-1], load_experiment(PARAMS))
        _clean[versions] = root
    return _clean[versions]


def assert_same_rollups(got: Path, want: Path) -> None:
    for day in DAYS:
        for name in COMPARED:
            a, b = table(got, name, day), table(want, name, day)
            assert a is not None and b is not None, (name, day)
            assert a.equals(b), f"{name} of {day} differs from the clean in-order build"


day_index = st.integers(0, N_DAYS - 1)
step = st.one_of(
    st.tuples(st.just("one"), day_index),
    st.tuples(st.just("range"), day_index, day_index),
    st.tuples(st.just("late"), day_index),
    st.tuples(st.just("backfill")),
    st.tuples(st.just("daily"), day_index),
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("order-work")


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=2, max_size=4))
@example(steps=[("one", N_DAYS - 1), ("range", 0, N_DAYS - 2), ("late", 0), ("daily", N_DAYS - 1)])  # the issue's
def test_any_sequence_of_rollups_late_data_backfills_and_dailies_ends_as_a_clean_build(
    base: Path, workdir: Path, steps: list[tuple]
) -> None:
    config = load_experiment(PARAMS)
    root = Path(shutil.copytree(base, Path(tempfile.mkdtemp(dir=workdir)) / "wh"))
    wh = Warehouse.open(root)
    versions = [0] * N_DAYS
    for s in steps:
        if s[0] == "one":
            build_range(wh, DAYS[s[1]], DAYS[s[1]], config)  # `expkit rollup --date D`
        elif s[0] == "range":
            lo, hi = sorted(s[1:])
            build_range(wh, DAYS[lo], DAYS[hi], config)
        elif s[0] == "late" and versions[s[1]] < 4:
            versions[s[1]] += 1
            rewrite(root, base, DAYS[s[1]], versions[s[1]])
        elif s[0] == "backfill":
            build_range(wh, DAYS[0], DAYS[-1], config, backfill=True)
        elif s[0] == "daily":
            ensure_rollups(root, DAYS[s[1]], PARAMS)  # the rollup step of `expkit daily`
    want = clean_build(base, tuple(versions), workdir)
    built = wh.rollup_dates(STATS_ROLLUP)
    if built == DAYS and not stale_dates(wh, DAYS, config):
        assert_same_rollups(root, want)  # nothing stale means nothing wrong
    build_range(wh, DAYS[0], DAYS[-1], config, backfill=True)
    assert stale_dates(wh, DAYS, config) == []
    assert_same_rollups(root, want)
    shutil.rmtree(root.parent)


def _numbers(summary: dict) -> dict:
    """The outcome tiles' headlines and statuses of a ``summary.json`` (what a reader acts on)."""
    outcome = ("ctr", "recall", "session_depth", "save_rate", "lift", "allocation", "novelty")
    return {t: (v["status"], v["headline"]) for t, v in summary["tiles"].items() if t in outcome}


@pytest.mark.slow
def test_daily_after_an_out_of_order_history_reports_the_clean_numbers(
    base: Path, workdir: Path, tmp_path: Path
) -> None:
    """The issue's sequence, then `daily` on the last day: summary.json as on a clean in-order build."""
    config = load_experiment(PARAMS)
    root = Path(shutil.copytree(base, tmp_path / "wh"))
    build_range(root, DAYS[-1], DAYS[-1], config)
    build_range(root, DAYS[0], DAYS[-2], config)
    rewrite(root, base, DAYS[1], 2)
    versions = (0, 2, 0)
    got = daily(root, END, tmp_path / "reports", PARAMS, workers=2)
    want = daily(clean_build(base, versions, workdir), END, tmp_path / "clean-reports", PARAMS, workers=2)
    a = json.loads(got.summary_path.read_text())
    b = json.loads(want.summary_path.read_text())
    assert _numbers(a) and _numbers(a) == _numbers(b)
    assert not report_staleness(Warehouse.open(root), got.out_dir).stale  # the report recorded what it read
    build_range(root, DAYS[0], DAYS[0], config)
    assert report_staleness(Warehouse.open(root), got.out_dir).stale
