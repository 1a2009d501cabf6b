"""Ctrl-C that stays Ctrl-C.

DuckDB turns a SIGINT that arrives during a query into ``RuntimeError('Query interrupted')``,
which code that isolates failures (the daily report's steps, a tile) would take for an
ordinary error and carry on from. While :func:`handling` is active (the ``expkit`` command),
a SIGINT is remembered, so :func:`interrupted` tells such code to stop instead, and the
command line ends with one line and exit status 130 (see docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

_interrupted = threading.Event()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _interrupted.set()
    raise KeyboardInterrupt


def interrupted() -> bool:
    """True once a SIGINT arrived while :func:`handling` was active."""
    return _interrupted.is_set()


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """Remember SIGINTs (raising KeyboardInterrupt as usual) until the block ends; the previous
    handler is restored after it. Only from the main thread."""
    _interrupted.clear()
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
