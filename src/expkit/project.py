"""Where the project is: the folder whose defaults (``params/``, ``warehouse/``) apply.

A notebook's kernel runs in the notebook's own folder (``notebooks/outcomes/``), a shell in
the repository root or anywhere below it; relative defaults are resolved against the
project root so both find the same files (docs/reports.md, "Running a tile by hand").
"""

from __future__ import annotations

from pathlib import Path


def project_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: the working folder) that holds both
    ``params/`` and ``pyproject.toml``; None outside a project."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "params").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    return None


EXPERIMENTS_DIR = "experiments"
"""The folder of a parameters folder that holds one file per experiment (docs/reports.md, "The portfolio")."""


def shared_file(params: str | Path, name: str) -> Path:
    """A file the experiments share (``metrics.yaml``, ``alerts.yaml``, ``notify.yaml``) for the
    parameters ``params``: beside a parameters file, and for one in an ``experiments/`` folder
    also in the folder above it (``params/experiments/x.yaml`` reads ``params/alerts.yaml``); for
    a folder, in it, else beside it. The first place that has it; the first place looked when none does.

    >>> shared_file("params/experiment.yaml", "alerts.yaml").as_posix()
    'params/alerts.yaml'
    """
    path = Path(params)
    if path.is_dir():
        candidates = (path / name, path.parent / name)
    elif path.parent.name == EXPERIMENTS_DIR:
        candidates = (path.parent / name, path.parent.parent / name)
    else:
        return path.parent / name
    return next((c for c in candidates if c.is_file()), candidates[0])
