"""Catalog tables: the Spark engine reads event tables registered in the session's catalog.

These run on the test session, whose catalog is Spark's in-memory one (the Hive metastore run,
a JVM of its own, is in test_spark_daily.py): external Parquet tables over the warehouse's event
folders, partitioned by ``event_date``. Reading them gives the rows of the folders; an unknown
table, a table without ``event_date`` and a day the catalog has not registered are one-line
errors naming the table and what to do.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spark_support import DAYS, END, compare_tables

from expkit.engines import get_engine
from expkit.errors import ExpkitError
from expkit.schema import EVENT_TABLES
from expkit.templates import TEMPLATES
from expkit.validation import run_checks
from expkit.warehouse import Warehouse, day_bounds_ms

pytestmark = [pytest.mark.spark, pytest.mark.slow]

_dbs = itertools.count(1)


def _register(spark: Any, root: Path, tables: tuple[str, ...] = tuple(EVENT_TABLES), recover: bool = True) -> str:
    """External tables ``<db>.<table>`` over ``root``'s event folders in the session's catalog; the db's name."""
    db = f"expkit_test_events_{next(_dbs)}"
    spark.sql(f"CREATE DATABASE {db}")
    for table in tables:
        spark.sql(f"CREATE TABLE {db}.{table} USING parquet LOCATION '{(root / 'events' / table).as_uri()}'")
        if recover:
            spark.sql(f"ALTER TABLE {db}.{table} RECOVER PARTITIONS")
    return db


@pytest.fixture(scope="module")
def catalog(spark_engine: Any, synth_warehouse: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Warehouse, str]]:
    """A copy of the synthetic warehouse and the database of its catalog tables."""
    root = tmp_path_factory.mktemp("spark-catalog") / "warehouse"
    shutil.copytree(synth_warehouse, root)
    db = _register(spark_engine.spark, root)
    yield Warehouse.open(root), db
    spark_engine.spark.sql(f"DROP DATABASE {db} CASCADE")


def test_checks_from_catalog_tables_equal_the_folders(catalog: tuple[Warehouse, str], spark_engine: Any) -> None:
    """Every validation check of the last day (each scans raw events, the day before too for joins)
    gives the same results through the catalog as from the Parquet folders on DuckDB."""
    wh, db = catalog
    expected = run_checks(wh, END, cadence="hourly")  # DuckDB over the folders
    engine = get_engine("spark", catalog_db=db)
    try:
        actual = run_checks(wh, END, cadence="hourly", engine=engine)
    finally:
        engine.close()
    assert len(actual) == len(expected) > 30
    for e, a in zip(expected, actual, strict=True):
        assert (a.name, a.table, a.status, a.threshold) == (e.name, e.table, e.status, e.threshold)
        if e.name != "event_delay":  # an approximate p95, compared in test_spark_daily.py
            assert a.value == e.value, (e, a)
    assert {"pass", "fail"} <= {c.status for c in expected}  # the incidents of the last day


def test_catalog_is_what_is_read(spark_engine: Any, catalog: tuple[Warehouse, str], tmp_path: Path) -> None:
    """The rows come from the catalog table's location, not from the files expkit listed: a table
    registered over a copy of the requests that lacks one file gives fewer rows."""
    wh, _ = catalog
    root = tmp_path / "partial"
    shutil.copytree(wh.events / "requests", root / "events" / "requests")
    files = sorted((root / "events" / "requests" / f"event_date={END}").glob("*.parquet"))
    assert len(files) > 1
    files[0].unlink()
    db = _register(spark_engine.spark, root, ("requests",))
    template = TEMPLATES["check_hourly_rows"]
    start, end = day_bounds_ms(END)
    params = template.bind(start_ms=start, end_ms=end, bin_ms=3_600_000)
    sources: dict[str, Any] = {t: wh.event_files(t, END) for t in template.reads}

    def requests(engine: Any) -> int:
        got = engine.query(template, params, sources).read_all().to_pylist()
        return sum(r["n_rows"] for r in got if r["event_table"] == "requests")

    from expkit.engines.spark_engine import SparkEngine

    through_catalog = SparkEngine(tables={"requests": f"{db}.requests"})
    folders = get_engine("duckdb")
    try:
        assert 0 < requests(through_catalog) < requests(folders)
        compare = SparkEngine(catalog_db=catalog[1])
        got = compare.query(template, params, sources).read_all()
        compare.close()
        compare_tables(folders.query(template, params, sources).read_all(), got, template.grain)
    finally:
        through_catalog.close()
        folders.close()
        spark_engine.spark.sql(f"DROP DATABASE {db} CASCADE")


def test_unknown_catalog_table_names_table_and_option(spark_engine: Any, catalog: tuple[Warehouse, str]) -> None:
    with pytest.raises(ExpkitError, match=r"catalog table nowhere\.requests .*--catalog-db nowhere.*does not exist"):
        get_engine("spark", catalog_db="nowhere")
    from expkit.engines.spark_engine import SparkEngine

    with pytest.raises(ExpkitError, match=r"catalog table .*\.nope \(event table plays, from tables=\) does not"):
        SparkEngine(catalog_db=catalog[1], tables={"plays": f"{catalog[1]}.nope"})
    with pytest.raises(ExpkitError, match=r"--catalog-db 'a b'.*not a table name"):
        get_engine("spark", catalog_db="a b")
    with pytest.raises(ExpkitError, match=r"'views' is not an event table"):
        SparkEngine(tables={"views": "db.views"})


def test_unregistered_day_is_an_error(spark_engine: Any, catalog: tuple[Warehouse, str]) -> None:
    """A day whose folder has files but whose partition the catalog lacks (no MSCK REPAIR after it
    landed) would read as no rows: it is an error naming the table, the day and the command."""
    wh, _ = catalog
    db = _register(spark_engine.spark, wh.root, recover=False)
    engine = get_engine("spark", catalog_db=db)
    template = TEMPLATES["check_hourly_rows"]
    start, end = day_bounds_ms(DAYS[0])
    try:
        with pytest.raises(ExpkitError, match=rf"{db}\.requests has no partition event_date={DAYS[0]}.*MSCK REPAIR"):
            engine.query(template, template.bind(start_ms=start, end_ms=end, bin_ms=3_600_000),
                         {t: wh.event_files(t, DAYS[0]) for t in template.reads})
    finally:
        engine.close()
        spark_engine.spark.sql(f"DROP DATABASE {db} CASCADE")
