"""The options the ``expkit`` commands share, each defined once with its check and its default.

Every command adds ``--warehouse``, ``--out``, ``--date``, ``--timeout``, ``--workers``,
``--lock-timeout``, ``--rules``, ``--seed``, ``--engine``, ``--catalog-db`` through
:func:`add_option`, so the same option has the same meaning, default and help everywhere.
Numeric options are checked while parsing: a bad value is a one-line error and exit status 2 (:class:`Parser`).

Standard library only (and :mod:`expkit.names`): ``expkit --help`` must not load the
analysis stack.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from expkit.errors import ExpkitError
from expkit.names import DEFAULT_RULE

DEMO_END = dt.date(2026, 11, 14)
"""The last day of the demo's synthetic data (``expkit demo``, ``expkit selftest``)."""
DEMO_DAYS = 14
"""Days of synthetic data the demo generates."""
DEMO_PRE_DAYS = 14
"""Days of pre-experiment traffic the demo generates before them (the CUPED pre-period)."""


class UsageError(ExpkitError):
    """A command line that does not parse (the message is the whole line to print)."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block) and exit status 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends ``(default: X)`` to an option's help unless the help already states its default.

    Options whose default is ``None`` (computed at run time) must say what it is in their help.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or action.required or not action.option_strings
                or any(action.default is v for v in (None, False, argparse.SUPPRESS))):
            return text
        return text + " (default: %(default)s)"


def _number(kind: Callable[[str], Any], minimum: float, inclusive: bool, example: str) -> Callable[[str], Any]:
    what = "an integer" if kind is int else "a number"
    bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}; give {what} {bound}, e.g. {example}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number; give {what} {bound}, e.g. {example}")
        if value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"{text!r} is out of range; give {what} {bound}, e.g. {example}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


def positive_float(example: str) -> Callable[[str], float]:
    """An argparse type: a finite number > 0."""
    return _number(float, 0, False, example)


def non_negative_float(example: str) -> Callable[[str], float]:
    """An argparse type: a finite number >= 0."""
    return _number(float, 0, True, example)


def positive_int(example: str) -> Callable[[str], int]:
    """An argparse type: an integer >= 1."""
    return _number(int, 1, True, example)


def non_negative_int(example: str) -> Callable[[str], int]:
    """An argparse type: an integer >= 0."""
    return _number(int, 0, True, example)


class Option(NamedTuple):
    """One shared option: its flags and the :meth:`argparse.ArgumentParser.add_argument` keywords."""

    flags: tuple[str, ...]
    kwargs: dict[str, Any]


DEFAULT_TIMEOUT = 600.0
DEFAULT_LOCK_TIMEOUT = 3600.0
DEFAULT_OUT = "reports"

WAREHOUSE = Option(("--warehouse",), dict(
    metavar="DIR", default=None,
    help=f"warehouse folder (default: {DEFAULT_RULE})"))
OUT = Option(("--out",), dict(
    metavar="DIR", default=DEFAULT_OUT,
    help="report folder: days go to OUT/YYYY-MM-DD/, ad-hoc tile pages to OUT/adhoc/"))
DATE = Option(("--date",), dict(metavar="YYYY-MM-DD", required=True, help="event date (UTC day) to work on"))
TIMEOUT = Option(("--timeout",), dict(
    metavar="SECONDS", type=positive_float("--timeout 600"), default=DEFAULT_TIMEOUT,
    help="seconds for each tile, computing and its notebook together"))
WORKERS = Option(("--workers",), dict(
    metavar="N", type=positive_int("--workers 2"), default=None,
    help=f"notebooks run at once (default: the number of CPUs, {os.cpu_count() or 1} here)"))
LOCK_TIMEOUT = Option(("--lock-timeout",), dict(
    metavar="SECONDS", type=non_negative_float("--lock-timeout 60"), default=DEFAULT_LOCK_TIMEOUT,
    help="seconds to wait while another run of the same date holds its lock (0: fail at once)"))
RULES = Option(("--rules",), dict(
    metavar="FILE", default=None, help="alert rules file (default: alerts.yaml beside --params)"))
SEED = Option(("--seed",), dict(
    metavar="N", type=non_negative_int("--seed 0"), default=0, help="random seed of the synthetic data"))
PARAMS = Option(("--params",), dict(
    metavar="FILE", default=None,
    help="experiment parameters file (default: params/experiment.yaml of the working folder or the checkout)"))
ENGINE = Option(("--engine",), dict(
    default="duckdb", choices=["duckdb", "spark"],
    help="engine that reads the raw events (rollups, validation checks); tiles read the rollups with DuckDB"))
CATALOG_DB = Option(("--catalog-db",), dict(
    metavar="NAME", default=None,
    help="with --engine spark: read the event tables as NAME.requests, NAME.impressions, ... of the Spark "
         "catalog instead of the warehouse's events/ folders (e.g. events, or main.events on Unity Catalog; "
         "default: the folders; see docs/spark.md)"))
QUIET = Option(("--quiet",), dict(action="store_true", help="no progress messages on stderr"))


def add_option(parser: argparse.ArgumentParser, option: Option, **overrides: Any) -> argparse.Action:
    """Add the shared ``option`` to ``parser`` (``overrides`` replace its keywords, e.g. ``default``)."""
    return parser.add_argument(*option.flags, **{**option.kwargs, **overrides})



def incident_names() -> str:
    """The synthetic incidents for help texts: ``Names (default start/minutes): NAME (HH:MM/M); ...``."""
    from expkit.synth.incidents import INCIDENTS

    names = "; ".join(f"{name} ({info.default_window})" for name, info in INCIDENTS.items())
    return f"Names (default start/minutes): {names}"


def progress_printer(quiet: bool) -> Callable[[str], None] | None:
    """The progress callback of a command: ``[expkit] message`` lines on stderr, ``None`` with ``--quiet``."""
    if quiet:
        return None

    def say(msg: str) -> None:
        # One write per line: print() writes the text and the newline separately, and a Ctrl-C
        # between the two would glue the next message onto a half-finished line.
        sys.stderr.write(f"[expkit] {msg}\n")
        sys.stderr.flush()

    return say


def params_file_of(args: argparse.Namespace) -> Path:
    """The parameters file a command reads: ``--params``, else the default (docs/reports.md)."""
    from expkit.config import default_params_file

    return Path(args.params) if getattr(args, "params", None) else default_params_file()
