"""The stats benchmark script runs, reports per-10k figures and records only with --record."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
SMALL = ["--slices", "300", "--users", "20", "--repeat", "3", "--loop-slices", "50"]


@pytest.fixture()
def bench(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    common = importlib.import_module("_common")
    monkeypatch.setattr(common, "DOCS", tmp_path / "benchmarks.md")
    spec = importlib.util.spec_from_file_location("bench_stats", BENCH / "bench_stats.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_stats", None)


def test_prints_figures_without_recording(bench, tmp_path, capsys):
    assert bench.main(SMALL) == 0
    out = capsys.readouterr().out
    assert "ms per 10k slices" in out and "per-slice statsmodels loop" in out
    assert not (tmp_path / "benchmarks.md").exists()


def test_record_appends_dated_entries(bench, tmp_path, capsys):
    bench.main([*SMALL, "--record"])
    bench.main([*SMALL, "--record"])
    text = (tmp_path / "benchmarks.md").read_text()
    assert text.startswith("# Benchmarks") and text.count("### expkit.stats") == 2
    assert "- machine: " in text and "ms per 10k slices" in text
