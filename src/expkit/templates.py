"""The query template library: named, documented SQL with typed, bound parameters.

Every rollup and every named query is one ``.sql`` file in ``expkit/sql/`` whose header
says what it computes, its parameters and their types, the tables it reads and its grain::

    -- name: health_bins
    -- description: ...
    -- params: start_ms: int, end_ms: int, bin_ms: int
    -- reads: requests
    -- grain: experiment_id, bin_ms, ...
    -- filters: where: bucket, region, experiment_id

The SQL is written once, in DuckDB's dialect, with ``$name`` parameters; engines bind values
(never paste them into the text) and other engines get a compiled copy (see
:mod:`expkit.engines`). Every query expkit runs is a template: no module pastes SQL together.

SQL shared by several templates is written once as a fragment, a ``.sql`` file whose header is
``-- fragment: NAME`` (then ``description:``); a template includes it where it writes
``/*include:NAME*/``, at load time, so every engine and check sees the whole query.

Optional filters are the one part of a template's text that varies: a slot ``/*where*/`` in
the SQL is filled by :meth:`Template.render` with bound-parameter conditions on the columns its
``filters`` header allows (``slot: column, table.column, ...``; a filter is named by the bare
column). Column names come only from that header, values only as parameters.

A data scientist can call any template from a notebook:

>>> from expkit.templates import TEMPLATES
>>> TEMPLATES["health_bins"].params
{'start_ms': 'int', 'end_ms': 'int', 'bin_ms': 'int'}
>>> TEMPLATES["health_bins"].bind(start_ms=0, end_ms=86_400_000, bin_ms=300_000)
{'start_ms': 0, 'end_ms': 86400000, 'bin_ms': 300000}
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from expkit.errors import ExpkitError

_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "date": (dt.date,),
    "list[str]": (list, tuple),
    "bool": (bool,),
}


@dataclass(frozen=True)
class Template:
    """One named SQL template.

    Attributes:
        name: template name (also the rollup table name for rollups).
        description: what the rows mean.
        params: parameter name → type name (``int``, ``float``, ``str``, ``date``, ``list[str]``,
            ``bool``).
        reads: tables or views the SQL refers to.
        grain: the columns that identify a row.
        sql: the SQL text with ``$name`` parameters.
        filters: the optional filters :meth:`render` accepts: column name → (slot, the column as
            the SQL at the slot refers to it, e.g. ``a.cohort``).
    """

    name: str
    description: str
    params: dict[str, str]
    reads: tuple[str, ...]
    grain: tuple[str, ...]
    sql: str
    filters: dict[str, tuple[str, str]] = field(default_factory=dict)

    def bind(self, **values: Any) -> dict[str, Any]:
        """Check that ``values`` has every parameter with the right type; return the binding."""
        missing = [p for p in self.params if p not in values]
        unknown = [p for p in values if p not in self.params]
        if missing or unknown:
            raise ExpkitError(
                f"template {self.name}: missing parameters {missing}, unknown {unknown}; "
                f"it takes {self.params}"
            )
        for key, type_name in self.params.items():
            value = values[key]
            ok = isinstance(value, _TYPES[type_name]) and not (
                isinstance(value, bool) and type_name in ("int", "float")
            )
            if type_name == "list[str]" and ok:
                ok = all(isinstance(v, str) for v in value)
            if not ok:
                raise ExpkitError(
                    f"template {self.name}: parameter {key} must be {type_name}, got {value!r}"
                )
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}

    def render(
        self, filters: Mapping[str, str | Sequence[str]] | None = None, **values: Any
    ) -> tuple[str, dict[str, Any]]:
        """The SQL and its binding: ``values`` checked by :meth:`bind`, and each of ``filters``
        (a column the ``filters`` header allows → one value, or a list of values to keep) as a
        bound-parameter condition in its slot.

        >>> sql, binding = TEMPLATES["health_series"].render(
        ...     {"region": ["eu"]}, start_ms=0, end_ms=1, slice="all", per_bin=True)
        >>> "AND list_contains($filter_region, region)" in sql, binding["filter_region"]
        (True, ['eu'])
        """
        binding = self.bind(**values)
        clauses: dict[str, list[str]] = {slot: [] for slot, _ in self.filters.values()}
        for key, value in sorted((filters or {}).items()):
            if key not in self.filters:
                raise ExpkitError(
                    f"template {self.name} cannot filter on {key!r}; it filters on {sorted(self.filters)}"
                )
            slot, column = self.filters[key]
            param = f"filter_{key}"
            if isinstance(value, str):
                clauses[slot].append(f"AND {column} = ${param}")
                binding[param] = value
            elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                clauses[slot].append(f"AND list_contains(${param}, {column})")
                binding[param] = list(value)
            else:
                raise ExpkitError(
                    f"template {self.name}: filter {key} must be a string or a list of strings, got {value!r}"
                )
        sql = self.sql
        for slot, conditions in clauses.items():
            sql = sql.replace(f"/*{slot}*/", " ".join(conditions))
        return sql, binding


def _parse(text: str) -> Template:
    header: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        body = line[2:].strip()
        m = re.match(r"^(name|description|params|reads|grain|filters):\s*(.*)$", body)
        if m:
            key = m.group(1)
            header[key] = m.group(2)
        elif key:
            header[key] += " " + body
    params: dict[str, str] = {}
    spec = header.get("params", "")
    if ":" in spec:
        for part in spec.split(","):
            name, _, type_name = part.partition(":")
            params[name.strip()] = type_name.strip()
    split = lambda s: tuple(x.strip() for x in s.split(",") if x.strip())  # noqa: E731
    filters: dict[str, tuple[str, str]] = {}
    for part in header.get("filters", "").split(";"):
        slot, _, columns = part.partition(":")
        for column in split(columns):
            if not re.fullmatch(r"(\w+\.)?\w+", column) or f"/*{slot.strip()}*/" not in text:
                raise ExpkitError(f"template {header['name']}: bad filter {column!r} in slot {slot.strip()!r}")
            filters[column.rpartition(".")[2]] = (slot.strip(), column)
    return Template(
        name=header["name"],
        description=header.get("description", ""),
        params=params,
        reads=split(header.get("reads", "")),
        grain=split(header.get("grain", "")),
        sql=text,
        filters=filters,
    )


_FRAGMENT = re.compile(r"^-- fragment: (\w+)$", re.MULTILINE)
_INCLUDE = re.compile(r"/\*include:(\w+)\*/")


def _body(text: str) -> str:
    """``text`` without its leading comment header."""
    lines = text.splitlines(keepends=True)
    while lines and lines[0].startswith("--"):
        lines.pop(0)
    return "".join(lines).strip("\n")


def build_templates(texts: Mapping[str, str]) -> dict[str, Template]:
    r"""Templates by name from ``.sql`` file name → text, fragments included.

    >>> build_templates({"f.sql": "-- fragment: one\n1", "t.sql": "-- name: t\nSELECT /*include:one*/"})["t"].sql
    '-- name: t\nSELECT 1'
    """
    known = fragments(texts)

    def include(m: re.Match[str]) -> str:
        if m.group(1) not in known:
            raise ExpkitError(f"SQL template includes unknown fragment {m.group(1)!r}; "
                              f"fragments: {sorted(known)}")
        return known[m.group(1)]

    out = {}
    for name in sorted(texts):
        if not _FRAGMENT.match(texts[name]):
            t = _parse(_INCLUDE.sub(include, texts[name]))
            out[t.name] = t
    return out


def fragments(texts: Mapping[str, str]) -> dict[str, str]:
    r"""The fragments among ``.sql`` file name → text, by name: their SQL without the header.

    >>> fragments({"f.sql": "-- fragment: one\n-- description: the number one\n1", "t.sql": "-- name: t\nSELECT 1"})
    {'one': '1'}
    """
    return {m.group(1): _body(text) for text in texts.values() if (m := _FRAGMENT.match(text))}


def _texts() -> dict[str, str]:
    return {entry.name: entry.read_text(encoding="utf-8")
            for entry in resources.files("expkit.sql").iterdir() if entry.name.endswith(".sql")}


TEMPLATES: dict[str, Template] = build_templates(_texts())
"""Every template shipped in ``expkit/sql``, by name."""
FRAGMENTS: dict[str, str] = fragments(_texts())
"""Every fragment shipped in ``expkit/sql`` (SQL included by templates where they write
``/*include:NAME*/``), by name."""
