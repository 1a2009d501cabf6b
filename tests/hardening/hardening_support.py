"""Helpers of the hardening tests: a small rolled-up warehouse, the real command line
in-process, and snapshots that prove nothing was written."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from expkit.config import load_experiment
from expkit.rollup import build_range
from expkit.synth import generate

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "params" / "experiment.yaml"
END = dt.date(2026, 11, 14)
START = END - dt.timedelta(days=1)
USERS = 300

# The browser driver of the report tests (tests/report has no __init__: put it on the path).
sys.path.insert(0, str(REPO / "tests" / "report"))

Cli = Callable[..., tuple[int, str, str]]
"""``cli(*argv) -> (exit status, stdout, stderr)``: ``expkit ARGS...`` run in-process."""


def build_warehouse(out: Path, users: int = USERS) -> Path:
    """Two synthetic days ending :data:`END`, rolled up with DuckDB."""
    generate(out, days=2, end=END, users=users, seed=3)
    build_range(out, START, END, load_experiment(PARAMS))
    return out


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: relative path → (size, modification time in ns)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def event_file(wh: Path, table: str, day: dt.date = END) -> Path:
    """The (single) Parquet file of ``table`` on ``day``."""
    files = sorted((wh / "events" / table / f"event_date={day}").glob("*.parquet"))
    assert len(files) == 1, files
    return files[0]


def rewrite(path: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    """Replace a Parquet file by ``change`` of its table."""
    pq.write_table(change(pq.read_table(path)), path)


def assert_one_line_error(code: int, err: str, *parts: str | Path) -> None:
    """Exit status 2 and a single stderr line that names every one of ``parts``."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for part in parts:
        assert str(part) in lines[0], (part, lines[0])
