"""The delivery record of a day's digests: ``D/deliveries.json`` beside ``summary.json``.

One entry per (experiment, target) says whether that day's digest reached the target
(docs/reports.md, "Digests"). The record makes delivery at most once: a target marked ``sent``
(or ``sending``: a run died while sending, so the message may have arrived) is not sent to
again unless asked (``--resend``); ``failed`` and ``skipped`` ones are tried again by the next
run. It is written atomically after every change, under the day's lock, and a rerun of the
day keeps it (the report folder is rebuilt with the record copied in).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from expkit.atomic import atomic_write_json

RECORD_FILE = "deliveries.json"
DeliveryStatus = Literal["sending", "sent", "failed", "skipped"]
DONE_STATUSES: tuple[str, ...] = ("sending", "sent")
"""Statuses that mean "do not send again" (``sending``: the outcome is unknown)."""


@dataclass(frozen=True)
class DeliveryEntry:
    """The outcome of delivering one experiment's digest of the day to one target.

    Attributes:
        target: the target's name in ``notify.yaml``; ``kind`` its type (``webhook``, ``email``).
        status: ``sending`` (started, outcome unknown), ``sent``, ``failed`` or ``skipped``
            (not configured here, e.g. its environment variable is unset).
        attempts: tries made in the last run that sent to it.
        at: when the status was recorded (ISO-8601 UTC).
        error: why it failed or was skipped (empty when sent).
        digest_id: the message's id (also sent as a header or ``Message-ID``).
    """

    target: str
    kind: str
    status: DeliveryStatus
    attempts: int
    at: str
    error: str = ""
    digest_id: str = ""


def read_record(day_dir: Path) -> dict[str, dict[str, DeliveryEntry]]:
    """``{experiment_id: {target: entry}}`` from ``day_dir/deliveries.json`` (``{}`` when absent
    or unreadable)."""
    try:
        doc = json.loads((Path(day_dir) / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out: dict[str, dict[str, DeliveryEntry]] = {}
    for exp, targets in (doc.get("deliveries") or {}).items() if isinstance(doc, Mapping) else ():
        if not isinstance(targets, Mapping):
            continue
        for name, e in targets.items():
            try:
                out.setdefault(str(exp), {})[str(name)] = DeliveryEntry(
                    target=str(name), kind=str(e.get("kind", "")), status=e["status"],
                    attempts=int(e.get("attempts", 0)), at=str(e.get("at", "")), error=str(e.get("error") or ""),
                    digest_id=str(e.get("digest_id") or ""))
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
    return out


def write_record(day_dir: Path, date: str, record: Mapping[str, Mapping[str, DeliveryEntry]]) -> Path:
    """Write ``record`` as ``day_dir/deliveries.json``, atomically."""
    doc: dict[str, Any] = {
        "date": date,
        "deliveries": {exp: {name: asdict(e) for name, e in targets.items()} for exp, targets in record.items()},
    }
    return atomic_write_json(Path(day_dir) / RECORD_FILE, doc)
