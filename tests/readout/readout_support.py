"""Shared helpers of the readout tests: a warehouse builder with its own parameters file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from expkit.config import load_experiment
from expkit.rollup import build_range
from expkit.synth import generate

END = dt.date(2026, 11, 14)
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "readout"


def build(root: Path, days: int, users: int, seed: int, **kw: Any) -> tuple[Path, Path]:
    """Generate ``days`` days ending at :data:`END` (the experiment starts on the first), write a
    parameters file (the shipped one with that start date; the shipped alert rules beside it)
    and roll every day up."""
    wh = root / "wh"
    truth = generate(wh, days=days, end=END, users=users, seed=seed, **kw)
    params = yaml.safe_load((ROOT / "params" / "experiment.yaml").read_text())
    params["start_date"] = truth["start_date"]
    path = root / "experiment.yaml"
    path.write_text(yaml.safe_dump(params))
    (root / "alerts.yaml").write_text((ROOT / "params" / "alerts.yaml").read_text())  # the rules beside it
    build_range(wh, END - dt.timedelta(days=days - 1), END, load_experiment(path))
    return wh, path
