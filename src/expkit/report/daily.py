"""The daily job: steps, every tile through Papermill, pages, index and summary.

Layout of one day's report of one experiment (``out/D``, built under a temporary name and
swapped in; several experiments: :mod:`expkit.report.portfolio`)::

    index.html            Health and Outcomes cards, alert timeline, validation table
    summary.json          the summary.json contract (docs/reports.md, expkit.report.summary)
    deliveries.json       where the day's digests went (expkit.report.deliveries; kept across reruns)
    digest.txt, .html     the day's digest (written by the daily job after the report)
    tiles/<id>.html       one page per tile, no code
    notebooks/<id>.ipynb  the executed notebooks
    sidecars/<id>.json    what each tile reported about itself
    logs/<id>.log         the kernel process's own stdout/stderr
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import papermill

from expkit.atomic import FileLock, atomic_write_json, building_dir
from expkit.config import load_experiment
from expkit.history import HistoryGaps
from expkit.interrupts import interrupted
from expkit.names import SIDECAR_STATUSES, Status
from expkit.report.compute import TileComputer, timeout_error, warm_up
from expkit.report.deliveries import RECORD_FILE
from expkit.report.history_page import HistoryRow, out_of_date_line, write_history
from expkit.report.html import PageInfo, write_tile_page
from expkit.report.index import (
    card_badge,
    experiment_dirs,
    neighbours,
    refresh_nav,
    report_days,
    set_tile_nav,
    write_index,
)
from expkit.report.runner import NotebookJob, execute_notebook, run_parallel, short_error
from expkit.report.summary import (
    TileOutcome,
    build_summary,
    code_version,
    load_params,
    normalize_alerts,
    normalize_checks,
    utc_now,
)
from expkit.report.tiles import Tile, TilesArg, find_tile, prerender_of, resolve_tiles
from expkit.rollup import record_report

log = logging.getLogger("expkit.report")

SUBDIRS = ("tiles", "notebooks", "sidecars", "logs")
ADHOC_DIR = "adhoc"
# Parameters the runner sets itself and that the page header does not show.
_HIDDEN_PARAMS = {"sidecar_path", "result_path"}
# Tiles computed in the report's process wait here for their notebooks (never published).
RESULTS_DIR = ".results"

StepFn = Callable[[Path, dt.date, Path], Any]


@dataclass(frozen=True)
class DailySteps:
    """The steps run before the tiles, each called as ``step(warehouse, date, params_file)``.

    ``rollup`` builds or refreshes the day's rollups and returns what the report still lacks
    (an :class:`~expkit.history.HistoryGaps`, recorded as ``history`` in ``summary.json`` and
    shown at the top of the index; its ``built`` says what the step built), or whether it built
    them (``True``/``False``), or ``None`` (not said); an exception aborts the run and leaves the
    previous report in place. ``notices`` (run after the rollup) returns lines a reader must see
    before trusting the tiles (the experiment is absent from the data, say): each is reported
    as progress and shown on the index page. ``validate`` returns the check records and
    ``alerts`` the alert records, in the ``summary.json`` shapes; if either raises, the error is
    shown on the index, the tiles still run and the run is not ``ok``. A step left as ``None``
    is skipped.
    """

    rollup: StepFn | None = None
    validate: StepFn | None = None
    alerts: StepFn | None = None
    notices: StepFn | None = None


@dataclass(frozen=True)
class ProgressEvent:
    """A progress report: ``stage`` is one of ``lock`` (only when another run holds it),
    ``rollup``, ``history``, ``validate``, ``alerts``, ``tiles``, ``tile`` (one finished;
    ``done``/``total`` count them), ``index`` and ``done``; the daily job adds ``digest`` (one per
    delivery, :func:`expkit.daily.deliver_digests`). Each says what happens."""

    stage: str
    message: str
    done: int = 0
    total: int = 0
    tile: str | None = None


ProgressFn = Callable[[ProgressEvent], None]


@dataclass
class DailyResult:
    """The outcome of :func:`run_daily`."""

    date: dt.date
    out_dir: Path
    index: Path
    summary_path: Path
    tiles: dict[str, TileOutcome]
    alerts: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    step_errors: dict[str, str]
    duration_s: float
    summary: dict[str, Any] = field(repr=False)
    experiments: dict[str, DailyResult] = field(default_factory=dict, repr=False)
    """A day with several experiments (:func:`expkit.report.portfolio.run_portfolio`): each
    experiment's own result (its tiles, summary and folder); ``tiles`` then holds the health
    tiles by id and each experiment's as ``<experiment_id>/<tile id>``. Empty for one experiment."""

    @property
    def failed_tiles(self) -> list[str]:
        """Ids of the tiles that failed."""
        return [t.id for t in self.tiles.values() if t.failed]

    @property
    def ok(self) -> bool:
        """True when every tile and every step succeeded (alerts and checks aside)."""
        return not self.failed_tiles and not self.step_errors


def run_daily(
    warehouse: Path,
    date: dt.date,
    out: Path,
    params_file: Path,
    workers: int | None = None,
    timeout: float = 600,
    tiles: TilesArg = None,
    steps: DailySteps | None = None,
    progress: ProgressFn | None = None,
    *,
    lock_timeout: float | None = 3600,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> DailyResult:
    """Build the report of ``date`` under ``out/<date>/`` and return what happened.

    Runs ``steps`` (rollup, validate, alerts), then every tile notebook through
    Papermill on ``workers`` threads (default: the CPU count), each in its own kernel
    and with ``timeout`` seconds for the whole notebook (a tile's own ``timeout``
    attribute wins), renders the pages, ``index.html`` and ``summary.json``, points the
    neighbouring days' pages at it and rebuilds the history page ``out/index.html``.

    The folder is built beside ``out/<date>`` and swapped in at the end, so readers see
    the previous report or the new one, never a mix; a rerun replaces the day. Runs of
    the same date are serialized by ``out/.<date>.lock``: a second run waits up to
    ``lock_timeout`` seconds (``None``: forever, ``0``: not at all) and then raises
    :class:`~expkit.errors.ExpkitError`. Leftovers of killed runs are removed.

    ``overrides`` maps a tile id to extra Papermill parameters for that tile. A tile
    that fails does not stop the others; check ``result.ok``.
    """
    started = time.monotonic()
    started_at = utc_now()
    day = _as_date(date)
    warehouse, out, params_file = (Path(p).resolve() for p in (warehouse, out, params_file))
    tile_list = resolve_tiles(tiles)
    params = load_params(params_file)
    params.update({"warehouse": str(warehouse), "timeout_s": timeout})
    steps = steps or DailySteps()
    emit = progress or (lambda _event: None)
    n_workers = max(1, workers or os.cpu_count() or 1)
    final = out / day.isoformat()

    def waiting(holder: int | None) -> None:
        by = f" (held by process {holder})" if holder else ""
        emit(ProgressEvent("lock", f"waiting for the lock of {day}{by}, up to {lock_timeout:g} s"
                           if lock_timeout is not None else f"waiting for the lock of {day}{by}"))

    out.mkdir(parents=True, exist_ok=True)
    # The lock comes first: a run that has to wait (or give up) starts no worker or kernel.
    with FileLock(out / f".{day}.lock", timeout=lock_timeout, what=f"the daily report for {day}", on_wait=waiting):
        if any(prerender_of(t) for t in tile_list):
            warm_up(compute_workers(n_workers))  # the tile workers import the analysis stack while the steps run
        clean_stale(out, day.isoformat())
        ran = _run_steps(steps, warehouse, day, params_file, emit)
        version = code_version()
        before = [p.name for p in experiment_dirs(final)]  # a day of several experiments this one replaces
        with building_dir(final) as tmp:
            record_report(warehouse, day, tmp, load_experiment(params_file).start_date)
            outcomes = run_tiles_in(
                tmp, tile_list, warehouse=warehouse, date=day, params_file=params_file,
                experiment_id=params.get("experiment_id"), timeout=timeout, overrides=overrides,
                workers=n_workers, emit=emit, started_at=started_at, version=version,
                durations=previous_durations(out, day),
            )
            emit(ProgressEvent("index", "writing summary.json and index.html"))
            summary = build_summary(
                date=day,
                generated_at=utc_now(),
                params=params,
                tiles=outcomes,
                alerts=ran.alerts,
                checks=ran.checks,
                run_seconds=time.monotonic() - started,
                step_errors=ran.errors,
                version=version,
                history=ran.history.to_json() if ran.history is not None else None,
                notices=ran.notices,
            )
            summary["started_at"] = started_at
            summary["steps_run"] = ran.steps_run
            atomic_write_json(tmp / "summary.json", summary)
            write_index(tmp, summary, out)
            finish_day_folder(tmp, final, out, day)
        refresh_nav(out, day.isoformat(), gone=before)
        seen: list[HistoryRow] = []
        write_history(out, rows_seen=seen)
        stale_line = out_of_date_line(seen, day.isoformat())
        if stale_line:
            emit(ProgressEvent("history", stale_line))
    duration = time.monotonic() - started
    result = DailyResult(
        date=day,
        out_dir=final,
        index=final / "index.html",
        summary_path=final / "summary.json",
        tiles={t.id: t for t in outcomes},
        alerts=summary["alerts"],
        checks=summary["checks"],
        step_errors=ran.errors,
        duration_s=duration,
        summary=summary,
    )
    emit(ProgressEvent("done", f"report written to {result.index}", len(outcomes), len(outcomes)))
    return result


def run_tiles_in(
    folder: Path,
    tile_list: list[Tile],
    *,
    warehouse: Path,
    date: dt.date,
    params_file: Path,
    experiment_id: str | None,
    timeout: float,
    overrides: Mapping[str, Mapping[str, Any]] | None,
    workers: int,
    emit: ProgressFn,
    started_at: str,
    version: str,
    durations: Mapping[str, float],
    label: str = "",
) -> list[TileOutcome]:
    """Run ``tile_list`` into ``folder`` (its ``tiles/``, ``notebooks/``, ``sidecars/``, ``logs/``)
    on ``workers`` notebook threads, quickest first by ``durations``; return the outcomes in
    ``tile_list``'s order. Each tile page links ``../index.html`` and has the day links; ``label``
    names the part in the progress line (an experiment, the platform)."""
    for sub in SUBDIRS:
        (folder / sub).mkdir(parents=True, exist_ok=True)
    total = len(tile_list)
    what = f" of {label}" if label else ""
    emit(ProgressEvent("tiles", f"running {total} tiles{what} on {workers} workers", 0, total))
    done = 0

    def on_done(_tile: Tile, outcome: TileOutcome) -> None:
        nonlocal done
        done += 1
        msg = f"{outcome.id}: {outcome.status}" + (f" ({outcome.error})" if outcome.error else "")
        emit(ProgressEvent("tile", msg, done, total, tile=outcome.id))

    inputs = {
        t.id: tile_inputs(folder, t, warehouse=warehouse, date=date, params_file=params_file,
                          parameters=(overrides or {}).get(t.id), timeout=timeout)
        for t in tile_list
    }

    def cost(t: Tile) -> float:
        return durations.get(t.id, math.inf)

    # One worker process per two notebook workers computes the tiles, quickest first:
    # the notebooks are the bottleneck and get their first tiles at once. Each notebook
    # runs as soon as its tile is ready.
    with TileComputer(compute_workers(workers), processes=True) as computer:
        quickest_first = sorted(tile_list, key=cost)
        for t in quickest_first:
            submit_tile(computer, t, inputs[t.id])
        finished = run_parallel(
            computer.in_order_ready(quickest_first, lambda t: inputs[t.id].timeout),
            lambda t: run_tile_into(
                folder, t, inputs[t.id], computer, date=date, experiment_id=experiment_id,
                started_at=started_at, version=version, index_href="../index.html", day_nav=True,
            ),
            workers,
            on_done=on_done,
        )
    _drop_results_dir(folder)
    by_id = {o.id: o for o in finished}
    return [by_id[t.id] for t in tile_list]


def run_tile_page(
    tile: str | Tile,
    warehouse: Path,
    date: dt.date,
    out: Path,
    params_file: Path,
    parameters: Mapping[str, Any] | None = None,
    timeout: float = 600,
    tiles: TilesArg = None,
) -> TileOutcome:
    """Run one tile with extra ``parameters`` (ad hoc; ``expkit tile``), no lock, no index.

    ``expkit tile`` passes ``out`` = :func:`adhoc_dir`, outside the published days.
    Writes ``tiles/<id>.html``, ``notebooks/<id>.ipynb``, ``sidecars/<id>.json`` and
    ``logs/<id>.log`` under ``out`` (each file atomically) and returns the outcome.
    When ``out`` is a published daily report (it holds ``summary.json``), the files go
    to ``out/adhoc/`` instead, so the day's pages keep matching its summary;
    ``outcome.html`` and ``outcome.notebook`` are relative to ``out`` either way.
    """
    t = find_tile(tile, tiles)
    day = _as_date(date)
    warehouse, out, params_file = (Path(p).resolve() for p in (warehouse, out, params_file))
    params = load_params(params_file)
    prefix = ADHOC_DIR if (out / "summary.json").is_file() else ""
    target = out / prefix if prefix else out
    for sub in SUBDIRS:
        (target / sub).mkdir(parents=True, exist_ok=True)
    inputs = tile_inputs(
        target, t, warehouse=warehouse, date=day, params_file=params_file, parameters=parameters, timeout=timeout
    )
    with TileComputer(1) as computer:
        submit_tile(computer, t, inputs)
        outcome = run_tile_into(
            target,
            t,
            inputs,
            computer,
            date=day,
            experiment_id=params.get("experiment_id"),
            started_at=utc_now(),
            version=code_version(),
            index_href="../../index.html" if prefix else None,
        )
    _drop_results_dir(target)
    if prefix:
        outcome.html = f"{prefix}/{outcome.html}" if outcome.html else None
        outcome.notebook = f"{prefix}/{outcome.notebook}" if outcome.notebook else None
    return outcome


def adhoc_dir(
    out: Path,
    tile_id: str,
    date: dt.date,
    parameters: Mapping[str, Any] | None,
    *,
    warehouse: Path,
    params_file: Path,
) -> Path:
    """The folder of an ad-hoc run of ``tile_id`` (``expkit tile``): ``out/adhoc/<tile>-<date>-<hash>``.

    Outside every published day (a daily run swaps ``out/<date>`` whole), and one folder per
    distinct parameter set: the hash covers the tile, date, ``parameters``, warehouse and
    parameters file, so a rerun with the same ones replaces its own pages and a run with
    others gets a new folder (see docs/reports.md).
    """
    key = json.dumps({
        "tile": tile_id,
        "date": _as_date(date).isoformat(),
        "parameters": {str(k): str(v) for k, v in (parameters or {}).items()},
        "warehouse": str(Path(warehouse).resolve()),
        "params_file": str(Path(params_file).resolve()),
    }, sort_keys=True)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]
    return Path(out) / ADHOC_DIR / f"{tile_id}-{_as_date(date).isoformat()}-{digest}"


@dataclass(frozen=True)
class TileInputs:
    """Where one tile's files go and what its notebook runs with.

    Attributes:
        injected: the Papermill parameters the runner passes.
        nb_params: the notebook's own defaults overlaid with ``injected`` (what it runs with).
        notebook_out, sidecar_path, log_path: the executed notebook, its sidecar, its kernel log.
        result_path: where the report's process saves the computed tile (``None``: the
            notebook computes it).
        timeout: seconds for computing and the notebook together.
    """

    injected: dict[str, Any]
    nb_params: dict[str, Any]
    notebook_out: Path
    sidecar_path: Path
    log_path: Path
    result_path: Path | None
    timeout: float


def tile_inputs(
    day_dir: Path,
    tile: Tile,
    *,
    warehouse: Path,
    date: dt.date,
    params_file: Path,
    parameters: Mapping[str, Any] | None,
    timeout: float,
) -> TileInputs:
    """Plan tile ``tile`` into ``day_dir`` (see the module docstring for the layout)."""
    sidecar_path = day_dir / "sidecars" / f"{tile.id}.json"
    injected: dict[str, Any] = dict(tile.parameters)
    injected.update(parameters or {})
    injected.update(
        event_date=date.isoformat(),
        warehouse=str(warehouse),
        params_file=str(params_file),
        sidecar_path=str(sidecar_path),
    )
    result_path = None
    if prerender_of(tile) is not None:
        result_path = day_dir / RESULTS_DIR / f"{tile.id}.json"
        injected["result_path"] = str(result_path)
    return TileInputs(
        injected=injected,
        nb_params={**notebook_defaults(Path(tile.notebook)), **injected},
        notebook_out=day_dir / "notebooks" / f"{tile.id}.ipynb",
        sidecar_path=sidecar_path,
        log_path=day_dir / "logs" / f"{tile.id}.log",
        result_path=result_path,
        timeout=float(tile.timeout or timeout),
    )


def compute_workers(notebook_workers: int) -> int:
    """Worker processes computing tiles for ``notebook_workers`` notebook workers: one per two,
    so that computing and driving the notebooks each get about half the cores."""
    return max(1, notebook_workers // 2)


def submit_tile(computer: TileComputer, tile: Tile, inputs: TileInputs) -> None:
    """Queue ``tile`` for computing ahead of its notebook, if it can be (:func:`prerender_of`)."""
    prerender = prerender_of(tile)
    if prerender is not None and inputs.result_path is not None:
        computer.submit(tile.id, prerender, inputs.nb_params, inputs.result_path, inputs.log_path)


def run_tile_into(
    day_dir: Path,
    tile: Tile,
    inputs: TileInputs,
    computer: TileComputer,
    *,
    date: dt.date,
    experiment_id: str | None,
    started_at: str,
    version: str,
    index_href: str | None,
    day_nav: bool = False,
) -> TileOutcome:
    """Finish one tile into ``day_dir``: wait for its computation, run its notebook, write its page.

    Never raises for a tile's own failure: that becomes ``status="failed"``.
    """
    t0 = time.monotonic()
    nb_out, sidecar_path = inputs.notebook_out, inputs.sidecar_path
    sidecar_path.unlink(missing_ok=True)
    error, computing_s = computer.wait(tile.id, inputs.timeout)
    if error is None:
        try:
            run = execute_notebook(
                NotebookJob(
                    notebook=Path(tile.notebook).resolve(),
                    output=nb_out,
                    parameters=inputs.injected,
                    timeout=max(1.0, inputs.timeout - computing_s),
                    log_path=inputs.log_path,
                )
            )
            error = run.error
            if error is not None and error.startswith("Timeout:"):
                error = timeout_error(inputs.timeout)  # the tile's whole budget, not what was left of it
        except Exception as exc:  # a bug here must not take the other tiles down
            log.exception("tile %s: runner error", tile.id)
            error = short_error(type(exc).__name__, exc)
    if inputs.result_path is not None:
        inputs.result_path.unlink(missing_ok=True)

    sidecar: dict[str, Any] = {}
    if error is None:
        data, error = read_sidecar(sidecar_path)
        sidecar = data or {}
    status: Status = "failed" if error else sidecar["status"]  # checked against SIDECAR_STATUSES when read
    # What the notebook ran with: its own defaults, what was injected, what it reported.
    shown_params = dict(inputs.nb_params)
    for key in _HIDDEN_PARAMS:
        shown_params.pop(key, None)
    if isinstance(sidecar.get("params"), Mapping):
        shown_params.update(sidecar["params"])
    outcome = TileOutcome(
        id=tile.id,
        section=tile.section,
        title=str(sidecar.get("title") or tile.title),
        status=status,
        headline=dict(sidecar.get("headline") or {}) if not error else {},
        summary=str(sidecar.get("summary") or "") if not error else "",
        error=error,
        html=f"tiles/{tile.id}.html",
        notebook=f"notebooks/{tile.id}.ipynb" if nb_out.is_file() else None,
        as_of=sidecar.get("as_of"),
        experiment_id=sidecar.get("experiment_id") or experiment_id,
        params=shown_params,
    )
    page = PageInfo(
        tile_id=tile.id,
        title=outcome.title,
        section=tile.section,
        status=outcome.status,
        date=date.isoformat(),
        summary=outcome.summary,
        error=outcome.error,
        experiment_id=outcome.experiment_id,
        # the window the tile says it computed (the readout and novelty: the experiment to date)
        window=outcome.headline.get("window") if isinstance(outcome.headline.get("window"), str)
        else shown_params.get("window"),
        as_of=outcome.as_of,
        code_version=version,
        generated_at=started_at,
        duration_s=time.monotonic() - t0 + computing_s,
        params=shown_params,
        index_href=index_href,
        day_nav=day_nav,
        notebook_href=f"../{outcome.notebook}" if outcome.notebook else None,
        badge=card_badge(outcome.status, outcome.headline),
    )
    render_error = write_tile_page(
        nb_out if nb_out.is_file() else None,
        page,
        day_dir / "tiles" / f"{tile.id}.html",
        source_dir=Path(tile.notebook).resolve().parent,
    )
    if render_error and not outcome.failed:
        outcome.status, outcome.error = "failed", f"page rendering failed: {render_error}"
    outcome.duration_s = time.monotonic() - t0 + computing_s
    return outcome


def finish_day_folder(tmp: Path, final: Path, out: Path, day: dt.date) -> None:
    """Before ``tmp`` is swapped in as the day's folder ``final``: point its tile pages at the
    neighbouring days and keep the record of the digests already delivered for the day."""
    set_tile_nav(tmp, out, *neighbours(out, day.isoformat()))
    if (final / RECORD_FILE).is_file():  # the digests delivered for this day stay delivered
        shutil.copy2(final / RECORD_FILE, tmp / RECORD_FILE)


def previous_durations(out: Path, day: dt.date, document: str = "summary.json") -> dict[str, float]:
    """Each tile's run time in the newest report under ``out`` up to ``day`` (``{}`` if none), as
    its ``document`` (relative to the day's folder: ``portfolio.json``, ``<experiment>/summary.json``
    on a day with several experiments) says.

    The report computes the quickest tiles first; a tile that is new or failed to read
    counts as slowest.
    """
    days = [d for d in report_days(out) if d <= day.isoformat() and (out / d / document).is_file()]
    if not days:
        return {}
    try:
        tiles = json.loads((out / days[-1] / document).read_text(encoding="utf-8"))["tiles"]
        return {str(k): float(v["duration_s"]) for k, v in tiles.items() if v.get("duration_s") is not None}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _drop_results_dir(day_dir: Path) -> None:
    """Remove the (by now empty) folder of precomputed tiles; another run's files stay."""
    with contextlib.suppress(OSError):
        (day_dir / RESULTS_DIR).rmdir()


def notebook_defaults(notebook: Path) -> dict[str, Any]:
    """The default values of a notebook's ``parameters`` cell (``{}`` if unreadable).

    Literal defaults are returned as values, anything else as its source text.
    """
    try:
        found = papermill.inspect_notebook(str(notebook))
    except Exception:  # missing or broken notebook: its run reports the problem
        return {}
    out: dict[str, Any] = {}
    for name, info in found.items():
        source = str(info.get("default", ""))
        try:
            out[name] = ast.literal_eval(source)
        except (ValueError, SyntaxError):
            out[name] = source
    return out


def read_sidecar(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """Read a tile's sidecar; returns ``(data, None)`` or ``(None, error text)``."""
    if not path.is_file():
        return None, (
            "NoSidecar: the notebook finished without writing its sidecar "
            "(it must write sidecar_path when that parameter is set)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, short_error("InvalidSidecar", f"{path.name} is not valid JSON ({exc})")
    if not isinstance(data, dict):
        return None, f"InvalidSidecar: {path.name} holds a {type(data).__name__}, not an object"
    if data.get("status") not in SIDECAR_STATUSES:
        return None, short_error(
            "InvalidSidecar",
            f"status {data.get('status')!r} is not one of {', '.join(SIDECAR_STATUSES)}",
        )
    if not isinstance(data.get("headline", {}), dict):
        return None, "InvalidSidecar: headline is not an object"
    return data, None


def clean_stale(out: Path, day: str) -> list[Path]:
    """Remove the temporary folders that killed runs of ``day`` left in ``out``.

    Only ``day``'s leftovers: runs of other dates may be building right now. Call it
    while holding that day's lock. Returns what was removed.
    """
    removed = []
    if out.is_dir():
        for p in out.iterdir():
            if p.name.startswith((f".tmp-{day}-", f".old-{day}-")):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p)
    return removed


class StepsRun(NamedTuple):
    """What :func:`_run_steps` gave the report."""

    checks: list[dict[str, Any]]
    """The validation checks (``summary.json`` ``checks``)."""
    alerts: list[dict[str, Any]]
    """The alert records (``summary.json`` ``alerts``)."""
    errors: dict[str, str]
    """Step name → error of the steps that raised (``step_errors``)."""
    steps_run: list[str]
    """The steps that ran to the end (the index says "no alerts" only when ``alerts`` is one)."""
    history: HistoryGaps | None
    """What the report lacks of the earlier days it reads (None: the rollup step did not say)."""
    notices: list[str]
    """Lines a reader must see before trusting the tiles."""


def _run_steps(
    steps: DailySteps,
    warehouse: Path,
    day: dt.date,
    params_file: Path,
    emit: ProgressFn,
) -> StepsRun:
    """Run the steps (see :class:`DailySteps`) and say what they gave."""
    errors: dict[str, str] = {}
    ran: list[str] = []
    history = None
    if steps.rollup is not None:
        emit(ProgressEvent("rollup", f"checking the rollups of {day}"))
        t0 = time.monotonic()
        said = steps.rollup(warehouse, day, params_file)
        took = time.monotonic() - t0
        built: tuple[dt.date, ...] | None = None
        if isinstance(said, HistoryGaps):
            history, built = said, said.built
        elif isinstance(said, bool):
            built = (day,) if said else ()
        if built == ():
            emit(ProgressEvent("rollup", f"the rollups of {day} are up to date"))
        elif built == (day,):
            emit(ProgressEvent("rollup", f"built the rollups of {day} in {took:.1f} s"))
        elif built:
            emit(ProgressEvent("rollup", f"built the rollups of {len(built)} days ({built[0]} to {built[-1]}) "
                               f"in {took:.1f} s"))
        ran.append("rollup")
    notices = [str(n) for n in (steps.notices(warehouse, day, params_file) or [])] if steps.notices else []
    for notice in notices:
        emit(ProgressEvent("notice", notice))
    results: dict[str, list[dict[str, Any]]] = {"validate": [], "alerts": []}
    for name, fn, normalize in (
        ("validate", steps.validate, normalize_checks),
        ("alerts", steps.alerts, normalize_alerts),
    ):
        if fn is None:
            continue
        emit(ProgressEvent(name, f"running {name} for {day}"))
        try:
            results[name] = normalize(fn(warehouse, day, params_file) or [])
            ran.append(name)
        except Exception as exc:
            if interrupted():  # Ctrl-C inside a query surfaces as an error (expkit.interrupts)
                raise KeyboardInterrupt from exc
            log.exception("step %s failed", name)
            errors[name] = short_error(type(exc).__name__, exc)
    return StepsRun(results["validate"], results["alerts"], errors, ran, history, notices)


def _as_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))
