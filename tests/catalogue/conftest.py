"""A synthetic warehouse rolled up with the test catalogue (the shipped one plus the example
metrics of docs/metrics.md, ``tests/catalogue/metrics.yaml``), once per session."""

from __future__ import annotations

import pytest
from catalogue_support import DAYS, END, HERE, START, Built, params_folder

from expkit.config import load_experiment
from expkit.rollup import build_range
from expkit.warehouse import Warehouse


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
