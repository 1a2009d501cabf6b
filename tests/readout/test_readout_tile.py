"""The readout tile's verdict on real synthetic warehouses (docs/readout.md)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
from readout_support import ARTIFACTS, END, ROOT, build

from expkit import run_tile
from expkit.cli import main
from expkit.tiles.base import headline_of
from expkit.tiles.readout import Readout


def _readout(wh: Path, params: Path, day: dt.date = END):
    return run_tile("readout", event_date=day, warehouse=wh, params_file=params)


def test_a_short_experiment_keeps_running_with_days_remaining(short: tuple[Path, Path]) -> None:
    res = _readout(*short)
    head = res.headline
    assert head["verdict"] == "keep_running" and res.status == "ok"
    # the compute step's typed result is what the headline shows
    assert isinstance(res.result, Readout) and res.headline == headline_of(res.result)
    assert res.result.progress.days_run == 3 and res.result.arms["treatment"].primary.metric == "CTR proxy"
    (reason,) = head["reasons"]
    assert reason.startswith("CTR proxy ") and "not yet conclusive" in reason and "more days" in reason
    progress = head["progress"]
    assert progress["days_run"] == 3 and 0 < progress["fraction"] < 1 and progress["days_remaining"] > 0
    arm = head["arms"]["treatment"]["primary"]
    assert arm["seq_low"] < arm["rel_low"] < arm["rel_lift"] < arm["rel_high"] < arm["seq_high"]
    # validation and alerts did not run for this warehouse: their gates say so, never "pass"
    gates = {g["gate"]: g["status"] for g in head["trust"]}
    assert gates == {"srm": "pass", "validation": "not_judged", "bucket_consistency": "not_judged",
                     "alerts": "not_judged"}


def test_traffic_imbalance_is_untrustworthy_naming_srm(imbalance: tuple[Path, Path]) -> None:
    res = _readout(*imbalance)
    assert res.headline["verdict"] == "untrustworthy" and res.status == "breach"
    assert any(r.startswith("srm check failed: sample ratio mismatch") for r in res.headline["reasons"])


def test_a_date_before_the_start_has_no_verdict(short: tuple[Path, Path]) -> None:
    res = _readout(*short, day=END - dt.timedelta(days=5))
    assert res.status == "no_data" and "before the experiment's start" in res.summary


@pytest.mark.slow
def test_aa_experiments_peeked_every_day_never_conclude(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A/A (true lift 0) read every day for 14 days: the always-valid interval never calls the
    primary metric better or worse, so no day shows ship or roll_back (two seeds; the
    stats-level calibration over 600 simulated experiments is in tests/readout/test_readout_decision.py)."""
    for seed in (51, 52):
        wh, params = build(tmp_path_factory.mktemp(f"aa{seed}"), days=14, users=2500, seed=seed,
                           lift={"treatment": 0.0})
        for k in range(14):
            head = _readout(wh, params, END - dt.timedelta(days=13 - k)).headline
            assert head["verdict"] not in ("ship", "roll_back"), (seed, k, head["reasons"])
            assert not any("significantly" in r for r in head["reasons"]), (seed, k, head["reasons"])


PROBE = """(() => {
  const v = document.getElementById('verdict');
  const top = (el) => el.getBoundingClientRect().top;
  const others = ['dl.meta', 'main', '.banner', 'section#health']
    .flatMap((s) => Array.from(document.querySelectorAll(s)));
  return {verdictTop: top(v), height: v.getBoundingClientRect().height, viewport: window.innerHeight,
          othersTop: others.map(top), badge: v.querySelector('.verdict-badge').innerText, text: v.innerText};
})()"""


@pytest.mark.slow
def test_the_verdict_is_the_first_thing_on_the_index(short: tuple[Path, Path], tmp_path: Path) -> None:
    """A real daily run, its index opened in headless Chromium: the verdict box sits above
    everything but the title, and says what the readout decided."""
    sys.path.insert(0, str(ROOT / "tests" / "report"))
    from report_browser import Browser  # tests/report's Chromium driver

    wh, params = short
    out = tmp_path / "reports"
    assert main(["daily", "--warehouse", str(wh), "--date", END.isoformat(), "--out", str(out),
                 "--params", str(params), "--quiet"]) == 0
    summary = json.loads((out / END.isoformat() / "summary.json").read_text())
    assert summary["verdict"] == summary["decision"]["verdict"] == "keep_running"
    assert {g["gate"]: g["status"] for g in summary["decision"]["trust"]} == {
        "srm": "pass", "validation": "pass", "bucket_consistency": "pass", "alerts": "pass"}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser = Browser()
    try:
        visit, dom = browser.visit(out / END.isoformat() / "index.html", ARTIFACTS / "index-verdict.png", probe=PROBE)
    finally:
        browser.close()
    assert all(r.startswith("file://") for r in visit.requests) and not visit.exceptions
    assert dom["badge"].strip().lower() == "keep running"
    assert 0 < dom["verdictTop"] < dom["viewport"] and dom["height"] > 40
    assert all(dom["verdictTop"] < t for t in dom["othersTop"])
    assert summary["decision"]["reasons"][0] in dom["text"]
