"""The Spark engine: session reuse, bound parameters, empty tables, every template, bad input."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from spark_support import DAYS, END, Built, _unavailable, columns, compare_tables, require_spark

from expkit.config import ExperimentConfig
from expkit.engines import get_engine
from expkit.errors import ExpkitError
from expkit.metrics_sql import builtin_catalogue, user_pre_schema
from expkit.rollup import ROLLUP_NAMES, build_rollups, manifest_path
from expkit.rollup_schema import PLAYED_ITEMS_SCHEMA, USER_FACTS_SCHEMA
from expkit.schema import EVENT_TABLES, OPTIONAL_TABLES
from expkit.templates import TEMPLATES, Template
from expkit.warehouse import DAY_MS, Warehouse, day_bounds_ms

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROLLUP_TABLES = {"user_facts": "user_day", "facts": "user_day", "earlier_first": "user_first",
                 "day_items": "user_items", "earlier_items": "user_items", "earlier_ages": "exposure_ages",
                 "ages": "exposure_ages"}
"""Template views that are rollups, by the rollup they read (the rest of a template's reads are event tables)."""
PRE_SCHEMA = user_pre_schema(builtin_catalogue())
"""The CUPED pre-period view the shipped ratio_stats template reads (none here: an empty table)."""


def _params(template: Template, day: dt.date) -> dict[str, Any]:
    """Plausible values for any template's parameters: the day's bounds, generous limits."""
    start, end = day_bounds_ms(day)
    known = {"start_ms": start, "end_ms": end, "visible_ms": end + 2 * DAY_MS, "bin_ms": 3_600_000,
             "window_ms": 3_600_000, "sample_size": 20, "top_k": 10, "ln_gamma": 0.02, "min_ms": 0.01}
    by_type = {"int": start + DAY_MS // 2, "float": 1.0, "str": "control", "date": day, "list[str]": ["control"],
               "bool": True}
    return {p: known.get(p, by_type[t]) for p, t in template.params.items()}


def _sources(template: Template, wh: Warehouse, days: list[dt.date]) -> dict[str, list[Path] | pa.Schema]:
    out: dict[str, list[Path] | pa.Schema] = {}
    for table in template.reads:
        if table in EVENT_TABLES or table in OPTIONAL_TABLES:
            schema = EVENT_TABLES.get(table) or OPTIONAL_TABLES[table]
            out[table] = [f for d in days for f in wh.event_files(table, d)] or schema
        else:
            out[table] = wh.rollup_files(ROLLUP_TABLES.get(table, table), days)
    return out


def _run(engine: Any, template: Template, params: dict[str, Any], sources: dict[str, Any], sql: str | None = None
         ) -> pa.Table:
    return engine.query(template, params, sources, sql=sql).read_all()


CATALOGUE_COLUMNS = {"arm_errors": ("m_error_rate_num", "m_error_rate_den")}
"""Templates that read the per-user columns of a declarative catalogue metric (the shipped
catalogue's error_rate; the test catalogue's error_rate is the builtin health metric, so its
user_day rows lack them, and expkit.readers.arm_health skips the template then)."""


def _with_columns(files: list[Path], names: tuple[str, ...], folder: Path) -> list[Path]:
    """Copies of rollup ``files`` with integer columns ``names`` added (varied values: both
    engines read the same copies, so any values test the parity)."""
    out = []
    for i, f in enumerate(files):
        table = pq.read_table(f)
        seq = [(j * 7 + i) % 5 for j in range(table.num_rows)]
        for k, name in enumerate(names):  # numerator 0..1, denominator 1..5
            table = table.append_column(name, pa.array([v % 2 if k == 0 else v + 1 for v in seq], pa.int64()))
        out.append(folder / f"{i}.parquet")
        pq.write_table(table, out[-1])
    return out


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_runs_like_duckdb(name: str, built: Built, spark_engine: Any, tmp_path: Path) -> None:
    """Named queries outside the rollups (validation checks ...) give the same rows on Spark too."""
    template = TEMPLATES[name]
    wh = built.warehouses["duckdb"]
    sources = _sources(template, wh, list(DAYS))
    if name in CATALOGUE_COLUMNS:
        (table,) = template.reads
        sources[table] = _with_columns(list(sources[table]), CATALOGUE_COLUMNS[name], tmp_path)
    params = _params(template, END)
    duck = get_engine("duckdb")
    try:
        expected = _run(duck, template, params, sources)
    finally:
        duck.close()
    actual = _run(spark_engine, template, params, sources)
    approx = [c for c in expected.column_names if c.startswith("p95")]  # approximate quantiles
    if approx:
        assert columns(actual) == columns(expected)
        expected, actual = expected.drop_columns(approx), actual.drop_columns(approx)
    compare_tables(expected, actual, template.grain)


def test_list_parameters_bind(built: Built, spark_engine: Any) -> None:
    """The attribute filter of the readers (a list parameter) binds on Spark as on DuckDB."""
    template = TEMPLATES["ratio_stats"]
    sql = template.sql.replace("/*attr_filter*/", "AND list_contains($f0, a.cohort)")
    files = built.warehouses["duckdb"].rollup_files("user_day", list(DAYS))
    cohorts = sorted(set(pq.read_table(files[0], columns=["cohort"]).column(0).to_pylist()) - {None})[:1]
    played = built.warehouses["duckdb"].rollup_files("played_items", list(DAYS))
    params = {"f0": cohorts, "window_start_ms": day_bounds_ms(DAYS[0])[0]}
    sources = {"user_facts": files, "played_items": played, "user_pre": PRE_SCHEMA}
    duck = get_engine("duckdb")
    try:
        expected = _run(duck, template, params, sources, sql)
    finally:
        duck.close()
    actual = _run(spark_engine, template, params, sources, sql)
    assert 0 < expected.num_rows
    compare_tables(expected, actual, template.grain)
    nobody = _run(spark_engine, template, {**params, "f0": []}, sources, sql)
    assert nobody.num_rows == 0


def test_empty_tables_keep_duckdb_types(spark_engine: Any) -> None:
    template = TEMPLATES["ratio_stats"]
    empty = {"user_facts": USER_FACTS_SCHEMA, "played_items": PLAYED_ITEMS_SCHEMA, "user_pre": PRE_SCHEMA}
    duck = get_engine("duckdb")
    try:
        expected = _run(duck, template, {"window_start_ms": 0}, empty)
    finally:
        duck.close()
    actual = _run(spark_engine, template, {"window_start_ms": 0}, empty)
    assert actual.num_rows == expected.num_rows == 0
    assert columns(actual) == columns(expected)


def test_one_session_per_process(spark_engine: Any) -> None:
    from expkit.engines.spark_engine import SparkEngine, get_session

    other = SparkEngine()
    assert other.spark is spark_engine.spark is get_session()
    assert other._prefix != spark_engine._prefix  # views of two engines never collide
    other.close()  # drops its views, keeps the session
    assert spark_engine.spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark_engine.spark.range(3).count() == 3


def test_failed_job_keeps_previous_partitions(
    built: Built, spark_engine: Any, config: ExperimentConfig, tmp_path: Path
) -> None:
    """A Spark job that fails midway (overflow in one rollup's query) leaves every old partition."""
    root = tmp_path / "warehouse"
    shutil.copytree(built.warehouses["spark"].root, root)
    wh = Warehouse.open(root)
    before = {r: pq.read_table(wh.rollup_files(r, [END])[0]) for r in ROLLUP_NAMES}
    manifest = manifest_path(wh, END).read_text()
    # One play whose ingest time makes ingest_ms - timestamp_ms overflow: ingest_bins fails in Spark,
    # after the rollups before it were rebuilt.
    start, _ = day_bounds_ms(END)
    row = {name: [None] for name in EVENT_TABLES["plays"].names}
    row.update(play_id=[1], user_id=[1], session_id=[1], item_id=[1], source=["rec"], shadow=[False],
               timestamp_ms=[start + 1000], ingest_ms=[-(2**63)])
    pq.write_table(pa.table(row, schema=EVENT_TABLES["plays"]), wh.event_partition("plays", END) / "part-bad.parquet")

    with pytest.raises(ExpkitError, match=r"ingest_bins failed in Spark"):
        build_rollups(wh, END, config, engine=spark_engine)

    for rollup, table in before.items():
        files = wh.rollup_files(rollup, [END])
        assert len(files) == 1, rollup
        assert pq.read_table(files[0]).equals(table), f"{rollup} changed"
    assert not [p for p in wh.rollups.rglob("*") if p.name.startswith((".tmp-", ".old-"))]
    assert manifest_path(wh, END).read_text() == manifest  # the date stays marked as built from old events


def test_session_plan_follows_the_users_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    require_spark()
    from expkit.engines.spark_engine import LOCAL_DEFAULTS, session_plan, spark_defaults

    for var in ("SPARK_REMOTE", "EXPKIT_SPARK_MASTER", "PYSPARK_GATEWAY_PORT", "SPARK_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    plan = session_plan()
    assert (plan.remote, plan.master, plan.local) == (None, "local[*]", True)
    assert plan.settings == LOCAL_DEFAULTS

    (tmp_path / "spark-defaults.conf").write_text(
        "# comment\nspark.master   spark://head:7077\nspark.driver.memory=6g\n"
        "spark.driver.extraJavaOptions -Da=b\n"
    )
    assert spark_defaults()["spark.driver.extraJavaOptions"] == "-Da=b"
    assert session_plan().master == "spark://head:7077" and session_plan().settings == {}
    monkeypatch.setenv("EXPKIT_SPARK_MASTER", "local[2]")
    plan = session_plan(conf={"spark.sql.shuffle.partitions": "8"})
    assert plan.master == "local[2]" and "spark.driver.memory" not in plan.settings  # the file's 6g stays
    assert plan.settings["spark.sql.shuffle.partitions"] == "8"
    assert session_plan(master="yarn").master == "yarn"
    monkeypatch.setenv("SPARK_REMOTE", "sc://connect:15002")
    assert session_plan().remote == "sc://connect:15002"
    assert session_plan(master="local[1]").remote is None  # an explicit master wins
    monkeypatch.delenv("SPARK_REMOTE")
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "12345")  # inside spark-submit: its settings rule
    assert session_plan() == type(plan)(None, None, {})


def _expkit(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "expkit.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SPARK_REMOTE", "EXPKIT_SPARK_MASTER", "PYSPARK_GATEWAY_PORT", "JAVA_HOME", "SPARK_HOME")}
    env.update(extra)
    return env


@pytest.mark.parametrize("case", ["bad_java_home", "java_fails"])
def test_no_jvm_is_a_clear_error(case: str, synth_warehouse: Path, tmp_path: Path) -> None:
    require_spark()
    home = tmp_path / "jdk"
    if case == "java_fails":  # a java that cannot start (wrong version, broken install ...)
        (home / "bin").mkdir(parents=True)
        java = home / "bin" / "java"
        java.write_text("#!/bin/sh\necho 'Error: could not create the Java Virtual Machine.' >&2\nexit 1\n")
        java.chmod(0o755)
    root = tmp_path / "warehouse"
    shutil.copytree(synth_warehouse, root)
    proc = _expkit(["rollup", "--warehouse", str(root), "--date", END.isoformat(), "--engine", "spark"],
                   _clean_env(JAVA_HOME=str(home)))
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("expkit rollup: error:")
    assert "JAVA_HOME" in last
    assert not (root / "rollups").exists() or not any((root / "rollups").iterdir())


CONNECT_SCRIPT = """
import sys
from expkit.engines import get_engine
from expkit.templates import TEMPLATES
from expkit.warehouse import Warehouse, day_bounds_ms
from spark_support import compare_tables
import datetime as dt

wh, day = Warehouse.open(sys.argv[1]), dt.date.fromisoformat(sys.argv[2])
start, end = day_bounds_ms(day)
template = TEMPLATES["health_bins"]
params = {"start_ms": start, "end_ms": end, "bin_ms": 300_000}
sources = {"requests": wh.event_files("requests", day)}
spark, duck = get_engine("spark"), get_engine("duckdb")
assert type(spark.spark).__module__.startswith("pyspark.sql.connect"), type(spark.spark)
compare_tables(duck.query(template, params, sources).read_all(), spark.query(template, params, sources).read_all(),
               template.grain)
print("connect ok")
"""


def test_spark_connect(synth_warehouse: Path) -> None:
    """SPARK_REMOTE selects Spark Connect ("local" starts a Connect server in the background)."""
    require_spark()
    import importlib.util

    if importlib.util.find_spec("grpc") is None:  # the spark extra installs them
        _unavailable("Spark Connect needs its client libraries: pip install -e '.[spark]'")
    env = _clean_env(SPARK_REMOTE="local", PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), *sys.path]))
    proc = subprocess.run([sys.executable, "-c", CONNECT_SCRIPT, str(synth_warehouse), END.isoformat()], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "connect ok" in proc.stdout, proc.stderr[-3000:]
