"""The names and defaults users type: tile ids, windows, slice columns, cadences, the warehouse.

Kept free of heavy imports (standard library only) so that ``expkit --help`` can list them
without loading the analysis stack; the modules that use them (the tile registry, the
experiment config, the event schema, validation) import them from here, so each list has
one definition (see docs/reports.md, "Command line").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, NamedTuple

from expkit.project import project_root

WAREHOUSE_ENV = "EXPKIT_WAREHOUSE"
"""Environment variable naming the default warehouse folder."""
DEFAULT_WAREHOUSE = "warehouse"
"""The warehouse folder when neither ``--warehouse`` nor ``$EXPKIT_WAREHOUSE`` is given."""


DEFAULT_RULE = (f"${WAREHOUSE_ENV}, else {DEFAULT_WAREHOUSE}/ in the project root "
                "(the folder holding params/ and pyproject.toml)")
"""How the default warehouse is found, in words (for help texts and errors)."""


def default_warehouse() -> Path:
    """The warehouse used when none is given (docs/reports.md, "Running a tile by hand").

    ``$EXPKIT_WAREHOUSE`` when set; else ``warehouse/`` in the project root found by walking
    up from the working folder (:func:`expkit.project.project_root`), so a notebook whose
    kernel runs in ``notebooks/outcomes/`` finds the same warehouse as a shell in the
    repository root; else ``./warehouse``.
    """
    env = os.environ.get(WAREHOUSE_ENV)
    if env:
        return Path(env)
    root = project_root()
    return root / DEFAULT_WAREHOUSE if root is not None else Path(DEFAULT_WAREHOUSE)


Status = Literal["ok", "warn", "breach", "no_data", "failed"]
"""A tile's status (docs/reports.md): the one status type of tiles, sidecars, summary.json and pages."""
STATUSES: tuple[Status, ...] = ("ok", "warn", "breach", "no_data", "failed")
"""Every :data:`Status`, most reassuring first; ``failed`` is the report's (a tile that raised)."""
SIDECAR_STATUSES: tuple[Status, ...] = STATUSES[:4]
"""The statuses a tile itself reports (a sidecar never says ``failed``)."""

HEALTH_IDS = ("latency", "coverage", "errors", "fallback", "cache", "volume", "freshness", "anomaly")
"""Health tile ids, in dashboard order (spec contract; never rename)."""
OUTCOME_IDS = ("readout", "lift", "allocation", "timeline", "novelty")
"""Outcome tile ids besides the metric tiles, in dashboard order (never rename). Each metric of
the catalogue with a tile page (``params/metrics.yaml``: ctr, recall, session_depth, save_rate in
the shipped one) has a tile of its id, shown after the readout (:mod:`expkit.tiles.registry`)."""
TO_DATE_TILES = ("readout", "novelty")
"""Tiles that always read the experiment to date (window ``cum``), whatever their ``window`` parameter."""

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
"""Time units in milliseconds: every time in the tables is epoch milliseconds (UTC)."""

WINDOWS: dict[str, int] = {"1h": HOUR_MS, "24h": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS}
"""Window name → length in milliseconds. Windows end at the report's end time."""
DEFAULT_WINDOW = "24h"

REQUEST_SLICES = ("bucket", "cohort", "region", "surface", "client")
"""Slice columns of the request-level tables."""
IMPRESSION_SLICES = REQUEST_SLICES + ("genre", "provider")
"""Slice columns of the impression-level tables."""
SLICE_COLUMNS = IMPRESSION_SLICES
"""Slice columns a tile may group or filter by. Identifiers in SQL come only from here."""
DEFAULT_SLICE = "bucket"

class TileParameter(NamedTuple):
    """One parameter of a tile notebook's parameters cell.

    Attributes:
        name: the variable (and the keyword of :func:`expkit.run_tile` when ``argument``).
        default: its default in the notebook, as Python source.
        comment: the notebook's comment beside it.
        argument: passed to :func:`expkit.run_tile` (else set by the daily report for the notebook).
        settable: ``expkit tile -p NAME=VALUE`` accepts it (the rest come from the command's own options).
    """

    name: str
    default: str
    comment: str
    argument: bool = True
    settable: bool = False


TILE_NOTEBOOK_PARAMETERS: tuple[TileParameter, ...] = (
    TileParameter("event_date", "None", '"YYYY-MM-DD"; default: the newest rolled-up date'),
    TileParameter("window", f'"{DEFAULT_WINDOW}"', " | ".join(WINDOWS), settable=True),
    TileParameter("slice", f'"{DEFAULT_SLICE}"',
                  "a slice column this tile supports, see the error message for the list", settable=True),
    TileParameter("filters", "{}", 'e.g. {"region": ["eu", "na"]}', settable=True),
    TileParameter("buckets", "None", 'e.g. ["control", "treatment"]; default: every arm', settable=True),
    TileParameter("params_file", "None", "default: params/experiment.yaml"),
    TileParameter("warehouse", "None",
                  f"default: ${WAREHOUSE_ENV}, else warehouse/ of the project root (holding params/)"),
    TileParameter("sidecar_path", "None", "set by the daily report", argument=False),
    TileParameter("result_path", "None", "set by the daily report: this tile, already computed by the report",
                  argument=False),
)
"""The one list of tile parameters: the generated notebooks' parameters cell
(``scripts/make_notebooks.py``), the arguments of :func:`expkit.run_tile` and
:func:`expkit.tiles.base.resolve_params`, what a rendered tile records, and ``expkit tile -p``."""

TILE_ARGUMENTS: tuple[str, ...] = tuple(p.name for p in TILE_NOTEBOOK_PARAMETERS if p.argument)
"""The parameters a tile notebook passes to :func:`expkit.run_tile`."""

TILE_PARAMETERS: tuple[str, ...] = tuple(p.name for p in TILE_NOTEBOOK_PARAMETERS if p.settable)
"""The keys ``expkit tile -p KEY=VALUE`` accepts."""

CADENCES = ("5m", "hourly", "daily")
"""Check sets of the seed's three cadences; each includes the checks of the ones before it."""
