"""Engines run the SQL templates of :mod:`expkit.templates` over Parquet and return Arrow data.

An engine is given a template, bound parameter values and, for every table name the SQL
reads, the Parquet files behind it; it returns the result as an Arrow record batch reader.
DuckDB (embedded, default) lives in :mod:`expkit.engines.duckdb_engine`. Engines never see
user-supplied text as SQL: values are bound parameters and table names come from the
template headers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


def write_parquet(
    engine: Engine,
    template: Template,
    params: Mapping[str, Any],
    sources: Mapping[str, Sequence[Path] | pa.Schema],
    path: Path,
) -> int:
    """Run ``template`` on ``engine`` into the Parquet file ``path``; return the row count.

    Uses the engine's own writer when it has one (DuckDB's is parallel), else streams Arrow.
    """
    own = getattr(engine, "write_parquet", None)
    if own is not None:
        return int(own(template, params, sources, path))
    return write_reader(engine.query(template, params, sources), path)


def write_reader(reader: pa.RecordBatchReader, path: Path) -> int:
    """Stream record batches into one zstd Parquet file; return the row count."""
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(path, reader.schema, compression="zstd") as w:
        for batch in reader:
            w.write_batch(batch)
            rows += batch.num_rows
    return rows


ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class EngineSpec:
    """Which engine reads the raw events, and from where (``--engine``, ``--catalog-db``).

    Attributes:
        name: ``duckdb`` or ``spark``.
        catalog_db: Spark only: read each event table as ``<catalog_db>.<table>`` of the
            session's catalog instead of the warehouse's Parquet folders (docs/spark.md,
            "Catalog tables"); ``None``: the folders.
    """

    name: str = "duckdb"
    catalog_db: str | None = None

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise ExpkitError(f"unknown engine {self.name!r}; choose one of {list(ENGINES)}")
        if self.catalog_db is not None and self.name != "spark":
            raise ExpkitError(f"--catalog-db {self.catalog_db} reads catalog tables through Spark; "
                              "add --engine spark, or drop --catalog-db to read the warehouse's folders")

    def options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`get_engine` for this choice."""
        return {"catalog_db": self.catalog_db} if self.catalog_db is not None else {}


def engine_spec(engine: str | EngineSpec) -> EngineSpec:
    """``engine`` as an :class:`EngineSpec` (a name means that engine over the folders)."""
    return engine if isinstance(engine, EngineSpec) else EngineSpec(engine)


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
