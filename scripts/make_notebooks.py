"""Write the thin tile notebooks under notebooks/<section>/<tile>.ipynb from the tile registry.

Each notebook is the same three cells: parameters (tagged for Papermill), the call, the display.
Run after adding a tile: ``python scripts/make_notebooks.py``; a test checks they are current.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

PARAMETERS = '''# Parameters (Papermill overrides these; change them here for a deep dive)
event_date = None  # "YYYY-MM-DD"; default: the newest rolled-up date
window = "{window}"  # 1h | 24h | 7d | 30d
slice = "bucket"  # a slice column this tile supports, see the error message for the list
filters = {{}}  # e.g. {{"region": ["eu", "na"]}}
buckets = None  # e.g. ["control", "treatment"]; default: every arm
params_file = None  # default: params/experiment.yaml
warehouse = None  # default: $EXPKIT_WAREHOUSE, else warehouse/ of the project root (holding params/)
sidecar_path = None  # set by the daily report
result_path = None  # set by the daily report: this tile, already computed by the report'''

CALL = '''import expkit

result = expkit.run_tile(
    "{tile}", event_date=event_date, window=window, slice=slice, filters=filters,
    buckets=buckets, params_file=params_file, warehouse=warehouse, result_path=result_path,
)
result.save_sidecar(sidecar_path)'''

SHOW = "result.show()"


def notebook_for(tile_id: str, title: str, window: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell(PARAMETERS.format(window=window))
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {title}"),
        params,
        nbformat.v4.new_code_cell(CALL.format(tile=tile_id)),
        nbformat.v4.new_code_cell(SHOW),
    ]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{tile_id}-{i}"
    return nb


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from expkit.tiles.registry import TILES

    root = Path(__file__).resolve().parents[1] / "notebooks"
    for tile in TILES.values():
        window = "24h"
        path = root / tile.section / f"{tile.id}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook_for(tile.id, tile.title, window), path)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
