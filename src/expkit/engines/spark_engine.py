"""The Apache Spark engine: the same templates as DuckDB, for events that outgrow one machine.

Each template is compiled from its DuckDB text by :mod:`expkit.engines.dialects` (SQLGlot),
run with ``spark.sql(sql, args=...)`` (parameters bound as ``:name`` markers, never pasted
into the text) and collected as Arrow with the column names and types DuckDB returns, so
the rollup tables are the same whichever engine wrote them.

The session comes from the user's configuration, in this order: an active session (a job
started by ``spark-submit`` or a notebook that already has one), ``SPARK_REMOTE`` (Spark
Connect), a master URL (``master=``, ``EXPKIT_SPARK_MASTER``, or ``spark.master`` in
``spark-defaults.conf``), else ``local[*]``. One session is created per process and stopped
at exit; :meth:`SparkEngine.close` only drops the engine's temporary views. The session time
zone is pinned to UTC and ANSI SQL mode is on (overflow is an error, as in DuckDB).

With ``catalog_db`` (or a ``tables`` mapping) the engine reads the event tables registered in
the session's catalog (a Hive metastore, Glue, Unity Catalog, ...) instead of the listed
Parquet files: the rows of the days whose files it was given (docs/spark.md, "Catalog tables").
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import itertools
import logging
import os
import re
import shutil
import socket
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa

try:
    import pyspark
    from pyspark.sql import DataFrame, SparkSession
except ImportError as err:  # get_engine("spark") turns this into an ExpkitError
    raise ImportError(f"pyspark is not installed ({err}); install the Spark extra: pip install -e '.[spark]'") from err

from expkit.engines.dialects import compile_template, expand_list_params
from expkit.errors import ExpkitError
from expkit.schema import EVENT_TABLES
from expkit.templates import Template

MIN_SPARK = (3, 5)
if tuple(int(x) for x in pyspark.__version__.split(".")[:2]) < MIN_SPARK:
    raise ImportError(f"pyspark {pyspark.__version__} is too old (need >= 3.5); upgrade: pip install -e '.[spark]'")
LOCAL_DEFAULTS: dict[str, str] = {
    "spark.driver.memory": "2g",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
}
"""Settings for a session expkit starts in local mode (a user's ``conf`` overrides them)."""
SESSION_SETTINGS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
}
"""Runtime settings applied to every session the engine uses."""

_PROPERTY = re.compile(r"^\s*([^\s=:#!]+)\s*[=:\s]\s*(.*)$")
_lock = threading.Lock()
_session: SparkSession | None = None
_owned = False
_engine_ids = itertools.count(1)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence pyspark's note on pandas versions (expkit moves data as Arrow, not pandas)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pandas", category=FutureWarning)
        yield


def _spark_error(err: BaseException) -> str:
    """The first line of a Spark error (the JVM stack trace that follows helps nobody)."""
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:1000]


def check_java() -> str:
    """Return the ``java`` that Spark will start; raise :class:`ExpkitError` if there is none."""
    home = os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        if not os.access(java, os.X_OK):
            raise ExpkitError(
                f"JAVA_HOME={home} has no bin/java; point JAVA_HOME at a Java 17 or 21 installation "
                "(Spark needs a JVM) or unset it to use the java on PATH"
            )
        return str(java)
    found = shutil.which("java")
    if not found:
        raise ExpkitError(
            "the Spark engine needs Java 17 or 21 and no java was found (JAVA_HOME unset, none on PATH); "
            "install one (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME, "
            "or use Spark Connect by setting SPARK_REMOTE"
        )
    return found


def spark_defaults() -> dict[str, str]:
    """Settings of ``spark-defaults.conf`` (in ``$SPARK_CONF_DIR`` or ``$SPARK_HOME/conf``), if any.

    Spark reads this file itself when it starts; expkit looks at it to take ``spark.master``
    from it and to leave the local-mode settings it sets to the user.
    """
    folder = os.environ.get("SPARK_CONF_DIR") or (
        os.path.join(os.environ["SPARK_HOME"], "conf") if os.environ.get("SPARK_HOME") else None
    )
    path = Path(folder, "spark-defaults.conf") if folder else None
    if path is None or not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _PROPERTY.match(line)  # Java properties: "key value", "key=value" or "key: value"
        if m and m.group(2).strip():
            out[m.group(1)] = m.group(2).strip()
    return out


def _is_stopped(spark: SparkSession) -> bool:
    stopped = getattr(spark, "is_stopped", None)  # Spark Connect
    if isinstance(stopped, bool):
        return stopped
    try:
        return spark.sparkContext._jsc is None
    except Exception:  # noqa: BLE001 - a session that cannot answer is unusable
        return True


@dataclass(frozen=True)
class SessionPlan:
    """How a new session will be started: Spark Connect, a master URL, or neither (spark-submit)."""

    remote: str | None
    master: str | None
    settings: dict[str, str]

    @property
    def local(self) -> bool:
        return self.master is not None and self.master.startswith("local")


def session_plan(master: str | None = None, conf: Mapping[str, str] | None = None) -> SessionPlan:
    """Resolve the user's configuration (see the module docstring) without starting anything."""
    conf = dict(conf or {})
    remote = None if master else os.environ.get("SPARK_REMOTE")
    if remote:
        return SessionPlan(remote, None, conf)
    if "PYSPARK_GATEWAY_PORT" in os.environ:  # spark-submit started the JVM with its own settings
        return SessionPlan(None, master, conf)
    defaults = spark_defaults()
    master = master or os.environ.get("EXPKIT_SPARK_MASTER") or defaults.get("spark.master") or "local[*]"
    settings = {k: v for k, v in LOCAL_DEFAULTS.items() if k not in defaults} if master.startswith("local") else {}
    return SessionPlan(None, master, {**settings, **conf})


CONNECT_TIMEOUT_S = 5.0
"""How long to wait for a TCP answer from a standalone master or a Spark Connect server."""


def _endpoints(url: str) -> list[tuple[str, int]]:
    """``(host, port)`` of a ``spark://`` master URL (several for a standby master) or an ``sc://``
    Spark Connect URL; empty for other masters (``local``, ``yarn``, ``k8s://``), which Spark checks."""
    scheme, _, rest = url.partition("://")
    if scheme not in ("spark", "sc") or not rest:
        return []
    default = 7077 if scheme == "spark" else 15002
    out = []
    for part in rest.split("/")[0].split(";")[0].split(","):
        try:
            parsed = urlsplit("//" + part)
            host, port = parsed.hostname, parsed.port or default
        except ValueError:
            continue  # Spark reports a malformed URL itself
        if host:
            out.append((host, port))
    return out


def check_reachable(url: str, what: str, setting: str) -> None:
    """Raise :class:`ExpkitError` naming ``url`` when none of its hosts accepts a TCP connection.

    A standalone driver would otherwise start, retry the master for a minute and leave a stopped
    context behind; a Connect client would retry with Java stack traces in its messages.
    """
    errors = []
    for host, port in _endpoints(url):
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
                return
        except OSError as err:
            errors.append(f"{host}:{port}: {err.strerror or err}")
    if errors:
        raise ExpkitError(f"{what} {url} is unreachable ({'; '.join(errors)}); check {setting} and that it runs")


def _start_session(master: str | None, conf: Mapping[str, str]) -> tuple[SparkSession, bool]:
    """Start (or join) a session as configured; return it and whether expkit owns it."""
    active = SparkSession.getActiveSession()
    if active is not None and not _is_stopped(active):
        return active, False
    plan = session_plan(master, conf)
    builder = SparkSession.builder.appName("expkit")
    if plan.remote:
        check_reachable(plan.remote, "the Spark Connect server", "SPARK_REMOTE")
        builder = builder.remote(plan.remote)
    else:
        if "PYSPARK_GATEWAY_PORT" not in os.environ:
            check_java()
        if plan.master:
            check_reachable(plan.master, "the Spark master", "EXPKIT_SPARK_MASTER or spark.master")
            builder = builder.master(plan.master)
    for key, value in plan.settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as err:  # noqa: BLE001 - py4j and pyspark raise many kinds
        if plan.remote:
            where, hint = f"Spark Connect at {plan.remote}", "check SPARK_REMOTE and that the Connect server runs"
        else:
            where, hint = "the Spark driver (a JVM)", "check JAVA_HOME (Java 17 or 21) and the master URL"
        raise ExpkitError(f"could not start {where}: {_spark_error(err)}; {hint}") from None
    if plan.local:
        spark.sparkContext.setLogLevel("ERROR")
        # pyspark logs every failed query with its stack; the ExpkitError raised here says it once.
        for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    return spark, True


def get_session(master: str | None = None, conf: Mapping[str, str] | None = None) -> SparkSession:
    """The process's Spark session, started on first use (see the module docstring).

    ``master`` and ``conf`` apply only when the session is first started.
    """
    global _session, _owned
    with _lock:
        if _session is None or _is_stopped(_session):
            with _quiet():
                _session, _owned = _start_session(master, dict(conf or {}))
        for key, value in SESSION_SETTINGS.items():
            _session.conf.set(key, value)
        return _session


def stop_session() -> None:
    """Stop the session if expkit started it (registered to run at exit)."""
    global _session, _owned
    with _lock:
        if _session is not None and _owned and not _is_stopped(_session):
            _session.stop()
        _session, _owned = None, False


atexit.register(stop_session)


def _uri(path: Path) -> str:
    """A local file as a URI, so that a cluster whose default file system is HDFS reads it too."""
    text = str(path)
    return text if "://" in text else "file://" + str(Path(text).resolve())


def _duckdb_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the Arrow types DuckDB returns: regular (not large) strings.

    Every column is marked nullable: which columns are provably non-null is each engine's own
    inference (DuckDB proves more), and a nullable column reads the same everywhere.
    """
    narrow = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}
    return pa.schema([pa.field(f.name, narrow.get(f.type, f.type), nullable=True) for f in schema])


def _collect(df: DataFrame) -> pa.Table:
    """All rows of ``df`` as an Arrow table (Spark >= 4: ``toArrow``; 3.5: its Arrow collector)."""
    if hasattr(df, "toArrow"):
        return df.toArrow()
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(df.schema)
    if hasattr(df, "_collect_as_arrow"):  # classic Spark 3.5
        # A private method, which pyspark's stubs read as a column (DataFrame.__getattr__).
        return pa.Table.from_batches(df._collect_as_arrow(), schema=schema)  # type: ignore[operator]
    return pa.Table.from_pandas(df.toPandas(), schema=schema, preserve_index=False)  # Connect 3.5


_NAME_PART = r"[A-Za-z_][A-Za-z0-9_]*"
_TABLE_NAME = re.compile(rf"^{_NAME_PART}(\.{_NAME_PART}){{0,2}}$")
PARTITION_COLUMN = "event_date"
"""The partition column of the event tables (``<table>/event_date=YYYY-MM-DD/``)."""


def catalog_tables(catalog_db: str | None = None, tables: Mapping[str, str] | None = None) -> dict[str, str]:
    """Event table → catalog table: ``<catalog_db>.<table>`` for every event table, then ``tables``.

    Names are ``table``, ``db.table`` or ``catalog.db.table`` (letters, digits, ``_``).

    >>> catalog_tables("events", {"plays": "media.plays"})["impressions"], catalog_tables(tables={"plays": "m.p"})
    ('events.impressions', {'plays': 'm.p'})
    """
    out = {t: f"{catalog_db}.{t}" for t in EVENT_TABLES} if catalog_db else {}
    out.update(tables or {})
    option = "--catalog-db" if catalog_db else "tables="
    for table, name in out.items():
        if table not in EVENT_TABLES:
            raise ExpkitError(f"tables={{{table!r}: ...}}: {table!r} is not an event table; "
                              f"map some of {list(EVENT_TABLES)}")
        if not _TABLE_NAME.match(name):
            raise ExpkitError(f"{option} {catalog_db or name!r}: {name!r} is not a table name; write db or "
                              "catalog.db (letters, digits and _), e.g. --catalog-db events")
    return out


def _quoted(name: str) -> str:
    """A checked table name (:func:`catalog_tables`) as a quoted SQL identifier."""
    return ".".join(f"`{part}`" for part in name.split("."))


def _partition_day(path: Path) -> dt.date:
    """The ``event_date`` of an event file, from its folder name (``event_date=YYYY-MM-DD``)."""
    key, _, value = path.parent.name.partition("=")
    try:
        if key != PARTITION_COLUMN:
            raise ValueError(key)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ExpkitError(f"{path} is not in an {PARTITION_COLUMN}=YYYY-MM-DD folder, so its day cannot be "
                          "read from a catalog table; keep the warehouse layout (docs/architecture.md)") from None


class SparkEngine:
    """Run templates on Apache Spark (local mode, a cluster, or Spark Connect).

    Args:
        master: master URL for a session started here (default: see :func:`get_session`).
        conf: extra Spark settings for a session started here (``{"spark.executor.memory": "8g"}``).
        session: an existing session to use instead.
        catalog_db: read each event table as ``<catalog_db>.<table>`` of the session's catalog
            (``events``, or ``main.events`` on Unity Catalog) instead of its Parquet files.
        tables: event table → catalog table, for tables named otherwise (applied after ``catalog_db``).

    A catalog table must exist when the engine is created, have the event table's columns and
    the ``event_date`` partition column, and have every day it is asked for registered.
    """

    name = "spark"

    def __init__(
        self,
        master: str | None = None,
        conf: Mapping[str, str] | None = None,
        session: SparkSession | None = None,
        catalog_db: str | None = None,
        tables: Mapping[str, str] | None = None,
    ):
        self.tables = catalog_tables(catalog_db, tables)
        self.spark = session if session is not None else get_session(master, conf)
        if session is not None:
            for key, value in SESSION_SETTINGS.items():
                session.conf.set(key, value)
        # Views get a per-engine prefix: they never replace a user's tables or another engine's views.
        self._prefix = f"expkit_{os.getpid()}_{next(_engine_ids)}_"
        self._views: dict[str, tuple[Any, ...]] = {}
        self._partitions: dict[str, set[dt.date] | None] = {}
        for table, fq in self.tables.items():
            self._require_table(table, fq, "tables=" if table in (tables or {}) else f"--catalog-db {catalog_db}")

    def _require_table(self, table: str, fq: str, option: str) -> None:
        """Raise a one-line error unless catalog table ``fq`` exists with an ``event_date`` column."""
        try:
            exists = self.spark.catalog.tableExists(fq)
        except Exception as err:  # noqa: BLE001 - e.g. an unknown catalog of a three-part name
            raise ExpkitError(f"catalog table {fq} (event table {table}, from {option}) cannot be looked up: "
                              f"{_spark_error(err)}") from None
        if not exists:
            impl = self.spark.conf.get("spark.sql.catalogImplementation", "in-memory")
            hint = (" (this session's catalog is in-memory: start Spark with Hive support, "
                    "spark.sql.catalogImplementation=hive, to see a metastore's tables)") if impl != "hive" else ""
            raise ExpkitError(f"catalog table {fq} (event table {table}, from {option}) does not exist{hint}; "
                              f"register it over the warehouse's events/{table} folder (docs/spark.md, "
                              f"\"Catalog tables\") or fix {option.split()[0]}")
        columns = self.spark.table(fq).columns
        if PARTITION_COLUMN not in columns:
            raise ExpkitError(f"catalog table {fq} (event table {table}) has no {PARTITION_COLUMN} column; "
                              f"partition it by {PARTITION_COLUMN} (docs/spark.md, \"Catalog tables\")")

    def _registered_days(self, fq: str, refresh: bool) -> set[dt.date] | None:
        """The ``event_date`` partitions the catalog lists for ``fq`` (``None``: it lists none, e.g. a
        table whose format keeps partitions itself)."""
        if refresh or fq not in self._partitions:
            try:
                got = self.spark.sql(f"SHOW PARTITIONS {_quoted(fq)}").collect()
            except Exception:  # noqa: BLE001 - not a partitioned catalog table: rows decide
                self._partitions[fq] = None
            else:
                days = set()
                for row in got:
                    for part in str(row[0]).split("/"):
                        key, _, value = part.partition("=")
                        if key == PARTITION_COLUMN:
                            with contextlib.suppress(ValueError):
                                days.add(dt.date.fromisoformat(value))
                self._partitions[fq] = days
        return self._partitions[fq]

    def _catalog_frame(self, name: str, files: Sequence[Path]) -> DataFrame:
        """The rows of catalog table ``self.tables[name]`` on the days of ``files`` (partition filter)."""
        from pyspark.sql import functions as F  # noqa: N812 - pyspark's own convention

        fq = self.tables[name]
        days = sorted({_partition_day(Path(p)) for p in files})
        self.spark.catalog.refreshTable(fq)  # files may have landed since the session cached the listing
        known = self._registered_days(fq, refresh=False)
        if known is not None and not set(days) <= known:
            known = self._registered_days(fq, refresh=True)
        missing = [d for d in days if known is not None and d not in known]
        if missing:
            d = missing[0]
            folder = next(Path(p).parent for p in files if _partition_day(Path(p)) == d)
            raise ExpkitError(f"catalog table {fq} has no partition {PARTITION_COLUMN}={d}, but {folder} has files; "
                              f"register the day (MSCK REPAIR TABLE {fq}, or ALTER TABLE {fq} ADD PARTITION "
                              f"({PARTITION_COLUMN}='{d}')) and rerun")
        df = self.spark.table(fq)
        kind = dict(df.dtypes)[PARTITION_COLUMN]
        values: list[Any] = [d.isoformat() for d in days] if kind == "string" else list(days)
        column = F.col(PARTITION_COLUMN) if kind in ("date", "string") else F.col(PARTITION_COLUMN).cast("date")
        return df.where(column.isin(values)).drop(PARTITION_COLUMN)

    def _view(self, name: str, source: Sequence[Path] | pa.Schema) -> str:
        view = self._prefix + name
        catalog = name in self.tables and not isinstance(source, pa.Schema)
        if isinstance(source, pa.Schema):
            key: tuple[Any, ...] = ("schema", source)
        else:
            key = (catalog, *((str(p), *_stamp(p)) for p in source))
        if self._views.get(view) == key:
            return view
        if isinstance(source, pa.Schema):
            with _quiet():
                from pyspark.sql.pandas.types import from_arrow_schema

            df = self.spark.createDataFrame([], schema=from_arrow_schema(source))
        elif catalog:
            try:
                df = self._catalog_frame(name, source)
            except ExpkitError:
                raise
            except Exception as err:  # noqa: BLE001 - pyspark and py4j errors alike
                raise ExpkitError(f"cannot read table {name} from catalog table {self.tables[name]}: "
                                  f"{_spark_error(err)}") from None
        else:
            files = [_uri(Path(p)) for p in source]
            try:
                df = self.spark.read.option("mergeSchema", "true").parquet(*files)
            except Exception as err:  # noqa: BLE001 - pyspark and py4j errors alike
                raise ExpkitError(f"cannot read table {name} from {files[:3]}...: {_spark_error(err)}") from None
        df.createOrReplaceTempView(view)
        self._views[view] = key
        return view

    def query(
        self,
        template: Template,
        params: Mapping[str, Any],
        sources: Mapping[str, Sequence[Path] | pa.Schema],
        sql: str | None = None,
    ) -> pa.RecordBatchReader:
        """Run the template (or its rewritten DuckDB-dialect ``sql``) with bound ``params``."""
        views = {name: self._view(name, source) for name, source in sources.items()}
        # Spark 3.5 binds only scalars: a list parameter becomes an array of scalar markers.
        scalars, lists = expand_list_params(params)
        compiled = compile_template(template, "spark", sql=sql, tables=views, lists=lists)
        try:
            with _quiet():
                table = _collect(self.spark.sql(compiled.sql, args=scalars))
        except Exception as err:  # noqa: BLE001 - py4j, pyspark and Connect errors alike
            raise ExpkitError(f"template {template.name} failed in Spark: {_spark_error(err)}") from None
        schema = _duckdb_schema(table.schema)
        table = table.cast(schema)
        return pa.RecordBatchReader.from_batches(schema, table.to_batches(max_chunksize=1_000_000))

    def close(self) -> None:
        """Drop this engine's temporary views (the session stays up for the next engine)."""
        if not _is_stopped(self.spark):
            for view in self._views:
                self.spark.catalog.dropTempView(view)
        self._views.clear()


def _stamp(path: Path) -> tuple[int, int]:
    """Size and modification time of ``path`` (so that a rewritten file is read afresh)."""
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)
