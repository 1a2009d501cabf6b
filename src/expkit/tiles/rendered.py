"""A tile result rendered for display: the notebook outputs and the sidecar, as plain JSON.

The daily report computes every tile in its own (already warm) process and saves it
rendered with :meth:`RenderedTile.save`; the tile's notebook, run by Papermill with
``result_path`` pointing at that file, then only loads and shows it, so a kernel does
not import the analysis stack for each tile. Opened by hand (``result_path = None``) the
notebook computes the tile itself. Both paths show the same outputs: a live
:class:`~expkit.tiles.base.TileResult` is shown through :meth:`TileResult.rendered`.

This module imports nothing heavy (no pandas, DuckDB or Altair): it is what a report
kernel loads.

>>> r = RenderedTile("ctr", {"tile": "ctr", "status": "ok", "headline": {}, "summary": "fine"},
...                  ({"text/html": "<b>CTR</b>"},), {"window": "24h"})
>>> r.status, r.matches("ctr", {"window": "24h"}), r.matches("ctr", {"window": "7d"})
('ok', True, False)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expkit.atomic import atomic_write_json

FORMAT = "expkit.rendered-tile/1"



def normalized(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """``parameters`` as they read back from JSON (tuples become lists, dates strings)."""
    return json.loads(json.dumps(dict(parameters), sort_keys=True, default=str))


@dataclass(frozen=True)
class RenderedTile:
    """What a tile notebook shows and the sidecar it writes.

    Attributes:
        tile: tile id.
        sidecar_doc: the sidecar document (:meth:`TileResult.sidecar`; docs/reports.md).
        outputs: display outputs in order, each a MIME bundle such as
            ``{"text/html": ...}`` or a chart's ``{"application/vnd.vegalite.v6+json": spec, ...}``.
        parameters: the :data:`~expkit.names.TILE_ARGUMENTS` it was computed with.
    """

    tile: str
    sidecar_doc: dict[str, Any]
    outputs: tuple[dict[str, Any], ...]
    parameters: dict[str, Any]

    @property
    def status(self) -> str:
        """``ok`` | ``warn`` | ``breach`` | ``no_data``."""
        return str(self.sidecar_doc.get("status"))

    @property
    def headline(self) -> dict[str, Any]:
        """The headline numbers."""
        return dict(self.sidecar_doc.get("headline") or {})

    @property
    def summary(self) -> str:
        """The one-line summary of the index card."""
        return str(self.sidecar_doc.get("summary") or "")

    def sidecar(self) -> dict[str, Any]:
        """The sidecar document."""
        return self.sidecar_doc

    def save_sidecar(self, path: str | Path | None) -> None:
        """Write the sidecar JSON atomically (nothing when ``path`` is None)."""
        if path:
            atomic_write_json(path, self.sidecar_doc)

    def show(self) -> None:
        """Display the outputs (in a notebook)."""
        from IPython.display import display

        for bundle in self.outputs:
            display(bundle, raw=True)

    def matches(self, tile: str, parameters: Mapping[str, Any]) -> bool:
        """True when this is tile ``tile`` computed with exactly ``parameters``."""
        return self.tile == tile and normalized(self.parameters) == normalized(parameters)

    def save(self, path: str | Path) -> Path:
        """Write this rendering atomically to ``path`` (JSON)."""
        return atomic_write_json(path, {
            "format": FORMAT,
            "tile": self.tile,
            "parameters": normalized(self.parameters),
            "sidecar": self.sidecar_doc,
            "outputs": list(self.outputs),
        })

    @classmethod
    def load(cls, path: str | Path) -> RenderedTile | None:
        """Read a rendering saved by :meth:`save`; ``None`` when missing or not one."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            return None
        return cls(str(doc["tile"]), dict(doc["sidecar"]), tuple(doc["outputs"]), dict(doc["parameters"]))


def load_matching(path: str | Path, tile: str, parameters: Mapping[str, Any]) -> RenderedTile | None:
    """The rendering at ``path`` if it is tile ``tile`` with these ``parameters``, else ``None``."""
    found = RenderedTile.load(path)
    return found if found is not None and found.matches(tile, parameters) else None
