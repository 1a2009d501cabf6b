"""The health notebooks run under Papermill as the daily report runs them (slow: kernels)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from expkit.report.runner import NotebookJob, execute_notebook, run_parallel
from expkit.tiles.registry import HEALTH_IDS, TILES

from .conftest import END, SynthWarehouse

pytestmark = pytest.mark.slow

EXPECTED = {
    "latency": "breach", "coverage": "breach", "errors": "breach", "fallback": "ok", "cache": "breach",
    "volume": "ok", "freshness": "breach", "anomaly": "warn",
}
"""Statuses on the day with five incidents (see conftest.py)."""


def _job(tile: str, out: Path, wh: Path, **extra: str) -> NotebookJob:
    params = {"warehouse": str(wh), "event_date": END.isoformat(), "sidecar_path": str(out / f"{tile}.json"), **extra}
    return NotebookJob(TILES[tile].notebook, out / f"{tile}.ipynb", params, timeout=600)


def test_health_notebooks_write_sidecars_and_a_bad_one_fails_alone(incidents: SynthWarehouse,
                                                                  tmp_path: Path) -> None:
    good = [_job(t, tmp_path, incidents.root) for t in HEALTH_IDS]
    bad = _job("latency", tmp_path / "bad", incidents.root, window="3w")
    runs = run_parallel([*good, bad], execute_notebook, workers=2)
    for tile, run in zip(HEALTH_IDS, runs, strict=False):
        assert run.ok, (tile, run.error)
        side = json.loads((tmp_path / f"{tile}.json").read_text())
        assert side["tile"] == tile and side["section"] == "health"
        assert side["status"] == EXPECTED[tile], (tile, side["summary"])
        assert side["params"]["event_date"] == END.isoformat() and side["headline"]
    failed = runs[-1]
    assert not failed.ok and failed.error.startswith("ExpkitError") and "3w" in failed.error
    assert not (tmp_path / "bad" / "latency.json").exists()


def test_papermill_exits_non_zero_on_bad_parameters(incidents: SynthWarehouse, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "papermill", str(TILES["errors"].notebook), str(tmp_path / "out.ipynb"),
           "-p", "warehouse", str(incidents.root), "-p", "event_date", END.isoformat(), "-p", "window", "3w",
           "--no-progress-bar"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "not a window" in proc.stderr + proc.stdout
