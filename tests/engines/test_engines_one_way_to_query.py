"""One way to query: outside the template library no module builds SQL text.

Every query expkit runs is a named template (``src/expkit/sql/*.sql`` through
:mod:`expkit.templates`, see docs/architecture.md "Layers"); the only text that varies is a
template's filter slot, filled by :meth:`expkit.templates.Template.render`. This scans the
source for the ways SQL used to be pasted together: f-strings, ``+`` / ``%`` concatenation and
``.format`` producing SQL, edits of a template's ``.sql`` text, built text handed to
``execute``/``sql``, and queries written inline instead of as a template.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "expkit"

LIBRARY = ("templates.py", "metrics_sql.py", "engines/")
"""The template library: it renders templates (filter slots), writes the metric catalogue's regions
of two of them (identifiers checked against the schema, values bound), and the engines compile
them per dialect and wrap them (``DESCRIBE``, ``COPY ... TO``); nothing else may make SQL text."""

SQL_TEXT = re.compile(
    r"\b(SELECT|FROM|WHERE|GROUP BY|ORDER BY|JOIN|UNION|INSERT INTO|COPY|DESCRIBE|AS|CAST)\b"
    r"|\b(AND|OR)\s*$|^\s*(AND|OR)\b|\blist_contains\(|\$[a-z_]\w*\b"
)
"""SQL in the literal parts of a string being built: keywords (upper case, as all of expkit's SQL
is written), a dangling ``AND``/``OR`` of a condition being glued on, a list filter, a ``$name``
parameter marker (lower case: ``$EXPKIT_WAREHOUSE`` in a help text is an environment variable)."""

QUERY = re.compile(r"\b(SELECT|FROM)\b")
"""A query (rather than a setting such as ``SET threads = 2``) handed to DuckDB as a literal."""

RUNNERS = {"execute", "sql", "query", "executemany"}


def _literal_parts(node: ast.AST) -> list[str]:
    """The string constants a string-building expression pastes together."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _literal_parts(node.left) + _literal_parts(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"):
        return _literal_parts(node.func.value)
    return []


def _builds_text(node: ast.AST) -> bool:
    """Whether ``node`` makes a string out of parts (rather than naming a finished one)."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return bool(_literal_parts(node))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"):
        return bool(_literal_parts(node.func.value))
    return False


def sql_building(source: str, filename: str = "<fixture>") -> list[str]:
    """Places in ``source`` that build SQL text: ``"file:line: what"`` for each."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if _builds_text(node) and any(SQL_TEXT.search(part) for part in _literal_parts(node)):
            found.append(f"{filename}:{node.lineno}: SQL pasted together: {ast.unparse(node)[:90]}")
        if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add) and any(
            SQL_TEXT.search(part) for part in _literal_parts(node.value)
        ):
            found.append(f"{filename}:{node.lineno}: SQL appended: {ast.unparse(node)[:90]}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name, owner = node.func.attr, node.func.value
            if name in ("replace", "format") and isinstance(owner, ast.Attribute) and owner.attr == "sql":
                found.append(f"{filename}:{node.lineno}: template text edited: {ast.unparse(node)[:90]}")
            if name in RUNNERS and node.args and _builds_text(node.args[0]):
                found.append(f"{filename}:{node.lineno}: built text run as SQL: {ast.unparse(node)[:90]}")
            elif name in RUNNERS and node.args and QUERY.search(" ".join(_literal_parts(node.args[0]))):
                found.append(f"{filename}:{node.lineno}: a query that is not a template: {ast.unparse(node)[:90]}")
    return sorted(set(found))


def _modules() -> list[Path]:
    return [
        p for p in sorted(SRC.rglob("*.py"))
        if not any(p.relative_to(SRC).as_posix().startswith(lib) for lib in LIBRARY)
    ]


def test_no_module_outside_the_template_library_builds_sql() -> None:
    modules = _modules()
    assert len(modules) > 50 and SRC / "readers.py" in modules and SRC / "series.py" in modules
    found = [hit for p in modules for hit in sql_building(p.read_text(encoding="utf-8"), str(p.relative_to(SRC)))]
    assert found == [], "build SQL with a template (src/expkit/sql) instead:\n" + "\n".join(found)


def test_the_library_is_where_sql_is_built() -> None:
    """The scan sees the text the library does build (so an empty result elsewhere means something)."""
    assert sql_building((SRC / "templates.py").read_text(encoding="utf-8"))
    assert sql_building((SRC / "engines" / "duckdb_engine.py").read_text(encoding="utf-8"))


@pytest.mark.parametrize("source", [
    # the shapes readers.py and series.py used before every query became a template
    'sql = f"SELECT {select} FROM t" + (f" WHERE {where}" if where else "")',
    'con.execute("SELECT bucket, slice_value, " + ", ".join(COLS) + " FROM outcome_stats WHERE metric = $m", p)',
    'sums = ", ".join(f"CAST(sum({c}) AS BIGINT) AS {c}" for c in COLUMNS)',
    'clauses.append(f"list_contains($f{i}, {col})")',
    'where += " AND experiment_id = $e"',
    'return (" AND " + " AND ".join(clauses)) if clauses else ""',
    'sql = TEMPLATES["ratio_stats"].sql.replace("/*attr_filter*/", " ".join(clauses))',
    'con.execute(f"{head} {body}")',
    'sql = "SELECT %s FROM t" % columns',
    'sql = "SELECT {} FROM t".format(columns)',
    'hist_sql = (f"SELECT bin_ms, {code} AS code FROM t" if fine else "SELECT 0")',
    'q = f"""\n    select {sv} as slice_value\n    FROM t WHERE slice = $s{where}\n"""',
    'rows = con.execute("SELECT DISTINCT slice_value FROM outcome_stats WHERE slice = $s", {"s": column})',
])
def test_the_scan_catches_pasted_sql(source: str) -> None:
    assert sql_building(source)


@pytest.mark.parametrize("source", [
    'raise ExpkitError(f"cannot filter on {col!r} here; filter on one of {list(allowed)}")',
    'con.execute(*TEMPLATES[name].render(filters, **values))',
    'con.execute("SET enable_progress_bar = false")',
    'rows = run_template(con, "slice_values", slice_column=column, experiment_id=e)',
    'where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""',
    'label = "from " + source + " to " + target',
    'msg = f"selected {n} rows from {path}"',
])
def test_the_scan_leaves_other_strings_alone(source: str) -> None:
    assert sql_building(source) == []
