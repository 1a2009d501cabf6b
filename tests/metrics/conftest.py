"""A synthetic warehouse rolled up with the test catalogue (the shipped one plus the example
metrics of docs/metrics.md, ``tests/metrics/metrics.yaml``), once per session."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from expkit.config import ExperimentConfig, load_experiment
from expkit.rollup import build_range
from expkit.warehouse import Warehouse

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
END = dt.date(2026, 11, 3)
DAYS = 3
START = END - dt.timedelta(days=DAYS - 1)


@dataclass
class Built:
    """A rolled-up warehouse and the parameters folder (experiment.yaml + metrics.yaml) it was built with."""

    warehouse: Warehouse
    params_file: Path
    config: ExperimentConfig


def params_folder(folder: Path, catalogue: Path, secondary: str | None = None) -> Path:
    """``folder`` holding the demo experiment.yaml (started on START; ``secondary_metrics`` replaced
    when given) and ``catalogue`` as its metrics.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (REPO / "params" / "experiment.yaml").read_text()
    text = text.replace('start_date: "2026-11-01"', f'start_date: "{START.isoformat()}"')
    if secondary is not None:
        text = re.sub(r"(?m)^secondary_metrics: .*$", f"secondary_metrics: {secondary}", text)
    (folder / "experiment.yaml").write_text(text)
    shutil.copy(catalogue, folder / "metrics.yaml")
    return folder / "experiment.yaml"


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    from expkit.synth import generate

    root = tmp_path_factory.mktemp("catalogue")
    generate(root / "warehouse", days=DAYS, end=END, users=1500, seed=7)
    params = params_folder(root / "params", HERE / "metrics.yaml",
                           "[recall, top3_ctr, rec_play_share, plays_per_user]")
    config = load_experiment(params)
    build_range(root / "warehouse", START, END, config)
    return Built(Warehouse.open(root / "warehouse"), params, config)
