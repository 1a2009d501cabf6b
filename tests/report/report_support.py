"""Shared test data for the report tests: a registry of test notebooks, fake steps."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from expkit.report import DailySteps, Tile

HERE = Path(__file__).parent
NOTEBOOKS = HERE / "notebooks"
REPO = HERE.parents[1]
PARAMS = REPO / "params" / "experiment.yaml"
ARTIFACTS = REPO / "test-artifacts" / "report"
DAY = dt.date(2026, 11, 5)
EVIL = "<script>alert(1)</script>"


def tile(tile_id: str, section: str, notebook: str, timeout: float | None = None, **params) -> Tile:
    """A test tile: ``params`` become the notebook's Papermill parameters."""
    return Tile(
        id=tile_id,
        section=section,
        title=f"Tile {tile_id}",
        notebook_file=NOTEBOOKS / notebook,
        parameters={"tile_id": tile_id, "section": section, "title": f"Tile {tile_id}", **params},
        timeout=timeout,
    )


def make_tiles() -> list[Tile]:
    """Eight tiles covering every outcome: ok, warn, breach, no_data, raise, time-out,
    no sidecar, no notebook."""
    return [
        tile("latency", "health", "chart.ipynb", status="ok"),
        tile("errors", "health", "plain.ipynb", status="breach"),
        tile("volume", "health", "plain.ipynb", status="no_data"),
        tile("fallback", "health", "raises.ipynb"),
        tile("cache", "health", "sleeps.ipynb", timeout=4),
        tile("ctr", "outcomes", "chart.ipynb", status="warn"),
        tile("recall", "outcomes", "no_sidecar.ipynb"),
        tile("lift", "outcomes", "missing.ipynb"),
    ]


ALERTS = [
    {
        "rule": "latency_p95_high",
        "severity": "P2",
        "labels": {"experiment": "rec_ranker_v2", "region": EVIL},
        "state": "resolved",
        "active_at": "2026-11-05T14:00:00Z",
        "fired_at": "2026-11-05T14:10:00Z",
        "resolved_at": "2026-11-05T14:45:00Z",
        "kill_switch": None,
    },
    {
        "rule": "error_rate_high",
        "severity": "P1",
        "labels": {"experiment": "rec_ranker_v2"},
        "state": "firing",
        "active_at": "2026-11-05T20:00:00Z",
        "fired_at": "2026-11-05T20:10:00Z",
        "resolved_at": None,
        "kill_switch": "disable_experiment",
    },
]
CHECKS = [
    {
        "name": "partition_complete",
        "table": "impressions",
        "status": "pass",
        "value": 24,
        "threshold": 24,
        "detail": "24 of 24 hours",
    },
    {
        "name": "join_integrity",
        "table": "clicks",
        "status": "fail",
        "value": 0.97,
        "threshold": 0.99,
        "detail": {"orphans": [EVIL]},
    },
]


def fake_steps() -> DailySteps:
    """Steps that return fixed alerts and checks (with a hostile label in each)."""
    return DailySteps(
        rollup=lambda warehouse, day, params_file: None,
        validate=lambda warehouse, day, params_file: CHECKS,
        alerts=lambda warehouse, day, params_file: ALERTS,
    )


class Rows(HTMLParser):
    """The rows (``tr``) of an HTML page with a given class: their attributes and text."""

    def __init__(self, cls: str) -> None:
        super().__init__()
        self.cls, self.rows, self._in = cls, [], False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and self.cls in (a.get("class") or "").split():
            self.rows.append({"attrs": a, "text": "", "links": []})
            self._in = True
        elif tag == "a" and self._in:
            self.rows[-1]["links"].append(a.get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._in = False

    def handle_data(self, data: str) -> None:
        if self._in:
            self.rows[-1]["text"] += data


def rows_of(html: str, cls: str) -> list[dict[str, Any]]:
    parser = Rows(cls)
    parser.feed(html)
    for r in parser.rows:
        r["text"] = re.sub(r"\s+", " ", r["text"]).strip()
    return parser.rows
