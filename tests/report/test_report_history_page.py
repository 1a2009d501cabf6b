"""The history page from the files on disk: rows newest first, keyed by experiment, verdict from
the decision block when present, rebuilt without a deleted day; and the tile pages' day links."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from digest_support import DECISION, summary_doc, write_day

from expkit.report.deliveries import DeliveryEntry, write_record
from expkit.report.history_page import history_rows, write_history
from expkit.report.index import NAV_END, NAV_START, set_tile_nav


def _row_dates(out: Path) -> list[tuple[str, str]]:
    html = (out / "index.html").read_text()
    return re.findall(r'<tr class="history-row" data-date="([^"]+)" data-experiment="([^"]+)"', html)


def test_rows_newest_first_with_the_decision_verdict_and_deliveries(tmp_path: Path) -> None:
    write_day(tmp_path, summary_doc("2026-11-12"))
    write_day(tmp_path, summary_doc("2026-11-14", decision=DECISION))
    day = write_day(tmp_path, summary_doc("2026-11-13"))
    write_record(day, "2026-11-13", {"rec_ranker_v2": {
        "chat": DeliveryEntry("chat", "webhook", "failed", 4, "2026-11-14T01:31:00Z", "HTTP 500 from $URL")}})
    write_history(tmp_path)
    assert _row_dates(tmp_path) == [("2026-11-14", "rec_ranker_v2"), ("2026-11-13", "rec_ranker_v2"),
                                    ("2026-11-12", "rec_ranker_v2")]
    html = (tmp_path / "index.html").read_text()
    newest = html[html.index('data-date="2026-11-14"'):html.index('data-date="2026-11-13"')]
    assert 'data-verdict="keep_running"' in newest and ">Keep running</span>" in newest
    assert DECISION["reasons"][0] in newest
    # the decision's primary lift 0.07 (-0.012 to 0.152), not the lift tile's 0.05 (digest_support)
    assert "ctr <strong>+7.0%</strong> (−1.2% to +15.2%)" in newest
    older = html[html.index('data-date="2026-11-13"'):]
    assert ">Warn</span> <span class=\"muted\">report status</span>" in older  # no decision: the worst tile
    assert "ctr <strong>+5.0%</strong> (+1.0% to +9.0%)" in older
    assert "chat: failed" in older and "HTTP 500 from $URL" in older


def test_rebuilt_from_disk_after_a_day_is_deleted(tmp_path: Path) -> None:
    for d in ("2026-11-12", "2026-11-13"):
        write_day(tmp_path, summary_doc(d))
    write_history(tmp_path)
    shutil.rmtree(tmp_path / "2026-11-12")
    write_history(tmp_path)
    assert [d for d, _ in _row_dates(tmp_path)] == ["2026-11-13"]


def test_one_row_per_experiment_folder_of_a_day(tmp_path: Path) -> None:
    for exp in ("search_v3", "rec_ranker_v2"):
        folder = tmp_path / "2026-11-14" / exp
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps(summary_doc("2026-11-14", experiment_id=exp)))
        (folder / "index.html").write_text("report")
    (tmp_path / "2026-11-14" / "index.html").write_text("portfolio")
    rows = history_rows(tmp_path)
    assert [(r.brief.experiment_id, r.brief.href) for r in rows] == [
        ("rec_ranker_v2", "2026-11-14/rec_ranker_v2/index.html"), ("search_v3", "2026-11-14/search_v3/index.html")]


def _tile_page(day: Path, tile: str) -> Path:
    page = day / "tiles" / f"{tile}.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(f"<nav>{NAV_START}{NAV_END}</nav><main>{tile}</main>")
    return page


def test_tile_day_links_point_at_the_same_tile_else_the_neighbours_index(tmp_path: Path) -> None:
    for d in ("2026-11-12", "2026-11-13", "2026-11-14"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "index.html").write_text("index")
    _tile_page(tmp_path / "2026-11-12", "ctr")
    page = _tile_page(tmp_path / "2026-11-13", "ctr")
    assert set_tile_nav(tmp_path / "2026-11-13", tmp_path, "2026-11-12", "2026-11-14") == 1
    html = page.read_text()
    assert '<a rel="prev" href="../../2026-11-12/tiles/ctr.html">' in html
    assert '<a rel="next" href="../../2026-11-14/index.html">' in html  # 2026-11-14 has no ctr page
    assert html.endswith("<main>ctr</main>") and html.count(NAV_START) == 1
    for href in re.findall(r'href="([^"]+)"', html):
        assert (page.parent / href).resolve().is_file() or href == "../../index.html"
    assert set_tile_nav(tmp_path / "2026-11-13", tmp_path, "2026-11-12", "2026-11-14") == 0  # unchanged


def test_a_report_whose_rollups_changed_since_is_marked_out_of_date(tmp_path: Path) -> None:
    """Late data for 2026-11-13, rolled up again after the reports of 11-13 and 11-14 were written:
    both now show numbers the warehouse no longer has; the report of 11-12 does not read that day."""
    import datetime as dt

    from report_support import PARAMS

    from expkit.config import load_experiment
    from expkit.rollup import build_range, build_rollups, record_report
    from expkit.synth import generate

    wh, config = tmp_path / "wh", load_experiment(PARAMS)
    generate(wh, days=3, end=dt.date(2026, 11, 14), users=300, seed=3)
    build_range(wh, dt.date(2026, 11, 12), dt.date(2026, 11, 14), config)
    out = tmp_path / "reports"
    for d in ("2026-11-12", "2026-11-13", "2026-11-14"):
        doc = summary_doc(d)
        doc["params"]["warehouse"] = str(wh)
        record_report(wh, dt.date.fromisoformat(d), write_day(out, doc), config.start_date)
    write_history(out)
    assert "out of date" not in (out / "index.html").read_text()
    assert all(r.out_of_date == "" for r in history_rows(out))

    build_rollups(wh, dt.date(2026, 11, 13), config)  # the day's rollups rewritten (late data)
    write_history(out)
    marks = {r.brief.date: r.out_of_date for r in history_rows(out)}
    assert marks["2026-11-12"] == ""
    for d in ("2026-11-13", "2026-11-14"):
        assert marks[d].startswith("out of date: the rollups of 2026-11-13") and \
            marks[d].endswith(f"rerun expkit daily --date {d}"), marks[d]
    html = (out / "index.html").read_text()
    assert html.count('class="out-of-date error-box"') == 2


def test_a_run_that_rebuilds_a_day_names_the_reports_it_left_out_of_date(tmp_path: Path) -> None:
    """The scheduler's owner reruns 2026-11-13 after late data: the run rebuilds that day's rollups
    and must say, in its progress, that the published report of 2026-11-14 is now out of date."""
    import datetime as dt

    from report_support import PARAMS

    from expkit.config import load_experiment
    from expkit.report.daily import DailySteps, run_daily
    from expkit.rollup import build_range, build_rollups
    from expkit.synth import generate

    wh, config = tmp_path / "wh", load_experiment(PARAMS)
    generate(wh, days=2, end=dt.date(2026, 11, 14), users=300, seed=3)
    build_range(wh, dt.date(2026, 11, 13), dt.date(2026, 11, 14), config)
    out = tmp_path / "reports"
    lines: list[str] = []
    rebuild = DailySteps(rollup=lambda w, d, p: build_rollups(w, d, config))
    for day in (dt.date(2026, 11, 14), dt.date(2026, 11, 13)):
        lines.clear()
        steps = rebuild if day.day == 13 else DailySteps()
        run_daily(wh, day, out, PARAMS, tiles=[], steps=steps,
                  progress=lambda e: lines.append(f"{e.stage}: {e.message}"))
    [line] = [ln for ln in lines if "out of date" in ln]
    assert line.startswith("history: 1 report out of date: 2026-11-14 ") and "rerun" in line, line
    assert "2026-11-13" not in line.split(":", 2)[2].split("(")[0]  # the day just built is not
