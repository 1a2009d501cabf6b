"""Subcommand ``expkit validate`` (registered by :mod:`expkit.cli`)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from expkit.cli_options import CATALOG_DB, DATE, ENGINE, WAREHOUSE, add_option
from expkit.errors import ExpkitError
from expkit.names import CADENCES

if TYPE_CHECKING:
    from expkit.validation.results import CheckResult

AddCommand = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def parse_now(value: str | None, day: dt.date) -> dt.datetime | None:
    """``--now``: an ISO-8601 time (UTC unless it has an offset) or ``HH:MM`` on ``day``."""
    if value is None:
        return None
    text = value.strip()
    if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", text):
        text = f"{day.isoformat()}T{text}"
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ExpkitError(
            f"--now {value!r} is not a time; use ISO-8601 such as 2026-11-14T12:30:00Z, or HH:MM on --date"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def format_checks(checks: list[CheckResult], width: int = 110) -> str:
    """A plain-text table of check results, failures first."""
    order = {"fail": 0, "warn": 1, "pass": 2}
    lines = []
    for c in sorted(checks, key=lambda c: order[c.status]):
        value = "-" if c.value is None else (f"{c.value:.4g}" if isinstance(c.value, float) else f"{c.value:,}")
        detail = c.detail if c.status != "pass" else c.detail[:width] + ("…" if len(c.detail) > width else "")
        threshold = "-" if c.threshold is None else f"{c.threshold:g}"
        lines.append(f"{c.status.upper():4}  {c.name:22} {c.table:11} {value:>10} {threshold:>6}  {detail}")
    return "\n".join(lines)


def cmd_validate(args: argparse.Namespace) -> int:
    from expkit.cli_options import params_file_of
    from expkit.config import load_experiment
    from expkit.engines import EngineSpec
    from expkit.validation.api import validate
    from expkit.validation.query import open_engine
    from expkit.warehouse import Warehouse, parse_date

    spec = EngineSpec(args.engine, args.catalog_db)
    day = parse_date(args.date)
    now = parse_now(args.now, day)
    config = load_experiment(params_file_of(args))
    wh = Warehouse.open(args.warehouse)
    engine = open_engine(spec)
    try:
        run = validate(wh, day, now=now, cadence=args.cadence, config=config, record=not args.no_record,
                       engine=engine)
    finally:
        engine.close()
    if args.json:
        doc = run.to_dict()
        print(json.dumps({k: doc[k] for k in ("date", "cadence", "as_of", "checked_at", "status", "checks")},
                         default=str))
    else:
        warns = sum(c.status == "warn" for c in run.checks)
        print(f"{day} {args.cadence} validation of {wh.root} as of {run.to_dict()['as_of']}: "
              f"{len(run.failed)} failed, {warns} warning(s), {len(run.checks) - len(run.failed) - warns} passed "
              f"({run.seconds:.1f} s)")
        print(format_checks(list(run.checks)))
    return 1 if run.failed else 0


def add_commands(add: AddCommand) -> None:
    """Register ``validate`` with the ``expkit`` parser."""
    p = add("validate", cmd_validate,
            "data validation: freshness, completeness, join integrity, consistency, late data")
    add_option(p, WAREHOUSE)
    add_option(p, DATE)
    p.add_argument("--now", help="judge the data as of this time (ISO-8601, or HH:MM on --date); "
                   "default: the end of a past date, else the current time")
    p.add_argument("--cadence", default="daily", choices=list(CADENCES),
                   help="check set: 5m (freshness, completeness, joins), hourly (+ consistency, late data), "
                   "daily (+ rollup freshness; default)")
    p.add_argument("--json", action="store_true", help="print the results as JSON (summary.json 'checks' shape)")
    add_option(p, ENGINE)
    add_option(p, CATALOG_DB)
    p.add_argument("--no-record", action="store_true", help="do not append the run to state/validation/")

