"""The templates of :mod:`expkit.templates` compiled for other SQL engines with SQLGlot.

Every template is written once, in DuckDB's dialect with ``$name`` parameters. This module
turns it into another dialect's SQL (Spark, Trino, BigQuery, ...) with that dialect's
parameter markers, so that the same definition runs on DuckDB, on a Spark cluster, or is
pasted into a Trino or BigQuery console:

>>> from expkit.engines.dialects import compile_sql
>>> sql = compile_sql("error_bins", "spark")
>>> ":bin_ms" in sql and "$bin_ms" not in sql
True
>>> compile_template("error_bins", "trino").params[:3]
('bin_ms', 'start_ms', 'end_ms')

Parameter markers (values are always bound, never pasted into the text):

=========  ==========  ============================================================
dialect    marker      how to bind
=========  ==========  ============================================================
duckdb     ``$name``   ``con.execute(sql, {"name": value})``
spark      ``:name``   ``spark.sql(sql, args={"name": value})`` (Spark >= 3.4)
bigquery   ``@name``   query parameters of the job (``ScalarQueryParameter``)
trino      ``?``       positional: ``cursor.execute(sql, compiled.bind(values))``
=========  ==========  ============================================================
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from expkit.errors import ExpkitError
from expkit.schema import EVENT_TABLES
from expkit.templates import TEMPLATES, Template

SOURCE_DIALECT = "duckdb"
"""The dialect the templates are written in."""
DIALECTS = ("duckdb", "spark", "trino", "bigquery")
"""Dialects that are tested to compile (other SQLGlot dialects are attempted on request)."""
POSITIONAL = frozenset({"trino", "presto", "athena"})
"""Dialects whose client libraries bind parameters by position (``?``), not by name."""


@dataclass(frozen=True)
class CompiledSQL:
    """A template compiled for one dialect.

    Attributes:
        sql: the SQL text, with the dialect's parameter markers.
        dialect: SQLGlot dialect name.
        params: for positional dialects, the parameter name behind each ``?`` in order
            (a name repeats where the template uses it several times); empty otherwise.
    """

    sql: str
    dialect: str
    params: tuple[str, ...] = ()

    def bind(self, values: Mapping[str, Any]) -> dict[str, Any] | list[Any]:
        """The binding to pass with :attr:`sql`: a list for positional dialects, else a dict."""
        if self.params:
            return [values[name] for name in self.params]
        return dict(values)


_TAG = re.compile(r":__expkit_param_(\d+)__")


def _tag_parameter(names: list[str], node: exp.Expression) -> exp.Expression:
    """Give each ``$name`` a unique tag to find it in the generated text (see compile_template)."""
    if not isinstance(node, exp.Placeholder):
        return node
    names.append(node.name)
    return exp.Placeholder(this=f"__expkit_param_{len(names) - 1}__")


def _resolve(template: Template | str) -> Template:
    if isinstance(template, Template):
        return template
    try:
        return TEMPLATES[template]
    except KeyError:
        raise ExpkitError(f"unknown template {template!r}; choose one of {sorted(TEMPLATES)}") from None


@functools.lru_cache(maxsize=256)
def _parse(sql: str) -> exp.Expression:
    expressions = sqlglot.parse(sql, read=SOURCE_DIALECT)
    if len(expressions) != 1 or not isinstance(expressions[0], exp.Expression):  # None: empty
        raise ExpkitError(f"a template must hold exactly one SQL statement, found {len(expressions)}")
    return expressions[0]


def rename_tables(tree: exp.Expression, tables: Mapping[str, str]) -> exp.Expression:
    """Point the table references of ``tree`` at other tables, or at queries.

    A value of ``tables`` is a (possibly qualified) table name, or a ``SELECT`` in DuckDB's
    dialect that takes the table's place, e.g. to add a partition filter that lets the engine
    skip other days: ``"SELECT * FROM hive.events.requests WHERE event_date = $day"``.
    Common table expressions of the query keep their names. The replacement is aliased with
    the old name (unless aliased already), so qualified columns (``requests.user_id``) resolve.
    """
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}

    def swap(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Table) or node.db or node.name in ctes or node.name not in tables:
            return node
        alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name))
        target = tables[node.name]
        if target.lstrip()[:6].upper() == "SELECT":
            return exp.Subquery(this=sqlglot.parse_one(target, read=SOURCE_DIALECT), alias=alias)
        new = exp.to_table(target)
        new.set("alias", alias)
        return new

    return tree.transform(swap)


def expand_list_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, tuple[int, str]]]:
    """Split list parameters into scalars, for engines that bind only scalars (Spark 3.5).

    Returns the scalar binding (``f0`` = ``["a", "b"]`` becomes ``f0__0 = "a"``, ``f0__1 = "b"``)
    and, per list parameter, its length and element type for :func:`compile_template`.

    >>> expand_list_params({"n": 3, "f0": ["a", "b"]})
    ({'n': 3, 'f0__0': 'a', 'f0__1': 'b'}, {'f0': (2, 'VARCHAR')})
    """
    scalars: dict[str, Any] = {}
    lists: dict[str, tuple[int, str]] = {}
    for name, value in params.items():
        if isinstance(value, (list, tuple)):
            lists[name] = (len(value), _element_type(value))
            scalars.update({f"{name}__{i}": v for i, v in enumerate(value)})
        else:
            scalars[name] = value
    return scalars, lists


def _element_type(values: list[Any] | tuple[Any, ...]) -> str:
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not values or len(numbers) < len(values):
        return "VARCHAR"
    return "BIGINT" if all(isinstance(v, int) for v in numbers) else "DOUBLE"


def _array_of_markers(lists: Mapping[str, tuple[int, str]], node: exp.Expression) -> exp.Expression:
    if not isinstance(node, exp.Placeholder) or node.name not in lists:
        return node
    n, element = lists[node.name]
    markers = [exp.Placeholder(this=f"{node.name}__{i}") for i in range(n)]
    return exp.cast(exp.Array(expressions=markers), exp.DataType.build(f"ARRAY<{element}>"))


_PERCENTILE_FUNCTION = frozenset({"spark", "spark2", "databricks", "hive"})
"""Dialects whose exact interpolated quantile is the aggregate ``PERCENTILE(x, q)``: SQLGlot writes
DuckDB's ``quantile_cont(x, q)`` as a two-argument ``PERCENTILE_CONT`` that Spark refuses (it takes
``PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY x)`` only). Both are exact, linear between order
statistics (numpy's ``method="linear"``)."""


def _percentile(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.PercentileCont) and node.expression is not None:
        return exp.Anonymous(this="PERCENTILE", expressions=[node.this, node.expression])
    return node


def compile_template(
    template: Template | str,
    dialect: str,
    *,
    sql: str | None = None,
    tables: Mapping[str, str] | None = None,
    lists: Mapping[str, tuple[int, str]] | None = None,
    pretty: bool = False,
) -> CompiledSQL:
    """Compile ``template`` (or a rewritten DuckDB-dialect ``sql`` of it) for ``dialect``.

    Args:
        template: a :class:`~expkit.templates.Template` or its name.
        dialect: a SQLGlot dialect name (``spark``, ``trino``, ``bigquery``, ...).
        sql: DuckDB-dialect text to compile instead of ``template.sql`` (e.g. with filters).
        tables: table name in the template → table name or ``SELECT`` to use instead (see
            :func:`rename_tables`); ``$name`` parameters in a ``SELECT`` are bound like the
            template's.
        lists: list parameters to write as an array of scalar markers (length, element type),
            from :func:`expand_list_params`.
        pretty: indent the output for reading.

    Raises:
        ExpkitError: the SQL does not parse, or SQLGlot cannot express it in ``dialect``.
    """
    t = _resolve(template)
    text = t.sql if sql is None else sql
    try:
        tree = _parse(text).copy()
        if tables:
            tree = rename_tables(tree, tables)
        if lists:
            tree = tree.transform(functools.partial(_array_of_markers, lists))
        if dialect in _PERCENTILE_FUNCTION:
            tree = tree.transform(_percentile)
        if dialect == SOURCE_DIALECT:
            return CompiledSQL(tree.sql(SOURCE_DIALECT, pretty=pretty, comments=False), dialect)
        names: list[str] = []
        if dialect in POSITIONAL:
            tree = tree.transform(functools.partial(_tag_parameter, names))
        out = tree.sql(dialect, pretty=pretty, comments=False, unsupported_level=sqlglot.ErrorLevel.RAISE)
        order: tuple[str, ...] = ()
        if dialect in POSITIONAL:
            # The order of the markers in the text is the binding order (not the tree's order:
            # SQLGlot keeps WITH after SELECT in the tree), so read it off the text.
            order = tuple(names[int(i)] for i in _TAG.findall(out))
            out = _TAG.sub("?", out)
    except SqlglotError as err:
        raise ExpkitError(f"template {t.name} cannot be compiled for {dialect}: {err}") from None
    except ValueError as err:  # unknown dialect name
        raise ExpkitError(f"unknown SQL dialect {dialect!r}: {err}") from None
    return CompiledSQL(out, dialect, order)


def compile_sql(
    template: Template | str, dialect: str, *, tables: Mapping[str, str] | None = None, pretty: bool = False
) -> str:
    """The SQL of ``template`` for ``dialect`` (see :func:`compile_template`)."""
    return compile_template(template, dialect, tables=tables, pretty=pretty).sql


def render_template(template: Template | str, dialect: str, tables: Mapping[str, str] | None = None) -> str:
    """A template for ``dialect`` as a readable script: its documented header, then the SQL."""
    t = _resolve(template)
    compiled = compile_template(t, dialect, tables=tables, pretty=True)
    header = []
    for line in t.sql.splitlines():
        if not line.startswith("--"):
            break
        header.append(line)
    header.append(f"-- dialect: {dialect} (compiled from the DuckDB template by expkit.engines.dialects)")
    if compiled.params:
        header.append(f"-- positional parameters (?): {', '.join(compiled.params)}")
    return "\n".join(header) + "\n" + compiled.sql + "\n"


_SQL_TYPES = {
    pa.int64(): "BIGINT", pa.int32(): "INT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN",
    pa.string(): "VARCHAR", pa.date32(): "DATE",
}


def table_columns(table: str, dialect: str) -> str:
    """The column list of event ``table`` in ``dialect``'s types, ``event_date DATE`` last.

    For engines that need it to map the Parquet folders to an external table (Trino's Hive
    connector); Spark and BigQuery read the columns from the files themselves.

    >>> table_columns("clicks", "trino").split(", ")[:3]
    ['click_id BIGINT', 'request_id BIGINT', 'item_id BIGINT']
    """
    if table not in EVENT_TABLES:
        raise ExpkitError(f"unknown event table {table!r}; choose one of {list(EVENT_TABLES)}")
    fields = [(f.name, f.type) for f in EVENT_TABLES[table]] + [("event_date", pa.date32())]
    return ", ".join(
        f"{name} {exp.DataType.build(_SQL_TYPES[type_]).sql(dialect)}" for name, type_ in fields
    )


def print_template(
    template: Template | str,
    dialect: str,
    tables: Mapping[str, str] | None = None,
    file: TextIO | None = None,
) -> None:
    """Print :func:`render_template` (for a notebook or a shell: ``python -c ...``)."""
    print(render_template(template, dialect, tables), file=file or sys.stdout, end="")
