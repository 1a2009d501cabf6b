"""Fixtures of the Spark tests: one local Spark session per test process, a small synthetic
warehouse, and its rollups built by both engines (once per session).

Spark tests skip, with the reason, when pyspark or Java is missing; set
``EXPKIT_REQUIRE_SPARK=1`` (CI) to make that a failure instead.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spark_support import DAYS, END, INCIDENTS, SEED, TEST_CONF, USERS, Built, require_spark

from expkit.config import ExperimentConfig, default_params_file, load_experiment
from expkit.rollup import build_rollups
from expkit.warehouse import Warehouse


@pytest.fixture(scope="session")
def spark_engine() -> Iterator[Any]:
    """A SparkEngine on the process's local session."""
    require_spark()
    from expkit.engines.spark_engine import SparkEngine

    engine = SparkEngine(conf=TEST_CONF)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def synth_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two days of synthetic events with incidents after one pre-experiment day (the CUPED pre-period;
    never written to by tests: copy it first)."""
    from expkit.synth import generate

    out = tmp_path_factory.mktemp("spark-synth") / "warehouse"
    generate(out, days=len(DAYS), end=END, users=USERS, seed=SEED, incidents=INCIDENTS, pre_days=1)
    return out


TEST_CATALOGUE = Path(__file__).resolve().parents[2] / "catalogue" / "metrics.yaml"
"""The shipped metric catalogue plus the example metrics of docs/metrics.md (declarative ones on
impressions with the clicked flag, on plays, a per-user mean, a count_distinct)."""


@pytest.fixture(scope="session")
def config() -> ExperimentConfig:
    """The demo experiment, started on the first synthetic day (so ``cum`` spans both days), with the
    test catalogue: the parity of every rollup covers the metric columns generated from it."""
    from expkit.catalogue import load_catalogue

    cfg = load_experiment(default_params_file()).model_copy(update={"start_date": DAYS[0]})
    return cfg.with_catalogue(load_catalogue(TEST_CATALOGUE))


@pytest.fixture(scope="session")
def built(
    spark_engine: Any, synth_warehouse: Path, config: ExperimentConfig, tmp_path_factory: pytest.TempPathFactory
) -> Built:
    """Rollups of both days built by DuckDB and by Spark, each in its own copy of the warehouse."""
    root = tmp_path_factory.mktemp("spark-parity")
    out = Built(warehouses={})
    for name, engine in (("duckdb", "duckdb"), ("spark", spark_engine)):
        wh_path = root / name
        shutil.copytree(synth_warehouse, wh_path)
        wh = Warehouse.open(wh_path)
        out.warehouses[name] = wh
        out.seconds[name] = {}
        for day in DAYS:
            t0 = time.perf_counter()
            build_rollups(wh, day, config, engine=engine)
            out.seconds[name][day] = time.perf_counter() - t0
    return out
