"""Compute tiles in the report's own process, ahead of their notebooks.

A fresh kernel per tile keeps tiles apart, but importing the analysis stack (pandas,
DuckDB, statsmodels, Altair, vl-convert) costs every kernel 1.5-2 s, ten times what most
tiles compute. So the report's process, which has the stack imported already, computes
each tile (``tile.prerender(parameters, path)`` saves it rendered, see
:mod:`expkit.tiles.rendered`) on a few daemon threads while the notebooks run, and each
notebook, given ``result_path``, only shows what was computed. A tile without
``prerender`` (or one whose computation raised, or never got a thread in time) simply
computes in its notebook, where its error shows as it would by hand.

>>> import tempfile, pathlib
>>> def prerender(parameters, path):
...     path.write_text(parameters["window"])
>>> with tempfile.TemporaryDirectory() as tmp, TileComputer(workers=1) as computer:
...     path = pathlib.Path(tmp) / "ctr.json"
...     computer.submit("ctr", prerender, {"window": "24h"}, path)
...     error, seconds = computer.wait("ctr", timeout=10)
...     error, path.read_text()
(None, '24h')
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("expkit.report")

Prerender = Callable[[Mapping[str, Any], Path], None]
T = TypeVar("T")


def timeout_error(timeout: float) -> str:
    """The error of a tile that ran past its ``timeout`` (computing and notebook together)."""
    return f"Timeout: the tile did not finish within {timeout:g} s"


@dataclass
class _Job:
    tile_id: str
    prerender: Prerender
    parameters: Mapping[str, Any]
    path: Path
    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    start_time: float = 0.0
    end_time: float = 0.0


class TileComputer:
    """Computes submitted tiles in submission order on ``workers`` daemon threads.

    Daemon threads: a tile that hangs is abandoned at its time-out and cannot keep the
    process alive. Use as a context manager (or call :meth:`close`).
    """

    def __init__(self, workers: int = 1) -> None:
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._finished = threading.Condition()
        self._threads = [
            threading.Thread(target=self._work, name=f"expkit-tile-{i}", daemon=True) for i in range(max(1, workers))
        ]
        for t in self._threads:
            t.start()

    def submit(self, tile_id: str, prerender: Prerender, parameters: Mapping[str, Any], path: Path) -> None:
        """Queue ``prerender(parameters, path)`` for tile ``tile_id``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        job = _Job(tile_id, prerender, dict(parameters), path)
        self._jobs[tile_id] = job
        self._queue.put(job)

    def wait(self, tile_id: str, timeout: float) -> tuple[str | None, float]:
        """Wait for tile ``tile_id``; returns ``(error, seconds spent computing)``.

        ``timeout`` bounds the computation itself (not its wait in the queue); past it the
        error is a time-out and the notebook should not run. A tile that did not get a
        thread within ``timeout`` is withdrawn: ``(None, 0.0)``, and its notebook computes it.
        """
        job = self._jobs.get(tile_id)
        if job is None:
            return None, 0.0
        if not job.started.wait(timeout):
            with self._lock:
                if not job.started.is_set():
                    job.cancelled = True
                    return None, 0.0
        if not job.done.wait(max(0.0, timeout - (time.monotonic() - job.start_time))):
            return timeout_error(timeout), time.monotonic() - job.start_time
        return None, job.end_time - job.start_time

    def in_order_ready(self, tiles: Sequence[T], timeout: Callable[[T], float]) -> Iterator[T]:
        """Yield ``tiles`` (objects with ``.id``) as they become ready for their notebooks.

        Ready: computed (or failed: its notebook shows the error), past its ``timeout`` (then
        :meth:`wait` reports the time-out, or withdraws a tile that never got a thread), or
        not computed here at all (those first). Blocks between tiles, so a caller that takes
        the next tile only when it has a free worker runs notebooks in the order their tiles
        finish rather than waiting on a slow one.
        """
        remaining = list(tiles)
        since = time.monotonic()
        while remaining:
            now = time.monotonic()
            for item in remaining:
                job = self._jobs.get(item.id)
                limit = timeout(item)
                if (job is None or job.done.is_set()
                        or (job.started.is_set() and now - job.start_time > limit)
                        or (not job.started.is_set() and now - since > limit)):
                    remaining.remove(item)
                    yield item
                    break
            else:
                with self._finished:
                    self._finished.wait(0.25)

    def close(self) -> None:
        """Stop the threads once the queue is empty (running tiles are not waited for)."""
        for _ in self._threads:
            self._queue.put(None)

    def __enter__(self) -> TileComputer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            with self._lock:
                if job.cancelled:
                    continue
                job.start_time = time.monotonic()
                job.started.set()
            try:
                job.prerender(job.parameters, job.path)
            except BaseException as exc:  # the notebook computes it and shows the real error
                log.debug("tile %s: computing in the report process failed (%s); its notebook will",
                          job.tile_id, exc)
                job.path.unlink(missing_ok=True)
            finally:
                job.end_time = time.monotonic()
                job.done.set()
                with self._finished:
                    self._finished.notify_all()
