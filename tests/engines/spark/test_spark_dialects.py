"""Compiling the DuckDB templates for other dialects (no Spark needed)."""

from __future__ import annotations

import io
import re
import sys

import pytest
import sqlglot
from sqlglot import exp

from expkit.engines import get_engine
from expkit.engines.dialects import (
    CompiledSQL,
    compile_sql,
    compile_template,
    expand_list_params,
    print_template,
    rename_tables,
    render_template,
    table_columns,
)
from expkit.errors import ExpkitError
from expkit.templates import TEMPLATES

TARGETS = ("spark", "trino", "bigquery")
MARKER = {"spark": r":(\w+)", "bigquery": r"@(\w+)"}


def _body(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


@pytest.mark.parametrize("dialect", TARGETS)
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_compiles_and_parses_back(name: str, dialect: str) -> None:
    compiled = compile_template(name, dialect)
    tree = sqlglot.parse_one(compiled.sql, read=dialect)
    assert isinstance(tree, exp.Query)
    assert "$" not in compiled.sql
    source = re.findall(r"\$(\w+)", _body(TEMPLATES[name].sql))
    if dialect == "trino":
        # positional markers: one name per "?", in the order of the text
        assert compiled.sql.count("?") == len(compiled.params) == len(source)
        assert list(compiled.params) == source
        assert len(list(tree.find_all(exp.Placeholder))) == len(source)
    else:
        assert compiled.params == ()
        assert re.findall(MARKER[dialect], compiled.sql) == source


def test_spark_markers_are_named_and_values_never_pasted() -> None:
    sql = compile_sql("health_bins", "spark")
    assert ":start_ms" in sql and ":end_ms" in sql and ":bin_ms" in sql
    assert "300000" not in sql


def test_positional_binding_follows_the_text_order() -> None:
    # WITH ... comes first in the text but after SELECT in SQLGlot's tree: the order must be the text's.
    compiled = compile_template("engagement_bins", "trino")
    assert compiled.params[:2] == ("start_ms", "end_ms")
    assert compiled.params[-1] == "bin_ms"
    values = {"start_ms": 1, "end_ms": 2, "bin_ms": 3}
    assert compiled.bind(values) == [values[p] for p in compiled.params]
    assert CompiledSQL("SELECT :a", "spark").bind({"a": 1}) == {"a": 1}


def test_known_function_differences_are_translated() -> None:
    assert "MIN_BY(" in compile_sql("user_facts", "spark")  # arg_min
    assert "MOD(" in compile_sql("health_bins", "bigquery")  # %
    assert "UNION DISTINCT" in compile_sql("user_facts", "bigquery")  # UNION means distinct
    assert "UNNEST(" in compile_sql("ratio_stats", "bigquery")  # VALUES ... AS s (slice)
    assert "FLOAT64" in compile_sql("ratio_stats", "bigquery")  # CAST AS DOUBLE
    spark = compile_sql("ingest_bins", "spark")
    assert "LN(GREATEST(" in spark and "AS INT)" in spark


def test_rewritten_sql_with_list_parameter() -> None:
    sql = TEMPLATES["ratio_stats"].sql.replace("/*attr_filter*/", "AND list_contains($f0, a.cohort)")
    out = compile_template("ratio_stats", "spark", sql=sql).sql
    assert "ARRAY_CONTAINS(:f0, a.cohort)" in out


def test_list_parameters_become_arrays_of_scalar_markers() -> None:
    sql = TEMPLATES["ratio_stats"].sql.replace("/*attr_filter*/", "AND list_contains($f0, a.cohort)")
    scalars, lists = expand_list_params({"f0": ["new", "casual"]})
    assert scalars == {"f0__0": "new", "f0__1": "casual"}
    out = compile_template("ratio_stats", "spark", sql=sql, lists=lists).sql
    assert "ARRAY_CONTAINS(CAST(ARRAY(:f0__0, :f0__1) AS ARRAY<STRING>), a.cohort)" in out
    empty = compile_template("ratio_stats", "spark", sql=sql, lists=expand_list_params({"f0": []})[1]).sql
    assert "CAST(ARRAY() AS ARRAY<STRING>)" in empty
    assert expand_list_params({"x": [1, 2], "y": [1, 2.5]})[1] == {"x": (2, "BIGINT"), "y": (2, "DOUBLE")}


def test_rename_tables_keeps_ctes_and_qualified_columns() -> None:
    tree = sqlglot.parse_one(
        "WITH requests2 AS (SELECT * FROM requests) SELECT requests.user_id FROM requests JOIN requests2 ON true",
        read="duckdb",
    )
    out = rename_tables(tree, {"requests": "hive.events.requests", "requests2": "nope"}).sql("spark")
    assert "FROM hive.events.requests AS requests" in out
    assert "JOIN requests2" in out and "nope" not in out
    assert "SELECT requests.user_id" in out


def test_tables_option_qualifies_names() -> None:
    sql = compile_sql("error_bins", "trino", tables={"requests": "hive.events.requests"})
    assert "FROM hive.events.requests AS requests" in sql


def test_tables_option_takes_a_partition_filtered_query() -> None:
    day = "SELECT * FROM hive.events.requests WHERE event_date = $day"
    compiled = compile_template("error_bins", "trino", tables={"requests": day})
    assert "FROM (SELECT * FROM hive.events.requests WHERE event_date = ?) AS requests" in compiled.sql
    assert compiled.params == ("bin_ms", "day", "start_ms", "end_ms", "bin_ms")
    spark = compile_sql("error_bins", "spark", tables={"requests": day})
    assert "event_date = :day" in spark
    same_name = compile_sql("error_bins", "spark", tables={"requests": "SELECT * FROM requests WHERE x = 1"})
    assert "FROM (SELECT * FROM requests WHERE x = 1) AS requests" in same_name  # not replaced again
    sqlglot.parse_one(compiled.sql, read="trino")


@pytest.mark.parametrize("dialect", TARGETS)
def test_event_table_columns_make_valid_ddl(dialect: str) -> None:
    from expkit.schema import EVENT_TABLES

    for table in EVENT_TABLES:
        columns = table_columns(table, dialect)
        assert columns.endswith("event_date DATE")
        ddl = sqlglot.parse_one(f"CREATE TABLE t ({columns})", read=dialect)
        assert len(list(ddl.find_all(exp.ColumnDef))) == len(EVENT_TABLES[table]) + 1
    with pytest.raises(ExpkitError, match="unknown event table"):
        table_columns("nope", dialect)


def test_render_and_print_template() -> None:
    text = render_template("health_bins", "trino")
    assert text.startswith("-- name: health_bins")
    assert "-- positional parameters (?): bin_ms, start_ms, end_ms, bin_ms" in text
    sqlglot.parse_one(_body(text), read="trino")
    buf = io.StringIO()
    print_template("health_bins", "bigquery", file=buf)
    assert "@start_ms" in buf.getvalue()


def test_bad_names_are_explained() -> None:
    with pytest.raises(ExpkitError, match="unknown template"):
        compile_sql("no_such_template", "spark")
    with pytest.raises(ExpkitError, match="dialect"):
        compile_sql("health_bins", "no_such_dialect")


def test_missing_pyspark_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark -> ImportError
    monkeypatch.delitem(sys.modules, "expkit.engines.spark_engine", raising=False)
    with pytest.raises(ExpkitError, match=re.escape("pip install -e '.[spark]'")):
        get_engine("spark")
