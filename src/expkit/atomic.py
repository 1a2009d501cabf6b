"""Crash-safe file output: write to a temporary name, then rename.

Readers never see a half-written file or folder: a file is written beside its
final name and moved over it with :func:`os.replace` (atomic on POSIX); a folder
is built under a temporary name and swapped in. :class:`FileLock` serializes
writers that must not interleave (two daily runs of the same date, two alert
evaluations).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from expkit.errors import ExpkitError


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Text flavour of :func:`atomic_write_bytes` (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def temp_dir_beside(final: str | os.PathLike[str]) -> Path:
    """A fresh hidden folder next to ``final`` (same file system, so a rename is atomic)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def replace_dir(tmp: str | os.PathLike[str], final: str | os.PathLike[str]) -> Path:
    """Move the finished folder ``tmp`` to ``final``, replacing what was there.

    The old folder is first renamed aside and deleted only after the new one is in
    place, so at every instant ``final`` is either the complete old or the complete
    new content (it is briefly absent between the two renames).
    """
    tmp, final = Path(tmp), Path(final)
    old = None
    if final.exists():
        old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


@contextlib.contextmanager
def building_dir(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Context manager: yield a temp folder; on success swap it in as ``final``, else delete it."""
    tmp = temp_dir_beside(final)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, final)


def clean_stale_temps(folder: str | os.PathLike[str]) -> None:
    """Delete leftovers (``.tmp-*``, ``.old-*``) of runs that were killed mid-write."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        if p.name.startswith((".tmp-", ".old-")):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()


class FileLock:
    """An exclusive advisory lock on ``path`` (``fcntl.flock``; released if the process dies).

    ``timeout=None`` waits forever; ``timeout=0`` fails at once. On time-out it raises
    :class:`~expkit.errors.ExpkitError` naming the lock and what holds it. ``on_wait`` is
    called once, with the holder's process id (``None`` if unknown), when the lock is
    taken and this call is going to wait for it.
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float | None = None, what: str = "",
                 on_wait: Callable[[int | None], None] | None = None):
        self.path = Path(path)
        self.timeout = timeout
        self.what = what or str(self.path)
        self.on_wait = on_wait
        self._fh: Any = None

    def __enter__(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+")  # noqa: SIM115 - held for the lock's lifetime
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        waiting = False
        while True:
            try:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    self._fh.close()
                    self._fh = None
                    raise ExpkitError(
                        f"{self.what} is locked by another run (lock file {self.path}); "
                        "wait for it to finish or retry later"
                    ) from None
                if not waiting and self.on_wait is not None:
                    self.on_wait(self.holder())
                waiting = True
                time.sleep(0.1)
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(f"{os.getpid()}\n")
        self._fh.flush()
        return self

    def holder(self) -> int | None:
        """The process id the holder wrote into the lock file (``None`` if unreadable)."""
        try:
            return int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
