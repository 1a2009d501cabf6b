"""Daily HTML reports: tile notebooks through Papermill, pages, index and summary.json.

Entry points: :func:`run_daily` (the scheduled job, ``expkit daily``), :func:`run_portfolio`
(the same for several experiments at once) and :func:`run_tile_page` (one tile ad hoc,
``expkit tile``). See ``docs/reports.md``.
"""

from expkit.report.daily import (
    DailyResult,
    DailySteps,
    ProgressEvent,
    clean_stale,
    read_sidecar,
    run_daily,
    run_tile_page,
)
from expkit.report.html import PageInfo, render_notebook_html
from expkit.report.index import render_index
from expkit.report.portfolio import run_portfolio
from expkit.report.runner import NotebookJob, NotebookRun, execute_notebook, run_parallel
from expkit.report.summary import TileOutcome, build_summary, code_version, summary_problems
from expkit.report.tiles import Tile, default_tiles, resolve_tiles

__all__ = [
    "DailyResult",
    "DailySteps",
    "NotebookJob",
    "NotebookRun",
    "PageInfo",
    "ProgressEvent",
    "Tile",
    "TileOutcome",
    "build_summary",
    "clean_stale",
    "code_version",
    "default_tiles",
    "execute_notebook",
    "read_sidecar",
    "render_index",
    "render_notebook_html",
    "resolve_tiles",
    "run_daily",
    "run_parallel",
    "run_portfolio",
    "run_tile_page",
    "summary_problems",
]
