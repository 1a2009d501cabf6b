"""The ``expkit`` command line (spec §11, §12).

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

from expkit.errors import ExpkitError

DEMO_END = dt.date(2026, 11, 14)
DEMO_DAYS = 14


def _progress(quiet: bool) -> Callable[[str], None] | None:
    if quiet:
        return None
    return lambda msg: print(f"[expkit] {msg}", file=sys.stderr, flush=True)


def _date(value: str) -> dt.date:
    from expkit.warehouse import parse_date

    return parse_date(value)


def _params_file(args: argparse.Namespace) -> Path:
    from expkit.config import default_params_file

    return Path(args.params) if getattr(args, "params", None) else default_params_file()


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

    cfg = load_experiment(_params_file(args))
    truth = generate(
        Path(args.out), days=args.days, end=_date(args.end), users=args.users, seed=args.seed,
        incidents=args.incident or (), experiment_id=cfg.experiment_id, buckets=cfg.buckets,
        control=cfg.control, progress=_progress(args.quiet),
    )
    summary = {"out": str(args.out), "tables": truth.get("tables"), "incidents": truth.get("incidents")}
    print(json.dumps(summary, default=str))
    return 0


def cmd_rollup(args: argparse.Namespace) -> int:
    from expkit.config import load_experiment
    from expkit.rollup import build_range
    from expkit.warehouse import Warehouse

    cfg = load_experiment(_params_file(args))
    wh = Warehouse.open(args.warehouse)
    start = _date(args.date)
    end = _date(args.to) if args.to else start
    if end < start:
        raise ExpkitError(f"--to {end} is before --date {start}")
    if not args.backfill:
        for day in (start + dt.timedelta(days=i) for i in range((end - start).days + 1)):
            wh.require_events(day)
    results = build_range(wh, start, end, cfg, engine=args.engine, backfill=args.backfill,
                          progress=_progress(args.quiet))
    for r in results:
        seconds = round(r.seconds, 2)
        print(json.dumps({"date": r.day.isoformat(), "engine": r.engine, "seconds": seconds, "rows": r.rows}))
    if args.backfill and not results:
        print(json.dumps({"backfill": "nothing to rebuild: every rollup is newer than its events"}))
    return 0


TILE_PARAMETERS = ("window", "slice", "filters", "buckets")


def cmd_tile(args: argparse.Namespace) -> int:
    from expkit.report import run_tile
    from expkit.tiles import check_params
    from expkit.tiles.registry import TILES

    overrides = _parse_overrides(args.p or [])
    unknown = sorted(set(overrides) - set(TILE_PARAMETERS))
    if unknown:
        raise ExpkitError(f"-p {unknown[0]}=...: unknown parameter; tiles take {list(TILE_PARAMETERS)}")
    if args.tile not in TILES:
        raise ExpkitError(f"unknown tile {args.tile!r}; choose one of {list(TILES)}")
    day = _date(args.date)
    params_file = _params_file(args)
    # Fail fast, before a kernel starts, on parameters the tile would reject.
    check_params(args.tile, event_date=day, warehouse=args.warehouse, params_file=params_file, **overrides)
    out = Path(args.out) / day.isoformat()
    outcome = run_tile(args.tile, Path(args.warehouse), day, out, params_file, parameters=overrides,
                       timeout=args.timeout)
    print(json.dumps({"tile": outcome.id, "status": outcome.status, "html": str(out / outcome.html)
                      if outcome.html else None, "error": outcome.error}))
    return 1 if outcome.failed else 0


def cmd_daily(args: argparse.Namespace) -> int:
    from expkit.daily import daily

    result = daily(
        warehouse=Path(args.warehouse), day=_date(args.date), out=Path(args.out),
        params_file=_params_file(args), workers=args.workers, timeout=args.timeout,
        progress=_progress(args.quiet), lock_timeout=args.lock_timeout, notify=args.notify,
    )
    print(result.index)
    return 0 if result.ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from expkit.config import load_experiment
    from expkit.daily import daily
    from expkit.rollup import build_range
    from expkit.synth import generate

    progress = _progress(args.quiet)
    cfg = load_experiment(_params_file(args))
    wh = Path(args.warehouse)
    end = DEMO_END
    start = end - dt.timedelta(days=args.days - 1)
    if not (wh / "events").is_dir():
        generate(wh, days=args.days, end=end, users=args.users, seed=args.seed,
                 experiment_id=cfg.experiment_id, buckets=cfg.buckets, control=cfg.control, progress=progress)
    build_range(wh, start, end, cfg, progress=progress)
    result = daily(warehouse=wh, day=end, out=Path(args.out), params_file=_params_file(args),
                   workers=args.workers, timeout=args.timeout, progress=progress)
    print(Path(result.index).resolve())
    return 0 if result.ok else 1


# --- parser --------------------------------------------------------------------------------

COMMAND_MODULES = ("expkit.validation.commands", "expkit.alerts.commands")
"""Modules that add their own subcommands: each has ``add_commands(add)`` where
``add(name, func, help) -> argparse.ArgumentParser`` registers one (with --quiet and --params)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``expkit``."""
    from expkit import __version__

    parser = argparse.ArgumentParser(prog="expkit", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"expkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=fn)
        p.add_argument("--quiet", action="store_true", help="no progress messages")
        p.add_argument("--params", help="experiment parameters file (default: params/experiment.yaml)")
        return p

    p = add("synth", cmd_synth, "generate a synthetic warehouse with known truth")
    p.add_argument("--out", required=True, help="warehouse folder to create")
    p.add_argument("--days", type=int, required=True, help="number of days (>= 1)")
    p.add_argument("--end", required=True, help="last day, YYYY-MM-DD")
    p.add_argument("--users", type=int, default=20_000, help="user population (default 20000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--incident", action="append", help="NAME or NAME@HH:MM/MINUTES on the last day (repeatable)")

    p = add("rollup", cmd_rollup, "build (or rebuild) the rollups of a date or range")
    p.add_argument("--warehouse", default=None, help="warehouse folder (default $EXPKIT_WAREHOUSE or ./warehouse)")
    p.add_argument("--date", required=True)
    p.add_argument("--to", help="last date of a range (inclusive)")
    p.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"])
    p.add_argument("--backfill", action="store_true", help="rebuild only dates whose events changed since their rollup")

    p = add("tile", cmd_tile, "run one tile notebook and render its page")
    p.add_argument("tile", help="tile id, e.g. ctr")
    p.add_argument("--warehouse", default="warehouse")
    p.add_argument("--date", required=True)
    p.add_argument("--out", default="reports")
    p.add_argument("-p", action="append", metavar="KEY=VALUE", help="parameter override (repeatable)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for the notebook")

    p = add("daily", cmd_daily, "the scheduled daily job: rollup, validate, alerts, every tile, report")
    p.add_argument("--warehouse", default="warehouse")
    p.add_argument("--date", required=True)
    p.add_argument("--out", default="reports")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per tile notebook")
    p.add_argument("--lock-timeout", type=float, default=3600.0,
                   help="seconds to wait for another run of the same date (0: fail at once)")
    p.add_argument("--notify", action="store_true",
                   help="deliver alert notifications (when no live 'expkit monitor' runs)")

    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(add)

    p = add("demo", cmd_demo, "synthetic warehouse + daily report; prints the index page")
    p.add_argument("--warehouse", default="warehouse")
    p.add_argument("--out", default="reports")
    p.add_argument("--days", type=int, default=DEMO_DAYS)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--timeout", type=float, default=600.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``expkit`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
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
