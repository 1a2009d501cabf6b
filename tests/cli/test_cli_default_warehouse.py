"""The default warehouse: $EXPKIT_WAREHOUSE, else warehouse/ of the project root found by walking
up from the working folder, else ./warehouse (docs/reports.md, "Running a tile by hand")."""

from __future__ import annotations

from pathlib import Path

import pytest

from expkit.config import default_params_file
from expkit.project import project_root
from expkit.warehouse import default_warehouse


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "params").mkdir(parents=True)
    (root / "params" / "experiment.yaml").write_text("experiment_id: x\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (root / "notebooks" / "outcomes").mkdir(parents=True)
    return root


def test_found_from_a_notebook_folder_and_from_the_root(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXPKIT_WAREHOUSE", raising=False)
    for cwd in (project, project / "notebooks" / "outcomes"):
        monkeypatch.chdir(cwd)
        assert project_root() == project.resolve()
        assert default_warehouse() == project.resolve() / "warehouse"
        assert default_params_file() == project.resolve() / "params" / "experiment.yaml"


def test_the_environment_variable_overrides(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project / "notebooks" / "outcomes")
    monkeypatch.setenv("EXPKIT_WAREHOUSE", str(tmp_path / "elsewhere"))
    assert default_warehouse() == tmp_path / "elsewhere"


def test_outside_a_project_it_is_the_working_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXPKIT_WAREHOUSE", raising=False)
    (tmp_path / "params").mkdir()  # params/ alone does not make a project root
    monkeypatch.chdir(tmp_path)
    assert project_root() is None
    assert default_warehouse() == Path("warehouse")
