"""``summary.json``: the machine-readable record of one day's report (docs/reports.md, "Reading `summary.json`").

Shape (keys fixed by the spec; expkit adds a few, marked *extra*)::

    {"date": "YYYY-MM-DD", "generated_at": ISO-8601 UTC, "code_version": str,
     "params": {...},
     extra: "verdict": the decision's verdict or null,
            "decision": {"verdict", "reasons", "arms": {arm: {"verdict", "reasons", "primary",
                         "guardrails"}}, "progress", "trust", "window"} or null (docs/readout.md),
     "tiles": {id: {"status", "headline", "html", "error",
                    extra: "title", "section", "summary", "as_of", "experiment_id",
                           "notebook", "duration_s"}},
     "alerts": [{"rule", "severity", "labels", "state", "active_at", "fired_at",
                 "resolved_at", "kill_switch"}],
     "checks": [{"name", "table", "status", "value", "threshold", "detail"}],
     extra: "ok", "experiment_id", "run_seconds", "step_errors", "notices",
            "history": {"missing_days", "days_without_events", "affected_tiles": [{"tile", "parts",
                        "days"}], "affected_alerts": [{"rule", "severity", "for", "days"}]} or null;
            the report adds "started_at", "steps_run"}
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import expkit
from expkit.errors import ConfigError, ExpkitError
from expkit.names import STATUSES, Status
from expkit.yamlio import StrictLoader, yaml_error_text

CHECK_STATUSES: tuple[str, ...] = ("pass", "warn", "fail")
ALERT_KEYS: tuple[str, ...] = (
    "rule",
    "severity",
    "labels",
    "state",
    "active_at",
    "fired_at",
    "resolved_at",
    "kill_switch",
)
CHECK_KEYS: tuple[str, ...] = ("name", "table", "status", "value", "threshold", "detail")
SUMMARY_KEYS: tuple[str, ...] = (
    "date",
    "generated_at",
    "code_version",
    "params",
    "tiles",
    "alerts",
    "checks",
)
TILE_KEYS: tuple[str, ...] = ("status", "headline", "html", "error")


@dataclass
class TileOutcome:
    """What happened to one tile in a run (the ``tiles[T]`` entry of ``summary.json``).

    ``html`` and ``notebook`` are paths relative to the day's folder.
    """

    id: str
    section: str
    title: str
    status: Status
    headline: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    error: str | None = None
    html: str | None = None
    notebook: str | None = None
    as_of: str | None = None
    experiment_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def failed(self) -> bool:
        """True when the tile raised, timed out or left no valid sidecar."""
        return self.status == "failed"

    def to_summary(self) -> dict[str, Any]:
        """The ``tiles[T]`` entry of ``summary.json``."""
        return {
            "status": self.status,
            "headline": jsonable(self.headline),
            "html": self.html,
            "error": self.error,
            "title": self.title,
            "section": self.section,
            "summary": self.summary,
            "as_of": self.as_of,
            "experiment_id": self.experiment_id,
            "notebook": self.notebook,
            "duration_s": round(self.duration_s, 3),
        }


def utc_now() -> str:
    """The current time as ISO-8601 UTC with a ``Z`` (second precision)."""
    return iso_utc(dt.datetime.now(dt.timezone.utc))


def iso_utc(t: dt.datetime) -> str:
    """``t`` as ``YYYY-MM-DDTHH:MM:SSZ`` (naive times are taken as UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def jsonable(obj: Any) -> Any:
    """``obj`` as strict JSON data: dates and other objects become strings, NaN and
    infinities become ``null`` (``summary.json`` must parse with any JSON reader)."""
    return _finite(json.loads(json.dumps(obj, default=str)))


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``git describe`` of the checkout expkit runs from, else the package version."""
    root = Path(expkit.__file__).resolve().parents[2]
    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "describe", "--tags", "--always", "--dirty"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
            if out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return expkit.__version__


def load_params(params_file: Path) -> dict[str, Any]:
    """The experiment definition as JSON-safe data, plus its file name and checksum.

    Only parses; checking the content is the config module's job.
    """
    try:
        raw = Path(params_file).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the parameters file {params_file}: {exc.strerror}") from exc
    try:
        data = yaml.load(raw, Loader=StrictLoader) or {}  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{params_file} is not valid YAML: {yaml_error_text(exc)}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{params_file} must hold a mapping (experiment_id: ..., buckets: ...)")
    return {
        "file": str(params_file),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "experiment_id": data.get("experiment_id"),
        "experiment": jsonable(dict(data)),
    }


def _records(items: Iterable[Any], keys: Sequence[str], what: str) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(items or []):
        if not isinstance(item, Mapping):
            raise ExpkitError(f"{what} #{i} is a {type(item).__name__}, expected a mapping")
        rec = {k: item.get(k) for k in keys}
        rec.update({k: v for k, v in item.items() if k not in rec})
        out.append(jsonable(rec))
    return out


def normalize_alerts(alerts: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Alert records with every key of the summary.json contract present (missing ones as ``null``); extras kept."""
    return _records(alerts or [], ALERT_KEYS, "alert")


def normalize_checks(checks: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Check records with every key of the summary.json contract present (missing ones as ``null``); extras kept."""
    return _records(checks or [], CHECK_KEYS, "check")


def decision_of(tiles: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The experiment's verdict with its reasons: the readout tile's headline (docs/readout.md);
    ``None`` when the readout has no result (failed, no data, not run)."""
    readout = tiles.get("readout") or {}
    head = readout.get("headline") or {}
    if readout.get("status") in ("failed", "no_data") or "verdict" not in head:
        return None
    return dict(head)


def build_summary(
    *,
    date: dt.date,
    generated_at: str,
    params: Mapping[str, Any],
    tiles: Sequence[TileOutcome],
    alerts: Sequence[Mapping[str, Any]],
    checks: Sequence[Mapping[str, Any]],
    run_seconds: float,
    step_errors: Mapping[str, str] | None = None,
    version: str | None = None,
    history: Mapping[str, Any] | None = None,
    notices: Sequence[str] = (),
) -> dict[str, Any]:
    """Assemble the ``summary.json`` document (see the module docstring).

    ``history`` is what the report lacks of the earlier days it reads
    (:meth:`expkit.history.HistoryGaps.to_json`; ``null`` when no rollup step ran).
    """
    step_errors = dict(step_errors or {})
    tiles_doc = {t.id: t.to_summary() for t in tiles}
    decision = decision_of(tiles_doc)
    return {
        "date": date.isoformat(),
        "generated_at": generated_at,
        "code_version": version or code_version(),
        "params": jsonable(dict(params)),
        "tiles": tiles_doc,
        "alerts": normalize_alerts(alerts),
        "checks": normalize_checks(checks),
        "verdict": decision["verdict"] if decision else None,
        "decision": decision,
        "ok": not step_errors and not any(t.failed for t in tiles),
        "experiment_id": params.get("experiment_id"),
        "run_seconds": round(run_seconds, 3),
        "step_errors": step_errors,
        "history": jsonable(dict(history)) if history is not None else None,
        "notices": list(notices),
    }


def summary_problems(doc: Any) -> list[str]:
    """Every way ``doc`` departs from the ``summary.json`` contract (empty if none)."""
    problems: list[str] = []
    if not isinstance(doc, Mapping):
        return ["summary is not a JSON object"]
    for key in SUMMARY_KEYS:
        if key not in doc:
            problems.append(f"missing key {key!r}")
    try:
        dt.date.fromisoformat(str(doc.get("date")))
    except ValueError:
        problems.append(f"date {doc.get('date')!r} is not YYYY-MM-DD")
    if not _is_utc_time(doc.get("generated_at")):
        problems.append(f"generated_at {doc.get('generated_at')!r} is not ISO-8601 UTC")
    if not isinstance(doc.get("code_version"), str):
        problems.append("code_version is not a string")
    if not isinstance(doc.get("params"), Mapping):
        problems.append("params is not an object")
    tiles = doc.get("tiles")
    if not isinstance(tiles, Mapping):
        problems.append("tiles is not an object")
        tiles = {}
    for tid, t in tiles.items():
        if not isinstance(t, Mapping):
            problems.append(f"tiles.{tid} is not an object")
            continue
        for key in TILE_KEYS:
            if key not in t:
                problems.append(f"tiles.{tid} lacks {key!r}")
        if t.get("status") not in STATUSES:
            problems.append(f"tiles.{tid}.status {t.get('status')!r} not in {STATUSES}")
        if not isinstance(t.get("headline"), Mapping):
            problems.append(f"tiles.{tid}.headline is not an object")
        if t.get("html") is not None and not isinstance(t.get("html"), str):
            problems.append(f"tiles.{tid}.html is not a relative path")
        elif isinstance(t.get("html"), str) and (t["html"].startswith("/") or "://" in t["html"]):
            problems.append(f"tiles.{tid}.html {t['html']!r} is not relative")
        if t.get("status") == "failed" and not t.get("error"):
            problems.append(f"tiles.{tid} failed without an error text")
        if t.get("status") != "failed" and t.get("error") is not None:
            problems.append(f"tiles.{tid} has an error but status {t.get('status')!r}")
    for name, keys in (("alerts", ALERT_KEYS), ("checks", CHECK_KEYS)):
        items = doc.get(name)
        if not isinstance(items, list):
            problems.append(f"{name} is not a list")
            continue
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                problems.append(f"{name}[{i}] is not an object")
                continue
            for key in keys:
                if key not in item:
                    problems.append(f"{name}[{i}] lacks {key!r}")
            if name == "checks" and item.get("status") not in CHECK_STATUSES:
                problems.append(f"checks[{i}].status {item.get('status')!r} not in {CHECK_STATUSES}")
            if name == "alerts":
                for key in ("active_at", "fired_at", "resolved_at"):
                    if item.get(key) is not None and not _is_utc_time(item.get(key)):
                        problems.append(f"alerts[{i}].{key} {item.get(key)!r} is not ISO-8601 UTC")
    return problems


def _is_utc_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return t.utcoffset() == dt.timedelta(0)
