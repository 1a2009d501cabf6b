"""The deep dive (docs/deepdive.md): its sections agree with the tiles and with a direct computation
from the rollups, the notebook runs through Papermill, ``expkit deepdive`` renders an offline page
that Chromium draws and the day's index links, and bad parameters exit 2 naming the parameter."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import nbformat
import papermill as pm
import pytest
from deepdive_support import END, EXPKIT, NOTEBOOK, Built

from expkit import deepdive
from expkit.api import compute_tile
from expkit.charts import VEGALITE_MIME
from expkit.errors import ExpkitError
from expkit.report import run_daily

pytestmark = pytest.mark.slow


def _datasets(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every data row of a Vega-Lite spec (Altair puts them in ``datasets``)."""
    return [row for rows in spec.get("datasets", {}).values() for row in rows]


def test_lift_per_slice_matches_the_lift_tile(planted: Built) -> None:
    """Each slice value's lift is the lift tile's for the same window and slice, and the flagged
    segments are the tile's headline ``segments`` (the planted region=eu among them)."""
    dd = deepdive.open_deepdive(**planted.kwargs(window="7d"))
    frame = deepdive.lift_frame(dd)
    tile = compute_tile("lift", **planted.kwargs(window="7d", slice="region"))
    ours = frame[frame["slice"] == "region"].set_index(["bucket", "metric", "slice_value"])
    theirs = tile.table[tile.table["slice_value"] != "all"].set_index(["bucket", "metric", "slice_value"])
    assert len(ours) == len(theirs) > 0
    for col in ("rel_lift", "rel_low", "rel_high", "seq_low", "seq_high", "users_treatment"):
        assert ours[col].to_numpy() == pytest.approx(theirs.loc[ours.index, col].to_numpy(), rel=1e-12), col
    flagged = {(r.bucket, r.metric, r.slice, r.slice_value) for r in frame[frame[deepdive.FLAG_COLUMN]].itertuples()}
    headline = {(s["bucket"], s["metric"], s["slice"], s["value"]) for s in tile.headline["segments"]
                if s["metric"] in dd.metrics and s["slice"] in dd.slices}
    assert flagged == headline
    assert ("treatment", "ctr", "region", "eu") in flagged


def test_cuped_off_is_the_ratio_of_summed_rollups_and_on_is_the_timeline_tile(planted: Built) -> None:
    """CUPED off: the lift of Σclicks/Σimpressions per arm, summed by hand over the experiment's
    ``user_day`` rollups (DuckDB, no expkit code). CUPED on: the timeline tile's cumulative lift."""
    dd = deepdive.open_deepdive(**planted.kwargs(metrics="ctr"))
    lift = deepdive.cumulative_lift(dd)
    last = lift[lift["day"] == END]
    off = last[~last["cuped_on"]].iloc[0]
    on = last[last["cuped_on"]].iloc[0]
    start = dt.date.fromisoformat(planted.truth["start_date"])
    days = [start + dt.timedelta(days=i) for i in range((END - start).days + 1)]
    rollup = planted.path / "rollups" / "user_day"
    files = [str(f) for d in days for f in (rollup / f"event_date={d}").glob("*.parquet")]
    sums = duckdb.sql(f"""
        WITH u AS (SELECT user_id, arg_min(bucket, first_ms) AS bucket, sum(clicks) AS c, sum(impressions) AS i
                   FROM read_parquet({files!r}) WHERE slice = 'all' GROUP BY user_id)
        SELECT bucket, sum(c) / sum(i) AS ctr FROM u GROUP BY bucket""").fetchall()
    ctr = dict(sums)
    assert off["rel_lift"] == pytest.approx(ctr["treatment"] / ctr["control"] - 1, rel=1e-9)
    assert bool(on["cuped"]) and 0 < on["variance_reduction"] < 1
    cum = compute_tile("timeline", **planted.kwargs()).headline["cumulative_lift"]["treatment"]["ctr"]
    assert on["rel_lift"] == pytest.approx(cum["rel_lift"], rel=1e-12)
    assert on["seq_low"] == pytest.approx(cum["seq_low"], rel=1e-12)
    assert on["rel_high"] - on["rel_low"] < off["rel_high"] - off["rel_low"]  # CUPED narrows the interval


def test_query_any_template_and_bad_parameters(planted: Built) -> None:
    dd = deepdive.open_deepdive(**planted.kwargs())
    values = deepdive.query(dd, "slice_values", slice_column="region", experiment_id=dd.experiment_id)
    assert "eu" in set(values["slice_value"])
    as_text = deepdive.query(dd, "slice_values", days=[END.isoformat()], slice_column="region",
                             experiment_id=dd.experiment_id)  # dates as the notebooks' event_date takes them
    assert as_text.equals(values)
    with pytest.raises(ExpkitError, match="parameter days '14/11/2026' is not a valid date"):
        deepdive.query(dd, "slice_values", days=["14/11/2026"], slice_column="region", experiment_id=dd.experiment_id)
    sums = deepdive.arm_sums(dd, "ctr", "control", cuped=False)
    assert set(sums) == {"n", "sum_num", "sum_den", "sum_num2", "sum_den2", "sum_numden"} and sums["n"] > 0
    bad = {"window": ("3w", "parameter window="), "metrics": ("ctr,nope", "parameter metrics: 'nope'"),
           "slices": ("region,country", "parameter slices: 'country'"),
           "event_date": ("2026-11-12", "before the start of experiment rec_ranker_v2 \\(2026-11-13\\)")}
    for key, (value, message) in bad.items():
        with pytest.raises(ExpkitError, match=message):
            deepdive.open_deepdive(**planted.kwargs(**{key: value}))
    with pytest.raises(ExpkitError, match="unknown query template 'nope'"):
        deepdive.query(dd, "nope")


def test_notebook_through_papermill(planted: Built, tmp_path: Path) -> None:
    """The notebook, run by Papermill: every section shown, no error, a forest plot per metric with
    the planted segment ringed, CUPED on and off in the timeline, the sidecar written."""
    sidecar = tmp_path / "sidecar.json"
    out = tmp_path / "experiment.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOK.parent),
                        parameters={**planted.kwargs(), "metrics": ["ctr", "recall"], "sidecar_path": str(sidecar)})
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    specs = [o["data"][VEGALITE_MIME] for o in outputs if VEGALITE_MIME in o.get("data", {})]
    assert all("image/svg+xml" in o["data"] for o in outputs if VEGALITE_MIME in o.get("data", {}))
    forests = [s for s in specs if "red ring: effect differs" in json.dumps(s.get("title", ""))]
    assert len(forests) == 2  # ctr, recall
    ctr_rows = _datasets(forests[0])
    eu = [r for r in ctr_rows if r.get("row") == "region = eu" and r.get("arm") == "treatment"]
    assert eu and all(r[deepdive.FLAG_COLUMN] for r in eu)
    assert not any(r[deepdive.FLAG_COLUMN] for r in ctr_rows if r.get("slice") == "all")
    lines = {r.get("line") for s in specs for r in _datasets(s) if "line" in r}
    assert {"treatment · CUPED on", "treatment · CUPED off"} <= lines
    novelty = compute_tile("novelty", **planted.kwargs())
    assert [s for s in specs if "by days since first exposure" in json.dumps(s.get("title", ""))]
    assert deepdive.novelty_section(deepdive.open_deepdive(**planted.kwargs())).summary == novelty.summary
    text = json.dumps([o.get("data", {}).get("text/html", "") for o in outputs])
    assert "Verdict:" in text and "effect differs in region=eu" in text and "coverage" in text
    streams = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "stats_rows" in streams and "ctr, treatment, CUPED on:" in streams
    doc = json.loads(sidecar.read_text())
    assert doc["status"] in ("ok", "breach") and doc["summary"].startswith("Verdict:")


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # generous: a loaded CI machine has taken minutes for what takes 10 s of CPU
    return subprocess.run([str(EXPKIT), "deepdive", *args], capture_output=True, text=True, cwd=cwd, timeout=1800)


def test_expkit_deepdive_page_offline_in_chromium_and_linked(planted: Built, tmp_path: Path, browser) -> None:
    """``expkit deepdive`` after the day's report: an offline page without code whose charts the
    inline library draws, linked from the re-rendered index; nothing leaves file://."""
    out = tmp_path / "reports"
    run_daily(planted.path, END, out, planted.params_file, tiles=[])  # the day's (empty) report, its index
    index = out / END.isoformat() / "index.html"
    assert "deepdive-link" not in index.read_text()
    run = _run("--warehouse", str(planted.path), "--date", END.isoformat(), "--out", str(out), "--params",
               str(planted.params_file), "-p", "metrics=ctr,save_rate", "-p", "slices=region,cohort", "--quiet",
               "--timeout", "1500")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    page = Path(result["html"])
    assert page == out / END.isoformat() / "deepdive" / "index.html" and result["error"] is None
    assert Path(result["index"]) == index
    assert not list((out / END.isoformat()).glob(".tmp-*"))
    html = page.read_text()
    assert "open_deepdive(" not in html and 'class="highlight' not in html, "no code on the page"
    assert "<h2" in html and "Lift per slice" in html, "the markdown cells' headings are"
    as_of = compute_tile("ctr", **planted.kwargs()).as_of  # the tiles' "data as of", not "unknown"
    assert as_of and f"<dt>Data as of</dt><dd>{as_of}</dd>" in html
    visit, facts = browser.visit(page)
    assert all(u.startswith("file://") for u in visit.requests), visit.requests
    assert not visit.exceptions and not visit.console_errors, (visit.exceptions, visit.console_errors)
    assert facts["charts"] and all(state == "drawn" for state in facts["charts"]), facts["charts"]
    assert len(facts["charts"]) == 1 + 2 + 1 + 1  # the readout's, a forest per metric, the timeline, novelty
    assert all(marks > 10 for marks in facts["svgMarks"])
    assert "Lift per slice" in facts["text"] and "effect differs in region=eu" in facts["text"]
    assert "../index.html" in facts["links"] and "experiment.ipynb" in facts["links"]
    _, index_facts = browser.visit(index)
    assert "deepdive/index.html" in index_facts["links"]


def test_expkit_deepdive_bad_input_exits_2_naming_the_parameter(planted: Built, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    base = ["--warehouse", str(planted.path), "--date", END.isoformat(), "--out", str(out), "--params",
            str(planted.params_file), "--quiet"]
    bad = {
        ("-p", "window=3w"): "parameter window='3w' is not a window",
        ("-p", "metrics=ctr,clicks"): "parameter metrics: 'clicks' is not an outcome metric",
        ("-p", "slices=country"): "parameter slices: 'country' is not a slice column",
        ("-p", "slice=region"): "-p slice=...: unknown parameter",
        ("-p", "window"): "expected key=value",
        ("--date", "2026-13-01"): "2026-13-01",
        ("--warehouse", str(tmp_path / "nowhere")): str(tmp_path / "nowhere"),
        # a pre-period day (rolled up, before start_date) and a day never rolled up
        ("--date", "2026-11-12"): "parameter event_date=2026-11-12: before the start of experiment",
        ("--date", "2026-11-20"): "parameter event_date=2026-11-20: no outcome statistics of that day",
    }
    for (flag, value), message in bad.items():
        args = [*base, flag, value] if flag == "-p" else [*base[: base.index(flag) + 1], value,
                                                           *base[base.index(flag) + 2:]]
        run = _run(*args)
        assert run.returncode == 2, (flag, value, run.stderr)
        assert message in run.stderr and "Traceback" not in run.stderr, (flag, value, run.stderr)
        assert run.stderr.count("\n") == 1, run.stderr
    assert not out.exists() or not any(out.rglob("deepdive")), "nothing written"


def test_a_deep_dive_is_not_linked_from_another_experiments_report(planted: Built, tmp_path: Path) -> None:
    """A day whose report (the single-experiment layout, ``D/summary.json``) is another experiment's,
    e.g. a report folder that went from one experiment to several (docs/reports.md, "The
    portfolio"): the deep dive of this experiment must not be put beside it and linked from its
    page; exit 2 naming both, nothing written."""
    import yaml

    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**yaml.safe_load(planted.params_file.read_text()), "experiment_id": "other_exp"}))
    out = tmp_path / "reports"
    run_daily(planted.path, END, out, other, tiles=[])
    index = out / END.isoformat() / "index.html"
    before = index.read_text()
    run = _run("--warehouse", str(planted.path), "--date", END.isoformat(), "--out", str(out), "--params",
               str(planted.params_file), "--quiet")
    assert run.returncode == 2, run.stderr
    assert "other_exp" in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert not any(out.rglob("deepdive")) and index.read_text() == before
