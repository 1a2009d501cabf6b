"""Validation history: one JSON document per run under ``state/validation/<date>/``.

Each run is written atomically under a new name (``<checked_at>-<cadence>-<id>.json``), so the
history is append-only, concurrent runs never clash, and a reader sees whole documents only.
The data-freshness tile, the index page and the ``data_stale`` alert read the latest run.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expkit.atomic import atomic_write_json
from expkit.validation.results import CheckResult
from expkit.warehouse import Warehouse, ms_to_iso


@dataclass(frozen=True)
class ValidationRun:
    """One validation run of one date.

    Attributes:
        day: the event date checked.
        cadence: ``5m``, ``hourly`` or ``daily``.
        checked_at_ms: wall-clock time of the run.
        as_of_ms: the time the data was judged at (``now``).
        seconds: how long the checks took.
        checks: the results.
        unrecorded: why the run could not be stored in the history (None when it was, or
            was not asked to be); the results stand either way.
    """

    day: dt.date
    cadence: str
    checked_at_ms: int
    as_of_ms: int
    seconds: float
    checks: tuple[CheckResult, ...]
    unrecorded: str | None = None

    @property
    def failed(self) -> list[CheckResult]:
        """The failed checks."""
        return [c for c in self.checks if c.failed]

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings allowed)."""
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        """The stored document; ``checks`` has the ``summary.json`` shape."""
        return {
            "date": self.day.isoformat(),
            "cadence": self.cadence,
            "checked_at": ms_to_iso(self.checked_at_ms),
            "as_of": ms_to_iso(self.as_of_ms),
            "checked_at_ms": self.checked_at_ms,
            "as_of_ms": self.as_of_ms,
            "seconds": round(self.seconds, 3),
            "status": "fail" if self.failed else ("warn" if any(c.status == "warn" for c in self.checks) else "pass"),
            "checks": [c.to_dict() for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationRun:
        return cls(dt.date.fromisoformat(data["date"]), data["cadence"], int(data["checked_at_ms"]),
                   int(data["as_of_ms"]), float(data.get("seconds", 0.0)),
                   tuple(CheckResult.from_dict(c) for c in data["checks"]))


def history_dir(wh: Warehouse, day: dt.date) -> Path:
    """``state/validation/<date>/``."""
    return wh.state / "validation" / day.isoformat()


def record_run(wh: Warehouse, run: ValidationRun) -> Path:
    """Store ``run`` as a new document of the date's history; return its path."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(run.checked_at_ms / 1000)) + f"{run.checked_at_ms % 1000:03d}Z"
    path = history_dir(wh, run.day) / f"{stamp}-{run.cadence}-{uuid.uuid4().hex[:6]}.json"
    atomic_write_json(path, run.to_dict())
    return path


def load_runs(warehouse: Warehouse | str | Path, day: dt.date, cadence: str | None = None) -> list[ValidationRun]:
    """Every stored run of ``day`` (of one cadence if given), oldest first."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(Path(warehouse))
    folder = history_dir(wh, day)
    runs = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        run = ValidationRun.from_dict(json.loads(path.read_text()))
        if cadence is None or run.cadence == cadence:
            runs.append(run)
    return sorted(runs, key=lambda r: r.checked_at_ms)


def latest_run(warehouse: Warehouse | str | Path, day: dt.date, cadence: str | None = None) -> ValidationRun | None:
    """The newest stored run of ``day`` (None when the date was never validated)."""
    runs = load_runs(warehouse, day, cadence)
    return runs[-1] if runs else None
