"""Shared fixtures of the live tier tests: hours of a synthetic day cut into landing minutes.

The day comes from the batch generator's event model through the stream's own cut
(:func:`expkit.synth.stream.day_rows`, :func:`expkit.synth.stream.by_minute`), with an error
burst and a latency spike, so bins with errors and long latencies are part of every table.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from expkit import lineage
from expkit.compaction import minute_file, write_events
from expkit.config import ExperimentConfig, load_experiment
from expkit.rollup import build_rollups
from expkit.synth.stream import by_minute, day_rows, stream_config
from expkit.synth.warehouse import day_start_ms
from expkit.templates import TEMPLATES
from expkit.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params" / "experiment.yaml"
DAY = dt.date(2026, 11, 14)
USERS = 300
SEED = 5
INCIDENTS = ("error_burst@10:00/20", "latency_spike@11:30/30")
HOURS = (9, 13)
"""The landing hours the tests keep (a day so far, in ~1200 small files)."""
Minutes = list[tuple[int, dict[str, pa.Table]]]


@pytest.fixture(scope="session")
def config() -> ExperimentConfig:
    return load_experiment(PARAMS)


@pytest.fixture(scope="session")
def minutes(tmp_path_factory: pytest.TempPathFactory) -> Minutes:
    """The rows per landing minute of :data:`HOURS`, in landing order."""
    cfg = stream_config(tmp_path_factory.mktemp("cfg"), DAY, users=USERS, seed=SEED, incidents=INCIDENTS)
    lo, hi = HOURS[0] * 60, HOURS[1] * 60
    return [(m, t) for m, t in by_minute(day_rows(cfg), day_start_ms(DAY)) if lo <= m < hi]


def write_minute(wh: Warehouse, minute: int, tables: dict[str, pa.Table]) -> None:
    """Land one minute's files as the stream does."""
    for t, table in tables.items():
        folder = wh.event_partition(t, DAY)
        folder.mkdir(parents=True, exist_ok=True)
        write_events(t, table, folder / minute_file(minute))


@pytest.fixture(scope="session")
def full_rollup(tmp_path_factory: pytest.TempPathFactory, minutes: Minutes, config: ExperimentConfig) -> Path:
    """A warehouse with every minute landed and its daily rollup built (the reference)."""
    wh = Warehouse.open(tmp_path_factory.mktemp("full"), must_exist=False)
    for m, tables in minutes:
        write_minute(wh, m, tables)
    build_rollups(wh, DAY, config)
    return wh.root


def read_partition(part: Path) -> pa.Table:
    """Every row of a rollup partition (no partition column)."""
    files = lineage.partition_files(part)
    return pa.concat_tables([pq.ParquetFile(f).read() for f in files])


def assert_same_table(name: str, got: pa.Table, want: pa.Table) -> None:
    """Same rows (order aside): grain and counts exact, sums of floating point to 1e-12."""
    grain = list(TEMPLATES[name].grain)
    assert sorted(got.column_names) == sorted(want.column_names), name
    assert got.num_rows == want.num_rows, f"{name}: {got.num_rows} rows, full rollup {want.num_rows}"
    got = got.sort_by([(g, "ascending") for g in grain])
    want = want.sort_by([(g, "ascending") for g in grain])
    for col in want.column_names:
        a, b = got[col].to_numpy(zero_copy_only=False), want[col].to_numpy(zero_copy_only=False)
        if pa.types.is_floating(want.schema.field(col).type):
            np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=f"{name}.{col}")
        else:
            assert a.tolist() == b.tolist(), f"{name}.{col} differs"
