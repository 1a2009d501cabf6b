"""Write the thin tile notebooks under notebooks/<section>/<tile>.ipynb from the tile registry.

Each notebook is the same three cells: parameters (tagged for Papermill), the call, the display.
Run after adding a tile: ``python scripts/make_notebooks.py``; a test checks they are current.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from expkit.names import TILE_ARGUMENTS, TILE_NOTEBOOK_PARAMETERS  # noqa: E402


def parameters_cell() -> str:
    """The tagged parameters cell, from the one list of tile parameters."""
    lines = [f"{p.name} = {p.default}  # {p.comment}" for p in TILE_NOTEBOOK_PARAMETERS]
    return "\n".join(["# Parameters (Papermill overrides these; change them here for a deep dive)", *lines])


def call_cell(tile_id: str) -> str:
    """The call of :func:`expkit.run_tile` with every tile argument, then the sidecar."""
    args = [f'"{tile_id}"', *(f"{name}={name}" for name in TILE_ARGUMENTS), "result_path=result_path"]
    body = "\n".join(f"    {', '.join(part)}," for part in (args[:5], args[5:]))
    return f"import expkit\n\nresult = expkit.run_tile(\n{body}\n)\nresult.save_sidecar(sidecar_path)"


SHOW = "result.show()"


def notebook_for(tile_id: str, title: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell(parameters_cell())
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {title}"),
        params,
        nbformat.v4.new_code_cell(call_cell(tile_id)),
        nbformat.v4.new_code_cell(SHOW),
    ]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{tile_id}-{i}"
    return nb


def main() -> int:
    from expkit.tiles.registry import TILES

    root = Path(__file__).resolve().parents[1] / "notebooks"
    for tile in TILES.values():
        path = root / tile.section / f"{tile.id}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook_for(tile.id, tile.title), path)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
