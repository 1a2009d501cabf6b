"""Shared helpers of the outcome tests: constants and the warehouse builder (fixtures in conftest)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from expkit import run_tile
from expkit.config import load_experiment
from expkit.rollup import build_range
from expkit.synth import generate
from expkit.tiles import TileResult

END = dt.date(2026, 11, 14)
WINDOWS = ("1h", "24h", "7d", "30d")
OUTCOME_IDS = ("ctr", "recall", "session_depth", "save_rate", "lift", "allocation", "timeline")
RATIO_IDS = ("ctr", "recall", "session_depth", "save_rate")


@dataclass(frozen=True)
class Built:
    """A generated, rolled-up warehouse with its experiment parameters file and truth."""

    path: Path
    params_file: Path
    truth: dict[str, Any]
    days: int

    @property
    def first_day(self) -> dt.date:
        return END - dt.timedelta(days=self.days - 1)

    def kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Tile parameters pointing at this warehouse (report date: its last day)."""
        return {"event_date": END.isoformat(), "warehouse": str(self.path), "params_file": str(self.params_file)} | (
            overrides
        )

    def run(self, tile: str, **overrides: Any) -> TileResult:
        """Run tile ``tile`` in-process, as its notebook does."""
        return run_tile(tile, **self.kwargs(**overrides))


def build(root: Path, days: int, users: int, seed: int, **kw: Any) -> Built:
    """Generate ``days`` days ending at :data:`END`, write the parameters file, build every rollup."""
    wh = root / "wh"
    truth = generate(wh, days=days, end=END, users=users, seed=seed, **kw)
    params = {
        "experiment_id": truth["experiment_id"],
        "start_date": truth["start_date"],
        "control": truth["control"],
        "buckets": truth["planned_allocation"],
        "top_k": truth["top_k"],
    }
    params_file = root / "experiment.yaml"
    params_file.write_text(yaml.safe_dump(params))
    build_range(wh, END - dt.timedelta(days=days - 1), END, load_experiment(params_file))
    return Built(wh, params_file, truth, days)
