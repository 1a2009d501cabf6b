"""Command line of the live tier: ``expkit live`` (see :mod:`expkit.live` and docs/live.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from expkit.cli_options import RULES, add_option, positive_float, positive_int
from expkit.errors import ExpkitError
from expkit.names import WAREHOUSE_ENV

if TYPE_CHECKING:
    from expkit.live import LiveTick


def _time_ms(value: str) -> int:
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ExpkitError(f"--now {value!r} is not an ISO time; write e.g. 2026-11-14T14:30Z") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return int(t.timestamp() * 1000)


def cmd_live(args: argparse.Namespace) -> int:
    """``expkit live``: see the module docstring."""
    from expkit.live import run, serve
    from expkit.warehouse import ms_to_iso

    warehouse = args.warehouse or os.environ.get(WAREHOUSE_ENV) or "warehouse"
    out = Path(args.out)
    params = Path(args.params) if getattr(args, "params", None) else None
    server = serve(out, args.serve) if args.serve else None
    if server is not None:
        out.mkdir(parents=True, exist_ok=True)
        print(f"serving {out} on http://127.0.0.1:{server.server_address[1]}/", file=sys.stderr, flush=True)

    def show(t: LiveTick) -> None:
        print(json.dumps({
            "now": ms_to_iso(t.now_ms), "page": str(t.page), **({"error": t.error} if t.error else {}),
            "rollups": {u.day.isoformat(): {x.name: x.mode for x in u.tables} for u in t.updates},
            "evaluated": t.monitor.evaluated,
            "firing": [{"rule": a["rule"], "severity": a["severity"]} for a in t.monitor.firing],
            **({"delivery_failed": t.monitor.delivery.failed} if t.monitor.delivery.failed else {}),
            "seconds": {k: round(v, 3) for k, v in t.seconds.items()}}), flush=True)

    def keep_going(err: Exception) -> None:
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)

    try:
        ticks = run(Path(warehouse), out, params, args.every, args.once, _time_ms(args.now) if args.now else None,
                    show, None if args.once else keep_going, rules_file=Path(args.rules) if args.rules else None)
        if args.once and ticks and ticks[-1].error:
            raise ExpkitError(ticks[-1].error)  # the page shows it too; cron sees the failure
    except KeyboardInterrupt:
        print("live stopped", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.shutdown()
    return 0


def add_commands(add: Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]) -> None:
    """Register ``expkit live``."""
    p = add("live", cmd_live, "the live health page: incremental rollups, alerts and reports/live/index.html "
                              "every --every seconds")
    p.add_argument("--warehouse", metavar="DIR", help="warehouse folder (default: $EXPKIT_WAREHOUSE or ./warehouse)")
    p.add_argument("--out", default="reports/live", metavar="DIR", help="page folder (default: reports/live)")
    p.add_argument("--every", type=positive_float("--every 60"), default=60.0,
                   help="seconds between updates (default: 60)")
    add_option(p, RULES)
    p.add_argument("--once", action="store_true", help="one update, then exit")
    p.add_argument("--now", help="the clock starts at this ISO time (replays and tests; default: the real clock)")
    p.add_argument("--serve", type=positive_int("--serve 8765"), metavar="PORT",
                   help="also serve the page folder on http://127.0.0.1:PORT/ (default: not served)")
