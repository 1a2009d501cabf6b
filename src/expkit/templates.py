"""The query template library: named, documented SQL with typed, bound parameters.

Every rollup and every named query is one ``.sql`` file in ``expkit/sql/`` whose header
says what it computes, its parameters and their types, the tables it reads and its grain::

    -- name: health_bins
    -- description: ...
    -- params: start_ms: int, end_ms: int, bin_ms: int
    -- reads: requests
    -- grain: experiment_id, bin_ms, ...

The SQL is written once, in DuckDB's dialect, with ``$name`` parameters; engines bind values
(never paste them into the text) and other engines get a compiled copy (see
:mod:`expkit.engines`). A data scientist can call any template from a notebook:

>>> from expkit.templates import TEMPLATES
>>> TEMPLATES["health_bins"].params
{'start_ms': 'int', 'end_ms': 'int', 'bin_ms': 'int'}
>>> TEMPLATES["health_bins"].bind(start_ms=0, end_ms=86_400_000, bin_ms=300_000)
{'start_ms': 0, 'end_ms': 86400000, 'bin_ms': 300000}
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from expkit.errors import ExpkitError

_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "date": (dt.date,),
    "list[str]": (list, tuple),
}


@dataclass(frozen=True)
class Template:
    """One named SQL template.

    Attributes:
        name: template name (also the rollup table name for rollups).
        description: what the rows mean.
        params: parameter name → type name (``int``, ``float``, ``str``, ``date``, ``list[str]``).
        reads: tables or views the SQL refers to.
        grain: the columns that identify a row.
        sql: the SQL text with ``$name`` parameters.
    """

    name: str
    description: str
    params: dict[str, str]
    reads: tuple[str, ...]
    grain: tuple[str, ...]
    sql: str

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


def _parse(text: str) -> Template:
    header: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        body = line[2:].strip()
        m = re.match(r"^(name|description|params|reads|grain):\s*(.*)$", body)
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
    return Template(
        name=header["name"],
        description=header.get("description", ""),
        params=params,
        reads=split(header.get("reads", "")),
        grain=split(header.get("grain", "")),
        sql=text,
    )


def _load() -> dict[str, Template]:
    out = {}
    for entry in sorted(resources.files("expkit.sql").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".sql"):
            t = _parse(entry.read_text(encoding="utf-8"))
            out[t.name] = t
    return out


TEMPLATES: dict[str, Template] = _load()
"""Every template shipped in ``expkit/sql``, by name."""
