"""How the DuckDB engine writes rollups and keeps its tables of event files.

Rollups are written as Parquet with version-2 data pages, without dictionaries when every
column is an integer (user_items); a file read back gives the rows the query returned. A table
of files is registered once per file set and read afresh when a file changes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from expkit.engines.duckdb_engine import DuckDBEngine
from expkit.metrics_sql import query
from expkit.rollup import _event_sources, _params
from expkit.templates import TEMPLATES
from expkit.warehouse import Warehouse, day_bounds_ms

END = dt.date(2026, 11, 14)


@pytest.mark.parametrize("template", ["user_items", "user_facts", "item_hours"])
def test_written_rollup_reads_back_as_queried(small_wh: Path, config, tmp_path: Path, template: str) -> None:
    wh = Warehouse.open(small_wh)
    start, end = day_bounds_ms(END)
    values = _params(template, start, end, config)
    sources = _event_sources(wh, END)
    engine = DuckDBEngine()
    sql = query(template, config.catalogue).template  # as the rollup runs it: with the catalogue's metrics
    try:
        rows = engine.write_parquet(sql, values, sources, tmp_path / "out.parquet")
        queried = engine.query(sql, values, sources).read_all()
        written = pq.read_table(tmp_path / "out.parquet")
        # (DuckDB marks constant-derived columns such as slice NOT NULL in the file; so it always did)
        assert [(f.name, f.type) for f in written.schema] == [(f.name, f.type) for f in queried.schema]
        assert rows == written.num_rows == queried.num_rows > 0
        engine.con.register("written", written.cast(queried.schema))
        engine.con.register("queried", queried)
        for a, b in (("written", "queried"), ("queried", "written")):
            extra = engine.con.execute(f"SELECT count(*) FROM (FROM {a} EXCEPT ALL FROM {b})").fetchall()[0][0]
            assert extra == 0
        meta = pq.ParquetFile(tmp_path / "out.parquet").metadata
        encodings = {meta.schema.column(i).name: meta.row_group(0).column(i).encodings for i in range(meta.num_columns)}
    finally:
        engine.close()
    dictionary = {name for name, enc in encodings.items() if any("DICTIONARY" in e for e in enc)}
    if template == "user_items":  # integers only: no dictionary, delta-encoded
        assert not dictionary
        assert all("DELTA_BINARY_PACKED" in enc for enc in encodings.values())
    else:  # low-cardinality strings keep their dictionaries
        assert {"experiment_id", "bucket"} <= dictionary


def test_a_rewritten_event_file_is_read_afresh(tmp_path: Path) -> None:
    schema = pa.schema([("x", pa.int64())])
    files = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    pq.write_table(pa.table({"x": [1, 2]}, schema=schema), files[0])
    pq.write_table(pa.table({"x": [3]}, schema=schema), files[1])
    engine = DuckDBEngine()
    try:
        engine._register("t", files)
        assert engine.con.execute("SELECT count(*), sum(x) FROM t").fetchall() == [(3, 6)]
        engine._register("t", files)  # same files: kept
        assert engine.con.execute("SELECT count(*), sum(x) FROM t").fetchall() == [(3, 6)]
        pq.write_table(pa.table({"x": [10, 20, 30], "y": ["p", "q", "r"]}), files[1])
        engine._register("t", files)  # changed file (and schema): registered again
        assert engine.con.execute("SELECT count(*), sum(x), count(y) FROM t").fetchall() == [(5, 63, 3)]
        engine._register("t", files[:1])
        assert engine.con.execute("SELECT count(*), sum(x) FROM t").fetchall() == [(2, 3)]
        engine._register("t", schema)  # no files: an empty table
        assert engine.con.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
        engine._register("t", files[:1])
        assert engine.con.execute("SELECT count(*) FROM t").fetchall() == [(2,)]
    finally:
        engine.close()


def test_written_rollups_read_in_other_readers(small_wh: Path, config, tmp_path: Path) -> None:
    """Version-2 pages are read by DuckDB's own reader too (tiles read rollups with it)."""
    wh = Warehouse.open(small_wh)
    start, end = day_bounds_ms(END)
    engine = DuckDBEngine()
    try:
        engine.write_parquet(TEMPLATES["user_items"], _params("user_items", start, end, config),
                             _event_sources(wh, END), tmp_path / "ui.parquet")
    finally:
        engine.close()
    arrow = pq.read_table(tmp_path / "ui.parquet")
    got = duckdb.sql(f"SELECT count(*), sum(user_id), sum(first_topk_shown_ms) FROM '{tmp_path / 'ui.parquet'}'")
    import pyarrow.compute as pc

    expected = (arrow.num_rows, pc.sum(arrow["user_id"]).as_py(), pc.sum(arrow["first_topk_shown_ms"]).as_py())
    assert got.fetchall()[0] == expected
