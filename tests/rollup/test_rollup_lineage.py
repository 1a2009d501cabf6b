"""Every derived artifact records what it read; stale means an input changed, appeared or went.

The expected statistics come from a clean in-order build of the same events (the definition the
outcome tests check against independent per-user queries), never from the run under test.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from expkit import lineage
from expkit.cli import main
from expkit.config import load_experiment
from expkit.rollup import (
    STATS_ROLLUP,
    build_range,
    build_rollups,
    day_staleness,
    record_report,
    report_staleness,
    stale_dates,
)
from expkit.synth import generate
from expkit.validation.checks import ALL_VISIBLE, CheckContext, check_rollup_freshness
from expkit.validation.results import Thresholds
from expkit.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "params" / "experiment.yaml"
END = dt.date(2026, 11, 14)
FIRST = END - dt.timedelta(days=7)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(8)]


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 days of events (3000 users, the issue's reproduction), never rolled up: copy before use."""
    out = tmp_path_factory.mktemp("lineage") / "wh"
    generate(out, days=8, end=END, users=3000, seed=5)
    return out


@pytest.fixture(scope="module")
def clean(events: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same events rolled up in order, once."""
    out = Path(shutil.copytree(events, tmp_path_factory.mktemp("clean") / "wh"))
    build_range(out, FIRST, END, load_experiment(PARAMS))
    return out


def stats(root: Path, day: dt.date):
    """``outcome_stats`` of ``day`` as a frame sorted by its key (comparable across builds)."""
    df = pq.read_table(Warehouse.open(root).rollup_files(STATS_ROLLUP, [day])).to_pandas()
    key = ["window_name", "experiment_id", "metric", "bucket", "slice", "slice_value"]
    return df.sort_values(key, na_position="first").reset_index(drop=True)[sorted(df.columns)]


def freshness(root: Path, day: dt.date) -> str:
    ctx = CheckContext(Warehouse.open(root), day, 0, ALL_VISIBLE, Thresholds.from_config(None), engine=None)  # type: ignore[arg-type]
    return check_rollup_freshness(ctx)[0].status


def test_a_day_rolled_up_before_its_earlier_days_gets_the_in_order_statistics(
    events: Path, clean: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reproduction of the issue: rollup D, then the earlier days, then a backfill."""
    wh = Path(shutil.copytree(events, tmp_path / "wh"))
    ref = stats(clean, END)
    ctr7 = ref[(ref.metric == "ctr") & (ref.slice == "all")].set_index(["window_name", "bucket"])["sum_den"]
    assert (ctr7.loc["7d"] > 5 * ctr7.loc["24h"]).all()  # 7 days of impressions, not one: a real difference

    assert main(["rollup", "--warehouse", str(wh), "--date", END.isoformat(), "--quiet"]) == 0
    assert main(["rollup", "--warehouse", str(wh), "--date", FIRST.isoformat(), "--to",
                 (END - dt.timedelta(days=1)).isoformat(), "--quiet"]) == 0
    # the later day read absent partitions that now exist: its statistics were refreshed
    assert stale_dates(Warehouse.open(wh), DAYS) == []
    assert stats(wh, END).equals(ref)
    capsys.readouterr()
    assert main(["rollup", "--warehouse", str(wh), "--date", FIRST.isoformat(), "--to", END.isoformat(),
                 "--backfill", "--quiet"]) == 0
    assert "nothing to rebuild" in capsys.readouterr().out
    assert stats(wh, END).equals(ref)


def test_statistics_go_stale_when_a_window_day_appears_and_validation_says_so(events: Path, tmp_path: Path) -> None:
    wh_root = Path(shutil.copytree(events, tmp_path / "wh"))
    wh, config = Warehouse.open(wh_root), load_experiment(PARAMS)
    build_rollups(wh, END, config)
    assert stale_dates(wh, [END], config) == [] and freshness(wh_root, END) == "pass"

    build_rollups(wh, END - dt.timedelta(days=3), config)  # only that day: END's 7d window gained a day
    state = day_staleness(wh, END)
    assert not state.raw.stale and state.stats.stale
    assert {c.change for c in state.stats.changes} == {"new"}
    assert stale_dates(wh, [END], config) == [END]
    assert freshness(wh_root, END) == "fail"

    assert [r.day for r in build_range(wh, END, END, config, backfill=True)] == [END]
    assert stale_dates(wh, [END], config) == [] and freshness(wh_root, END) == "pass"

    shutil.rmtree(wh.rollup_partition("user_day", END - dt.timedelta(days=3)))  # and gone again
    assert stale_dates(wh, [END - dt.timedelta(days=3), END], config) == [END - dt.timedelta(days=3), END]
    assert any(c.change == "removed" for c in day_staleness(wh, END).stats.changes)


def test_late_data_on_an_earlier_day_makes_later_statistics_stale_before_and_fresh_after_backfill(
    clean: Path, tmp_path: Path
) -> None:
    wh_root = Path(shutil.copytree(clean, tmp_path / "wh"))
    wh, config = Warehouse.open(wh_root), load_experiment(PARAMS)
    late = wh.event_files("clicks", FIRST + dt.timedelta(days=1))[0]
    table = pq.read_table(late)
    pq.write_table(table.slice(0, table.num_rows // 2), late)  # late correction: half the clicks withdrawn
    # every later day reads that day in its 7d/30d/cum windows: stale, transitively, before any rebuild
    assert stale_dates(wh, DAYS, config) == DAYS[1:]
    assert day_staleness(wh, END).stats.stale_inputs
    assert freshness(wh_root, END) == "fail"
    rebuilt = build_range(wh, FIRST, END, config, backfill=True)
    assert [r.day for r in rebuilt] == DAYS[1:]
    assert set(rebuilt[0].rows) > {STATS_ROLLUP} and set(rebuilt[1].rows) == {STATS_ROLLUP}  # stats only
    assert stale_dates(wh, DAYS, config) == [] and freshness(wh_root, END) == "pass"
    before, after = stats(clean, END), stats(wh_root, END)
    cum = (after.window_name == "cum") & (after.metric == "ctr")
    assert (after[cum].sum_num < before[cum].sum_num).all()  # the withdrawn clicks left the cumulative sums


def test_cum_is_refreshed_however_far_back_the_change_is(tmp_path: Path) -> None:
    """40 days from the experiment's start: late data on day 1 refreshes day 40's ``cum`` (not just 30 days)."""
    end = dt.date(2026, 12, 10)
    config = load_experiment(PARAMS)  # start_date 2026-11-01
    root = tmp_path / "wh"
    generate(root, days=40, end=end, users=60, seed=3)
    build_range(root, config.start_date, end, config)
    wh = Warehouse.open(root)
    day1 = config.start_date
    late = wh.event_files("impressions", day1)[0]
    table = pq.read_table(late)
    pq.write_table(table.slice(0, table.num_rows - 50), late)
    days = [day1 + dt.timedelta(days=i) for i in range(40)]
    assert stale_dates(wh, days, config) == days  # day 1 itself, and every later day's cum
    rebuilt = [r.day for r in build_range(wh, day1, day1, config, backfill=True)]
    assert rebuilt == days
    assert stale_dates(wh, days, config) == []
    got = stats(root, end)
    clean_root = Path(shutil.copytree(root, tmp_path / "clean", ignore=shutil.ignore_patterns("rollups", "state")))
    build_range(clean_root, day1, end, config)
    assert got.equals(stats(clean_root, end))


def test_a_killed_refresh_leaves_the_day_detectably_stale(clean: Path, tmp_path: Path) -> None:
    """Partitions are swapped in before the manifest is written: new data under an old record is stale."""
    wh_root = Path(shutil.copytree(clean, tmp_path / "wh"))
    wh = Warehouse.open(wh_root)
    manifest = wh.state / "rollups" / f"{END - dt.timedelta(days=1)}.json"
    saved = manifest.read_text()
    build_rollups(wh, END - dt.timedelta(days=1), load_experiment(PARAMS))
    manifest.write_text(saved)  # as if killed after the partitions were swapped in
    assert stale_dates(wh, DAYS) == [END - dt.timedelta(days=1), END]


def test_lineage_changes_name_new_changed_and_removed_files(tmp_path: Path) -> None:
    part = tmp_path / "rollups" / "t" / "event_date=2026-11-14"
    part.mkdir(parents=True)
    (part / "a.parquet").write_bytes(b"1")
    (part / "b.parquet").write_bytes(b"2")
    (part / ".tmp.parquet").write_bytes(b"hidden")
    name = "rollups/t/event_date=2026-11-14"
    recorded = lineage.fingerprint(tmp_path, [name, "rollups/t/event_date=2026-11-13"])
    assert [e[0] for e in recorded[name]] == ["a.parquet", "b.parquet"]
    assert recorded["rollups/t/event_date=2026-11-13"] == []
    assert lineage.changes(recorded, lineage.fingerprint(tmp_path, recorded)) == []
    (part / "b.parquet").unlink()
    (part / "c.parquet").write_bytes(b"3")
    st = (part / "a.parquet").stat()
    os.utime(part / "a.parquet", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    got = {(c.name, c.change) for c in lineage.changes(recorded, lineage.fingerprint(tmp_path, recorded))}
    assert got == {("a.parquet", "changed"), ("b.parquet", "removed"), ("c.parquet", "new")}


def test_a_report_records_its_inputs_and_goes_stale_with_them(clean: Path, tmp_path: Path) -> None:
    wh_root = Path(shutil.copytree(clean, tmp_path / "wh"))
    wh = Warehouse.open(wh_root)
    folder = tmp_path / "report" / END.isoformat()
    assert report_staleness(wh, folder).stale  # nothing recorded yet
    record_report(wh, END, folder, load_experiment(PARAMS).start_date)
    assert not report_staleness(wh, folder).stale
    recorded = json.loads((folder / "inputs.json").read_text())["inputs"]
    assert f"rollups/{STATS_ROLLUP}/event_date={END}" in recorded
    build_rollups(wh, END, load_experiment(PARAMS))
    assert report_staleness(wh, folder).stale
