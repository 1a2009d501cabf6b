"""Nothing imports upward (docs/architecture.md, "Who may import whom"); tiles do not import each other.

Every ``import`` in src/expkit, including those inside functions, is checked against the
layer order; a tile module may import the tile infrastructure and shared helper modules,
never another tile.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("command line", ("expkit.cli", "expkit.cli_options", "expkit.__main__", "expkit.alerts.commands",
                      "expkit.validation.commands", "expkit.live", "expkit.live_cli", "expkit.selftest")),
    ("daily job and report", ("expkit.report", "expkit.daily", "expkit.history", "expkit.api", "expkit.notify",
                              "expkit.deepdive")),
    ("alerts and validation", ("expkit.alerts", "expkit.validation")),
    ("tiles", ("expkit.tiles", "expkit.charts")),
    ("readers", ("expkit.readers", "expkit.series", "expkit.series_cache", "expkit.estimates",
                 "expkit.guardrails")),
    ("rollups", ("expkit.rollup", "expkit.lineage", "expkit.incremental",
                 "expkit.compaction", "expkit.synth")),
    ("engines and config", ("expkit.engines", "expkit.templates", "expkit.metrics_sql", "expkit.warehouse",
                            "expkit.config", "expkit.catalogue")),
    ("foundations", ("expkit.stats", "expkit.decision", "expkit.trust", "expkit.schema", "expkit.rollup_schema",
                     "expkit.atomic",
                     "expkit.errors", "expkit.names", "expkit.yamlio", "expkit.project", "expkit.histogram",
                     "expkit.shares", "expkit.interrupts")),
]
"""Top to bottom; a module may import its own layer and those below."""

TILE_INFRASTRUCTURE = {"base", "common", "display", "rendered", "spec", "registry", "arms", "srm", "health_core",
                       "segments", "exposure"}
"""Modules of expkit.tiles that are not tiles: any tile may import them."""
TILE_LISTS = {"registry", "health", "outcomes"}
"""Modules that list tiles (and so import them)."""


def _layer(module: str) -> int | None:
    best: tuple[int, int] | None = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (i, len(prefix))
    return None if best is None else best[0]


def _imports() -> list[tuple[str, str]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("expkit"):
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                out.append((module, max((n for n in names if _layer(n) is not None or n == "expkit"),
                                        key=len, default=node.module)))
            elif isinstance(node, ast.Import):
                out += [(module, a.name) for a in node.names if a.name.startswith("expkit")]
    return out


def test_every_module_has_a_layer() -> None:
    modules = {m for m, _ in _imports()}
    assert not sorted(m for m in modules if m != "expkit" and _layer(m) is None)


def test_nothing_imports_upward() -> None:
    upward = []
    for module, imported in _imports():
        here, there = _layer(module), _layer(imported)
        if here is not None and there is not None and there < here:
            upward.append(f"{module} ({LAYERS[here][0]}) imports {imported} ({LAYERS[there][0]})")
    assert not upward, "\n".join(upward)


def test_tiles_do_not_import_each_other() -> None:
    crossing = []
    for module, imported in _imports():
        a, b = module.split("."), imported.split(".")
        if a[:2] == b[:2] == ["expkit", "tiles"] and len(a) > 2 and len(b) > 2:
            if a[2] != b[2] and a[2] not in TILE_LISTS and b[2] not in TILE_INFRASTRUCTURE:
                crossing.append(f"{module} imports {imported}")
    assert not crossing, "\n".join(crossing)
