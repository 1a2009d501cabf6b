"""Fixtures of the hardening tests (helpers live in hardening_support.py)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hardening_support import Cli, build_warehouse

from expkit.cli import main


@pytest.fixture(scope="session")
def base_wh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared warehouse: never modify it (take :func:`wh` for a private copy)."""
    return build_warehouse(tmp_path_factory.mktemp("hardening") / "wh")


@pytest.fixture
def wh(base_wh: Path, tmp_path: Path) -> Path:
    """A private copy of the warehouse (modification times kept, so its rollups stay fresh)."""
    return Path(shutil.copytree(base_wh, tmp_path / "wh"))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``expkit ARGS...`` in-process; return (exit status, stdout, stderr)."""

    def run(*argv: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mount small tmpfs file systems (``mount(size="2m", readonly=False)``); unmounted afterwards.

    Skips the test where mounting is not allowed (needs root with CAP_SYS_ADMIN).
    """
    mounted: list[Path] = []

    def mount(size: str = "2m", readonly: bool = False) -> Path:
        point = tmp_path / f"fs-{uuid.uuid4().hex[:6]}"
        point.mkdir()
        opts = f"size={size}" + (",ro" if readonly else "")
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)], capture_output=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({res.stderr.decode().strip()})")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)

