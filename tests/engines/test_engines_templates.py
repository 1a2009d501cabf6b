"""The query template library: every template is documented, parses, and binds typed values only."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot

from expkit.errors import ExpkitError
from expkit.templates import TEMPLATES


def test_every_template_is_documented() -> None:
    assert {"health_bins", "latency_hist", "user_facts", "ratio_stats", "ingest_bins"} <= set(TEMPLATES)
    for t in TEMPLATES.values():
        assert t.description and t.reads and t.grain, t.name


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_parses_as_duckdb_sql(name: str) -> None:
    sqlglot.parse_one(TEMPLATES[name].sql, read="duckdb")


def test_bind_checks_names_and_types() -> None:
    t = TEMPLATES["health_bins"]
    with pytest.raises(ExpkitError, match="missing parameters \\['bin_ms'\\]"):
        t.bind(start_ms=0, end_ms=1)
    with pytest.raises(ExpkitError, match="unknown \\['evil'\\]"):
        t.bind(start_ms=0, end_ms=1, bin_ms=300_000, evil="1; DROP TABLE x")
    with pytest.raises(ExpkitError, match="start_ms must be int"):
        t.bind(start_ms="0 OR 1=1", end_ms=1, bin_ms=300_000)
    with pytest.raises(ExpkitError, match="must be int"):
        t.bind(start_ms=True, end_ms=1, bin_ms=300_000)


def test_parameters_are_bound_not_pasted() -> None:
    """A hostile string reaches DuckDB as a value: it matches nothing and runs nothing."""
    con = duckdb.connect()
    con.execute("CREATE TABLE r AS SELECT 'eu' AS region")
    hostile = "eu' OR '1'='1"
    rows = con.execute("SELECT count(*) FROM r WHERE region = $v", {"v": hostile}).fetchone()
    assert rows == (0,)



def test_a_fragment_is_written_once_and_included_where_named() -> None:
    """Recall@K's CTEs live in the fragment recall_ctes.sql; ratio_stats and user_pre include it,
    so each template's SQL is whole and no .sql file repeats them."""
    from importlib import resources

    from expkit.templates import TEMPLATES

    files = {e.name: e.read_text(encoding="utf-8") for e in resources.files("expkit.sql").iterdir()
             if e.name.endswith(".sql")}
    assert "recall_ctes" not in TEMPLATES and files["recall_ctes.sql"].startswith("-- fragment: recall_ctes")
    for name in ("ratio_stats", "user_pre"):
        assert "/*include:recall_ctes*/" in files[f"{name}.sql"]
        assert "/*include:" not in TEMPLATES[name].sql and TEMPLATES[name].sql.count("recall AS (") == 1
    assert sum(text.count("recall AS (") for text in files.values()) == 1


def test_an_unknown_fragment_is_refused_naming_it() -> None:
    from expkit.templates import build_templates

    with pytest.raises(ExpkitError, match="unknown fragment 'nope'"):
        build_templates({"t.sql": "-- name: t\nWITH /*include:nope*/ x AS (SELECT 1) SELECT * FROM x"})
