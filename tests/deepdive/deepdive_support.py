"""Shared helpers of the deep-dive tests: the warehouse builder (fixtures in conftest)."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from expkit.config import load_experiment
from expkit.rollup import build_range
from expkit.synth import generate

ROOT = Path(__file__).resolve().parents[2]
END = dt.date(2026, 11, 14)
EXPKIT = ROOT / ".venv" / "bin" / "expkit"
NOTEBOOK = ROOT / "notebooks" / "deepdive" / "experiment.ipynb"


@dataclass(frozen=True)
class Built:
    """A generated, rolled-up warehouse and a copy of the shipped parameters whose start date is its first day."""

    path: Path
    params_file: Path
    truth: dict[str, Any]

    def kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Deep-dive parameters pointing at this warehouse (report date: its last day)."""
        return {"event_date": END.isoformat(), "warehouse": str(self.path), "params_file": str(self.params_file)} | (
            overrides)


def build(root: Path, days: int, pre_days: int, users: int, seed: int, **kw: Any) -> Built:
    """Generate ``days`` experiment days after ``pre_days`` pre-period days ending at :data:`END`, copy
    ``params/`` with the experiment's start date set to the first experiment day, build every rollup."""
    wh = root / "wh"
    truth = generate(wh, days=days, end=END, users=users, seed=seed, pre_days=pre_days, **kw)
    params = root / "params"
    shutil.copytree(ROOT / "params", params, ignore=shutil.ignore_patterns("alert_tests"))
    doc = yaml.safe_load((params / "experiment.yaml").read_text())
    doc["start_date"] = truth["start_date"]
    (params / "experiment.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    build_range(wh, END - dt.timedelta(days=days + pre_days - 1), END, load_experiment(params / "experiment.yaml"))
    return Built(wh, params / "experiment.yaml", truth)
