"""The deep-dive page: ``notebooks/deepdive/experiment.ipynb`` through Papermill and nbconvert (``expkit deepdive``).

Layout, beside the day's report (docs/deepdive.md)::

    OUT/D/deepdive/index.html        the page: no code, charts drawn offline (expkit.report.vega)
    OUT/D/deepdive/experiment.ipynb  the executed notebook
    OUT/D/deepdive/kernel.log        the kernel process's own stdout/stderr

With several experiments (the portfolio layout of docs/reports.md) each experiment's deep dive is
in its own report folder, ``OUT/D/<experiment_id>/deepdive/``, linked from that experiment's page.

The folder is built under a temporary name and swapped in whole, under the day's lock, so a
reader sees the previous deep dive or the new one. When the day has a report (``summary.json``)
its index page is re-rendered and links the deep dive (:func:`expkit.report.index.write_index`
links it whenever the page exists). ``expkit daily`` replaces the day's folder, deep dive
included: run ``expkit deepdive`` again after it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expkit.errors import ExpkitError

if TYPE_CHECKING:
    from expkit.deepdive import DeepDive

DEEPDIVE_DIR = "deepdive"
"""The deep dive's folder inside a day's report folder."""
DEEPDIVE_PAGE = f"{DEEPDIVE_DIR}/index.html"
"""The deep-dive page, relative to the day's report folder (what the index links)."""
NOTEBOOK_NAME = "experiment.ipynb"
USER_PARAMETERS = ("window", "metrics", "slices")
"""The ``-p`` keys of ``expkit deepdive`` (the date, warehouse and parameters file are options)."""
_HIDDEN = ("svg", "sidecar_path")


def report_day_dir(out: Path, day: dt.date) -> Path:
    """The report folder of ``day`` under ``out`` (where its ``index.html`` and ``summary.json`` are)."""
    return Path(out) / day.isoformat()


def deepdive_dir(out: Path, day: dt.date, experiment_id: str | None = None) -> Path:
    """The deep-dive folder of ``day`` under ``out``; with ``experiment_id``, of that experiment's
    folder of a day with several experiments."""
    day_dir = report_day_dir(out, day)
    return (day_dir / experiment_id if experiment_id else day_dir) / DEEPDIVE_DIR


def deepdive_notebook() -> Path:
    """The deep-dive notebook of the checkout (``$EXPKIT_NOTEBOOKS/deepdive/experiment.ipynb``)."""
    from expkit.tiles.spec import notebooks_dir

    return notebooks_dir() / DEEPDIVE_DIR / NOTEBOOK_NAME


@dataclass(frozen=True)
class DeepDiveOutcome:
    """What :func:`run_deepdive_page` wrote.

    Attributes:
        page: the HTML page.
        notebook: the executed notebook (``None`` when none was written).
        status: the readout's status (``ok``, ``breach``, ``no_data`` …) or ``failed``.
        error: ``ExceptionName: message`` when the notebook failed, else ``None``.
        index: the day's index page, re-rendered to link the deep dive (``None`` without a report).
        duration_s: seconds for the notebook and the page.
    """

    page: Path
    notebook: Path | None
    status: str
    error: str | None
    index: Path | None
    duration_s: float

    def to_json(self) -> dict[str, Any]:
        """The JSON line ``expkit deepdive`` prints."""
        return {"status": self.status, "html": str(self.page),
                "notebook": str(self.notebook) if self.notebook else None,
                "index": str(self.index) if self.index else None, "error": self.error}


def check_parameters(parameters: Mapping[str, Any], *, warehouse: Path, day: dt.date, params_file: Path) -> DeepDive:
    """Refuse unknown ``-p`` keys and bad values before a kernel starts (:class:`ExpkitError`,
    naming the parameter); returns the checked :class:`~expkit.deepdive.DeepDive`."""
    from expkit.deepdive import open_deepdive

    unknown = sorted(set(parameters) - set(USER_PARAMETERS))
    if unknown:
        raise ExpkitError(f"-p {unknown[0]}=...: unknown parameter; the deep dive takes {list(USER_PARAMETERS)} "
                          "(the date, warehouse and parameters file are --date, --warehouse and --params)")
    return open_deepdive(event_date=day, warehouse=warehouse, params_file=params_file, **parameters)


def _report_experiment(summary_path: Path) -> str | None:
    """The experiment id of the report ``summary_path`` (``None``: no readable report there)."""
    try:
        doc = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, Mapping):
        return None
    params = doc.get("params")
    owner = doc.get("experiment_id") or (params.get("experiment_id") if isinstance(params, Mapping) else None)
    return str(owner) if owner else None


def run_deepdive_page(
    warehouse: Path,
    day: dt.date,
    out: Path,
    params_file: Path,
    parameters: Mapping[str, Any] | None = None,
    timeout: float = 600,
    lock_timeout: float | None = 3600,
    per_experiment: bool | None = None,
) -> DeepDiveOutcome:
    """Render the deep dive of ``day`` to ``out/D/deepdive/`` (see the module docstring).

    ``per_experiment`` puts it in the experiment's folder ``out/D/<experiment_id>/deepdive/`` (a
    setup with several experiments); ``None``: there when that folder has a report.

    Bad ``parameters`` raise :class:`~expkit.errors.ExpkitError` before anything is written. A
    notebook that fails still gets its page, showing the error (``outcome.error``).
    """
    from expkit.atomic import FileLock, building_dir, clean_stale_temps
    from expkit.report.html import PageInfo, write_tile_page
    from expkit.report.index import write_index
    from expkit.report.runner import NotebookJob, execute_notebook
    from expkit.report.summary import code_version, utc_now

    started, started_at = time.monotonic(), utc_now()
    warehouse, out, params_file = (Path(p).resolve() for p in (warehouse, out, params_file))
    given = dict(parameters or {})
    dd = check_parameters(given, warehouse=warehouse, day=day, params_file=params_file)
    notebook = deepdive_notebook()
    if not notebook.is_file():
        raise ExpkitError(f"the deep-dive notebook {notebook} is missing; reinstall, or set $EXPKIT_NOTEBOOKS")
    if per_experiment is None:
        per_experiment = (report_day_dir(out, day) / dd.experiment_id / "summary.json").is_file()
    sub = dd.experiment_id if per_experiment else ""
    final = deepdive_dir(out, day, sub)
    day_dir = final.parent
    owner = _report_experiment(day_dir / "summary.json")
    if owner is not None and owner != dd.experiment_id:  # its page would link another experiment's deep dive
        raise ExpkitError(f"{day_dir / 'summary.json'} is the report of experiment {owner!r}, not "
                          f"{dd.experiment_id!r} of {params_file}; pass the --out of {dd.experiment_id!r}'s reports "
                          f"(or --params of {owner!r})")
    with FileLock(out / f".{day.isoformat()}.lock", timeout=lock_timeout, what=f"the report folder of {day}"):
        clean_stale_temps(final.parent)
        with building_dir(final) as tmp:
            sidecar = tmp / ".sidecar.json"
            injected = {**given, "event_date": day.isoformat(), "warehouse": str(warehouse),
                        "params_file": str(params_file), "svg": False, "sidecar_path": str(sidecar)}
            run = execute_notebook(NotebookJob(notebook=notebook, output=tmp / NOTEBOOK_NAME, parameters=injected,
                                               timeout=timeout, log_path=tmp / "kernel.log"))
            side: dict[str, Any] = {}
            if sidecar.is_file():
                side = json.loads(sidecar.read_text(encoding="utf-8"))
                sidecar.unlink()
            status = "failed" if run.error else str(side.get("status") or "no_data")
            shown = {**dd.describe(), **{k: v for k, v in given.items() if k not in _HIDDEN}}
            executed = tmp / NOTEBOOK_NAME if (tmp / NOTEBOOK_NAME).is_file() else None
            page = PageInfo(
                tile_id="deepdive", title="Experiment deep dive", section="deep dive", status=status,
                date=day.isoformat(), summary=str(side.get("summary") or ""), error=run.error,
                as_of=str(side["as_of"]) if side.get("as_of") else None,
                experiment_id=dd.experiment_id, window=dd.window, code_version=code_version(),
                generated_at=started_at, duration_s=time.monotonic() - started, params=shown,
                index_href="../index.html" if (day_dir / "summary.json").is_file() else None,
                notebook_href=NOTEBOOK_NAME if executed else None,
            )
            render_error = write_tile_page(executed, page, tmp / "index.html", source_dir=notebook.parent)
            error = run.error or (f"page rendering failed: {render_error}" if render_error else None)
        index = None
        if (day_dir / "summary.json").is_file():
            summary = json.loads((day_dir / "summary.json").read_text(encoding="utf-8"))
            index = write_index(day_dir, summary, out, sub=sub)
    notebook_out = final / NOTEBOOK_NAME
    return DeepDiveOutcome(page=final / "index.html", notebook=notebook_out if notebook_out.is_file() else None,
                           status="failed" if error else status, error=error, index=index,
                           duration_s=time.monotonic() - started)
