"""A worker process that computes tiles for the daily report (see :mod:`expkit.report.compute`).

Started by the report (:func:`main`); it imports the analysis stack once, then
reads jobs from stdin and answers on stdout, one length-prefixed pickle each way:

* job: ``(payload, environment, working directory, log path)``, where ``payload`` is the
  pickled ``(prerender, parameters, path)``; the process takes the report's environment and
  folder for the job, then calls ``prerender(parameters, path)`` with its output (stdout,
  stderr, warnings) appended to the log path (the tile's ``logs/<id>.log``; ``None``: stderr);
* answer: ``None`` when done, else the error as ``"Type: message"``.

``None`` as a job, or the end of stdin (the report's process is gone), stops it. Anything
the tiles print goes to the log or stderr, so it cannot corrupt the answers. The process
ignores SIGINT: on Ctrl-C the report stops it (see docs/reliability.md), so a terminal's
interrupt, which reaches the whole process group, prints nothing from here.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import sys
from collections.abc import Iterator
from typing import IO, Any

PRELOAD = ("expkit.tiles.registry", "expkit.tiles.display", "expkit.charts", "expkit.alerts.runner")
"""Imported at start, so that the first tile computes at once."""

_LENGTH = struct.Struct("<Q")


def send(stream: IO[bytes], obj: Any) -> None:
    """Write ``obj`` as one message."""
    data = pickle.dumps(obj)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """Read one message; raises EOFError at the end of the stream."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("the other side closed the pipe")
    size = _LENGTH.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the other side closed the pipe mid-message")
    return pickle.loads(data)


@contextlib.contextmanager
def output_to(log_path: str | None) -> Iterator[None]:
    """Send file descriptors 1 and 2 (so ``print``, warnings and native libraries) to the end of
    ``log_path`` until the block ends; ``None`` leaves them alone."""
    if not log_path:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    saved_out, saved_err = os.dup(1), os.dup(2)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        for f in (saved_out, saved_err, fd):
            os.close(f)


def serve(jobs: IO[bytes], answers: IO[bytes]) -> None:
    """Compute the jobs read from ``jobs`` until told to stop."""
    while True:
        try:
            msg = receive(jobs)
        except EOFError:
            return
        if msg is None:
            return
        payload, env, cwd, log_path = msg
        os.environ.clear()
        os.environ.update(env)
        try:
            os.chdir(cwd)
            with output_to(log_path):
                prerender, parameters, path = pickle.loads(payload)
                prerender(parameters, path)
            answer = None
        except Exception as exc:  # the report's notebook computes it again and shows the real error
            answer = f"{type(exc).__name__}: {exc}"
        send(answers, answer)


def main() -> None:
    """Run a worker: preload, then :func:`serve` stdin → stdout."""
    import importlib

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    for name in PRELOAD:
        importlib.import_module(name)
    # the answers get their own copy of stdout; whatever a tile or a native library prints to
    # stdout (Python or file descriptor 1) goes to stderr and cannot corrupt them
    sys.stdout.flush()
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
