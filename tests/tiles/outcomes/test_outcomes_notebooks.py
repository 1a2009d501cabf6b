"""The outcome notebooks: current, thin, run by Papermill for every window, and bad input as the
first output; ``expkit tile`` exit codes (docs/reports.md, "Running a tile by hand")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill as pm
import pytest
from outcomes_support import END, OUTCOME_IDS, WINDOWS, Built

from expkit.charts import VEGALITE_MIME
from expkit.tiles.registry import TILES

ROOT = Path(__file__).resolve().parents[3]
EXPKIT = ROOT / ".venv" / "bin" / "expkit"


def test_notebooks_are_current_and_thin() -> None:
    """Each outcome notebook is exactly what scripts/make_notebooks.py writes: parameters, one call, display."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_notebooks import notebook_for

    for tile in OUTCOME_IDS:
        path = ROOT / "notebooks" / "outcomes" / f"{tile}.ipynb"
        assert TILES[tile].notebook == path
        nb = nbformat.read(path, as_version=4)
        expected = notebook_for(tile, TILES[tile].title)
        sources = [c.source for c in nb.cells]
        assert sources == [c.source for c in expected.cells], f"run scripts/make_notebooks.py ({tile})"
        assert sum(c.cell_type == "code" for c in nb.cells) == 3


def _execute(built: Built, tile: str, out: Path, **parameters: object) -> nbformat.NotebookNode:
    pm.execute_notebook(
        str(TILES[tile].notebook), str(out), kernel_name="python3", progress_bar=False,
        parameters={"event_date": END.isoformat(), "warehouse": str(built.path),
                    "params_file": str(built.params_file), **parameters},
    )
    return nbformat.read(out, as_version=4)


@pytest.mark.slow
@pytest.mark.parametrize("tile", OUTCOME_IDS)
def test_notebook_every_window(clean: Built, tile: str, tmp_path: Path) -> None:
    """Every window with the default slice through Papermill: a sidecar with the per-arm headline."""
    for window in WINDOWS:
        sidecar = tmp_path / f"{tile}-{window}.json"
        nb = _execute(clean, tile, tmp_path / f"{tile}-{window}.ipynb", window=window, sidecar_path=str(sidecar))
        doc = json.loads(sidecar.read_text())
        assert doc["tile"] == tile and doc["params"]["window"] == window
        assert doc["status"] in ("ok", "warn", "breach")
        for arm in doc["headline"]["arms"].values():
            assert {"estimate", "low", "high"} <= set(arm)
        outputs = [o for c in nb.cells for o in c.get("outputs", [])]
        charts = [o["data"] for o in outputs if VEGALITE_MIME in o.get("data", {})]
        assert charts and all("image/svg+xml" in c for c in charts), "run by hand: the spec and a static SVG"
        assert not any(o.get("output_type") == "error" for o in outputs)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("parameters", "message"),
    [({"slice": "genre"}, "does not support slice"), ({"window": "3w"}, "is not a window"),
     ({"filters": {"region": ["eu'"]}}, "does not occur")],
)
def test_notebook_bad_input_first_output(clean: Built, tmp_path: Path, parameters: dict, message: str) -> None:
    """Bad parameters: the notebook stops and its first output is the ExpkitError with the reason."""
    out = tmp_path / "bad.ipynb"
    with pytest.raises(pm.PapermillExecutionError):
        _execute(clean, "recall", out, **parameters)
    nb = nbformat.read(out, as_version=4)
    first = next(o for c in nb.cells for o in c.get("outputs", []))
    assert first["output_type"] == "error" and first["ename"] == "ExpkitError"
    assert message in first["evalue"]


@pytest.mark.slow
def test_expkit_tile_exit_codes(clean: Built, tmp_path: Path) -> None:
    """``expkit tile``: each bad input exits non-zero with the reason; the next tile still runs."""
    base = [str(EXPKIT), "tile", "--params", str(clean.params_file), "--warehouse", str(clean.path),
            "--date", END.isoformat(), "--out", str(tmp_path / "reports"), "--quiet"]
    bad = {
        ("recall", "slice=country"): "is not a slice column",
        ("recall", "slice=genre"): "does not support slice",
        ("ctr", "window=3w"): "is not a window",
        ("ctr", 'filters={"country": ["x"]}'): "unknown column",
        ("ctr", "filters={\"region\": [\"'; DROP TABLE x; --\"]}"): "does not occur",
    }
    for (tile, override), message in bad.items():
        run = subprocess.run([*base[:2], tile, *base[2:], "-p", override], capture_output=True, text=True)
        assert run.returncode != 0, (tile, override)
        assert message in run.stderr + run.stdout, (tile, override, run.stderr, run.stdout)
    good = subprocess.run([*base[:2], "lift", *base[2:], "-p", "window=7d"], capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout.strip().splitlines()[-1])["status"] == "ok"
