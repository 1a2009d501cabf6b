"""What every benchmark shares: the machine line, the size presets, and the record format."""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
USERS_PER_1M_IMPRESSIONS = 5_900
"""With the default synthetic model, about this many users give 1M impressions a day."""
SIZES = {"1m": USERS_PER_1M_IMPRESSIONS, "10m": 10 * USERS_PER_1M_IMPRESSIONS, "100m": 100 * USERS_PER_1M_IMPRESSIONS}


def machine() -> str:
    """One line describing the machine (CPU model, cores, OS, Python)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, load average {load:.1f} at start")


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory of this process (or of its finished children), in MB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def command_line() -> str:
    """The command that is running, for the record."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(REPO) if script.is_relative_to(REPO) else script
    return " ".join(shlex.quote(str(a)) for a in ["python", shown, *sys.argv[1:]])


def record(title: str, lines: list[str], command: str | None = None) -> None:
    """Append one dated entry (machine, command, figures) to ``docs/benchmarks.md``."""
    entry = [
        f"\n### {title} · {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC\n",
        f"- machine: {machine()}",
        f"- command: `{command or command_line()}`",
        *(f"- {line}" for line in lines),
        "",
    ]
    new = not DOCS.exists()
    with DOCS.open("a", encoding="utf-8") as fh:
        if new:
            fh.write("# Benchmarks\n\nFigures appended by `make bench` (and each `benchmarks/*.py --record`).\n")
        fh.write("\n".join(entry))
    print(f"recorded in {DOCS}")
