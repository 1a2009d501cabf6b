"""Validation history that cannot be written: the results stand, one warning says so."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from expkit.validation import CHECKS, validate

from .validation_support import END


def _unwritable_history(src: Path, dest: Path) -> Path:
    """A copy of warehouse ``src`` whose validation history cannot be written.

    The tests run as root, which ignores permission bits (a chmod-ed read-only folder is
    still writable to root), so the history folder is replaced by a *file*:
    ``state/validation/<date>/`` can then not be created by anyone (NotADirectoryError).
    """
    shutil.copytree(src, dest)
    history = dest / "state" / "validation"
    shutil.rmtree(history, ignore_errors=True)
    history.write_text("not a folder\n")
    return dest


def test_unrecorded_run_keeps_its_results(small: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    wh = _unwritable_history(small, tmp_path / "wh")
    run = validate(wh, END)
    assert {c.name for c in run.checks} == {c.name for c in CHECKS}
    assert run.unrecorded and "NotADirectoryError" in run.unrecorded
    # only expkit's own records: a kernel client of an earlier test in this worker may log as it
    # is garbage-collected (traitlets: "Could not destroy zmq context")
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and r.name.startswith("expkit")]
    assert len(warnings) == 1 and "not recorded" in warnings[0].getMessage()
    assert (wh / "state" / "validation").is_file()


@pytest.mark.slow
def test_daily_on_an_unwritable_history_shows_the_checks_and_warns_once(small: Path, tmp_path: Path) -> None:
    """``expkit daily --quiet``: the page and summary.json keep every check; stderr has one
    warning line about the history and no traceback."""
    wh = _unwritable_history(small, tmp_path / "wh")
    out = tmp_path / "reports"
    run = subprocess.run(
        [str(Path(sys.executable).with_name("expkit")), "daily", "--quiet", "--warehouse", str(wh),
         "--date", END.isoformat(), "--out", str(out), "--workers", "2"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    history_lines = [line for line in run.stderr.splitlines() if "validation" in line.lower()]
    assert len(history_lines) == 1 and "not recorded" in history_lines[0], run.stderr
    summary = json.loads((out / END.isoformat() / "summary.json").read_text())
    assert summary["step_errors"] == {}
    assert {c["name"] for c in summary["checks"]} == {c.name for c in CHECKS}
    index = (out / END.isoformat() / "index.html").read_text()
    assert "No validation checks were run" not in index
    assert index.count('<tr class="check-') == len(summary["checks"])
