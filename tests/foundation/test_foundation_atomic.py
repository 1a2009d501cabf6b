"""Crash-safe outputs: readers see the old or the new content, never a part; locks serialize."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from expkit.atomic import FileLock, atomic_write_text, building_dir, clean_stale_temps
from expkit.errors import ExpkitError


def test_failed_build_leaves_previous_folder(tmp_path: Path) -> None:
    final = tmp_path / "part"
    with building_dir(final) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), building_dir(final) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("killed")
    assert (final / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["part"]


def test_clean_stale_temps(tmp_path: Path) -> None:
    (tmp_path / ".tmp-x-1234").mkdir()
    (tmp_path / ".old-y-1234").mkdir()
    (tmp_path / "keep").mkdir()
    clean_stale_temps(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    atomic_write_text(path, "1")
    atomic_write_text(path, "2")
    assert path.read_text() == "2" and len(list(tmp_path.iterdir())) == 1


def _hold(path: str, seconds: float) -> None:
    with FileLock(path):
        time.sleep(seconds)


def test_lock_excludes_other_process(tmp_path: Path) -> None:
    lock = tmp_path / "l.lock"
    p = mp.get_context("spawn").Process(target=_hold, args=(str(lock), 2.0))
    p.start()
    try:
        deadline = time.time() + 60
        while time.time() < deadline:  # wait for the child to take the lock
            try:
                with FileLock(lock, timeout=0):
                    pass
                time.sleep(0.3)  # outside the lock, so the waiting child can take it
            except ExpkitError as err:
                assert "locked by another run" in str(err)
                break
        else:
            pytest.fail("the child never held the lock")
    finally:
        p.join()
    with FileLock(lock, timeout=0):  # released when the holder exits
        pass
