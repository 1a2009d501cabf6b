"""``expkit synth --stream``: the batch generator's rows, each written in the minute it lands,
whole files only, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from expkit.compaction import file_minute
from expkit.schema import EVENT_TABLES
from expkit.synth import generate
from expkit.synth.stream import day_rows, stream, stream_config
from expkit.synth.warehouse import day_start_ms
from expkit.warehouse import Warehouse

from .conftest import DAY, INCIDENTS, SEED, USERS

EXPKIT = [sys.executable, "-c", "import sys; from expkit.cli import main; sys.exit(main())"]
ID = {"requests": "request_id", "impressions": "request_id", "clicks": "click_id", "saves": "save_id",
      "plays": "play_id"}


def _rows(wh: Warehouse, table: str) -> pa.Table:
    files = wh.event_files(table, DAY)
    if not files:
        return EVENT_TABLES[table].empty_table()
    return pa.concat_tables([pq.ParquetFile(f).read() for f in files])


def _ids(table: pa.Table, column: str) -> list[int]:
    return sorted(table[column].to_pylist())


@pytest.fixture(scope="module")
def generated_day(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    """The whole day as the stream sees it (the generator's rows, sorted by landing time)."""
    return day_rows(stream_config(tmp_path_factory.mktemp("cfg"), DAY, users=USERS, seed=SEED, incidents=INCIDENTS))


def test_streamed_day_is_the_batch_generators_day(tmp_path: Path, generated_day: dict[str, pa.Table]) -> None:
    """The stream's rows of a day are exactly the rows 'expkit synth' writes for it."""
    truth = generate(tmp_path / "batch", 1, DAY, users=USERS, seed=SEED, incidents=INCIDENTS)
    batch = Warehouse.open(tmp_path / "batch")
    for t in EVENT_TABLES:
        assert generated_day[t].num_rows == truth["rows_by_date"][DAY.isoformat()][t] - truth["late_rows"][t]
        assert _ids(generated_day[t], ID[t]) == _ids(_rows(batch, t), ID[t])


def test_each_row_is_written_in_the_minute_it_lands(tmp_path: Path, generated_day: dict[str, pa.Table]) -> None:
    res = stream(tmp_path, f"{DAY}T09:00", speed=1e9, incidents=INCIDENTS, users=USERS, seed=SEED,
                 until=f"{DAY}T09:30")
    assert (res.first_minute, res.last_minute, res.stopped) == (540, 569, "until")
    wh = Warehouse.open(tmp_path)
    start = day_start_ms(DAY)
    for t in EVENT_TABLES:
        for f in wh.event_files(t, DAY):
            minute = file_minute(f.name)
            ingest = pq.ParquetFile(f).read(columns=["ingest_ms"])["ingest_ms"]
            if minute is not None:  # a landing minute's file
                assert pc.min(ingest).as_py() >= start + minute * 60_000
                assert pc.max(ingest).as_py() < start + (minute + 1) * 60_000
        landed = generated_day[t].filter(pc.less(generated_day[t]["ingest_ms"], start + 570 * 60_000))
        assert _ids(_rows(wh, t), ID[t]) == _ids(landed, ID[t])
    assert not list(tmp_path.rglob(".*.tmp"))
    assert json.loads((tmp_path / "stream.json").read_text())["state"] == "stopped (until)"


@pytest.mark.slow
def test_sigterm_stops_the_stream_after_a_whole_minute(tmp_path: Path, generated_day: dict[str, pa.Table]) -> None:
    """A real ``expkit synth --stream`` process at 10 simulated minutes a second, stopped by
    SIGTERM: exit 0, no temporary or partial file, and every table holds exactly the rows that
    landed before the end of the last minute it reported."""
    out = tmp_path / "wh"
    proc = subprocess.Popen(
        [*EXPKIT, "synth", "--stream", "--out", str(out), "--start", f"{DAY}T09:00",
         "--speed", "600", "--users", str(USERS), "--seed", str(SEED), "--quiet",
         *[a for i in INCIDENTS for a in ("--incident", i)]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    folder = out / "events" / "requests" / f"event_date={DAY}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(list(folder.glob("live-0*.parquet"))) < 5:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["stopped"] == "signal"
    last = result["last_minute"]
    assert last >= 544
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    wh = Warehouse.open(out)
    end = day_start_ms(DAY) + (last + 1) * 60_000
    for t in EVENT_TABLES:
        landed = generated_day[t].filter(pc.less(generated_day[t]["ingest_ms"], end))
        assert _ids(_rows(wh, t), ID[t]) == _ids(landed, ID[t]), t
    assert json.loads((out / "stream.json").read_text())["last_minute"] == last
    assert os.path.exists(out / "stream.json")


@pytest.mark.parametrize("until", ["13:00", "14:00"])
def test_until_not_after_start_is_refused_before_writing(tmp_path: Path, until: str) -> None:
    """``--until`` at or before ``--start``: one line naming both, exit 2, nothing written (it
    wrote the rows landed before the start and stopped, as if asked to)."""
    run = subprocess.run([*EXPKIT, "synth", "--stream", "--out", str(tmp_path / "w"), "--start", f"{DAY}T14:00",
                          "--until", f"{DAY}T{until}", "--users", "200", "--speed", "1e6"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "--until" in lines[0] and "--start" in lines[0], lines
    assert not (tmp_path / "w").exists()
