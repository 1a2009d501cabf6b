"""The daily report of a day with several experiments (docs/reports.md, "The portfolio").

Layout of one day (``out/D``, built under a temporary name and swapped in whole, like one
experiment's report)::

    index.html              the portfolio: one row per experiment, then platform health, alerts, validation
    portfolio.json          the platform's health tiles, alerts, checks and arm health (summary.json shapes)
    tiles/, notebooks/, sidecars/, logs/   the health tiles, once for the platform
    <experiment_id>/        one experiment's report: index.html (verdict at the top), summary.json,
                            its outcome tiles' tiles/, notebooks/, sidecars/, logs/, digest.txt/.html
    deliveries.json         where the digests went, per experiment and target (kept across reruns)

A run of one experiment (``only``) rebuilds the platform part and that experiment's folder and
copies the other experiments' folders of the day into the new folder before the swap, so the
day stays whole and is never seen half-built.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from expkit.atomic import FileLock, atomic_write_json, building_dir
from expkit.config import ExperimentConfig, load_experiment
from expkit.errors import ConfigError
from expkit.report.compute import warm_up
from expkit.report.daily import (
    ADHOC_DIR,
    RESULTS_DIR,
    SUBDIRS,
    DailyResult,
    DailySteps,
    ProgressEvent,
    ProgressFn,
    _run_steps,
    clean_stale,
    compute_workers,
    finish_day_folder,
    previous_durations,
    run_tiles_in,
)
from expkit.report.deepdive import DEEPDIVE_DIR
from expkit.report.deliveries import RECORD_FILE
from expkit.report.digest import HTML_FILE, TEXT_FILE
from expkit.report.history_page import HistoryRow, out_of_date_line, write_history
from expkit.report.index import (
    PORTFOLIO_FILE,
    experiment_dirs,
    neighbours,
    refresh_nav,
    set_tile_nav,
    write_index,
    write_portfolio_index,
)
from expkit.report.summary import build_summary, code_version, load_params, utc_now
from expkit.report.tiles import Tile, TilesArg, prerender_of, resolve_tiles
from expkit.rollup import record_report

RESERVED_NAMES = frozenset({*SUBDIRS, RESULTS_DIR, ADHOC_DIR, DEEPDIVE_DIR, "index.html", "summary.json", "inputs.json",
                            PORTFOLIO_FILE, RECORD_FILE, TEXT_FILE, HTML_FILE})
"""The files and folders of a day's report folder: no experiment id may be one of them (its folder
``D/<experiment_id>/`` sits beside them)."""


def check_experiment_ids(files: Sequence[Path], configs: Sequence[ExperimentConfig]) -> None:
    """Raise :class:`ConfigError` naming the file when an experiment id is a name of
    :data:`RESERVED_NAMES` (compared without case: some file systems ignore it)."""
    reserved = {n.casefold() for n in RESERVED_NAMES}
    for file, cfg in zip(files, configs, strict=True):
        if cfg.experiment_id.casefold() in reserved:
            raise ConfigError(f"{file}: key 'experiment_id': {cfg.experiment_id!r} is the name of a file or folder "
                              f"of the day's report ({', '.join(sorted(RESERVED_NAMES))}); give the experiment "
                              "another id")


@dataclass(frozen=True)
class ArmHealth:
    """One arm of one experiment on the day, for the platform health section.

    Attributes:
        experiment_id, arm: the experiment and the arm.
        users: users exposed to the arm that day (``None``: no per-user facts).
        requests: their non-shadow requests (a user's requests count in each experiment she is in).
        error_rate: failed requests / requests (``None``: the catalogue has no ``error_rate``).
        latency_p95_ms: the 95th percentile of their latency (within 1%).
        error_rate_max, latency_p95_max_ms: the experiment's SLOs (``slos.error_rate_max``,
            ``slos.latency_p95_alert_ms``).
        error_breach, latency_breach: whether the arm is over them.
    """

    experiment_id: str
    arm: str
    users: int | None
    requests: int
    error_rate: float | None
    latency_p95_ms: float | None
    error_rate_max: float
    latency_p95_max_ms: float
    error_breach: bool
    latency_breach: bool


def arm_health_rows(warehouse: Path, day: dt.date, configs: Sequence[ExperimentConfig]) -> list[ArmHealth]:
    """The arms of ``configs`` on ``day`` with their health against each experiment's SLOs, from the
    per-user rollups keyed by experiment (:func:`expkit.readers.arm_health`); arms of experiments
    not in ``configs`` are left out. No rollup: ``[]``."""
    from expkit.readers import arm_health
    from expkit.warehouse import Warehouse

    by_id = {c.experiment_id: c for c in configs}
    df = arm_health(Warehouse.open(warehouse), day)
    rows = []
    for r in df.to_dict("records"):
        cfg = by_id.get(str(r["experiment_id"]))
        if cfg is None:
            continue
        requests = int(_finite(r["requests"]) or 0)
        errors = _finite(r["errors"])
        rate = errors / requests if errors is not None and requests else None
        p95 = _finite(r["latency_p95_ms"])
        users = _finite(r["users"])
        rows.append(ArmHealth(
            experiment_id=cfg.experiment_id, arm=str(r["bucket"]), users=None if users is None else int(users),
            requests=requests, error_rate=rate,
            latency_p95_ms=p95, error_rate_max=cfg.slos.error_rate_max,
            latency_p95_max_ms=cfg.slos.latency_p95_alert_ms,
            error_breach=rate is not None and rate > cfg.slos.error_rate_max,
            latency_breach=p95 is not None and p95 > cfg.slos.latency_p95_alert_ms,
        ))
    order = {c.experiment_id: i for i, c in enumerate(configs)}
    return sorted(rows, key=lambda a: (order[a.experiment_id], a.arm))


def platform_index(warehouse: Path, day: dt.date, configs: Sequence[ExperimentConfig]) -> int:
    """The experiment of ``configs`` whose parameters the platform's health tiles use: the first whose
    id ``day``'s requests carry (:func:`expkit.readers.request_experiments`; the health tiles read the
    requests of their experiment id, and with an ``exposures`` table the requests carry one
    experiment's), else the first."""
    from expkit.readers import request_experiments
    from expkit.warehouse import Warehouse

    carried = request_experiments(Warehouse.open(warehouse), day)
    return next((i for i, c in enumerate(configs) if c.experiment_id in carried), 0)


def _single_layout_owner(day_dir: Path) -> str | None:
    """The experiment id of ``day_dir``'s report in the single-experiment layout (``summary.json``);
    ``None`` without one."""
    try:
        doc = json.loads((day_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    params = doc.get("params") if isinstance(doc, dict) else None
    owner = (doc.get("experiment_id") if isinstance(doc, dict) else None) or (
        params.get("experiment_id") if isinstance(params, dict) else None)
    return str(owner) if owner else None


def _finite(value: Any) -> float | None:
    """``value`` as a float, ``None`` when it is missing or not finite."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _union_alerts(groups: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The alerts of every experiment of the day, each once (the same alert replayed for two
    experiments is one line)."""
    seen: set[str] = set()
    out = []
    for alerts in groups:
        for a in alerts:
            key = json.dumps({k: a.get(k) for k in ("rule", "labels", "active_at", "fired_at")}, sort_keys=True,
                             default=str)
            if key not in seen:
                seen.add(key)
                out.append(dict(a))
    return out


def run_portfolio(
    warehouse: Path,
    date: dt.date,
    out: Path,
    experiments: Sequence[Path],
    *,
    only: str | None = None,
    platform_steps: DailySteps | None = None,
    experiment_steps: DailySteps | None = None,
    workers: int | None = None,
    timeout: float = 600,
    tiles: TilesArg = None,
    progress: ProgressFn | None = None,
    lock_timeout: float | None = 3600,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> DailyResult:
    """Build the report of ``date`` for the experiments of the parameters files ``experiments``
    under ``out/<date>/`` (see the module docstring) and return what happened.

    ``platform_steps`` (rollup, validation) run once with the first file; the health tiles run once
    with the file of :func:`platform_index` (the experiment the day's requests carry). Then, per
    experiment (only ``only`` when given; the other folders of the day
    are kept), ``experiment_steps`` (alerts, notices) and the outcome tiles, into
    ``out/<date>/<experiment_id>/``. Locking, swapping and the history page are as
    :func:`expkit.report.daily.run_daily`; ``result.experiments`` holds each experiment's result.
    """
    started = time.monotonic()
    started_at = utc_now()
    day = date
    warehouse, out = Path(warehouse).resolve(), Path(out).resolve()
    files = [Path(f).resolve() for f in experiments]
    configs = [load_experiment(f) for f in files]
    ids = [c.experiment_id for c in configs]
    check_experiment_ids(files, configs)
    if only is not None and only not in ids:
        raise ConfigError(f"--experiment {only!r}: no experiment with that id is active on {day} "
                          f"(active: {', '.join(ids) or 'none'})")
    final = out / day.isoformat()
    owner = _single_layout_owner(final)
    if only is not None and owner is not None and owner != only:
        raise ConfigError(f"--experiment {only!r}: {final} holds the report of {owner!r} in the single-experiment "
                          f"layout, which a run of one experiment cannot keep; run without --experiment to report "
                          f"the day's experiments together")
    tile_list = resolve_tiles(tiles)
    health = [t for t in tile_list if t.section == "health"]
    outcome_tiles = [t for t in tile_list if t.section != "health"]
    emit = progress or (lambda _event: None)
    n_workers = max(1, workers or os.cpu_count() or 1)
    platform_file = files[0]

    def waiting(holder: int | None) -> None:
        by = f" (held by process {holder})" if holder else ""
        emit(ProgressEvent("lock", f"waiting for the lock of {day}{by}"))

    out.mkdir(parents=True, exist_ok=True)
    with FileLock(out / f".{day}.lock", timeout=lock_timeout, what=f"the daily report for {day}", on_wait=waiting):
        if any(prerender_of(t) for t in tile_list):
            warm_up(compute_workers(n_workers))
        clean_stale(out, day.isoformat())
        ran = _run_steps(platform_steps or DailySteps(), warehouse, day, platform_file, emit)
        platform_file = files[platform_index(warehouse, day, configs)]  # the rollup step built health_bins
        version = code_version()
        results: dict[str, DailyResult] = {}
        before = [p.name for p in experiment_dirs(final)]  # their neighbours' links follow a removal
        with building_dir(final) as tmp:
            if only is not None:  # the other experiments' reports of the day stay as they are
                for sub in experiment_dirs(final):
                    if sub.name != only:
                        shutil.copytree(sub, tmp / sub.name)
            record_report(warehouse, day, tmp, min(c.start_date for c in configs))
            platform_params = load_params(platform_file)
            platform_params.update({"warehouse": str(warehouse), "timeout_s": timeout})
            health_out = run_tiles_in(
                tmp, health, warehouse=warehouse, date=day, params_file=platform_file,
                experiment_id=platform_params.get("experiment_id"), timeout=timeout, overrides=overrides,
                workers=n_workers, emit=emit, started_at=started_at, version=version,
                durations=previous_durations(out, day, PORTFOLIO_FILE), label="the platform",
            )
            for file, cfg in zip(files, configs, strict=True):
                if only is not None and cfg.experiment_id != only:
                    continue
                results[cfg.experiment_id] = _run_experiment(
                    tmp, out, file, cfg, warehouse=warehouse, day=day, tiles=outcome_tiles,
                    steps=experiment_steps or DailySteps(), platform=ran, timeout=timeout, overrides=overrides,
                    workers=n_workers, emit=emit, started_at=started_at, version=version,
                )
            emit(ProgressEvent("index", "writing portfolio.json and the portfolio index.html"))
            summaries = [json.loads((d / "summary.json").read_text(encoding="utf-8")) for d in experiment_dirs(tmp)]
            doc = build_summary(
                date=day, generated_at=utc_now(), params=platform_params, tiles=health_out,
                alerts=_union_alerts([s.get("alerts") or [] for s in summaries]), checks=ran.checks,
                run_seconds=time.monotonic() - started, step_errors=ran.errors, version=version,
                history=ran.history.to_json() if ran.history is not None else None, notices=[],
            )
            doc.update(layout="portfolio", experiment_id=None, started_at=started_at,
                       steps_run=sorted({*ran.steps_run, *(x for s in summaries for x in s.get("steps_run") or [])}),
                       experiments=[d.name for d in experiment_dirs(tmp)], active=ids,
                       arm_health=[asdict(a) for a in arm_health_rows(warehouse, day, configs)])
            atomic_write_json(tmp / PORTFOLIO_FILE, doc)
            write_portfolio_index(tmp, doc, out)
            finish_day_folder(tmp, final, out, day)
        refresh_nav(out, day.isoformat(), gone=before)
        seen: list[HistoryRow] = []
        write_history(out, rows_seen=seen)
        stale_line = out_of_date_line(seen, day.isoformat())
        if stale_line:
            emit(ProgressEvent("history", stale_line))
    step_errors = dict(ran.errors)
    for exp, r in results.items():
        step_errors.update({f"{k} ({exp})": v for k, v in r.step_errors.items() if k not in ran.errors})
    tiles_out = {t.id: t for t in health_out}
    tiles_out.update({f"{exp}/{t.id}": t for exp, r in results.items() for t in r.tiles.values()})
    for exp, r in results.items():
        r.out_dir, r.index, r.summary_path = final / exp, final / exp / "index.html", final / exp / "summary.json"
    result = DailyResult(
        date=day, out_dir=final, index=final / "index.html", summary_path=final / PORTFOLIO_FILE, tiles=tiles_out,
        alerts=doc["alerts"], checks=doc["checks"], step_errors=step_errors,
        duration_s=time.monotonic() - started, summary=doc, experiments=results,
    )
    emit(ProgressEvent("done", f"report written to {result.index}", len(tiles_out), len(tiles_out)))
    return result


def _run_experiment(
    tmp: Path,
    out: Path,
    params_file: Path,
    cfg: ExperimentConfig,
    *,
    warehouse: Path,
    day: dt.date,
    tiles: list[Tile],
    steps: DailySteps,
    platform: Any,
    timeout: float,
    overrides: Mapping[str, Mapping[str, Any]] | None,
    workers: int,
    emit: ProgressFn,
    started_at: str,
    version: str,
) -> DailyResult:
    """One experiment's steps and outcome tiles into ``tmp/<experiment_id>/`` with its summary.json
    and index page (the day's checks, history and platform step errors are the platform's)."""
    t0 = time.monotonic()
    exp = cfg.experiment_id
    folder = tmp / exp
    folder.mkdir()
    ran = _run_steps(steps, warehouse, day, params_file, emit)
    record_report(warehouse, day, folder, cfg.start_date)
    params = load_params(params_file)
    params.update({"warehouse": str(warehouse), "timeout_s": timeout})
    outcomes = run_tiles_in(
        folder, tiles, warehouse=warehouse, date=day, params_file=params_file, experiment_id=exp,
        timeout=timeout, overrides=overrides, workers=workers, emit=emit, started_at=started_at, version=version,
        durations=previous_durations(out, day, f"{exp}/summary.json"), label=exp,
    )
    errors = {**platform.errors, **ran.errors}
    summary = build_summary(
        date=day, generated_at=utc_now(), params=params, tiles=outcomes, alerts=ran.alerts, checks=platform.checks,
        run_seconds=time.monotonic() - t0, step_errors=errors, version=version,
        history=platform.history.to_json() if platform.history is not None else None, notices=ran.notices,
    )
    summary["started_at"] = started_at
    summary["steps_run"] = [*platform.steps_run, *ran.steps_run]
    atomic_write_json(folder / "summary.json", summary)
    write_index(folder, summary, out, exp)
    set_tile_nav(folder, out, *neighbours(out, day.isoformat(), exp), exp)
    return DailyResult(
        date=day, out_dir=folder, index=folder / "index.html", summary_path=folder / "summary.json",
        tiles={t.id: t for t in outcomes}, alerts=summary["alerts"], checks=summary["checks"],
        step_errors=ran.errors, duration_s=time.monotonic() - t0, summary=summary,
    )
