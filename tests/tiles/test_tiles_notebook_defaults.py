"""Every tile notebook runs with its default parameters, as a person opens it: from its own folder
(JupyterLab, ``jupyter nbconvert --execute``) and from the project root (docs/reports.md,
"Running a tile by hand").

The notebooks are the real generated ones, copied with ``params/`` and ``pyproject.toml`` into
a temporary project whose ``warehouse/`` is a small real synthetic warehouse, so the default
(``warehouse/`` of the project root, found by walking up from the kernel's folder) is what
is exercised; ``$EXPKIT_WAREHOUSE`` is removed from the kernels' environment. The notebooks of
one folder run one after the other in one kernel started in that folder (a kernel start
costs more than a tile), each exactly as written, followed by a probe cell that prints what
the tile used.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from expkit.charts import VEGALITE_MIME
from expkit.config import load_experiment
from expkit.rollup import build_range
from expkit.synth import generate
from expkit.tiles.registry import TILES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
END = dt.date(2026, 11, 14)
PROBE = 'import json; print("PROBE " + json.dumps({k: result.params.get(k) for k in ("warehouse", "event_date")}))'


def _copy_project(dest: Path) -> Path:
    """A project folder holding copies of the real notebooks, parameters and pyproject.toml."""
    dest.mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    shutil.copytree(ROOT / "params", dest / "params")
    shutil.copytree(ROOT / "notebooks", dest / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return dest


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose default warehouse (``<root>/warehouse``) has 2 rolled-up days of 1,500 users."""
    root = _copy_project(tmp_path_factory.mktemp("nbdefaults") / "proj")
    generate(root / "warehouse", days=2, end=END, users=1500, seed=5)
    config = load_experiment(root / "params" / "experiment.yaml")
    build_range(root / "warehouse", END - dt.timedelta(days=1), END, config)
    return root


def _kernel_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "EXPKIT_WAREHOUSE"}
    return env


@pytest.fixture
def kernel_in() -> Iterator:
    """Start kernels in given folders (the kernel's working folder is where the defaults resolve)."""
    started: list[KernelManager] = []

    def start(folder: Path) -> KernelManager:
        km = KernelManager(kernel_name="python3")
        km.start_kernel(cwd=str(folder), env=_kernel_env())
        started.append(km)
        return km

    yield start
    for km in started:
        km.shutdown_kernel(now=True)


def _run_in(km: KernelManager, path: Path) -> tuple[nbformat.NotebookNode, dict[str, object]]:
    """Run notebook ``path`` unchanged in kernel ``km``, then the probe; return it and the probe's facts."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    NotebookClient(nb, km=km, timeout=180, allow_errors=False).execute()
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
    probe = json.loads(text.split("PROBE ", 1)[1])
    return nb, probe


def _assert_shown(tile: str, nb: nbformat.NotebookNode, probe: dict[str, object], project: Path) -> None:
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not any(o.get("output_type") == "error" for o in outputs), tile
    assert any("text/html" in o.get("data", {}) for o in outputs), f"{tile}: nothing shown"
    assert Path(str(probe["warehouse"])).resolve() == (project / "warehouse").resolve(), (tile, probe)
    assert probe["event_date"] == END.isoformat(), (tile, probe)  # the newest rolled-up day


def test_every_notebook_runs_with_defaults_from_its_folder_and_the_root(project: Path, kernel_in) -> None:
    """Defaults work from ``notebooks/<section>/`` (where JupyterLab starts a kernel) and from the root."""
    folders = sorted({TILES[t].section for t in TILES})
    kernels = {section: kernel_in(project / "notebooks" / section) for section in folders}
    at_root = kernel_in(project)
    for tile in TILES.values():
        path = project / "notebooks" / tile.section / f"{tile.id}.ipynb"
        for km in (kernels[tile.section], at_root):
            nb, probe = _run_in(km, path)
            _assert_shown(tile.id, nb, probe, project)


def test_nbconvert_execute_with_defaults_from_the_notebook_folder(project: Path, tmp_path: Path) -> None:
    """``jupyter nbconvert --to notebook --execute`` (the real command) with every default."""
    jupyter = Path(sys.executable).with_name("jupyter")
    out = tmp_path / "ctr.out.ipynb"
    run = subprocess.run(
        [str(jupyter), "nbconvert", "--to", "notebook", "--execute", "ctr.ipynb", "--output", str(out)],
        cwd=project / "notebooks" / "outcomes", env=_kernel_env(), capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not any(o.get("output_type") == "error" for o in outputs)
    headline = next(o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {}))
    assert 'class="expkit-headline"' in headline
    assert 'data-status="no_data"' not in headline, "the default warehouse's newest day has clicks"
    assert any(VEGALITE_MIME in o.get("data", {}) for o in outputs), "the charts are shown"


def test_missing_default_warehouse_names_the_notebook_parameter(tmp_path: Path, kernel_in) -> None:
    """No warehouse where the default points: the error says which parameter to set, and how."""
    project = _copy_project(tmp_path / "empty")
    km = kernel_in(project / "notebooks" / "health")
    with pytest.raises(CellExecutionError) as err:
        _run_in(km, project / "notebooks" / "health" / "latency.ipynb")
    message = str(err.value)
    assert "ExpkitError" in message
    assert str((project / "warehouse").resolve()) in message  # where the default pointed
    assert 'warehouse = "/path/to/warehouse" in the parameters cell' in message
    assert "EXPKIT_WAREHOUSE" in message


def test_expkit_tile_and_daily_default_to_the_project_warehouse(tmp_path: Path) -> None:
    """Without --warehouse, ``expkit tile`` and ``expkit daily`` use the same default as the notebooks."""
    project = _copy_project(tmp_path / "empty")
    expkit = Path(sys.executable).with_name("expkit")
    for command in (["tile", "ctr"], ["daily", "--out", str(tmp_path / "reports")]):
        run = subprocess.run([str(expkit), *command, "--date", END.isoformat(), "--quiet"],
                             cwd=project / "notebooks", env=_kernel_env(), capture_output=True, text=True, timeout=120)
        assert run.returncode == 2, (command, run.stderr)
        assert "Traceback" not in run.stderr
        assert f"warehouse {(project / 'warehouse').resolve()} has no events/ folder" in run.stderr, run.stderr
