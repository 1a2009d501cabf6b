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
