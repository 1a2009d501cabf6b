"""Stream a synthetic day: events appended minute by minute in simulated time.

``stream(out, start, ...)`` simulates the day of ``start`` with the batch generator's event
model (:func:`expkit.synth.events.build_chunk`, the same blocks, seeds and incidents as
``expkit synth``, so a streamed day holds exactly the rows the batch generator writes for it)
and writes each row when it *lands*: at its ``ingest_ms``. Every simulated minute gets one
file per table (``events/<table>/event_date=D/live-MMMM.parquet``, named after the landing
minute, see :mod:`expkit.compaction`), written under a hidden temporary name and renamed
into place. Rows that landed before ``start`` are written at once (a complete hour per file).
Rows of late-data incidents, which land hours after the day closed, are not streamed.

``speed`` is simulated minutes per wall-clock minute (60: one simulated minute per second);
the stream ends when the day's last row has landed (a few minutes after midnight), at
``until``, or on SIGTERM/SIGINT, always after a whole minute of files (docs/live.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import numpy as np
import pyarrow as pa

from expkit.atomic import atomic_write_json
from expkit.compaction import minute_file, write_events
from expkit.errors import ExpkitError
from expkit.names import MINUTE_MS
from expkit.schema import EVENT_TABLES
from expkit.synth.events import ChunkSpec, build_chunk
from expkit.synth.incidents import Incident
from expkit.synth.model import BLOCK_USERS, make_catalog
from expkit.synth.warehouse import SynthConfig, _validate, _windows, day_start_ms, generate


@dataclass(frozen=True)
class StreamResult:
    """What a stream wrote: the day, the first and last landing minute written (minutes since
    00:00 UTC of the day), files and rows written, and why it stopped (``end``, ``until``,
    ``signal``)."""

    day: dt.date
    first_minute: int
    last_minute: int
    files: int
    rows: int
    stopped: str


def parse_start(value: str) -> dt.datetime:
    """``YYYY-MM-DDTHH:MM`` (UTC; seconds and a ``Z`` allowed) → an aware datetime on a whole minute."""
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ExpkitError(f"--start {value!r} is not a time; write YYYY-MM-DDTHH:MM (UTC), "
                          "e.g. 2026-11-14T14:00") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    t = t.astimezone(dt.timezone.utc)
    return t.replace(second=0, microsecond=0)


def stream_config(out: Path, day: dt.date, users: int = 20_000, seed: int = 0,
                  incidents: Sequence[str | Incident] = (), experiment_id: str = "rec_ranker_v2",
                  buckets: dict[str, float] | None = None, control: str = "control") -> SynthConfig:
    """The batch generator's configuration of the one day ``day`` (its checks; ``out`` may hold
    earlier days)."""
    buckets = {"control": 0.5, "treatment": 0.5} if buckets is None else buckets
    cfg = _validate(out / ".stream-check", 1, day, users, seed, incidents, experiment_id, buckets, control,
                    None, 0.02)
    return dataclasses.replace(cfg, out=out)


def day_rows(cfg: SynthConfig) -> dict[str, pa.Table]:
    """Every on-time row of the generator's day ``cfg.end``, per table, sorted by ``ingest_ms``."""
    catalog = make_catalog(cfg.model, cfg.seed)
    arms = cfg.arms
    alloc_cum = tuple(np.cumsum([v for _, v in cfg.buckets]).tolist())
    mult = tuple(1.0 + dict(cfg.lift).get(a, 0.0) for a in arms)
    windows, _ = _windows(cfg)
    day = cfg.end
    parts: dict[str, list[pa.Table]] = {t: [] for t in EVENT_TABLES}
    for b in range(-(-cfg.users // BLOCK_USERS)):
        n = min(BLOCK_USERS, cfg.users - b * BLOCK_USERS)
        spec = ChunkSpec(cfg.model, catalog, cfg.seed, day.toordinal(), b, n, alloc_cum, day_start_ms(day),
                         cfg.experiment_id, arms, mult, arms.index(cfg.control), cfg.shadow_share, windows)
        for t, table in build_chunk(spec).tables.items():
            parts[t].append(table)
    out = {}
    for t, tables in parts.items():
        table = pa.concat_tables(tables) if tables else EVENT_TABLES[t].empty_table()
        out[t] = table.take(np.argsort(table["ingest_ms"].to_numpy(), kind="stable"))
    return out


def by_minute(rows: dict[str, pa.Table], day_start: int) -> Iterator[tuple[int, dict[str, pa.Table]]]:
    """Landing minutes in order with the rows of each table that landed in it (tables with
    no row that minute are left out); ``rows`` sorted by ``ingest_ms``."""
    ingest = {t: tab["ingest_ms"].to_numpy() for t, tab in rows.items()}
    last = max((int(v[-1]) for v in ingest.values() if len(v)), default=day_start)
    first = min((int(v[0]) for v in ingest.values() if len(v)), default=day_start)
    for m in range((first - day_start) // MINUTE_MS, (last - day_start) // MINUTE_MS + 1):
        lo, hi = day_start + m * MINUTE_MS, day_start + (m + 1) * MINUTE_MS
        out = {}
        for t, v in ingest.items():
            a, b = np.searchsorted(v, [lo, hi])
            if b > a:
                out[t] = rows[t].slice(int(a), int(b - a))
        yield m, out


class _Stop:
    """SIGTERM/SIGINT set a flag; the stream checks it between minutes (never inside one)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def stream(
    out: Path | str,
    start: dt.datetime | str,
    speed: float = 1.0,
    incidents: Sequence[str | Incident] = (),
    users: int = 20_000,
    seed: int = 0,
    days: int = 1,
    until: dt.datetime | str | None = None,
    progress: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    experiment_id: str = "rec_ranker_v2",
    buckets: dict[str, float] | None = None,
    control: str = "control",
) -> StreamResult:
    """Stream the day of ``start`` into the warehouse ``out`` (see the module docstring).

    With ``days`` > 1 and no events in ``out`` yet, the ``days - 1`` days before are written
    first by the batch generator (history for baselines). The day's partitions must not hold
    events yet. ``stop``: an event that ends the stream like a signal (for callers in threads).
    """
    t0 = parse_start(start) if isinstance(start, str) else start
    if not speed > 0:
        raise ExpkitError(f"--speed must be > 0 simulated minutes per minute (got {speed!r})")
    day = t0.date()
    out = Path(out)
    stop_at = None
    if until is not None:
        u = parse_start(until) if isinstance(until, str) else until
        if u <= t0:
            raise ExpkitError(f"--until {u:%Y-%m-%dT%H:%M} is not after --start {t0:%Y-%m-%dT%H:%M}; "
                              "give a later --until, or none to stream to the end of the day")
        stop_at = int(u.timestamp() * 1000)
    buckets = {"control": 0.5, "treatment": 0.5} if buckets is None else buckets
    cfg = stream_config(out, day, users, seed, incidents, experiment_id, buckets, control)
    events = out / "events"
    if any((events / t / f"event_date={day.isoformat()}").exists() for t in EVENT_TABLES):
        raise ExpkitError(f"{out} already has events of {day}; stream into another folder or day")
    if days > 1 and not (events.exists() and any(events.iterdir())):
        generate(out, days - 1, day - dt.timedelta(days=1), users=users, seed=seed, experiment_id=experiment_id,
                 buckets=buckets, control=control, progress=progress)
    say = progress or (lambda _msg: None)
    rows = day_rows(cfg)
    entries = _windows(cfg)[1]
    ds = day_start_ms(day)
    start_min = (int(t0.timestamp() * 1000) - ds) // MINUTE_MS
    files = total = 0
    first = last = start_min
    stopped = "end"

    def write(name: str, tables: dict[str, pa.Table]) -> None:
        nonlocal files, total
        for t, table in tables.items():
            folder = events / t / f"event_date={day.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            write_events(t, table, folder / name)
            files += 1
            total += table.num_rows

    def status(state: str) -> None:
        atomic_write_json(out / "stream.json", {
            "day": day.isoformat(), "start": t0.isoformat(), "speed": speed, "users": users, "seed": seed,
            "first_minute": first, "last_minute": last, "state": state, "incidents": entries})

    def flush(backlog: dict[int, dict[str, list[pa.Table]]]) -> None:
        for key, parts in sorted(backlog.items()):
            name = f"live-h{key:02d}.parquet" if key < start_min // 60 else minute_file(key)
            write(name, {t: pa.concat_tables(v) for t, v in parts.items()})
        backlog.clear()
        say(f"{day}: rows landed before {t0:%H:%M} written")

    backlog: dict[int, dict[str, list[pa.Table]]] = {}
    minutes = by_minute(rows, ds)
    flag = stop or threading.Event()
    with _Stop() as sig:
        wall0 = time.monotonic()
        for m, tables in minutes:
            if m < start_min:  # landed before the start: written at once, an hour per file
                key = m // 60 if m // 60 < start_min // 60 else m
                for t, tab in tables.items():
                    backlog.setdefault(key, {}).setdefault(t, []).append(tab)
                continue
            if backlog:
                flush(backlog)
            if stop_at is not None and ds + m * MINUTE_MS >= stop_at:
                stopped = "until"
                break
            due = wall0 + (m - start_min + 1) * 60.0 / speed
            while (wait := due - time.monotonic()) > 0:
                if sig.event.wait(min(wait, 0.5)) or flag.is_set():
                    break
            if sig.event.is_set() or flag.is_set():
                stopped = "signal"
                break
            write(minute_file(m), tables)
            last = m
            status("running")
            if m % 60 == 59:
                say(f"{day}: streamed to {(m + 1) // 60:02d}:00")
        if backlog:  # the whole day landed before the start
            flush(backlog)
    status(f"stopped ({stopped})")
    return StreamResult(day, first, last, files, total, stopped)


def stream_json(out: Path) -> dict[str, object]:
    """The stream's status document (``stream.json``), or an empty one."""
    try:
        return dict(json.loads((out / "stream.json").read_text()))
    except (OSError, ValueError):
        return {}
