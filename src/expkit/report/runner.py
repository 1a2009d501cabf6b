"""Run notebooks through Papermill, several at a time, each in its own fresh kernel.

The pool is a thread pool in the calling process: the heavy work happens in the kernel
processes, and threads avoid paying an interpreter start and the Papermill/nbconvert
imports per notebook (they cost about as much as a kernel start). Nothing is shared
between notebooks except the already imported libraries; each gets its own kernel,
its own working directory (the notebook's folder, as in JupyterLab) and its own
deadline covering the whole notebook, not just one cell.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import papermill
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.exceptions import PapermillExecutionError
from papermill.utils import merge_kwargs, remove_args
from traitlets import default

ENGINE_NAME = "expkit"

# nbclient logs e.g. "Timeout waiting for execute reply" at ERROR; the outcome already
# carries that, so the messages only reach handlers the application configured.
_nbclient_log = logging.getLogger("expkit.report.nbclient")
_nbclient_log.addHandler(logging.NullHandler())


class _DropAbandonedPoll(logging.Filter):
    """Drop asyncio's "Task was destroyed" for nbclient's output poller.

    After a cell time-out nbclient abandons that task; the kernel is gone and the
    tile already failed with a clear error, so the message is only noise in a
    scheduler's log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        return not (msg.startswith("Task was destroyed but it is pending") and "nbclient" in msg)


logging.getLogger("asyncio").addFilter(_DropAbandonedPoll())
ERROR_LIMIT = 300

T = TypeVar("T")
R = TypeVar("R")


_socket_dir_lock = threading.Lock()
_socket_dir: str | None = None
SOCKET_DIR_PREFIX = "expkit-kernels-"
"""Kernel socket folders are ``$TMPDIR/expkit-kernels-<pid>-<random>``, one per report process."""
_SOCKET_DIR = re.compile(re.escape(SOCKET_DIR_PREFIX) + r"(\d+)-")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_orphan_socket_dirs(tmp: str | None = None) -> list[str]:
    """Remove the kernel socket folders in ``tmp`` (default: the temp folder) that are ours and
    whose process is gone (killed with SIGKILL, so its exit handler never ran); returns them."""
    tmp = tmp or tempfile.gettempdir()
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(tmp):
            m = _SOCKET_DIR.match(entry.name)
            if not m or not entry.is_dir(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_uid == os.getuid() and not _pid_alive(int(m.group(1))):
                    shutil.rmtree(entry.path)
                    removed.append(entry.path)
    return removed


def _kernel_socket_prefix() -> str:
    """A fresh path prefix for one kernel's sockets, in a private folder of this process.

    The folder is removed at exit; the first call also sweeps the folders of killed runs.
    """
    global _socket_dir
    with _socket_dir_lock:
        if _socket_dir is None or not os.path.isdir(_socket_dir):
            if _socket_dir is None:
                sweep_orphan_socket_dirs()
            _socket_dir = tempfile.mkdtemp(prefix=f"{SOCKET_DIR_PREFIX}{os.getpid()}-")
            atexit.register(shutil.rmtree, _socket_dir, True)
        return os.path.join(_socket_dir, os.urandom(6).hex())


class _IpcKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels listen on Unix sockets, not TCP ports.

    Over TCP the manager picks five free ports and the kernel binds them a moment later;
    with several kernels starting at once on a busy machine another process can take one
    in between, and the kernel dies with "Address already in use" before replying
    (jupyter_client's known race). Socket files under a per-kernel prefix cannot collide. The
    connection file goes in the same private folder.
    """

    @default("transport")
    def _transport_default(self) -> str:
        return "ipc"

    @default("ip")
    def _ip_default(self) -> str:
        return _kernel_socket_prefix()

    @default("connection_file")
    def _connection_file_default(self) -> str:
        # Beside the sockets (not a loose $TMPDIR/tmp*.json file): a killed run's are swept with them.
        return f"{self.ip}-connection.json"


class _Engine(NBClientEngine):
    """Papermill's nbclient engine, plus control over the kernel process's stdout/stderr,
    kernels on Unix sockets (:class:`_IpcKernelManager`) and one save per notebook.

    Papermill gives no way to pass arguments to the kernel launch; without this the
    kernels' own chatter (e.g. transport warnings) lands on the scheduler's stderr.
    """

    @classmethod
    def execute_managed_notebook(  # type: ignore[override]
        cls,
        nb_man: Any,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: float = 60,
        execution_timeout: float | None = None,
        launch_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(
            safe_kwargs,
            timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log=_nbclient_log,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
            kernel_manager_class=_IpcKernelManager,
        )
        client = PapermillNotebookClient(nb_man, **final_kwargs)
        with _active_lock:
            _active_clients.add(client)
        # Papermill saves the whole notebook (a deep copy and a JSON dump) as each cell starts
        # and completes; with a tile's charts that is most of the runner's work. Saving only
        # at the end (papermill writes the result, with any cell error) or, when execution
        # stops early (time-out, dead kernel), in papermill's notebook_complete keeps the
        # same files for a fraction of the cost.
        output_path, nb_man.output_path = nb_man.output_path, None
        try:
            return client.execute(**dict(launch_kwargs or {}))
        except BaseException:
            nb_man.output_path = output_path
            raise
        finally:
            with _active_lock:
                _active_clients.discard(client)


_active_lock = threading.Lock()
_active_clients: set[Any] = set()


def kill_running_kernels() -> int:
    """Kill the kernel process of every notebook this process is executing.

    Used on Ctrl-C: the worker threads then see a dead kernel and stop at once instead
    of running to their time-outs. Returns how many kernels were signalled.
    """
    with _active_lock:
        clients = list(_active_clients)
    n = 0
    for client in clients:
        km = getattr(client, "km", None)
        proc = getattr(getattr(km, "provisioner", None), "process", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
                n += 1
    return n


papermill_engines.register(ENGINE_NAME, _Engine)


@dataclass(frozen=True)
class NotebookJob:
    """One notebook to execute.

    ``timeout`` bounds the whole notebook (kernel start included); ``cwd`` defaults to
    the notebook's folder; ``log_path`` receives the kernel process's own stdout/stderr
    (``None`` discards it).
    """

    notebook: Path
    output: Path
    parameters: Mapping[str, Any] = field(default_factory=dict)
    timeout: float = 600.0
    cwd: Path | None = None
    log_path: Path | None = None
    kernel_name: str | None = None


@dataclass(frozen=True)
class NotebookRun:
    """The outcome of one :class:`NotebookJob`: ``error`` is ``None`` on success."""

    job: NotebookJob
    error: str | None
    duration_s: float

    @property
    def ok(self) -> bool:
        """True when every cell ran without an exception or time-out."""
        return self.error is None


def short_error(name: str, message: object, limit: int = ERROR_LIMIT) -> str:
    """``"Name: message"`` on one line, cut to ``limit`` characters (no traceback)."""
    text = " ".join(str(message).split())
    out = f"{name}: {text}" if text else name
    return out if len(out) <= limit else out[: limit - 1] + "\u2026"


def missing_notebook(notebook: str | Path) -> str | None:
    """The one-line error for a tile notebook that does not exist, else ``None``.

    The usual cause is a catalogue metric given a tile page (``tile: true``) whose notebook
    was never generated (docs/metrics.md, "The metric catalogue").
    """
    if Path(notebook).is_file():
        return None
    return (f"no notebook {notebook}: `make notebooks` writes the notebook of every tile, "
            "a catalogue metric's tile page included")


def execute_notebook(job: NotebookJob) -> NotebookRun:
    """Execute ``job`` with Papermill in a new kernel; never raises for notebook failures.

    A cell that raises gives ``"ExceptionName: message"``; running past the deadline
    gives ``"Timeout: ..."`` (the kernel is killed); a kernel that dies gives
    ``"DeadKernelError: ..."``. The executed notebook (complete or partial) is written
    to ``job.output`` either way.
    """
    start = time.monotonic()
    deadline = start + job.timeout
    missing = missing_notebook(job.notebook)
    if missing is not None:
        return NotebookRun(job=job, error=missing, duration_s=time.monotonic() - start)

    def remaining(_cell: Any) -> int:
        return max(1, math.ceil(deadline - time.monotonic()))

    job.output.parent.mkdir(parents=True, exist_ok=True)
    cwd = job.cwd or Path(job.notebook).resolve().parent
    log: Any = subprocess.DEVNULL
    if job.log_path is not None:
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(job.log_path, "ab")  # noqa: SIM115 - closed in finally
    error: str | None = None
    try:
        papermill.execute_notebook(
            str(job.notebook),
            str(job.output),
            parameters=dict(job.parameters),
            engine_name=ENGINE_NAME,
            kernel_name=job.kernel_name,
            progress_bar=False,
            log_output=False,
            # Papermill only saves a notebook that stopped on a time-out if it knows the
            # output path during execution (the engine still saves only once).
            request_save_on_cell_execute=True,
            start_timeout=max(1, min(60, math.ceil(job.timeout))),
            timeout_func=remaining,
            # The tile has written its sidecar atomically by the time the last cell
            # returns; a graceful kernel shutdown would only add latency.
            shutdown_kernel="immediate",
            resources={"metadata": {"path": str(cwd)}},
            launch_kwargs={"stdout": log, "stderr": log},
        )
    except PapermillExecutionError as exc:
        error = short_error(exc.ename, exc.evalue)
    except CellTimeoutError:
        error = f"Timeout: the notebook did not finish within {job.timeout:g} s"
    except (DeadKernelError, RuntimeError, TimeoutError) as exc:
        # Kernel start failures and kernel deaths surface as these.
        if time.monotonic() >= deadline:
            error = f"Timeout: the notebook did not finish within {job.timeout:g} s"
        else:
            error = short_error(type(exc).__name__, exc)
    except Exception as exc:  # a broken notebook file, a missing kernel, ...
        error = short_error(type(exc).__name__, exc)
    finally:
        if log is not subprocess.DEVNULL:
            log.close()
    return NotebookRun(job=job, error=error, duration_s=time.monotonic() - start)


def run_parallel(
    items: Iterable[T],
    fn: Callable[[T], R],
    workers: int | None = None,
    on_done: Callable[[T, R], None] | None = None,
) -> list[R]:
    """Apply ``fn`` to every item on ``workers`` threads; results in the order of ``items``.

    ``fn`` should handle its own failures (an exception from it propagates; queued
    items are cancelled). ``on_done`` is called in the calling thread as each item
    completes (for progress). ``items`` may be a lazy iterator: the next item is taken
    only when a worker is free, so an iterator that yields items as they become ready
    decides what runs next. On Ctrl-C the queued items are cancelled and
    the running notebooks' kernels killed.
    """
    source = enumerate(items)
    n = max(1, workers or 1)
    results: dict[int, Any] = {}
    pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="expkit-nb")
    try:
        pending: dict[Any, tuple[int, T]] = {}
        exhausted = False
        while True:
            while not exhausted and len(pending) < n:
                nxt = next(source, None)
                if nxt is None:
                    exhausted = True
                else:
                    pending[pool.submit(fn, nxt[1])] = nxt
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                i, item = pending.pop(fut)
                results[i] = fut.result()
                if on_done is not None:
                    on_done(item, results[i])
    except BaseException as exc:
        if isinstance(exc, Exception):
            pool.shutdown(wait=False, cancel_futures=True)
        else:
            # Ctrl-C, SystemExit: stop the running notebooks too, and let their threads
            # finish (they do within a second or two of their kernel dying) so nothing
            # writes into the report folder after the caller has cleaned it up.
            kill_running_kernels()
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [results[i] for i in sorted(results)]
