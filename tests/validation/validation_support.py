"""Helpers of the validation tests: a hand-made warehouse and result lookup."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from expkit.schema import EVENT_TABLES
from expkit.warehouse import day_bounds_ms

_DEFAULTS: dict[str, Any] = {
    "experiment_id": "exp", "bucket": "control", "cohort": "casual", "region": "eu", "surface": "home",
    "client": "web", "k_requested": 10, "k_returned": 10, "latency_ms": 12.5, "cache_hit": True,
    "fallback_level": 0, "status": "ok", "error_component": None, "error_severity": None,
    "position": 1, "genre": "drama", "provider": "indie", "source": "rec", "shadow": False,
    "user_id": 1, "session_id": 1, "item_id": 1, "request_id": 1,
}

SCENARIO_INCIDENTS = ("orphan_clicks", "duplicate_events", "stale_partition", "late_data")
END = dt.date(2026, 11, 14)
"""Last day of the scenario warehouse (the incident day)."""

DAY = dt.date(2026, 11, 10)
"""The day of the hand-made warehouse."""
T0 = day_bounds_ms(DAY)[0]
MIN = 60_000


class TinyWarehouse:
    """Writes a few hand-made rows per table and day; unspecified columns get healthy defaults."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._n = 0

    def write(self, table: str, rows: list[dict[str, Any]], day: dt.date = DAY, name: str | None = None) -> Path:
        schema = EVENT_TABLES[table]
        filled = []
        for r in rows:
            row = {**_DEFAULTS, **r}
            row.setdefault("ingest_ms", row["timestamp_ms"] + 20_000)
            for id_col in ("click_id", "save_id", "play_id"):
                row.setdefault(id_col, self._next())
            filled.append({f.name: row.get(f.name) for f in schema})
        part = self.root / "events" / table / f"event_date={day.isoformat()}"
        part.mkdir(parents=True, exist_ok=True)
        self._n += 1
        path = part / (name or f"part-{self._n:05d}.parquet")
        pq.write_table(pa.Table.from_pylist(filled, schema=schema), path)
        return path

    def _next(self) -> int:
        self._n += 1
        return 10_000 + self._n

    def healthy_request(self, request_id: int, ts: int, day: dt.date = DAY, items: int = 2, **extra: Any) -> None:
        """A request, its impressions and a click on the first item."""
        self.write("requests", [{"request_id": request_id, "timestamp_ms": ts, **extra}], day)
        self.write("impressions", [{"request_id": request_id, "item_id": i, "position": i, "timestamp_ms": ts, **extra}
                                   for i in range(1, items + 1)], day)
        self.write("clicks", [{"request_id": request_id, "item_id": 1, "timestamp_ms": ts + 5_000}], day)


def find(results: list[Any], name: str, table: str) -> Any:
    """The one result of check ``name`` on ``table``."""
    hits = [r for r in results if r.name == name and r.table == table]
    assert len(hits) == 1, (name, table, results)
    return hits[0]
