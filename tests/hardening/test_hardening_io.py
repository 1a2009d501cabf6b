"""Concurrent daily runs, an unwritable output folder and a full disk.

Read-only and full file systems are small tmpfs mounts (these tests skip where mounting is
not allowed); running as root, ``chmod`` would not stop a write.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hardening_support import END, PARAMS, Cli, assert_one_line_error, snapshot

from expkit.atomic import FileLock
from expkit.daily import default_steps
from expkit.report import run_daily


def test_second_daily_run_of_the_same_date_exits_at_once(base_wh: Path, tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "r"
    with FileLock(out / f".{END}.lock"):  # a first run holds the day
        code, _, err = cli("daily", "--warehouse", base_wh, "--date", END.isoformat(), "--out", out,
                           "--lock-timeout", "0", "--quiet")
    assert_one_line_error(code, err, f"the daily report for {END} is locked by another run", "retry later")
    assert not (out / END.isoformat()).exists()


def _fill(fs: Path) -> None:
    """Write until the file system is full."""
    with open(fs / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC


def test_output_path_is_a_file(base_wh: Path, tmp_path: Path, cli: Cli) -> None:
    blocker = tmp_path / "reports"
    blocker.write_text("not a folder")
    for out in (blocker, blocker / "sub"):
        code, _, err = cli("daily", "--warehouse", base_wh, "--date", END.isoformat(), "--out", out, "--quiet")
        assert_one_line_error(code, err, out, "file system error", "choose another path")
    assert blocker.read_text() == "not a folder"


def test_read_only_output_folder(base_wh: Path, cli: Cli, tiny_fs: Callable[..., Path]) -> None:
    out = tiny_fs(readonly=True)
    code, _, err = cli("daily", "--warehouse", base_wh, "--date", END.isoformat(), "--out", out, "--quiet")
    assert_one_line_error(code, err, out, "Read-only file system")


def test_full_disk_during_rollup_keeps_the_previous_partitions(
    base_wh: Path, cli: Cli, tiny_fs: Callable[..., Path]
) -> None:
    used = sum(f.stat().st_size + 4096 for f in base_wh.rglob("*") if f.is_file()) // 1024  # tmpfs pages, rounded up
    wh = Path(shutil.copytree(base_wh, tiny_fs(size=f"{used + 2048}k") / "wh"))  # the warehouse, 2 MB to spare
    before = snapshot(wh / "rollups")
    _fill(wh.parent)
    code, _, err = cli("rollup", "--warehouse", wh, "--date", END.isoformat(), "--quiet")
    assert_one_line_error(code, err, "No space left on device")
    assert snapshot(wh / "rollups") == before and not list((wh / "rollups").rglob(".tmp-*"))
    (wh.parent / "filler").unlink()
    code, _, err = cli("rollup", "--warehouse", wh, "--date", END.isoformat(), "--quiet")
    assert code == 0, err


def test_full_disk_during_the_report_keeps_the_previous_report(wh: Path, tiny_fs: Callable[..., Path]) -> None:
    """The daily job without tile kernels (``tiles=[]``): steps, summary, index on a full disk."""
    out = tiny_fs(size="2m")
    run_daily(wh, END, out, PARAMS, tiles=[], steps=default_steps())
    before = snapshot(out / END.isoformat())
    _fill(out)
    with pytest.raises(OSError) as err:
        run_daily(wh, END, out, PARAMS, tiles=[], steps=default_steps())
    assert err.value.errno == errno.ENOSPC
    assert snapshot(out / END.isoformat()) == before
    assert not [p for p in out.iterdir() if p.name.startswith((".tmp-", ".old-"))]
