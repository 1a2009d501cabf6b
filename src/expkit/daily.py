"""The scheduled daily job with its default steps: rollup → validate → alerts → tiles → report.

The rollup step builds the history the report reads (the earlier days of its windows,
baselines and alert look-backs; :mod:`expkit.history`) unless told not to.

The engine (``--engine``, ``--catalog-db``: an :class:`~expkit.engines.EngineSpec`) runs what
reads raw events: the rollups and the validation checks. The tiles read the rollups (small
Parquet tables) through DuckDB whichever engine built them (docs/spark.md, "The daily job on
Spark").

:func:`daily` is what ``expkit daily`` and ``expkit demo`` call; the report layer
(:mod:`expkit.report`) runs the notebooks and writes the pages, this module supplies the
steps that read the warehouse. Validation results feed the alert replay (the ``data_stale``
rule reads the freshness checks).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from expkit.alerts import evaluate_day
from expkit.alerts.rules import AlertsConfig, default_rules_file, load_alerts
from expkit.config import (
    ExperimentConfig,
    active_experiments,
    experiment_file,
    load_experiment,
    load_experiments,
    portfolio_files,
    rollup_config,
)
from expkit.engines import EngineSpec, engine_spec
from expkit.errors import ConfigError, ExpkitError
from expkit.history import HistoryGaps, build_history, plan_history
from expkit.notify import DigestRun, NotifyConfig, load_notify, load_notify_for, send_digests
from expkit.project import shared_file
from expkit.report import DailyResult, DailySteps, ProgressEvent, run_daily
from expkit.rollup import STATS_ROLLUP, open_engine, refresh, stale_dates
from expkit.validation import validate_day
from expkit.warehouse import Warehouse

log = logging.getLogger("expkit.daily")


def ensure_rollups(
    warehouse: Path,
    day: dt.date,
    params_file: Path,
    history: bool = True,
    progress: Callable[[str], None] | None = None,
    rules_file: Path | None = None,
    engine: str | EngineSpec = "duckdb",
    config: ExperimentConfig | None = None,
) -> HistoryGaps:
    """Build the rollups the report of ``day`` reads (with ``engine``); return what it still lacks.

    With ``history``, every earlier day the report needs (its windows, the tiles' baselines,
    the alert rules' look-backs; :func:`expkit.history.plan_history`) whose rollups are missing
    or stale (:func:`expkit.rollup.stale_dates`) is built, oldest first, then ``day``. Without
    it, only what is stale among ``day`` and the days already rolled up before it (late data)
    is rebuilt, and the returned gaps name the days never built. ``config`` replaces the
    parameters file's experiment (several experiments: :func:`expkit.config.rollup_config`).
    """
    wh = Warehouse.open(warehouse)
    wh.require_events(day)
    config = config or load_experiment(params_file)
    rules = _rules_or_none(rules_file or default_rules_file(params_file))
    if history:
        plan = plan_history(wh, day, config, rules)
        failed = build_history(wh, plan, config, engine=engine, progress=progress)
        return replace(plan.gaps(missing=failed), built=tuple(d for d in plan.to_build if d not in failed))
    rolled_up = [d for d in wh.rollup_dates(STATS_ROLLUP) if d < day]
    stale = stale_dates(wh, [*rolled_up, day], config)
    if stale:
        eng = open_engine(engine, wh)
        try:
            refresh(wh, eng, stale, config)
        finally:
            eng.close()
    gaps = replace(plan_history(wh, day, config, rules).gaps(), built=tuple(stale))
    if gaps.missing_days and progress:
        progress(f"skipped (--no-history): {len(gaps.missing_days)} earlier days not rolled up: "
                 + ", ".join(map(str, gaps.missing_days)))
    return gaps


def _rules_or_none(rules_file: Path) -> AlertsConfig | None:
    """The alert rules of ``rules_file``; ``None`` when unreadable (the alerts step says why)."""
    try:
        return load_alerts(rules_file)
    except ExpkitError:
        return None


def experiment_notices(warehouse: Path, day: dt.date, params_file: Path) -> list[str]:
    """Lines a reader must see: ``day`` not one of the experiment's days (``start_date`` ..
    ``end_date``: its outcome tiles have no data), else the parameters file's ``experiment_id``
    absent from the day's data (every tile would then show no data with no hint why; nothing said
    without a rollup); and metrics of the experiment's catalogue asking for a tile page the report
    does not have (its tiles are those of the project's catalogue, :mod:`expkit.tiles.registry`)."""
    from expkit.catalogue import catalogue_file_for
    from expkit.readers import experiment_users
    from expkit.tiles.registry import TILES

    config = load_experiment(params_file)
    notices = []
    if not config.active_on(day):
        where = (f"before the experiment's start_date {config.start_date}" if day < config.start_date
                 else f"after the experiment's end_date {config.end_date}")
        notices.append(f"{day} is {where} ({params_file}): the outcome tiles have no data for it; "
                       f"report a day from {config.start_date} to {config.end_date or 'today'}")
    found = experiment_users(Warehouse.open(warehouse), day) if not notices else None
    if found is not None and not found.get(config.experiment_id):
        others = ", ".join(found) or "none"
        notices.append(f"experiment_id {config.experiment_id!r} of {params_file} does not occur in the data up to "
                       f"{day} (experiments found: {others}): every tile shows no data; fix experiment_id in the "
                       "parameters file")
    pageless = [m for m in config.catalogue.tile_ids if m not in TILES]
    if pageless:
        notices.append(f"metric(s) {', '.join(pageless)} of {config.catalogue.source} ask for a tile page "
                       f"(tile: true) but the report's tile pages are those of {catalogue_file_for(None)}: "
                       "add the metric there and run `make notebooks` for its page")
    return notices


def check_inputs(params_file: Path, rules_file: Path | None = None) -> None:
    """Reject a bad parameters file, alert rules file (``alerts.yaml`` beside the parameters
    unless ``rules_file``) or ``notify.yaml`` (beside the parameters, when there is one) before
    anything runs: :class:`~expkit.errors.ExpkitError`, exit 2."""
    load_experiment(params_file)
    load_alerts(rules_file or default_rules_file(params_file))
    load_notify_for(params_file)


def default_steps(
    notify: bool = False,
    history: bool = True,
    progress: Callable[[str], None] | None = None,
    rules_file: Path | None = None,
    engine: str | EngineSpec = "duckdb",
    rollup_config: ExperimentConfig | None = None,
    platform_health: bool = False,
) -> DailySteps:
    """Rollup (with the history the report needs, see :func:`ensure_rollups`), a notice if the
    experiment is absent from the data, validation, then the alert replay of the day fed with
    its checks.

    With ``notify`` the replay also delivers notifications (where no live monitor runs);
    ``progress`` receives the history step's lines; ``rules_file`` replaces ``alerts.yaml``
    beside the parameters file; ``engine`` runs the rollups and the validation checks;
    ``rollup_config`` is the experiment the rollups are built for (default: the parameters file's);
    ``platform_health``: the alert replay's health rules read the platform's requests when the
    day's requests do not carry the experiment (several experiments, :func:`daily_portfolio`).
    """
    checks: list[dict[str, Any]] = []
    spec = engine_spec(engine)

    def validate(warehouse: Path, day: dt.date, params_file: Path) -> list[dict[str, Any]]:
        from expkit.validation.query import open_engine as open_check_engine

        eng = open_check_engine(spec)
        try:
            checks[:] = validate_day(warehouse, day, config=load_experiment(params_file), engine=eng)
        finally:
            eng.close()
        return checks

    def alerts(warehouse: Path, day: dt.date, params_file: Path) -> list[dict[str, Any]]:
        return evaluate_day(warehouse, day, load_experiment(params_file), params_file=params_file,
                            rules_file=rules_file, notify=notify, checks=checks, platform_health=platform_health)

    def rollup(warehouse: Path, day: dt.date, params_file: Path) -> HistoryGaps:
        return ensure_rollups(warehouse, day, params_file, history=history, progress=progress, rules_file=rules_file,
                              engine=spec, config=rollup_config)

    return DailySteps(rollup=rollup, validate=validate, alerts=alerts, notices=experiment_notices)


@dataclass(frozen=True)
class DailyOptions:
    """How a daily run goes, whatever its layout (one experiment or several): the options of
    ``expkit daily``, documented on :func:`daily`.

    Attributes:
        workers: notebooks run at once (default: the CPU count).
        timeout: seconds one tile may run.
        progress: receives one line per step, or ``None`` for silence.
        lock_timeout: seconds to wait for a running report of the same day (``None``: wait forever).
        notify: the alert replay also delivers notifications.
        history: build the earlier days' rollups the report needs (``--no-history``: false).
        rules_file: alert rules in place of ``alerts.yaml`` beside the parameters.
        resend: send again the digests already delivered.
        digests: write and deliver the day's digests.
        engine: runs the rollups and the validation checks.
    """

    workers: int | None = None
    timeout: float = 600.0
    progress: Callable[[str], None] | None = None
    lock_timeout: float | None = 3600
    notify: bool = False
    history: bool = True
    rules_file: Path | None = None
    resend: bool = False
    digests: bool = True
    engine: str | EngineSpec = "duckdb"


def daily(
    warehouse: Path,
    day: dt.date,
    out: Path,
    params_file: Path,
    workers: int | None = None,
    timeout: float = 600.0,
    progress: Callable[[str], None] | None = None,
    lock_timeout: float | None = 3600,
    notify: bool = False,
    history: bool = True,
    rules_file: Path | None = None,
    resend: bool = False,
    digests: bool = True,
    engine: str | EngineSpec = "duckdb",
    experiment: str | None = None,
) -> DailyResult:
    """Run the daily job for ``day``; the report lands in ``out/<day>/index.html``.

    ``params_file`` is one experiment's parameters file, or a folder of several
    (:func:`expkit.config.portfolio_files`): then every experiment active on ``day`` is reported,
    or only ``experiment`` (its id), with the portfolio layout (:func:`daily_portfolio`).
    ``experiment`` with a single experiment must be its id. Unknown ids raise
    :class:`~expkit.errors.ConfigError` naming the id and the parameters.

    Then, unless ``digests`` is false, the day's digests are written and delivered to the targets
    of ``notify.yaml`` beside ``params_file`` (:func:`deliver_digests`; ``resend`` sends again
    those already delivered).

    ``history=False`` (``--no-history``) builds only ``day``'s rollups; the report then names
    the earlier days it lacks and the tiles and alerts they feed. The alert rules are
    ``rules_file``, else ``alerts.yaml`` beside ``params_file``; both files are checked before
    anything runs. ``engine`` (a name or an :class:`~expkit.engines.EngineSpec`) runs the rollups
    and the validation checks; the tiles read the rollups through DuckDB.
    """
    files = portfolio_files(params_file)
    emit = _emitter(progress)
    if files is None and Path(params_file).is_dir():  # a folder with its experiment.yaml alone
        params_file = Path(params_file) / "experiment.yaml"
    options = DailyOptions(workers=workers, timeout=timeout, progress=progress, lock_timeout=lock_timeout,
                           notify=notify, history=history, rules_file=rules_file, resend=resend, digests=digests,
                           engine=engine)
    if files is not None:
        return daily_portfolio(warehouse, day, out, Path(params_file), files, options, experiment=experiment)
    check_inputs(params_file, rules_file)
    if experiment is not None:
        experiment_file(params_file, experiment)
    Warehouse.open(warehouse).require_events(day)

    result = run_daily(
        warehouse, day, out, params_file, workers=workers, timeout=timeout,
        steps=default_steps(notify, history, lambda msg: emit(ProgressEvent("history", msg)), rules_file, engine),
        progress=emit, lock_timeout=lock_timeout,
    )
    if digests:
        deliver_digests(out, day, params_file, resend=resend, lock_timeout=lock_timeout,
                        progress=lambda msg: emit(ProgressEvent("digest", msg)))
    return result


def _emitter(progress: Callable[[str], None] | None) -> Callable[[ProgressEvent], None]:
    """Progress events as ``stage [done/total]: message`` lines."""
    def emit(event: ProgressEvent) -> None:
        if progress:
            counter = f" [{event.done}/{event.total}]" if event.total else ""
            progress(f"{event.stage}{counter}: {event.message}")
    return emit


def notify_for(params: Path) -> NotifyConfig | None:
    """The digest targets: ``notify.yaml`` beside a parameters file, or of a folder of several
    experiments (:func:`expkit.project.shared_file`); ``None`` when there is none."""
    if not Path(params).is_dir():
        return load_notify_for(params)
    path = shared_file(params, "notify.yaml")
    return load_notify(path) if path.is_file() else None


def daily_portfolio(
    warehouse: Path,
    day: dt.date,
    out: Path,
    params: Path,
    files: list[Path],
    options: DailyOptions | None = None,
    *,
    experiment: str | None = None,
) -> DailyResult:
    """The daily job of several experiments (the parameters folder ``params`` and its experiment
    ``files``): the rollups of all of them, validation and the health tiles once, then the alerts
    and outcome tiles of each experiment active on ``day`` (or of ``experiment`` alone), into
    ``out/<day>/`` with the portfolio index (:func:`expkit.report.portfolio.run_portfolio`), then
    one digest per experiment. The alert rules are ``options.rules_file``, else ``alerts.yaml`` of
    the folder (:func:`expkit.project.shared_file`). Everything is checked before anything runs.
    """
    from expkit.report.portfolio import run_portfolio

    opts = options or DailyOptions()
    configs = load_experiments(params)
    rules = opts.rules_file or shared_file(params, "alerts.yaml")
    load_alerts(rules)
    targets = notify_for(params)
    by_id = dict(zip((c.experiment_id for c in configs), files, strict=True))
    if experiment is not None:
        experiment_file(params, experiment)
    active = active_experiments(configs, day)
    if experiment is not None and experiment not in {c.experiment_id for c in active}:
        cfg = next(c for c in configs if c.experiment_id == experiment)
        raise ConfigError(f"--experiment {experiment!r}: {by_id[experiment]} runs from {cfg.start_date} to "
                          f"{cfg.end_date or 'open end'}, not on {day}; pick a date in its range")
    if not active:
        raise ConfigError(f"{params}: no experiment is active on {day} ("
                          + "; ".join(f"{c.experiment_id}: {c.start_date} to {c.end_date or 'open end'}"
                                      for c in configs) + ")")
    Warehouse.open(warehouse).require_events(day)
    emit = _emitter(opts.progress)
    steps = default_steps(opts.notify, opts.history, lambda msg: emit(ProgressEvent("history", msg)), rules,
                          opts.engine, rollup_config=rollup_config(configs), platform_health=True)
    result = run_portfolio(
        warehouse, day, out, [by_id[c.experiment_id] for c in active], only=experiment,
        platform_steps=DailySteps(rollup=steps.rollup, validate=steps.validate),
        experiment_steps=DailySteps(alerts=steps.alerts, notices=steps.notices),
        workers=opts.workers, timeout=opts.timeout, progress=emit, lock_timeout=opts.lock_timeout,
    )
    if opts.digests:
        deliver_digests(out, day, params, resend=opts.resend, lock_timeout=opts.lock_timeout,
                        progress=lambda msg: emit(ProgressEvent("digest", msg)), notify_config=targets,
                        experiment=experiment)
    return result


def deliver_digests(
    out: Path,
    day: dt.date,
    params_file: Path,
    *,
    resend: bool = False,
    lock_timeout: float | None = 3600,
    progress: Callable[[str], None] | None = None,
    notify_config: NotifyConfig | None = None,
    experiment: str | None = None,
) -> DigestRun | None:
    """Write and deliver ``day``'s digests (:func:`expkit.notify.send_digests`) without ever
    failing the report: an error is a progress line and a log record, and ``None`` is returned.
    Each delivery's outcome is in ``out/<day>/deliveries.json`` and on the history page. The
    targets are ``notify_config``, else those of ``notify.yaml`` beside ``params_file``; with
    ``experiment`` (a run of that experiment alone), ``resend`` sends its digests alone again."""
    say = progress or (lambda _msg: None)
    try:
        run = send_digests(out, day, notify_config or notify_for(params_file), resend=resend, progress=say,
                           lock_timeout=lock_timeout, experiment=experiment)
    except Exception as exc:  # the report is written; a digest problem must not change its outcome
        log.exception("digests of %s", day)
        say(f"digests not delivered: {type(exc).__name__}: {exc}")
        return None
    if run.failed:
        say(f"{len(run.failed)} digest deliver{'ies' if len(run.failed) != 1 else 'y'} failed; the next run "
            f"of {day} (or 'expkit digest --date {day}') tries again")
    return run
