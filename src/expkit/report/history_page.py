"""The history page ``OUT/index.html``: every day × experiment, newest first (docs/reports.md, "History").

Each row links a report and shows its verdict (``decision.verdict`` of its ``summary.json``, else
the report's overall status), the primary lift with its interval, the day's alerts and where its
digest went. The page is rebuilt from the ``summary.json`` and ``deliveries.json`` files on disk
after every daily run, never from memory, so re-running an old day (or deleting one) leaves it
right; it is written atomically under ``OUT/.history.lock``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

import expkit
from expkit import lineage
from expkit.atomic import FileLock, atomic_write_text
from expkit.errors import ExpkitError
from expkit.lineage import Graph
from expkit.report.brief import ReportBrief, brief, interval, pct
from expkit.report.deliveries import DeliveryEntry, read_record
from expkit.report.html import jinja_env, stylesheet
from expkit.report.index import report_days
from expkit.report.summary import utc_now
from expkit.rollup import rollup_graph
from expkit.warehouse import Warehouse

log = logging.getLogger("expkit.report")

HISTORY_FILE = "index.html"
HISTORY_LOCK = ".history.lock"
_PARTITION_DAY = re.compile(r"event_date=(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class HistoryRow:
    """One report on the history page: its brief and the delivery of its digest."""

    brief: ReportBrief
    deliveries: tuple[DeliveryEntry, ...]
    out_of_date: str = ""  # why its numbers are out of date (:func:`report_out_of_date`), else ""


def day_summaries(day_dir: Path) -> list[tuple[Path, str]]:
    """The ``summary.json`` files of one day's folder with each index page's path relative to the
    report folder: the day's own and, one level down, one per experiment folder."""
    day = day_dir.name
    found = []
    if (day_dir / "summary.json").is_file():
        found.append((day_dir / "summary.json", f"{day}/index.html"))
    if day_dir.is_dir():
        for sub in sorted(p for p in day_dir.iterdir() if p.is_dir()):
            if (sub / "summary.json").is_file() and (sub / "index.html").is_file():
                found.append((sub / "summary.json", f"{day}/{sub.name}/index.html"))
    return found


def report_out_of_date(day_dir: Path, summary: dict[str, Any], graphs: dict[str, Graph] | None = None) -> str:
    """Why the report of ``day_dir`` no longer matches its warehouse, "" when it does or cannot be
    told (no ``inputs.json``, the warehouse of ``summary`` is gone). A report records the rollup
    partitions it read (``inputs.json``); late data or a rebuilt earlier day changes them after
    it was written (:func:`expkit.rollup.report_staleness`, the rollups' own rule)."""
    params = summary.get("params")
    root = params.get("warehouse") if isinstance(params, dict) else None
    record = lineage.read_inputs(day_dir / "inputs.json")
    if not isinstance(root, str) or record is None or not Path(root, "rollups").is_dir():
        return ""
    graphs = {} if graphs is None else graphs
    if root not in graphs:
        graphs[root] = rollup_graph(Warehouse.open(root, must_exist=False))
    verdict = graphs[root].check(f"report/{day_dir.name}", record)
    if not verdict.stale:
        return ""
    names = [c.input for c in verdict.changes] + list(verdict.stale_inputs)
    days = sorted({m.group(1) for n in names if (m := _PARTITION_DAY.search(n))})
    which = f"the rollups of {', '.join(days)}" if days else "the rollups it read"
    return (f"out of date: {which} changed or went out of date after it was written (late data or a rebuilt day); "
            f"rerun expkit daily --date {day_dir.name}")


def history_rows(out: Path) -> list[HistoryRow]:
    """Every report under ``out``, newest day first, then by experiment id (unreadable summaries
    are left out and logged), each with :func:`report_out_of_date`."""
    rows = []
    graphs: dict[str, Graph] = {}
    for day in reversed(report_days(out)):
        record = read_record(out / day)
        day_rows = []
        stale: str | None = None
        for path, href in day_summaries(out / day):
            try:
                summary = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                log.warning("history: %s is unreadable (%s); left out", path, exc)
                continue
            if not isinstance(summary, dict):
                continue
            b = brief(summary, href)
            if stale is None:  # one inputs.json per day folder, the portfolio's experiments included
                stale = report_out_of_date(out / day, summary, graphs)
            day_rows.append(HistoryRow(b, tuple(record.get(b.experiment_id, {}).values()), stale))
        rows += sorted(day_rows, key=lambda r: r.brief.experiment_id)
    return rows


def render_history(rows: Sequence[HistoryRow], generated_at: str) -> str:
    """The history page's HTML."""
    return jinja_env().get_template("history.html.j2").render(
        rows=rows, generated_at=generated_at, pct=pct, interval=interval, css=Markup(stylesheet()),
        version=expkit.__version__, experiments=sorted({r.brief.experiment_id for r in rows}),
        days=len({r.brief.date for r in rows}),
    )


def write_history(out: Path, lock_timeout: float = 60.0, rows_seen: list[HistoryRow] | None = None) -> Path | None:
    """Rebuild ``out/index.html`` from the files on disk; ``None`` (logged) when another run held
    the lock longer than ``lock_timeout`` seconds (that run rewrites it anyway). ``rows_seen``
    receives the rows the page was built from."""
    out = Path(out)
    try:
        with FileLock(out / HISTORY_LOCK, timeout=lock_timeout, what="the history page"):
            rows = history_rows(out)
            if rows_seen is not None:
                rows_seen.extend(rows)
            return atomic_write_text(out / HISTORY_FILE, render_history(rows, utc_now()))
    except ExpkitError as exc:
        log.warning("history page not rebuilt: %s", exc)
        return None


def out_of_date_line(rows: Sequence[HistoryRow], built: str) -> str | None:
    """One progress line naming the reports (other than the day ``built`` just now) whose rollups
    changed since they were written, e.g. by this run rebuilding an earlier day after late data;
    ``None`` when there are none."""
    days = sorted({r.brief.date for r in rows if r.out_of_date and r.brief.date != built})
    if not days:
        return None
    n, they = len(days), "they" if len(days) != 1 else "it"
    return (f"{n} report{'s' if n != 1 else ''} out of date: {', '.join(days)} (the rollups {they} read changed "
            f"since; marked on the history page); rerun expkit daily --date D for each")
