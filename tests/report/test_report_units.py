"""Fast unit tests of the report pieces (no kernels, no browser)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from report_support import ALERTS, CHECKS, DAY, EVIL, NOTEBOOKS, PARAMS, tile

from expkit.errors import ConfigError, ExpkitError
from expkit.report import (
    NotebookJob,
    PageInfo,
    Tile,
    TileOutcome,
    build_summary,
    execute_notebook,
    read_sidecar,
    render_index,
    resolve_tiles,
    summary_problems,
)
from expkit.report.html import clean_svg, render_failure_html
from expkit.report.index import alert_timeline
from expkit.report.runner import short_error
from expkit.report.summary import load_params

CHART_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    '<g clip-path="url(#c1)"><rect width="5" height="5"/><text>&lt;b&gt;</text></g></svg>'
)


def _summary(tiles: list[TileOutcome]) -> dict:
    return build_summary(
        date=DAY,
        generated_at="2026-11-06T06:00:00Z",
        params=load_params(PARAMS),
        tiles=tiles,
        alerts=ALERTS,
        checks=CHECKS,
        run_seconds=12.5,
        version="v0.1.0-3-gabc1234",
    )


def _outcomes() -> list[TileOutcome]:
    return [
        TileOutcome("latency", "health", EVIL, "ok", {"p95": 42}, summary=EVIL, html="tiles/latency.html"),
        TileOutcome("ctr", "outcomes", "CTR", "failed", error=f"ValueError: {EVIL}", html="tiles/ctr.html"),
    ]


def test_summary_document_meets_the_contract() -> None:
    doc = _summary(_outcomes())
    assert summary_problems(doc) == []
    assert summary_problems(json.loads(json.dumps(doc))) == []
    assert list(doc)[:7] == ["date", "generated_at", "code_version", "params", "tiles", "alerts", "checks"]
    assert doc["ok"] is False
    assert doc["params"]["experiment"]["buckets"] == {"control": 0.5, "treatment": 0.5}
    assert set(doc["tiles"]["ctr"]) >= {"status", "headline", "html", "error"}


def test_summary_problems_catches_departures() -> None:
    doc = _summary(_outcomes())
    doc["tiles"]["latency"]["status"] = "great"
    del doc["checks"][0]["threshold"]
    doc["alerts"][0]["fired_at"] = "yesterday"
    doc["tiles"]["ctr"]["html"] = "/abs/ctr.html"
    del doc["code_version"]
    problems = summary_problems(doc)
    assert len(problems) == 6, problems


def test_missing_alert_and_check_keys_become_null() -> None:
    doc = build_summary(
        date=DAY,
        generated_at="2026-11-06T06:00:00Z",
        params={},
        tiles=[],
        alerts=[{"rule": "ctr_low", "severity": "P3", "runbook": "see wiki"}],
        checks=[{"name": "freshness", "status": "warn"}],
        run_seconds=1,
    )
    assert doc["alerts"][0]["resolved_at"] is None and doc["alerts"][0]["runbook"] == "see wiki"
    assert doc["checks"][0]["table"] is None
    with pytest.raises(ExpkitError, match="alert #0"):
        build_summary(date=DAY, generated_at="x", params={}, tiles=[], alerts=["oops"], checks=[], run_seconds=0)


def test_index_escapes_and_shows_everything() -> None:
    html = render_index(_summary(_outcomes()), prev_day="2026-11-04", next_day=None)
    assert EVIL not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # title, summary, error, label, check
    assert 'href="../2026-11-04/index.html"' in html and "no later report" in html
    assert 'href="tiles/latency.html"' in html
    assert "<script" not in html
    assert "error_rate_high" in html and "join_integrity" in html
    assert 'class="timeline"' in html
    assert "1 validation check failed" in html
    assert "1 alert still firing at the end of the day: error_rate_high (P1)" in html
    # a P2 that resolved before midnight still reaches the banner, and so does the kill switch
    assert "latency_p95_high (P2) fired 14:10, resolved 14:45 UTC" in html
    assert "disable_experiment pulled by error_rate_high at 20:10 UTC" in html


def test_banner_lists_a_p1_that_resolved_and_its_kill_switch() -> None:
    doc = _summary([])
    doc["checks"] = []
    doc["alerts"] = [{**ALERTS[1], "state": "resolved", "resolved_at": "2026-11-05T21:00:00Z"}]
    html = render_index(doc)
    banner = html.split('<div class="banner bad" role="alert">', 1)[1].split("</div>\n  </div>", 1)[0]
    assert "error_rate_high (P1) fired 20:10, resolved 21:00 UTC" in banner
    assert "disable_experiment pulled by error_rate_high at 20:10 UTC" in banner
    assert "still firing" not in banner
    empty = _summary([])
    empty["alerts"], empty["checks"] = [], []
    html = render_index(empty)
    assert "No alerts for this day." in html and 'class="timeline"' not in html


def test_alert_timeline_geometry() -> None:
    tl = alert_timeline(ALERTS, DAY)
    assert tl is not None and len(tl.bars) == 2
    first, second = tl.bars
    hour = tl.plot_w / 24
    assert first.x == pytest.approx(tl.plot_x + 14 * hour, abs=0.2)
    assert first.width == pytest.approx(0.75 * hour, abs=0.2)
    # unresolved alerts run to the end of the day
    assert second.x + second.width == pytest.approx(tl.plot_x + tl.plot_w, abs=0.2)
    assert alert_timeline([], DAY) is None


def test_clean_svg_inlines_charts_and_quarantines_the_rest() -> None:
    assert clean_svg(CHART_SVG) == CHART_SVG
    assert clean_svg('<?xml version="1.0"?>\n' + CHART_SVG) == CHART_SVG
    for bad in (
        CHART_SVG.replace("<g ", "<script>alert(1)</script><g "),
        CHART_SVG.replace("<rect ", '<rect onload="alert(1)" '),
        CHART_SVG.replace("<rect ", '<image href="https://example.com/x.png"/><rect '),
        CHART_SVG.replace("<g ", "<foreignObject><div/></foreignObject><g "),
    ):
        out = clean_svg(bad)
        assert out.startswith('<img alt="chart" src="data:image/svg+xml;base64,'), bad


def test_failure_page_escapes() -> None:
    page = PageInfo("t", EVIL, "health", "failed", "2026-11-05", error=EVIL, params={"genre": EVIL})
    html = render_failure_html(page)
    assert EVIL not in html and html.count("&lt;script&gt;") == 4  # <title>, <h1>, error, param


def test_read_sidecar(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    assert read_sidecar(p)[1].startswith("NoSidecar")
    p.write_text("{not json")
    assert read_sidecar(p)[1].startswith("InvalidSidecar")
    p.write_text(json.dumps({"status": "fine"}))
    assert "status 'fine'" in read_sidecar(p)[1]
    p.write_text(json.dumps({"status": "warn", "headline": {"x": 1}}))
    assert read_sidecar(p) == ({"status": "warn", "headline": {"x": 1}}, None)


def test_resolve_tiles(tmp_path: Path) -> None:
    a, b = tile("a", "outcomes", "plain.ipynb"), tile("b", "health", "plain.ipynb")
    assert [t.id for t in resolve_tiles({"a": a, "b": b})] == ["b", "a"]  # health first
    with pytest.raises(ExpkitError, match="twice"):
        resolve_tiles([a, a])
    with pytest.raises(ExpkitError, match="section"):
        resolve_tiles([Tile("x", "other", "X", notebook_file=NOTEBOOKS / "plain.ipynb")])
    # a missing notebook fails that tile when it runs, not the whole run
    assert resolve_tiles([Tile("x", "health", "X", notebook_file=tmp_path / "nope.ipynb")])[0].id == "x"


def test_short_error() -> None:
    assert short_error("ValueError", "a\n  b") == "ValueError: a b"
    assert short_error("E", "") == "E"
    long = short_error("E", "x" * 1000)
    assert len(long) == 300 and long.endswith("\u2026")


def test_execute_notebook_reports_a_broken_notebook(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{this is not a notebook")
    run = execute_notebook(NotebookJob(bad, tmp_path / "out.ipynb", timeout=10))
    assert not run.ok and run.error


def test_execute_notebook_names_a_missing_notebook_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "outcomes" / "top3_ctr.ipynb"
    run = execute_notebook(NotebookJob(missing, tmp_path / "out.ipynb", timeout=10))
    assert not run.ok and run.error is not None
    assert str(missing) in run.error and "make notebooks" in run.error and "Errno" not in run.error


def test_page_carries_each_chart_spec_exactly_and_leaves_the_notebook_alone(tmp_path: Path) -> None:
    import copy
    import re

    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from expkit.charts import VEGALITE_MIME
    from expkit.report import PageInfo, render_notebook_html

    specs = [{"mark": "bar", "data": {"values": [{"g": f"</script>{i} & <b>", "x": i / 3}]}} for i in range(2)]
    nb = new_notebook(cells=[
        new_code_cell("show()", outputs=[new_output("display_data", data={VEGALITE_MIME: specs[0]}),
                                         new_output("display_data", data={"text/html": "<p>expkit-chart-0</p>"})]),
        new_code_cell("show()", outputs=[new_output("display_data", data={VEGALITE_MIME: specs[1],
                                                                          "text/plain": "chart"})]),
    ])
    before = copy.deepcopy(nb)
    page = PageInfo("t", "T", "health", "ok", "2026-11-05")
    nbformat.write(nb, tmp_path / "nb.ipynb")
    for source in (nb, tmp_path / "nb.ipynb"):
        html = render_notebook_html(source, page)
        found = re.findall(r'<script[^>]*class="expkit-chart-spec"[^>]*>(.*?)</script>', html, re.S)
        assert [json.loads(f) for f in found] == specs
        assert "<p>expkit-chart-0</p>" in html and html.count('data-expkit="chart-library"') == 1
    assert nb == before


def test_kernels_listen_on_unix_sockets_not_tcp_ports(tmp_path: Path) -> None:
    # Over TCP, ports picked by the manager can be taken before the kernel binds them
    # ("Address already in use": the kernel dies before replying); socket files cannot collide.
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from expkit.report import runner

    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [new_code_cell("from ipykernel.kernelapp import IPKernelApp\n"
                              "app = IPKernelApp.instance()\nprint(app.transport, app.ip)")]
    nbformat.write(nb, tmp_path / "where.ipynb")
    runs = runner.run_parallel([NotebookJob(tmp_path / "where.ipynb", tmp_path / f"out{i}.ipynb", timeout=60)
                                for i in range(2)], execute_notebook, workers=2)
    assert [r.error for r in runs] == [None, None]
    seen = [nbformat.read(tmp_path / f"out{i}.ipynb", 4).cells[0].outputs[0]["text"].split() for i in range(2)]
    assert {transport for transport, _ in seen} == {"ipc"}
    prefixes = {ip for _, ip in seen}
    assert len(prefixes) == 2 and all(Path(ip).parent == Path(runner._socket_dir or "") for ip in prefixes)
    assert list(Path(runner._socket_dir or "").iterdir()) == []  # the kernels' sockets are removed


def test_load_params_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_params(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("a: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_params(tmp_path / "list.yaml")


def test_dates_accept_strings(tmp_path: Path) -> None:
    from expkit.report import run_daily

    r = run_daily(tmp_path, "2026-11-05", tmp_path / "out", PARAMS, tiles=[])
    assert r.date == dt.date(2026, 11, 5)


def test_summary_is_strict_json() -> None:
    out = TileOutcome("x", "health", "X", "ok", {"lift": float("nan"), "ci": [float("-inf"), 1.5]})
    doc = _summary([out])
    text = json.dumps(doc, allow_nan=False)  # raises on NaN/Infinity
    assert json.loads(text)["tiles"]["x"]["headline"] == {"lift": None, "ci": [None, 1.5]}


def test_chart_library_is_built_once_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Vega bundle (vl-convert) is built into the cache folder once, read back afterwards, and
    can be inlined (no closing script tag in it); an unwritable cache only costs a rebuild."""
    from expkit.report import vega

    monkeypatch.setenv("EXPKIT_CACHE_DIR", str(tmp_path / "cache"))
    vega.javascript_bundle.cache_clear()
    try:
        bundle = vega.javascript_bundle()
        assert "window.vegaEmbed" in bundle and "</script" not in bundle.lower()
        [cached] = (tmp_path / "cache").glob("vega-embed-vl*-vlconvert*.js")
        assert f"vl{vega.vegalite_version()}" in cached.name
        cached.write_text("window.vegaEmbed = 'from the cache';")
        vega.javascript_bundle.cache_clear()
        assert vega.javascript_bundle() == "window.vegaEmbed = 'from the cache';"

        blocker = tmp_path / "not-a-folder"
        blocker.write_text("")
        monkeypatch.setenv("EXPKIT_CACHE_DIR", str(blocker / "cache"))
        vega.javascript_bundle.cache_clear()
        assert vega.javascript_bundle() == bundle
    finally:
        vega.javascript_bundle.cache_clear()


def test_chart_specs_cannot_break_out_of_their_script() -> None:
    from expkit.report.vega import spec_json

    spec = {"datasets": {"d": [{"genre": "</script><script>alert(1)</script>", "x": "a & b \u2028"}]}}
    text = spec_json(spec)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == spec


def test_verdict_card_shows_the_variance_cuped_removed_as_a_fall() -> None:
    """``variance_reduction`` is ``1 − var_adjusted / var_unadjusted`` (docs/statistics.md,
    "CUPED"): 0.717 is a variance 71.7% lower, as the lift tile and the digest say, never "+71.7%"."""
    doc = _summary([])
    primary = {"metric": "ctr", "rel_lift": 0.158, "rel_low": 0.097, "rel_high": 0.219, "seq_low": 0.063,
               "seq_high": 0.253, "cuped": True, "variance_reduction": 0.717}
    doc["decision"] = {"verdict": "keep_running", "reasons": ["r"], "window": "cum", "trust": [],
                       "progress": {"required_per_arm": None},
                       "arms": {"treatment": {"verdict": "keep_running", "reasons": [], "primary": primary,
                                              "guardrails": []}}}
    arm = render_index(doc).split('<div class="verdict-arm">', 1)[1].split("</div>", 1)[0]
    assert "variance -71.7%" in arm and "+71.7%" not in arm
    doc["decision"]["arms"]["treatment"]["primary"] = {**primary, "variance_reduction": None}
    arm = render_index(doc).split('<div class="verdict-arm">', 1)[1].split("</div>", 1)[0]
    assert "CUPED" in arm and "variance" not in arm
