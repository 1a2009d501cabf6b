"""Compute tiles ahead of their notebooks, outside the notebook kernels.

A fresh kernel per tile keeps tiles apart, but importing the analysis stack (pandas,
DuckDB, statsmodels, Altair) costs every kernel 1.5-2 s, ten times what most tiles
compute. So the report computes each tile (``tile.prerender(parameters, path)`` saves it
rendered, see :mod:`expkit.tiles.rendered`) while the notebooks run, and each notebook,
given ``result_path``, only shows what was computed. A tile without ``prerender`` (or one
whose computation raised, or never got a worker in time) simply computes in its
notebook, where its error shows as it would by hand.

With ``processes=True`` (the daily report) thread *i* hands its tiles to worker process *i*
(:mod:`expkit.report.tile_worker`), which imported the analysis stack once and stays up for
the life of the report's process (:func:`warm_up` starts them early): the tiles' Python work
then does not compete for the report process's interpreter lock with the threads driving
the notebooks, and a tile that crashes its process (a segfault, the OOM killer) only fails
that tile. A worker whose tile runs past its time-out is killed (and started again when
next needed). Work that cannot be sent to a process (it does not pickle) runs on the thread.

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

import atexit
import contextlib
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from expkit.report import tile_worker

log = logging.getLogger("expkit.report")

Prerender = Callable[[Mapping[str, Any], Path], None]


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=_HasId)


def timeout_error(timeout: float) -> str:
    """The error of a tile that ran past its ``timeout`` (computing and notebook together)."""
    return f"Timeout: the tile did not finish within {timeout:g} s"


class _WorkerProcess:
    """One :mod:`expkit.report.tile_worker` process and the pipes to it."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # the modules we see
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from expkit.report.tile_worker import main; main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )
        self.lock = threading.Lock()  # one job at a time

    def run(self, payload: bytes, log_path: Path | None = None) -> str | None:
        """Compute one tile, its output going to ``log_path``; returns its error (``None``: done).
        Raises EOFError or OSError if the process died (killed at a time-out, or crashed)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        log = str(log_path) if log_path is not None else None
        tile_worker.send(self.process.stdin, (payload, dict(os.environ), os.getcwd(), log))
        return tile_worker.receive(self.process.stdout)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()

    def stop(self) -> None:
        """Ask the process to finish, killing it if it does not within 5 s."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                tile_worker.send(self.process.stdin, None)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


_pool: dict[int, _WorkerProcess] = {}
_pool_lock = threading.Lock()


def _worker(slot: int) -> _WorkerProcess:
    """The live worker process of ``slot``, started if there is none."""
    with _pool_lock:
        worker = _pool.get(slot)
        if worker is not None and not worker.alive():
            worker.stop()  # reaps it and closes its pipes
            worker = None
        if worker is None:
            worker = _pool[slot] = _WorkerProcess()
        return worker


def warm_up(workers: int) -> None:
    """Start the worker processes of slots ``0..workers-1`` now (each imports the analysis stack,
    2-3 s of CPU), so that the first tiles do not wait for them."""
    for slot in range(workers):
        _worker(slot)


@atexit.register
def stop_workers() -> None:
    """Stop every worker process (at exit); one still computing (e.g. after Ctrl-C) is killed."""
    with _pool_lock:
        workers = list(_pool.values())
        _pool.clear()
    for worker in workers:
        if worker.lock.acquire(blocking=False):
            worker.stop()
            worker.lock.release()
        else:
            worker.kill()


@dataclass
class _Job:
    tile_id: str
    prerender: Prerender
    parameters: Mapping[str, Any]
    path: Path
    log_path: Path | None = None
    payload: bytes | None = None
    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    start_time: float = 0.0
    end_time: float = 0.0
    worker: _WorkerProcess | None = None


class TileComputer:
    """Computes submitted tiles in submission order on ``workers`` daemon threads (each with
    a worker process of its own when ``processes``, see the module's notes).

    Daemon threads: a tile that hangs is abandoned at its time-out (its worker process is
    killed) and cannot keep the process alive. Use as a context manager (or call :meth:`close`).
    """

    def __init__(self, workers: int = 1, processes: bool = False) -> None:
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._finished = threading.Condition()
        self._processes = processes
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"expkit-tile-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        for t in self._threads:
            t.start()

    def submit(self, tile_id: str, prerender: Prerender, parameters: Mapping[str, Any], path: Path,
               log_path: Path | None = None) -> None:
        """Queue ``prerender(parameters, path)`` for tile ``tile_id``; in a worker process, what it
        prints (warnings included) is appended to ``log_path`` (``None``: the report's stderr)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        job = _Job(tile_id, prerender, dict(parameters), path, log_path)
        if self._processes:
            try:
                job.payload = pickle.dumps((prerender, job.parameters, path))
            except (pickle.PicklingError, AttributeError, TypeError):
                job.payload = None  # e.g. a local function: computed on the thread
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
            if job.worker is not None:
                job.worker.kill()
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
        """Stop the threads once the queue is empty (running tiles are not waited for; their
        worker processes are killed)."""
        for _ in self._threads:
            self._queue.put(None)
        with self._lock:
            busy = [j.worker for j in self._jobs.values() if j.worker is not None and not j.done.is_set()]
        for worker in busy:
            worker.kill()

    def __enter__(self) -> TileComputer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _compute(self, job: _Job, slot: int) -> str | None:
        """Compute ``job``; returns its error (None: done)."""
        if job.payload is None:
            job.prerender(job.parameters, job.path)
            return None
        worker = _worker(slot)
        with worker.lock:
            job.worker = worker
            try:
                return worker.run(job.payload, job.log_path)
            except (EOFError, OSError) as exc:
                worker.kill()
                code = worker.process.wait()  # reaped now, so the next tile gets a new worker
                return f"the tile's worker process ended ({type(exc).__name__}, exit code {code})"

    def _work(self, slot: int) -> None:
        while (job := self._queue.get()) is not None:
            with self._lock:
                if job.cancelled:
                    continue
                job.start_time = time.monotonic()
                job.started.set()
            try:
                error = self._compute(job, slot)
            except BaseException as exc:
                error = f"{type(exc).__name__}: {exc}"
            job.end_time = time.monotonic()
            if error is not None:  # the notebook computes it and shows the real error
                log.debug("tile %s: computing ahead of its notebook failed (%s); its notebook will", job.tile_id, error)
                job.path.unlink(missing_ok=True)
            job.done.set()
            with self._finished:
                self._finished.notify_all()
