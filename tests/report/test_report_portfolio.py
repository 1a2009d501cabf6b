"""The portfolio of a day with several experiments (docs/reports.md, "The portfolio"): its index
rows, the per-experiment day links, the arm health of the platform section and the
``--experiment`` errors. Fast: hand-made report folders and rollup files, no notebook.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import duckdb
import numpy as np
import pytest
import yaml
from digest_support import DECISION, summary_doc
from report_support import rows_of

from expkit.alerts.rules import default_rules_file
from expkit.catalogue import catalogue_file_for
from expkit.cli import main
from expkit.config import ExperimentConfig, default_params, portfolio_files
from expkit.errors import ConfigError
from expkit.histogram import bucket_index, bucket_value
from expkit.notify.config import default_notify_file
from expkit.project import shared_file
from expkit.report.daily import run_daily
from expkit.report.history_page import history_rows
from expkit.report.index import NAV_END, NAV_START, PORTFOLIO_FILE, refresh_nav, write_index, write_portfolio_index
from expkit.report.portfolio import arm_health_rows, run_portfolio

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-11-14"


def _decision(verdict: str, rel: float, low: float, high: float, gates: list[dict] | None = None) -> dict:
    d = json.loads(json.dumps(DECISION))
    d["verdict"] = verdict
    d["arms"]["treatment"]["primary"].update(rel_lift=rel, rel_low=low, rel_high=high)
    d["trust"] = gates or d["trust"]
    for g in d["arms"]["treatment"]["guardrails"]:
        g["relative"] = g["metric"] == "latency_p95"
    return d


def _portfolio_day(out: Path, day: str = DAY, arm_health: list[dict] | None = None) -> Path:
    """A day with two experiment reports and a portfolio.json (the documented shapes)."""
    folder = out / day
    for exp, decision in (("ranker_a", _decision("no_effect", 0.004, -0.02, 0.03)),
                          ("search_b", _decision("untrustworthy", 0.31, 0.2, 0.42,
                                                 [{"gate": "srm", "status": "fail", "detail": "p = 1e-05"}]))):
        (folder / exp).mkdir(parents=True)
        (folder / exp / "summary.json").write_text(json.dumps(summary_doc(day, exp, decision)))
        write_index(folder / exp, summary_doc(day, exp, decision), out, exp)
    health = {"latency": {"status": "ok", "section": "health", "html": "tiles/latency.html"}}
    doc = {**summary_doc(day), "tiles": health,
           "experiment_id": None, "layout": "portfolio", "experiments": ["ranker_a", "search_b"],
           "arm_health": arm_health or []}
    (folder / PORTFOLIO_FILE).write_text(json.dumps(doc))
    write_portfolio_index(folder, doc, out)
    return folder


def test_portfolio_index_has_one_row_per_experiment(tmp_path: Path) -> None:
    folder = _portfolio_day(tmp_path)
    html = (folder / "index.html").read_text()
    rows = rows_of(html, "portfolio-row")
    assert [r["attrs"]["data-experiment"] for r in rows] == ["ranker_a", "search_b"]
    assert [r["attrs"]["data-verdict"] for r in rows] == ["no_effect", "untrustworthy"]
    a, b = rows
    assert a["links"] == ["ranker_a/index.html"] and b["links"] == ["search_b/index.html"]
    # the lifts and intervals are those of the decisions written above, as percentages
    assert "No effect" in a["text"] and "+0.4%" in a["text"] and "\u22122.0%" in a["text"] and "+3.0%" in a["text"]
    assert "Untrustworthy" in b["text"] and "+31.0%" in b["text"] and "+20.0%" in b["text"]
    assert "58% of the required sample" in a["text"]  # DECISION's progress fraction 0.58
    assert "srm" in b["text"] and "none" in a["text"]  # failed gates
    # then the platform: health, alerts, validation; no outcome cards
    assert html.index('id="portfolio"') < html.index('id="health"') < html.index('id="alerts"') \
        < html.index('id="validation"')
    assert 'id="outcomes"' not in html and "portfolio.json" in html


def test_experiment_pages_link_the_same_experiment_on_neighbouring_days(tmp_path: Path) -> None:
    _portfolio_day(tmp_path, "2026-11-12")
    _portfolio_day(tmp_path, "2026-11-14")
    page = tmp_path / "2026-11-14" / "search_b" / "index.html"
    write_index(page.parent, json.loads((page.parent / "summary.json").read_text()), tmp_path, "search_b")
    html = page.read_text()
    assert 'rel="prev" href="../../2026-11-12/search_b/index.html"' in html
    assert (tmp_path / "2026-11-12" / "search_b" / "index.html").is_file()
    assert 'href="../../index.html">all reports' in html and 'id="portfolio-link" href="../index.html"' in html
    assert 'rel="next"' not in html
    # the history page: every day x experiment, newest first, each linking its own page
    rows = [(r.brief.date, r.brief.experiment_id, r.brief.href) for r in history_rows(tmp_path)]
    assert rows == [("2026-11-14", "ranker_a", "2026-11-14/ranker_a/index.html"),
                    ("2026-11-14", "search_b", "2026-11-14/search_b/index.html"),
                    ("2026-11-12", "ranker_a", "2026-11-12/ranker_a/index.html"),
                    ("2026-11-12", "search_b", "2026-11-12/search_b/index.html")]


def test_an_experiment_page_points_to_the_platform_health_of_the_portfolio(tmp_path: Path) -> None:
    folder = _portfolio_day(tmp_path)
    doc = summary_doc(DAY, "ranker_a", _decision("no_effect", 0.004, -0.02, 0.03))
    doc["tiles"].pop("latency")  # a health tile: run_portfolio writes outcome tiles only here
    doc["tiles"]["lift"]["section"] = "outcomes"
    write_index(folder / "ranker_a", doc, tmp_path, "ranker_a")
    html = (folder / "ranker_a" / "index.html").read_text()
    # the health tiles ran once, for the platform: the page must not say there were none
    assert "No health tiles in this run" not in html
    assert 'id="health-on-portfolio"' in html and 'href="../index.html#health"' in html


def test_an_active_experiment_without_a_report_is_named_not_left_out(tmp_path: Path) -> None:
    """`daily --experiment ranker_a` on a day not yet reported writes that experiment alone: the
    portfolio must not read as if it were the day's only experiment."""
    folder = _portfolio_day(tmp_path)
    doc = json.loads((folder / PORTFOLIO_FILE).read_text())
    doc["active"] = ["ranker_a", "search_b", "third_c"]
    write_portfolio_index(folder, doc, tmp_path)
    html = (folder / "index.html").read_text()
    [row] = rows_of(html, "portfolio-missing")
    assert row["attrs"]["data-experiment"] == "third_c" and row["links"] == []
    assert "not reported for this day" in row["text"]
    assert f"expkit daily --date {DAY} --experiment third_c" in row["text"]
    assert [r["attrs"]["data-experiment"] for r in rows_of(html, "portfolio-row")] == ["ranker_a", "search_b"]


def _write_rollups(wh: Path, day: str, latency: dict[tuple[str, str], list[tuple[int, int]]],
                   requests: dict[tuple[str, str], tuple[int, int]]) -> None:
    """``user_latency`` and ``user_day`` partitions of ``day`` with one user per (experiment, arm)."""
    con = duckdb.connect()
    lat = [(e, a, uid, 0, idx, n) for uid, ((e, a), hist) in enumerate(latency.items()) for idx, n in hist]
    fac = [(e, a, uid, "all", "all", err, req) for uid, ((e, a), (err, req)) in enumerate(requests.items())]
    for name, rows, cols in (("user_latency", lat, "experiment_id, bucket, user_id, first_ms, idx, n"),
                             ("user_day", fac, "experiment_id, bucket, user_id, slice, slice_value, "
                                               "m_error_rate_num, m_error_rate_den")):
        part = wh / "rollups" / name / f"event_date={day}"
        part.mkdir(parents=True)
        text = ("experiment_id", "bucket", "slice", "slice_value")
        types = ", ".join(f"{c} {'VARCHAR' if c in text else 'BIGINT'}" for c in cols.split(", "))
        con.execute(f"create or replace table t ({types})")
        con.executemany(f"insert into t values ({', '.join('?' * len(cols.split(', ')))})", rows)
        con.execute(f"copy t to '{part}/part-00000.parquet' (format parquet)")


def _config(exp: str) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"experiment_id": exp, "start_date": "2026-11-01", "control": "control",
                                            "buckets": {"control": 0.5, "treatment": 0.5}})


def test_an_arm_that_breaks_latency_is_marked_in_the_platform_section(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    (wh / "events").mkdir(parents=True)
    ms20, ms25, ms120 = (int(i) for i in bucket_index([20.0, 25.0, 120.0]))  # buckets of the 1% log histogram
    fast = [(ms20, 90), (ms25, 10)]
    slow = [(ms20, 50), (ms120, 50)]  # half the requests near 120 ms: the p95 is there
    _write_rollups(wh, DAY, {("ranker_a", "control"): fast, ("ranker_a", "treatment"): slow,
                             ("search_b", "control"): fast, ("search_b", "treatment"): fast},
                   {("ranker_a", "control"): (0, 100), ("ranker_a", "treatment"): (0, 100),
                    ("search_b", "control"): (0, 100), ("search_b", "treatment"): (1, 100)})
    rows = arm_health_rows(wh, dt.date.fromisoformat(DAY), [_config("ranker_a"), _config("search_b")])
    by = {(r.experiment_id, r.arm): r for r in rows}
    assert list(by) == [("ranker_a", "control"), ("ranker_a", "treatment"), ("search_b", "control"),
                        ("search_b", "treatment")]
    # the p95 is the inverted-CDF order statistic of the histogram (numpy's definition), at bucket midpoints
    for key, hist in (("ranker_a", "treatment"), slow), (("ranker_a", "control"), fast):
        values = np.repeat(bucket_value([i for i, _ in hist]), [n for _, n in hist])
        assert by[key].latency_p95_ms == pytest.approx(np.quantile(values, 0.95, method="inverted_cdf"))
        assert by[key].requests == 100
    assert by["ranker_a", "treatment"].latency_breach and by["ranker_a", "treatment"].latency_p95_ms > 100
    assert [k for k, r in by.items() if r.latency_breach] == [("ranker_a", "treatment")]
    assert by["search_b", "treatment"].error_rate == pytest.approx(0.01)  # 1 of 100, over the SLO of 0.1%
    assert [k for k, r in by.items() if r.error_breach] == [("search_b", "treatment")]
    folder = _portfolio_day(tmp_path / "out", arm_health=[r.__dict__ for r in rows])
    marked = [(r["attrs"]["data-experiment"], r["attrs"]["data-arm"])
              for r in rows_of((folder / "index.html").read_text(), "arm-health-row")
              if r["attrs"]["data-breach"] == "yes"]
    assert marked == [("ranker_a", "treatment"), ("search_b", "treatment")]


def _params_folder(tmp_path: Path, ends: dict[str, str | None] | None = None) -> Path:
    params = tmp_path / "params"
    (params / "experiments").mkdir(parents=True)
    base = yaml.safe_load((ROOT / "params" / "experiment.yaml").read_text())
    for exp in ("ranker_a", "search_b"):
        end = (ends or {}).get(exp)
        data = {**base, "experiment_id": exp, "start_date": "2026-11-10", **({"end_date": end} if end else {})}
        (params / "experiments" / f"{exp}.yaml").write_text(yaml.safe_dump(data))
    (params / "alerts.yaml").write_text((ROOT / "params" / "alerts.yaml").read_text())
    return params


def test_setups_and_shared_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = _params_folder(tmp_path)
    files = [params / "experiments" / "ranker_a.yaml", params / "experiments" / "search_b.yaml"]
    assert portfolio_files(params) == files
    assert portfolio_files(params / "experiments") == portfolio_files(params)
    assert portfolio_files(ROOT / "params") is None and portfolio_files(ROOT / "params" / "experiment.yaml") is None
    assert shared_file(params, "alerts.yaml") == params / "alerts.yaml"
    assert shared_file(params / "experiments", "alerts.yaml") == params / "alerts.yaml"
    # one experiment's file reads the shared files of the folder above its experiments/
    one = files[1]
    assert default_rules_file(one) == params / "alerts.yaml"
    assert default_notify_file(one) == params / "experiments" / "notify.yaml"  # none: where it is looked first
    (params / "notify.yaml").write_text("targets: []\n")
    assert default_notify_file(one) == params / "notify.yaml"
    assert catalogue_file_for(one) != params / "metrics.yaml"  # none there: the project's
    (params / "metrics.yaml").write_text((ROOT / "params" / "metrics.yaml").read_text())
    assert catalogue_file_for(one) == params / "metrics.yaml"
    (params / "experiments" / "alerts.yaml").write_text((ROOT / "params" / "alerts.yaml").read_text())
    assert default_rules_file(one) == params / "experiments" / "alerts.yaml"  # beside it wins
    (params / "experiment.yaml").write_text((ROOT / "params" / "experiment.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    assert default_params().resolve() == params.resolve()  # params/experiments/ wins over params/experiment.yaml


@pytest.mark.parametrize(("args", "message"), [
    (["--experiment", "nope"], "--experiment 'nope': no experiment has that id in {params}"),
    (["--experiment", "search_b"], "search_b.yaml runs from 2026-11-10 to 2026-11-12, not on 2026-11-14"),
    (["--experiment", "nope", "--params", "{root}/params/experiment.yaml"],
     "--experiment 'nope': {root}/params/experiment.yaml defines 'rec_ranker_v2' alone"),
])
def test_unknown_or_inactive_experiment_is_exit_2_before_anything_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    params = _params_folder(tmp_path, {"search_b": "2026-11-12"})
    out = tmp_path / "reports"
    code = main(["daily", "--warehouse", str(tmp_path / "no-warehouse"), "--date", DAY, "--out", str(out),
                 "--params", str(params), "--quiet", *[a.format(root=ROOT) for a in args]])
    assert code == 2
    err = capsys.readouterr().err
    assert message.format(params=params, root=ROOT) in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_no_active_experiment_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = _params_folder(tmp_path, {"ranker_a": "2026-11-11", "search_b": "2026-11-12"})
    assert main(["daily", "--warehouse", str(tmp_path / "w"), "--date", DAY, "--out", str(tmp_path / "r"),
                 "--params", str(params), "--quiet"]) == 2
    assert f"{params}: no experiment is active on {DAY} (ranker_a: 2026-11-10 to 2026-11-11" in capsys.readouterr().err


def test_a_new_day_refreshes_the_experiment_pages_of_its_neighbours(tmp_path: Path) -> None:
    later = _portfolio_day(tmp_path, "2026-11-14")
    page = later / "search_b" / "tiles" / "ctr.html"
    page.parent.mkdir()
    page.write_text(f"<html>{NAV_START}{NAV_END}</html>")
    assert 'rel="prev"' not in (later / "search_b" / "index.html").read_text()
    earlier = _portfolio_day(tmp_path, "2026-11-12")  # run after the later day
    (earlier / "search_b" / "tiles").mkdir()
    (earlier / "search_b" / "tiles" / "ctr.html").write_text("<html></html>")
    refreshed = refresh_nav(tmp_path, "2026-11-12")
    assert sorted(refreshed) == ["2026-11-14", "2026-11-14/ranker_a", "2026-11-14/search_b"]
    assert 'rel="prev" href="../../2026-11-12/search_b/index.html"' in (later / "search_b" / "index.html").read_text()
    assert 'rel="prev" href="../2026-11-12/index.html"' in (later / "index.html").read_text()
    assert 'rel="prev" href="../../../2026-11-12/search_b/tiles/ctr.html"' in page.read_text()


def _health_bins(wh: Path, day: str, requests: dict[str, int]) -> None:
    """A ``health_bins`` partition of ``day`` with ``requests`` per experiment id the requests carry."""
    part = wh / "rollups" / "health_bins" / f"event_date={day}"
    part.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("create table t (experiment_id VARCHAR, bin_ms BIGINT, requests BIGINT)")
    con.executemany("insert into t values (?, 0, ?)", list(requests.items()))
    con.execute(f"copy t to '{part}/part-00000.parquet' (format parquet)")


def _experiment_files(folder: Path, ids: list[str]) -> list[Path]:
    base = yaml.safe_load((ROOT / "params" / "experiment.yaml").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, exp in enumerate(ids):
        files.append(folder / f"{i}_{exp}.yaml")
        files[-1].write_text(yaml.safe_dump({**base, "experiment_id": exp, "start_date": "2026-11-10"}))
    return files


def test_the_platform_health_reads_the_experiment_the_requests_carry(tmp_path: Path) -> None:
    """In a warehouse with an ``exposures`` table the requests carry one experiment's id
    (docs/synthetic.md, "Several experiments"): the health tiles, once for the platform, must read
    that experiment's requests even when its file is not the first, else they show no data."""
    wh = tmp_path / "wh"
    (wh / "events").mkdir(parents=True)
    _health_bins(wh, DAY, {"search_b": 500})
    files = _experiment_files(tmp_path / "params", ["ranker_a", "search_b"])
    run_portfolio(wh, dt.date.fromisoformat(DAY), tmp_path / "out", files, tiles=[])
    doc = json.loads((tmp_path / "out" / DAY / PORTFOLIO_FILE).read_text())
    assert doc["params"]["experiment_id"] == "search_b"
    assert doc["experiments"] == ["ranker_a", "search_b"]
    # none carried (no rollup): the first active experiment, as documented
    (tmp_path / "empty" / "events").mkdir(parents=True)
    run_portfolio(tmp_path / "empty", dt.date.fromisoformat(DAY), tmp_path / "out2",
                  _experiment_files(tmp_path / "params3", ["ranker_a", "search_b"]), tiles=[])
    assert json.loads((tmp_path / "out2" / DAY / PORTFOLIO_FILE).read_text())["params"]["experiment_id"] == "ranker_a"


@pytest.mark.parametrize("name", ["tiles", "logs", "notebooks", "sidecars", "deepdive", "adhoc", "index.html",
                                  "portfolio.json", "inputs.json", "deliveries.json"])
def test_an_experiment_id_that_names_a_file_of_the_day_is_refused(tmp_path: Path, name: str) -> None:
    """An experiment's folder ``D/<experiment_id>/`` must not be one of the day's own files or
    folders: one line naming the file and the id, before anything is written."""
    files = _experiment_files(tmp_path / "params", ["ranker_a", name])
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as err:
        run_portfolio(tmp_path / "wh", dt.date.fromisoformat(DAY), out, files, tiles=[])
    message = str(err.value)
    assert str(files[1]) in message and repr(name) in message and "\n" not in message
    assert not out.exists()


def test_a_portfolio_row_links_its_experiment_whatever_the_id(tmp_path: Path) -> None:
    """Ids may hold ':' and spaces (expkit.schema.SLICE_VALUE_CHARS): ``search:v3/index.html`` would
    be read as a URL of scheme ``search``; the link must resolve to the experiment's page."""
    folder = tmp_path / DAY
    for exp in ("search:v3", "ranker a"):
        (folder / exp).mkdir(parents=True)
        doc = summary_doc(DAY, exp, _decision("no_effect", 0.004, -0.02, 0.03))
        (folder / exp / "summary.json").write_text(json.dumps(doc))
        write_index(folder / exp, doc, tmp_path, exp)
    doc = {**summary_doc(DAY), "tiles": {}, "experiment_id": None, "layout": "portfolio", "arm_health": []}
    write_portfolio_index(folder, doc, tmp_path)
    base = (folder / "index.html").resolve().as_uri()
    for row in rows_of((folder / "index.html").read_text(), "portfolio-row"):
        exp = row["attrs"]["data-experiment"]
        (href,) = row["links"]
        assert url2pathname(urlsplit(urljoin(base, href)).path) == str((folder / exp / "index.html").resolve())


def test_an_experiment_dropped_from_a_day_is_no_longer_linked_from_its_other_days(tmp_path: Path) -> None:
    """A full rerun of a day without one of its experiments (its end_date moved, its file removed)
    removes that experiment's folder: its pages on the neighbouring days must stop linking it."""
    wh = tmp_path / "wh"
    (wh / "events").mkdir(parents=True)
    files = _experiment_files(tmp_path / "params", ["ranker_a", "search_b"])
    out = tmp_path / "out"
    for day in ("2026-11-12", "2026-11-13", DAY):
        run_portfolio(wh, dt.date.fromisoformat(day), out, files, tiles=[])
    earlier, later = out / "2026-11-12" / "search_b" / "index.html", out / DAY / "search_b" / "index.html"
    assert 'rel="next" href="../../2026-11-13/search_b/index.html"' in earlier.read_text()
    run_portfolio(wh, dt.date.fromisoformat("2026-11-13"), out, files[:1], tiles=[])
    assert not (out / "2026-11-13" / "search_b").exists()
    assert 'rel="next" href="../../2026-11-14/search_b/index.html"' in earlier.read_text()
    assert 'rel="prev" href="../../2026-11-12/search_b/index.html"' in later.read_text()
    # the day rerun with one experiment's parameters file (the single-experiment layout): no
    # experiment page of another day links a folder of it
    run_daily(wh, dt.date.fromisoformat("2026-11-13"), out, files[0], tiles=[])
    assert not (out / "2026-11-13" / "ranker_a").exists() and (out / "2026-11-13" / "summary.json").is_file()
    assert 'rel="next" href="../../2026-11-14/ranker_a/index.html"' in \
        (out / "2026-11-12" / "ranker_a" / "index.html").read_text()
    assert 'rel="next" href="../2026-11-13/index.html"' in (out / "2026-11-12" / "index.html").read_text()


def test_default_params_is_the_working_folders_experiments_without_an_experiment_yaml(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A project whose params/ holds experiments/ and no experiment.yaml: without --params, daily
    reads its experiments, not the parameters file of another folder (the checkout's)."""
    params = _params_folder(tmp_path)
    assert not (params / "experiment.yaml").exists()
    monkeypatch.chdir(tmp_path)
    assert default_params().resolve() == params.resolve()


def test_a_run_of_one_experiment_keeps_another_experiments_single_layout_report(tmp_path: Path) -> None:
    """``--experiment ID`` keeps the day's other experiment reports; a day still in the single-experiment
    layout (``D/summary.json``, another experiment's) cannot be kept beside a portfolio: exit 2
    naming it, the day as it was (docs/reports.md, "The portfolio")."""
    wh = tmp_path / "wh"
    (wh / "events").mkdir(parents=True)
    files = _experiment_files(tmp_path / "params", ["ranker_a", "search_b"])
    out = tmp_path / "out"
    run_daily(wh, dt.date.fromisoformat(DAY), out, files[0], tiles=[])
    summary = (out / DAY / "summary.json").read_text()
    with pytest.raises(ConfigError) as err:
        run_portfolio(wh, dt.date.fromisoformat(DAY), out, files, tiles=[], only="search_b")
    assert "'ranker_a'" in str(err.value) and "--experiment" in str(err.value) and "\n" not in str(err.value)
    assert (out / DAY / "summary.json").read_text() == summary and not (out / DAY / "search_b").exists()
    run_portfolio(wh, dt.date.fromisoformat(DAY), out, files, tiles=[], only="ranker_a")  # its own: rebuilt
    assert (out / DAY / "ranker_a" / "summary.json").is_file() and not (out / DAY / "summary.json").exists()
