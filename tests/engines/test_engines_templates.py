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

