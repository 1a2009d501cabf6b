"""The warehouse folder: where event tables, rollups and state live (docs/architecture.md).

::

    warehouse/
      events/<table>/event_date=YYYY-MM-DD/*.parquet    raw events (Hive-partitioned)
      rollups/<name>/event_date=YYYY-MM-DD/*.parquet    derived tables, rebuilt per date
      state/                                            manifests, alert state, validation history
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from expkit.errors import ExpkitError, NoDataError
from expkit.names import DAY_MS, DEFAULT_RULE, default_warehouse
from expkit.schema import EVENT_TABLES

BIN_MS = 300_000
"""Health measurement bin: 5 minutes."""


def parse_date(value: str | dt.date, what: str = "date") -> dt.date:
    """Parse ``YYYY-MM-DD`` (rejecting impossible dates such as 2026-02-30) with a clear error."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ExpkitError(
            f"{what} {value!r} is not a valid date; use YYYY-MM-DD (e.g. 2026-11-14)"
        ) from None


def day_bounds_ms(day: dt.date) -> tuple[int, int]:
    """[start, end) of a UTC day in epoch milliseconds."""
    start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp() * 1000)
    return start, start + DAY_MS


@overload
def ms_to_iso(ms: int | float) -> str: ...


@overload
def ms_to_iso(ms: None) -> None: ...


@overload
def ms_to_iso(ms: int | float | None) -> str | None: ...


def ms_to_iso(ms: int | float | None) -> str | None:
    """Epoch ms → ISO-8601 UTC (``2026-11-14T12:00:00Z``); None stays None."""
    if ms is None:
        return None
    t = dt.datetime.fromtimestamp(float(ms) / 1000, tz=dt.timezone.utc)
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Warehouse:
    """A warehouse folder and the paths inside it."""

    root: Path

    @classmethod
    def open(
        cls, root: str | os.PathLike[str] | None, must_exist: bool = True, fix: str = "pass --warehouse"
    ) -> Warehouse:
        """Open a warehouse folder, with clear errors for a missing folder or a file.

        ``root`` None means :func:`default_warehouse`. ``fix`` ends the error message: how the
        caller's user names another folder (a command-line option, a notebook parameter).
        """
        path = Path(root) if root is not None else default_warehouse()
        origin = "" if root is not None else f" (the default: {DEFAULT_RULE})"
        if path.exists() and not path.is_dir():
            raise ExpkitError(f"warehouse path {path} is a file, not a folder{origin}; {fix}")
        if must_exist and not (path / "events").is_dir():
            raise ExpkitError(
                f"warehouse {path.absolute()} has no events/ folder{origin}; create one with "
                f"'expkit synth --out {path} ...' or {fix}"
            )
        return cls(path)

    @property
    def events(self) -> Path:
        return self.root / "events"

    @property
    def rollups(self) -> Path:
        return self.root / "rollups"

    @property
    def state(self) -> Path:
        return self.root / "state"

    def event_partition(self, table: str, day: dt.date) -> Path:
        return self.events / table / f"event_date={day.isoformat()}"

    def rollup_partition(self, name: str, day: dt.date) -> Path:
        return self.rollups / name / f"event_date={day.isoformat()}"

    def event_files(self, table: str, day: dt.date) -> list[Path]:
        """The Parquet files of one table's day partition (sorted; hidden temp files skipped)."""
        part = self.event_partition(table, day)
        if not part.is_dir():
            return []
        return sorted(p for p in part.glob("*.parquet") if not p.name.startswith("."))

    def rollup_files(self, name: str, days: list[dt.date] | None = None) -> list[Path]:
        """Parquet files of a rollup, for the given days (all days when None)."""
        base = self.rollups / name
        if days is None:
            parts = sorted(p for p in base.glob("event_date=*") if p.is_dir())
        else:
            parts = [self.rollup_partition(name, d) for d in days]
        return [f for p in parts if p.is_dir() for f in sorted(p.glob("*.parquet"))]

    def event_dates(self, table: str = "requests") -> list[dt.date]:
        """Dates that have a partition of ``table``."""
        base = self.events / table
        out = []
        for p in sorted(base.glob("event_date=*")):
            if p.is_dir():
                try:
                    out.append(dt.date.fromisoformat(p.name.split("=", 1)[1]))
                except ValueError:
                    continue
        return out

    def rollup_dates(self, name: str) -> list[dt.date]:
        """Dates that have a partition of rollup ``name``."""
        base = self.rollups / name
        out = []
        for p in sorted(base.glob("event_date=*")):
            if p.is_dir() and any(p.glob("*.parquet")):
                out.append(dt.date.fromisoformat(p.name.split("=", 1)[1]))
        return out

    def require_events(self, day: dt.date) -> None:
        """Raise :class:`NoDataError` when ``day`` has no request partition."""
        if not self.event_files("requests", day):
            have = self.event_dates()
            span = f"{have[0]} to {have[-1]}" if have else "none"
            raise NoDataError(
                f"no events for {day} in {self.events} (partition event_date={day} missing); "
                f"dates present: {span}"
            )

    def missing_tables(self, day: dt.date) -> list[str]:
        """Event tables with no files for ``day``."""
        return [t for t in EVENT_TABLES if not self.event_files(t, day)]
