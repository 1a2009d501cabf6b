"""The event tables of the warehouse (docs/architecture.md): column names and Arrow types.

One place defines them; the synthetic generator writes exactly these schemas and
the rollups read them. All timestamps are epoch milliseconds, UTC. ``event_date``
is not stored inside the files: it is the Hive partition directory
``event_date=YYYY-MM-DD`` (derived from ``timestamp_ms``). :func:`schema_problems` checks
files against these schemas from their Parquet footers (rollups and validation call it).
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

# Slice columns a tile may group or filter by (defined in expkit.names, light for the CLI's help).
from expkit.names import IMPRESSION_SLICES, REQUEST_SLICES, SLICE_COLUMNS  # noqa: F401 - re-exported

_SLICE_VALUE = re.compile(r"[\w.:\- ]+")
SLICE_VALUE_CHARS = "letters, digits, '_', '-', '.', ':' and spaces"
"""What a slice value (and so an experiment id or a bucket name) may consist of."""


def is_slice_value(text: str) -> bool:
    r"""Whether ``text`` can be a slice value, experiment id or bucket name.

    Only :data:`SLICE_VALUE_CHARS` (letters and digits of any script): quotes, semicolons,
    brackets, line breaks and invisible format characters such as the bidirectional controls
    (U+202E, U+2066..U+2069), which make a name display as another, are refused. Filters,
    experiment ids and bucket names are all checked with this one rule.

    >>> is_slice_value("eu-west 2"), is_slice_value("Île-de-France"), is_slice_value("eu\u202egnp.exe")
    (True, True, False)
    >>> is_slice_value("eu' OR 1=1"), is_slice_value("eu\n"), is_slice_value("")
    (False, False, False)
    """
    return bool(_SLICE_VALUE.fullmatch(text))

_COMMON = [
    ("timestamp_ms", pa.int64()),
    ("ingest_ms", pa.int64()),
    ("shadow", pa.bool_()),
]

REQUESTS = pa.schema(
    [
        ("request_id", pa.int64()),
        ("user_id", pa.int64()),
        ("session_id", pa.int64()),
        ("experiment_id", pa.string()),
        ("bucket", pa.string()),
        ("cohort", pa.string()),
        ("region", pa.string()),
        ("surface", pa.string()),
        ("client", pa.string()),
        ("k_requested", pa.int32()),
        ("k_returned", pa.int32()),
        ("latency_ms", pa.float64()),
        ("cache_hit", pa.bool_()),
        ("fallback_level", pa.int32()),  # 0 = primary model ... 3 = static list
        ("status", pa.string()),  # "ok" | "error"
        ("error_component", pa.string()),  # null when status = ok
        ("error_severity", pa.string()),  # null when status = ok
        *_COMMON,
    ]
)

IMPRESSIONS = pa.schema(
    [
        ("request_id", pa.int64()),
        ("user_id", pa.int64()),
        ("session_id", pa.int64()),
        ("experiment_id", pa.string()),
        ("bucket", pa.string()),
        ("item_id", pa.int64()),
        ("position", pa.int32()),  # 1-based
        ("genre", pa.string()),
        ("provider", pa.string()),
        ("cohort", pa.string()),
        ("region", pa.string()),
        ("surface", pa.string()),
        ("client", pa.string()),
        *_COMMON,
    ]
)

CLICKS = pa.schema(
    [
        ("click_id", pa.int64()),
        ("request_id", pa.int64()),
        ("item_id", pa.int64()),
        ("user_id", pa.int64()),
        ("session_id", pa.int64()),
        *_COMMON,
    ]
)

SAVES = pa.schema(
    [
        ("save_id", pa.int64()),
        ("request_id", pa.int64()),
        ("item_id", pa.int64()),
        ("user_id", pa.int64()),
        ("session_id", pa.int64()),
        *_COMMON,
    ]
)

PLAYS = pa.schema(
    [
        ("play_id", pa.int64()),
        ("user_id", pa.int64()),
        ("session_id", pa.int64()),
        ("item_id", pa.int64()),
        ("source", pa.string()),  # "rec" | "search" | "browse" | "continue"
        *_COMMON,
    ]
)

EVENT_TABLES: dict[str, pa.Schema] = {
    "requests": REQUESTS,
    "impressions": IMPRESSIONS,
    "clicks": CLICKS,
    "saves": SAVES,
    "plays": PLAYS,
}

EXPOSURES = pa.schema(
    [
        ("user_id", pa.int64()),
        ("experiment_id", pa.string()),
        ("bucket", pa.string()),
        ("timestamp_ms", pa.int64()),  # the user's first non-shadow request of the day
        ("ingest_ms", pa.int64()),
        ("shadow", pa.bool_()),
    ]
)
"""Who is in which experiment on a day, when several run at once (docs/synthetic.md, "Several
experiments"): one row per (user, experiment) exposed that day. Optional: a warehouse without it
has one experiment per request, named by the ``experiment_id`` and ``bucket`` of ``requests``."""

OPTIONAL_TABLES: dict[str, pa.Schema] = {"exposures": EXPOSURES}
"""Event tables a warehouse may lack (not in :data:`EVENT_TABLES`: nothing requires them)."""

# The event id of each table (unique per event; used by validation's duplicate check).
EVENT_ID = {
    "requests": "request_id",
    "impressions": None,  # an impression is identified by (request_id, item_id)
    "clicks": "click_id",
    "saves": "save_id",
    "plays": "play_id",
}


def _type_family(t: pa.DataType) -> str:
    """Types DuckDB reads interchangeably (an int32 where int64 is expected is fine)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    return str(t)


def schema_problems(table: str, files: list[Path]) -> list[str]:
    """What is wrong with the Parquet ``files`` of event ``table``, one sentence per problem.

    Reads only the footers. Extra columns are tolerated (the engines read by name); a missing
    column, a column of another type family, or a file that is not Parquet is a problem.
    """
    import pyarrow.parquet as pq

    expected = EVENT_TABLES[table]
    problems = []
    for f in files:
        try:
            found = pq.read_schema(f)
        except (pa.ArrowException, OSError) as err:
            problems.append(f"table {table}: file {f} is not a readable Parquet file ({err}); "
                            "delete or rewrite it")
            continue
        for field in expected:
            if field.name not in found.names:
                problems.append(f"table {table}: file {f} has no column {field.name!r} "
                                f"({field.type}, required by expkit/schema.py); rewrite the file with it")
            elif _type_family(got := found.field(field.name).type) != _type_family(field.type):
                problems.append(f"table {table}: file {f} column {field.name!r} is {got}, expected "
                                f"{field.type} (expkit/schema.py); rewrite the file with that type")
    return problems


def require_schema(tables: dict[str, list[Path]]) -> None:
    """Raise :class:`~expkit.errors.ExpkitError` on the first schema problem of ``tables``."""
    from expkit.errors import ExpkitError

    for table, files in tables.items():
        problems = schema_problems(table, files)
        if problems:
            more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
            raise ExpkitError(problems[0] + more)
