"""Running the ``check_*`` SQL templates: which files back each table, and one call per template."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from expkit.engines import Engine, EngineSpec, engine_spec, get_engine
from expkit.schema import EVENT_TABLES
from expkit.templates import TEMPLATES
from expkit.warehouse import Warehouse

Sources = dict[str, list[Path] | pa.Schema]


def event_sources(wh: Warehouse, days: Iterable[dt.date], tables: Iterable[str] = EVENT_TABLES,
                  skip: Collection[Path] = ()) -> Sources:
    """Every event table → the Parquet files of ``days`` but those in ``skip`` (an empty table of
    its schema when none is left)."""
    days = list(days)
    return {t: [f for d in days for f in wh.event_files(t, d) if f not in skip] or EVENT_TABLES[t] for t in tables}


def open_engine(name: str | EngineSpec = "duckdb") -> Engine:
    """An engine for the checks (a name, or an :class:`~expkit.engines.EngineSpec`), quiet: DuckDB's
    progress bar writes to stdout, which would break ``expkit validate --json`` on queries longer
    than two seconds."""
    spec = engine_spec(name)
    engine = get_engine(spec.name, **spec.options())
    con = getattr(engine, "con", None)
    if con is not None:
        con.execute("SET enable_progress_bar = false")
    return engine


def run_template(engine: Engine, name: str, sources: Sources, **params: Any) -> pa.Table:
    """Run template ``name`` with bound ``params`` over ``sources``; the whole (small) result."""
    template = TEMPLATES[name]
    return engine.query(template, template.bind(**params), sources).read_all()


def rows(table: pa.Table) -> list[dict[str, Any]]:
    """A small query result as a list of row mappings."""
    return table.to_pylist()
