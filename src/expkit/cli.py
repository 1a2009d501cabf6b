"""expkit: daily answers for A/B experiments, from event logs to HTML reports (docs/reports.md).

Every user error is an :class:`~expkit.errors.ExpkitError`: printed on one line, exit status 2,
nothing half-written. Long work reports progress on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from expkit import interrupts
from expkit.cli_options import (
    CATALOG_DB,
    DATE,
    DEMO_DAYS,
    DEMO_END,
    DEMO_PRE_DAYS,
    ENGINE,
    LOCK_TIMEOUT,
    OUT,
    PARAMS,
    QUIET,
    RULES,
    SEED,
    TIMEOUT,
    WAREHOUSE,
    WORKERS,
    Parser,
    UsageError,
    add_option,
    incident_names,
    non_negative_int,
    params_file_of,
    positive_int,
    progress_printer,
)
from expkit.errors import ExpkitError
from expkit.names import (
    DEFAULT_SLICE,
    DEFAULT_WINDOW,
    HEALTH_IDS,
    OUTCOME_IDS,
    SLICE_COLUMNS,
    TILE_PARAMETERS,
    WINDOWS,
    default_warehouse,
)


def _date(value: str) -> dt.date:
    from expkit.warehouse import parse_date

    return parse_date(value)


def _warehouse_path(args: argparse.Namespace) -> Path:
    """``--warehouse``, else the default warehouse (docs/reports.md, "Running a tile by hand")."""
    return Path(args.warehouse) if args.warehouse else default_warehouse()


def _parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ExpkitError(f"-p {item!r}: expected key=value, e.g. -p window=7d")
        out[key.strip()] = value
    return out


# --- commands ------------------------------------------------------------------------------


def cmd_synth(args: argparse.Namespace) -> int:
    from expkit.config import load_experiment
    from expkit.synth import generate
    from expkit.synth.effects import from_flags
    from expkit.synth.warehouse import DEFAULT_LIFT

    experiments = _synth_experiments(args.experiments, params_file_of(args)) if args.experiments else None
    cfg = experiments[0] if experiments else load_experiment(params_file_of(args))
    if args.stream:
        if experiments:
            raise ExpkitError("--experiments: the stream writes one experiment; leave out --experiments or --stream")
        return _synth_stream(args, cfg)
    if args.days is None or args.end is None:
        raise ExpkitError("expkit synth needs --days N and --end YYYY-MM-DD (or --stream --start TIME)")
    lifts = [t for t in args.lift or () if "/" not in t.partition("=")[0]]
    others = _other_experiments(experiments or [], [t for t in args.lift or () if t not in lifts])
    flags = from_flags(list(cfg.buckets), cfg.control, DEFAULT_LIFT,
                       lift=lifts, incidents=args.incident or (),
                       segment_lift=args.segment_lift or (), novelty=args.novelty or ())
    truth = generate(
        Path(args.out), days=args.days, end=_date(args.end), users=args.users, seed=args.seed,
        incidents=flags.incidents, experiment_id=cfg.experiment_id, buckets=cfg.buckets,
        control=cfg.control, lift=flags.lift, progress=progress_printer(args.quiet), pre_days=args.pre_days,
        segment_lifts=flags.effects.segments, novelty=flags.effects.novelty, others=others,
    )
    summary = {"out": str(args.out), "tables": truth.get("tables"), "incidents": truth.get("incidents")}
    print(json.dumps(summary, default=str))
    return 0


def _synth_experiments(values: Sequence[str], params_file: Path) -> list[Any]:
    """``--experiments N`` (N experiments from ``params_file``: its id, then ``<id>_2`` ...) or
    ``--experiments FILE_OR_FOLDER...`` (checked together: :func:`expkit.config.check_portfolio`)."""
    from expkit.config import check_portfolio, experiment_files, load_experiment

    if len(values) == 1 and values[0].isdigit():
        n = int(values[0])
        if not 1 <= n <= 16:
            raise ExpkitError(f"--experiments {n}: give a number from 1 to 16, or parameters files")
        base = load_experiment(params_file)
        return [base, *(base.model_copy(update={"experiment_id": f"{base.experiment_id}_{i}"})
                        for i in range(2, n + 1))]
    files = [f for v in values for f in experiment_files(v)]
    if not files:
        raise ExpkitError(f"--experiments {' '.join(values)}: no parameters file there (*.yaml)")
    loaded = [(f, load_experiment(f)) for f in files]
    check_portfolio(loaded)
    return [cfg for _, cfg in loaded]


def _other_experiments(experiments: list[Any], lifts: Sequence[str]) -> list[Any]:
    """The experiments beside the first, with their ``--lift EXPERIMENT/ARM=VALUE`` (default: 0.05
    times the experiment's place in the list, so each has its own lift)."""
    from expkit.synth.effects import parse_lift
    from expkit.synth.warehouse import DEFAULT_LIFT, SynthExperiment

    configs = list(experiments[1:])
    if not configs:
        if lifts:
            raise ExpkitError(f"--lift {lifts[0]!r}: EXPERIMENT/ARM=VALUE needs --experiments")
        return []
    given: dict[str, dict[str, float]] = {}
    for text in lifts:
        arm_part, _, _ = text.partition("=")
        exp_id, _, arm = arm_part.partition("/")
        if exp_id not in {c.experiment_id for c in configs}:
            raise ExpkitError(f"--lift {text!r}: {exp_id!r} is not one of the other experiments "
                              f"({', '.join(c.experiment_id for c in configs)}); the first takes ARM=VALUE")
        _, value = parse_lift(text.split("/", 1)[1])
        given.setdefault(exp_id, {})[arm] = value
    out = []
    for i, c in enumerate(configs, start=2):
        lift = {a: DEFAULT_LIFT * i for a in c.treatments} | given.get(c.experiment_id, {})
        out.append(SynthExperiment(c.experiment_id, tuple(c.buckets.items()), c.control, tuple(lift.items())))
    return out


def _synth_stream(args: argparse.Namespace, cfg: Any) -> int:
    from expkit.synth.stream import stream

    if not args.start:
        raise ExpkitError("expkit synth --stream needs --start YYYY-MM-DDTHH:MM (UTC), e.g. 2026-11-14T14:00")
    res = stream(Path(args.out), args.start, speed=args.speed, incidents=args.incident or (), users=args.users,
                 seed=args.seed, days=args.days or 1, until=args.until, progress=progress_printer(args.quiet),
                 experiment_id=cfg.experiment_id, buckets=cfg.buckets, control=cfg.control)
    print(json.dumps({"out": str(args.out), "day": res.day.isoformat(), "first_minute": res.first_minute,
                      "last_minute": res.last_minute, "files": res.files, "rows": res.rows,
                      "stopped": res.stopped}))
    return 0


def _engine_spec(args: argparse.Namespace) -> Any:
    """``--engine`` and ``--catalog-db`` as an :class:`expkit.engines.EngineSpec`."""
    from expkit.engines import EngineSpec

    return EngineSpec(args.engine, args.catalog_db)


def cmd_rollup(args: argparse.Namespace) -> int:
    from expkit.config import load_experiments, rollup_config
    from expkit.rollup import build_range
    from expkit.warehouse import Warehouse

    engine = _engine_spec(args)
    cfg = rollup_config(load_experiments(params_file_of(args)))
    wh = Warehouse.open(args.warehouse)
    start = _date(args.date)
    end = _date(args.to) if args.to else start
    if end < start:
        raise ExpkitError(f"--to {end} is before --date {start}")
    if not args.backfill:
        for day in (start + dt.timedelta(days=i) for i in range((end - start).days + 1)):
            wh.require_events(day)
    results = build_range(wh, start, end, cfg, engine=engine, backfill=args.backfill,
                          progress=progress_printer(args.quiet))
    for r in results:
        seconds = round(r.seconds, 2)
        print(json.dumps({"date": r.day.isoformat(), "engine": r.engine, "seconds": seconds, "rows": r.rows}))
    if args.backfill and not results:
        print(json.dumps({"backfill": "nothing to rebuild: every rollup is newer than its events"}))
    return 0


def cmd_tile(args: argparse.Namespace) -> int:
    from expkit.report import run_tile_page
    from expkit.report.daily import adhoc_dir
    from expkit.report.runner import missing_notebook
    from expkit.tiles import check_params
    from expkit.tiles.registry import TILES

    overrides = _parse_overrides(args.p or [])
    unknown = sorted(set(overrides) - set(TILE_PARAMETERS))
    if unknown:
        raise ExpkitError(f"-p {unknown[0]}=...: unknown parameter; tiles take {list(TILE_PARAMETERS)}")
    if args.tile not in TILES:
        raise ExpkitError(f"unknown tile {args.tile!r}; choose one of {list(TILES)}")
    day = _date(args.date)
    params_file = params_file_of(args)
    # Fail fast, before a kernel starts, on parameters the tile would reject.
    warehouse = _warehouse_path(args)
    check_params(args.tile, event_date=day, warehouse=warehouse, params_file=params_file, **overrides)
    missing = missing_notebook(TILES[args.tile].notebook)
    if missing is not None:
        raise ExpkitError(missing)
    out = adhoc_dir(Path(args.out), args.tile, day, overrides, warehouse=warehouse, params_file=params_file)
    outcome = run_tile_page(args.tile, warehouse, day, out, params_file, parameters=overrides,
                       timeout=args.timeout)
    print(json.dumps({"tile": outcome.id, "status": outcome.status, "html": str(out / outcome.html)
                      if outcome.html else None, "error": outcome.error}))
    return 1 if outcome.failed else 0


def cmd_deepdive(args: argparse.Namespace) -> int:
    from expkit.config import experiment_file, portfolio_files
    from expkit.report.deepdive import run_deepdive_page

    params = params_file_of(args)
    outcome = run_deepdive_page(_warehouse_path(args), _date(args.date), Path(args.out),
                                experiment_file(params, args.experiment), _parse_overrides(args.p or []),
                                timeout=args.timeout, lock_timeout=args.lock_timeout,
                                per_experiment=True if portfolio_files(params) is not None else None)
    print(json.dumps(outcome.to_json()))
    return 1 if outcome.error else 0


def cmd_daily(args: argparse.Namespace) -> int:
    from expkit.config import default_params
    from expkit.daily import daily

    engine = _engine_spec(args)
    result = daily(
        warehouse=_warehouse_path(args), day=_date(args.date), out=Path(args.out),
        params_file=Path(args.params) if args.params else default_params(), workers=args.workers,
        timeout=args.timeout, experiment=args.experiment,
        progress=progress_printer(args.quiet), lock_timeout=args.lock_timeout, notify=args.notify,
        history=not args.no_history,
        rules_file=Path(args.rules) if args.rules else None, resend=args.resend, digests=not args.no_notify,
        engine=engine,
    )
    print(result.index)
    return 0 if result.ok else 1


def cmd_selftest(args: argparse.Namespace) -> int:
    from expkit.selftest import SelftestOptions, run_selftest
    from expkit.synth import INCIDENTS

    incidents = tuple(args.incident) if args.incident else tuple(INCIDENTS)
    options = SelftestOptions(
        incidents=incidents, days=args.days, users=args.users, seed=args.seed,
        end=_date(args.end) if args.end else DEMO_END, report=not args.no_report, tiles=not args.no_tiles,
        workdir=Path(args.workdir) if args.workdir else None, params_file=params_file_of(args),
    )
    report = run_selftest(options, progress=progress_printer(args.quiet))
    if args.json:
        print(json.dumps(report.to_dict(), default=str))
    else:
        print(report.format_table())
    return 0 if report.ok else 1


def cmd_digest(args: argparse.Namespace) -> int:
    from expkit.config import default_params
    from expkit.daily import notify_for
    from expkit.notify import deliveries_json, send_digests

    params = Path(args.params) if args.params else default_params()
    run = send_digests(Path(args.out), _date(args.date), notify_for(params), resend=args.resend,
                       dry_run=args.dry_run, progress=progress_printer(args.quiet), lock_timeout=args.lock_timeout)
    if args.dry_run:
        for digest in run.digests:
            print(digest.text())
        for d in run.deliveries:
            print(d.line())
    else:
        for record in deliveries_json(run):
            print(json.dumps(record))
    return 1 if run.failed else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from expkit.config import load_experiment
    from expkit.daily import check_inputs, daily
    from expkit.rollup import build_range
    from expkit.synth import generate

    progress = progress_printer(args.quiet)
    rules_file = Path(args.rules) if args.rules else None
    check_inputs(params_file_of(args), rules_file)  # before minutes of generating data
    cfg = load_experiment(params_file_of(args))
    wh = Path(args.warehouse)
    end = DEMO_END
    start = end - dt.timedelta(days=args.days - 1)
    if not (wh / "events").is_dir():
        generate(wh, days=args.days, end=end, users=args.users, seed=args.seed,
                 experiment_id=cfg.experiment_id, buckets=cfg.buckets, control=cfg.control, progress=progress,
                 pre_days=args.pre_days)
    build_range(wh, start, end, cfg, progress=progress)  # the pre-period days' too (CUPED)
    result = daily(warehouse=wh, day=end, out=Path(args.out), params_file=params_file_of(args),
                   workers=args.workers, timeout=args.timeout, progress=progress, rules_file=rules_file)
    print(Path(result.index).resolve())
    return 0 if result.ok else 1


# --- parser --------------------------------------------------------------------------------

COMMAND_MODULES = ("expkit.validation.commands", "expkit.alerts.commands", "expkit.live_cli")
"""Modules that add their own subcommands: each has ``add_commands(add)`` where
``add(name, func, help) -> argparse.ArgumentParser`` registers one (with --quiet and --params)."""


def _tile_help() -> str:
    return (f"tile ids -- health: {', '.join(HEALTH_IDS)}; outcomes: {', '.join(OUTCOME_IDS)}, and each metric "
            "of params/metrics.yaml with a tile page (ctr, recall, session_depth, save_rate as shipped)")


def _p_help() -> str:
    return (
        "tile parameter, repeatable. Keys: "
        f"window ({', '.join(WINDOWS)}; default {DEFAULT_WINDOW}); "
        f"slice (one of {', '.join(SLICE_COLUMNS)}; default {DEFAULT_SLICE}; each tile supports some); "
        "filters (JSON or YAML mapping of slice column to a list of values, "
        "e.g. filters='{\"region\": [\"eu\"]}'; default: none); "
        "buckets (comma-separated arms; default: every arm of the experiment)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``expkit``.

    Builds from light modules only (argparse, :mod:`expkit.names`, :mod:`expkit.cli_options`);
    each command imports what it needs when it runs, so ``--help`` stays fast.
    """
    from expkit import __version__

    parser = Parser(prog="expkit", description=__doc__.splitlines()[0],
                    epilog=f"{_tile_help()}\nenvironment: $EXPKIT_WAREHOUSE is the default --warehouse\n"
                           "'expkit COMMAND --help' lists each command's options and defaults")
    parser.add_argument("--version", action="version", version=f"expkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=fn)
        add_option(p, QUIET)
        add_option(p, PARAMS)
        return p

    p = add("synth", cmd_synth, "generate a synthetic warehouse with known truth")
    p.add_argument("--out", metavar="DIR", required=True, help="warehouse folder to create")
    p.add_argument("--days", type=positive_int("--days 14"),
                   help="number of days (>= 1; required without --stream; default with --stream: 1)")
    p.add_argument("--end", metavar="YYYY-MM-DD",
                   help="last day (required without --stream; default with --stream: the day of --start)")
    p.add_argument("--users", type=positive_int("--users 20000"), default=20_000, help="user population")
    add_option(p, SEED)
    p.add_argument("--incident", action="append", metavar="SPEC",
                   help="incident on the last day, NAME or NAME@HH:MM/MINUTES, optionally :ARM to hit only that "
                        "arm's users, e.g. error_burst@08:00/600:treatment (repeatable; default: none). "
                   + incident_names())
    p.add_argument("--lift", action="append", metavar="ARM=VALUE",
                   help="true relative lift of a non-control arm on clicks and saves, e.g. treatment=0.1; "
                        "treatment=0 gives an A/A test (repeatable; default: 0.05 for every non-control arm)")
    p.add_argument("--pre-days", type=non_negative_int("--pre-days 14"), default=0, metavar="N",
                   help="days of pre-experiment traffic before the first day: same users and arms, no "
                        "treatment effect, no incidents (default: 0)")
    p.add_argument("--segment-lift", action="append", metavar="SLICE=VALUE:LIFT",
                   help="lift of the non-control arms within a user segment (SLICE: cohort, region or "
                        "client), e.g. region=eu:0.15 (repeatable; default: none)")
    p.add_argument("--novelty", action="append", metavar="ARM=INITIAL:HALF_LIFE_DAYS",
                   help="lift of ARM that is INITIAL on a user's first day of exposure and halves its "
                        "distance to the arm's lift every HALF_LIFE_DAYS, e.g. treatment=0.2:3 "
                        "(repeatable, one per arm; default: none)")
    p.add_argument("--experiments", nargs="+", metavar="N|FILE",
                   help="several experiments at once over the same users: N copies of the parameters file "
                        "(ids <id>, <id>_2, ...) or parameters files / folders such as params/experiments; "
                        "--lift EXPERIMENT/ARM=VALUE sets the lift of one beside the first (default: 0.05 "
                        "times its place in the list) (default: one experiment)")
    p.add_argument("--stream", action="store_true",
                   help="append the day of --start minute by minute in simulated time (docs/live.md)")
    p.add_argument("--start", metavar="YYYY-MM-DDTHH:MM",
                   help="with --stream: simulated start time, UTC (default: none; required with --stream)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="with --stream: simulated minutes per minute, 60 = one simulated minute per second "
                        "(default: 1, real time)")
    p.add_argument("--until", metavar="YYYY-MM-DDTHH:MM",
                   help="with --stream: stop at this simulated time (default: once the day's last row landed)")

    p = add("rollup", cmd_rollup, "build (or rebuild) the rollups of a date or range")
    add_option(p, WAREHOUSE)
    add_option(p, DATE)
    p.add_argument("--to", metavar="YYYY-MM-DD", help="last date of a range, inclusive (default: --date)")
    add_option(p, ENGINE)
    add_option(p, CATALOG_DB)
    p.add_argument("--backfill", action="store_true", help="rebuild only dates whose events changed since their rollup")

    p = add("tile", cmd_tile, "run one tile notebook and render its page (ad hoc, beside the daily reports)")
    # no choices=: a catalogue metric may add a tile (checked against the registry in cmd_tile)
    p.add_argument("tile", metavar="TILE", help=_tile_help())
    add_option(p, WAREHOUSE)
    add_option(p, DATE)
    add_option(p, OUT, help="report folder; the page goes to OUT/adhoc/TILE-DATE-HASH/, "
                            "one folder per distinct set of parameters (see docs/reports.md)")
    p.add_argument("-p", action="append", metavar="KEY=VALUE", help=_p_help())
    add_option(p, TIMEOUT)

    p = add("deepdive", cmd_deepdive, "render the experiment's deep-dive notebook to an offline page, "
                                      "OUT/DATE/deepdive/index.html, linked from the day's index (docs/deepdive.md)")
    p.add_argument("--experiment", metavar="ID",
                   help="with several experiments (--params a folder with experiments/<id>.yaml): the one to "
                        "dive into; its page is OUT/DATE/ID/deepdive/index.html, linked from its report (default: "
                        "the experiment of a single parameters file; required with several)")
    for option in (WAREHOUSE, DATE, OUT, LOCK_TIMEOUT):
        add_option(p, option)
    add_option(p, TIMEOUT, help="seconds for the deep-dive notebook")
    p.add_argument("-p", action="append", metavar="KEY=VALUE",
                   help="deep-dive parameter, repeatable. Keys: window (cum, 1h, 24h, 7d, 30d; default cum, the "
                        "experiment to date); metrics (comma-separated outcome metric ids; default: the "
                        "experiment's); slices (comma-separated slice columns; default: the experiment's)")

    p = add("daily", cmd_daily, "the scheduled daily job: rollup, validate, alerts, every tile, report")
    add_option(p, WAREHOUSE)
    add_option(p, DATE)
    add_option(p, OUT)
    add_option(p, WORKERS)
    add_option(p, TIMEOUT)
    add_option(p, LOCK_TIMEOUT)
    add_option(p, RULES)
    add_option(p, ENGINE)
    add_option(p, CATALOG_DB)
    p.add_argument("--notify", action="store_true",
                   help="deliver alert notifications (when no live 'expkit monitor' runs)")
    p.add_argument("--no-history", action="store_true",
                   help="build only the date's rollups, not the earlier days its windows, baselines and "
                        "alert rules read; the report names what is missing")
    p.add_argument("--resend", action="store_true",
                   help="send the date's digests again to targets of notify.yaml that already received them")
    p.add_argument("--no-notify", action="store_true",
                   help="write no digest and deliver none (the report and its summary.json as usual)")
    p.add_argument("--experiment", metavar="ID",
                   help="with several experiments (--params a folder with experiments/<id>.yaml; the default "
                        "when params/experiments/ exists): report only this one; the date's other experiment "
                        "reports are kept (default: every experiment active on the date)")

    p = add("digest", cmd_digest, "write and deliver the digests of a date's report to the targets of notify.yaml "
                                  "(beside --params); delivered ones are not sent again")
    add_option(p, DATE)
    add_option(p, OUT)
    add_option(p, LOCK_TIMEOUT)
    p.add_argument("--dry-run", action="store_true", help="print the digests and what would be sent; send nothing")
    p.add_argument("--resend", action="store_true", help="send again to targets that already received them")

    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(add)

    p = add("selftest", cmd_selftest, "synthetic-day test: generate days with known truth and injected incidents, "
            "run rollup, validation, alerts and the report, and compare with the truth")
    p.add_argument("--incident", action="append", metavar="NAME",
                   help="incident to inject (repeatable; NAME or NAME@HH:MM/MINUTES; default: all). "
                   + incident_names())
    p.add_argument("--days", type=positive_int("--days 5"), default=5,
                   help="days to generate (default 5, the history the anomaly tile needs; the last has the incidents)")
    p.add_argument("--users", type=positive_int("--users 4000"), default=4000, help="user population")
    add_option(p, SEED)
    p.add_argument("--end", help="last day, YYYY-MM-DD (default: the demo's)")
    p.add_argument("--workdir", help="keep the warehouses and reports in this folder (default: a temporary one)")
    p.add_argument("--no-report", action="store_true",
                   help="skip the daily HTML report (Papermill); tiles are then run in-process")
    p.add_argument("--no-tiles", action="store_true", help="skip the tiles and the report (validation and alerts only)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")

    p = add("demo", cmd_demo, "synthetic warehouse (generated if --warehouse has no events/) + daily report; "
                              "prints the index page")
    add_option(p, WAREHOUSE)
    add_option(p, OUT)
    p.add_argument("--days", type=positive_int("--days 14"), default=DEMO_DAYS,
                   help=f"days of data, ending {DEMO_END}")
    p.add_argument("--users", type=positive_int("--users 10000"), default=10_000, help="user population")
    p.add_argument("--pre-days", type=non_negative_int("--pre-days 14"), default=DEMO_PRE_DAYS, metavar="N",
                   help=f"days of pre-experiment traffic before the first day, for CUPED (default: {DEMO_PRE_DAYS}; "
                        "0: none)")
    add_option(p, SEED)
    add_option(p, WORKERS)
    add_option(p, TIMEOUT)
    add_option(p, RULES)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``expkit`` command."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as err:
        print(err, file=sys.stderr)
        return err.exit_code
    if "warehouse" in args and not args.warehouse:
        args.warehouse = str(default_warehouse())  # the same rule for every command
    try:
        with interrupts.handling():
            try:
                return int(args.func(args) or 0)
            except Exception:
                if interrupts.interrupted():  # e.g. DuckDB's "Query interrupted" after Ctrl-C
                    raise KeyboardInterrupt from None
                raise
    except ExpkitError as err:
        print(f"expkit {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:  # stdout piped into a reader that stopped early (e.g. head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as err:  # full disk, read-only or missing folder, a file where a folder belongs
        where = f" {err.filename}" if err.filename else ""
        print(f"expkit {args.command}: error: file system error on{where}: {err.strerror or err}; "
              "make sure the folder exists, is writable and has free space, or choose another path",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"expkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
