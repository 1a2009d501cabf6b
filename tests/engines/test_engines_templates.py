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
    """Recall@K's CTEs live in fragments: its definition (recall_ctes.sql, over a period's per (user,
    item) facts) in user_pre, its evaluation over a window's played pairs (window_recall.sql) in
    ratio_stats; each template's SQL is whole and no .sql file repeats them."""
    from importlib import resources

    from expkit.templates import FRAGMENTS, TEMPLATES

    files = {e.name: e.read_text(encoding="utf-8") for e in resources.files("expkit.sql").iterdir()
             if e.name.endswith(".sql")}
    for fragment, template in (("recall_ctes", "user_pre"), ("window_recall", "ratio_stats")):
        assert fragment not in TEMPLATES and files[f"{fragment}.sql"].startswith(f"-- fragment: {fragment}")
        assert f"/*include:{fragment}*/" in files[f"{template}.sql"]
        assert FRAGMENTS[fragment] in TEMPLATES[template].sql
        assert "/*include:" not in TEMPLATES[template].sql and TEMPLATES[template].sql.count("recall AS (") == 1
    assert sum(text.count("recall AS (") for text in files.values()) == 2


def test_an_unknown_fragment_is_refused_naming_it() -> None:
    from expkit.templates import build_templates

    with pytest.raises(ExpkitError, match="unknown fragment 'nope'"):
        build_templates({"t.sql": "-- name: t\nWITH /*include:nope*/ x AS (SELECT 1) SELECT * FROM x"})
