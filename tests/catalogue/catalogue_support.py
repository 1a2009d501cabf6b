"""Shared test data for the catalogue tests: the test catalogue's warehouse layout and parameters."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from expkit.config import ExperimentConfig
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
