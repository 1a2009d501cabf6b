"""Engines run the SQL templates of :mod:`expkit.templates` over Parquet and return Arrow data.

An engine is given a template, bound parameter values and, for every table name the SQL
reads, the Parquet files behind it; it returns the result as an Arrow record batch reader.
DuckDB (embedded, default) lives in :mod:`expkit.engines.duckdb_engine`. Engines never see
user-supplied text as SQL: values are bound parameters and table names come from the
template headers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from expkit.errors import ExpkitError
from expkit.templates import Template


class Engine(Protocol):
    """What the rollup builder needs of an engine."""

    name: str

    def query(
        self,
        template: Template,
        params: Mapping[str, Any],
        sources: Mapping[str, Sequence[Path] | pa.Schema],
        sql: str | None = None,
    ) -> pa.RecordBatchReader:
        """Run ``template`` (or its rewritten ``sql``) with ``sources`` as tables; stream the rows.

        ``sources`` maps each table name to its Parquet files, or to a schema when the table has
        no files (an empty table of that schema).
        """
        ...

    def close(self) -> None: ...


ENGINES = ("duckdb", "spark")


def get_engine(name: str, **options: Any) -> Engine:
    """Create the engine called ``name`` (``duckdb`` or ``spark``)."""
    if name == "duckdb":
        from expkit.engines.duckdb_engine import DuckDBEngine

        return DuckDBEngine(**options)
    if name == "spark":
        try:
            from expkit.engines.spark_engine import SparkEngine
        except ImportError as err:
            raise ExpkitError(
                f"the Spark engine is not available ({err}); install it with "
                "pip install -e '.[spark]'"
            ) from None
        return SparkEngine(**options)
    raise ExpkitError(f"unknown engine {name!r}; choose one of {list(ENGINES)}")
