"""Bad input on the command line: one clear line, exit status 2, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def expkit(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "expkit.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env=None if env is None else {**os.environ, **env})


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("expkit ") and "error:" in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--days", "0"], ["days"]),
        (["--incident", "meteor_strike"], ["meteor_strike", "latency_spike"]),
        (["--incident", "latency_spike@25:00/30"], ["latency_spike@25:00/30"]),
        (["--end", "2026-02-30"], ["2026-02-30"]),
    ],
)
def test_synth_bad_input_writes_nothing(tmp_path: Path, extra: list[str], needles: list[str]) -> None:
    args = {"--days": "2", "--end": "2026-11-14"}
    for k, v in zip(extra[::2], extra[1::2], strict=True):
        args[k] = v
    flat = [x for kv in args.items() for x in kv]
    out = tmp_path / "wh"
    proc = expkit("synth", "--out", str(out), "--users", "100", *flat)
    assert_one_line_error(proc, *needles)
    assert not out.exists()


def test_synth_into_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    proc = expkit("synth", "--out", str(f), "--days", "1", "--end", "2026-11-14", "--users", "100")
    assert_one_line_error(proc, str(f))
    assert f.read_text() == "x"


def test_rollup_bad_inputs(tmp_path: Path, small_wh: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert_one_line_error(expkit("rollup", "--warehouse", str(f), "--date", "2026-11-14"), "is a file")
    assert_one_line_error(expkit("rollup", "--warehouse", str(small_wh), "--date", "2026-02-30"), "2026-02-30")
    before = sorted(p.name for p in (small_wh / "rollups" / "health_bins").iterdir())
    proc = expkit("rollup", "--warehouse", str(small_wh), "--date", "2025-01-01")
    assert_one_line_error(proc, "2025-01-01", "dates present")
    assert sorted(p.name for p in (small_wh / "rollups" / "health_bins").iterdir()) == before
    assert_one_line_error(expkit("rollup", "--warehouse", str(tmp_path / "none"), "--date", "2026-11-14"),
                          "no events/ folder")


def test_tile_bad_parameters_fail_fast(small_wh: Path, tmp_path: Path) -> None:
    base = ["tile", "ctr", "--warehouse", str(small_wh), "--date", "2026-11-14", "--out", str(tmp_path)]
    assert_one_line_error(expkit(*base, "-p", "window=3w"), "window='3w'")
    assert_one_line_error(expkit(*base, "-p", "slice=planet"), "slice='planet'")
    assert_one_line_error(expkit(*base, "-p", "colour=red"), "colour")
    assert_one_line_error(expkit(*base, "-p", 'filters={"planet": ["x"]}'), "planet")
    assert_one_line_error(expkit("tile", "nope", "--warehouse", str(small_wh), "--date", "2026-11-14"), "nope")
    assert not any(tmp_path.iterdir())


def test_tile_without_its_notebook_fails_fast(small_wh: Path, tmp_path: Path) -> None:
    """A catalogue metric given a tile page before ``make notebooks`` wrote its notebook: one
    line naming the notebook and the fix, before a kernel starts, nothing written."""
    empty, out = tmp_path / "notebooks", tmp_path / "out"
    empty.mkdir()
    proc = expkit("tile", "ctr", "--warehouse", str(small_wh), "--date", "2026-11-14", "--out", str(out),
                  env={"EXPKIT_NOTEBOOKS": str(empty)})
    assert_one_line_error(proc, str(empty / "outcomes" / "ctr.ipynb"), "make notebooks")
    assert not out.exists()
