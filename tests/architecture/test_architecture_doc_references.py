"""Code cites the docs shipped in this repository (docs/*.md), never section numbers of an
outside specification: no "§" in the package, the notebooks or the scripts, and every
``docs/<name>.md`` it names exists, with the section it quotes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = (ROOT / "src" / "expkit", ROOT / "notebooks", ROOT / "scripts")
SUFFIXES = {".py", ".sql", ".ipynb", ".md", ".yaml", ".yml", ".txt", ".html", ".js"}

# Files allowed to cite section numbers: none (code cites docs/*.md).
ALLOWED_SECTION_SIGNS: frozenset[str] = frozenset()

DOC_PATH = re.compile(r"docs/([A-Za-z0-9_.-]+?\.md)\b")
DOC_SECTION = re.compile(r'docs/([A-Za-z0-9_.-]+?\.md),\s*"([^"\n]+)"')
HEADING = re.compile(r"^(?:#+\s+|\*\*)(.+?)\s*$", re.MULTILINE)


def _files() -> list[Path]:
    out = []
    for base in SCANNED:
        for p in sorted(base.rglob("*")):
            if p.is_file() and p.suffix in SUFFIXES and ".ipynb_checkpoints" not in p.parts:
                out.append(p)
    return out


def _rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


def _text(p: Path) -> str:
    # Notebooks are JSON: "§" may be stored escaped.
    return p.read_text(encoding="utf-8").replace("\\u00a7", "§")


def _section_signs(paths: list[Path]) -> dict[Path, list[int]]:
    hits: dict[Path, list[int]] = {}
    for p in paths:
        lines = [i for i, line in enumerate(_text(p).splitlines(), 1) if "§" in line]
        if lines:
            hits[p] = lines
    return hits


def test_scan_covers_package_notebooks_and_scripts() -> None:
    names = {_rel(p) for p in _files()}
    assert "src/expkit/stats/intervals.py" in names
    assert "scripts/make_notebooks.py" in names
    assert any(n.startswith("notebooks/") and n.endswith(".ipynb") for n in names)


def test_no_section_numbers_outside_the_allow_list() -> None:
    hits = {_rel(p): lines for p, lines in _section_signs(_files()).items()}
    unexpected = {f: lines for f, lines in hits.items() if f not in ALLOWED_SECTION_SIGNS}
    assert not unexpected, (
        f"'§' (a section number of a document not in the repository) at {unexpected}: "
        "cite the doc in docs/ that covers it, e.g. docs/reports.md, \"Reading `summary.json`\""
    )


def test_section_sign_scan_finds_one(tmp_path: Path) -> None:
    clean = tmp_path / "clean.py"
    clean.write_text('"""Intervals (docs/statistics.md)."""\n', encoding="utf-8")
    cited = tmp_path / "cited.py"
    cited.write_text('"""One proportion.\n\nIntervals (SPEC §4.1)."""\n', encoding="utf-8")
    nb = tmp_path / "n.ipynb"
    nb.write_text('{"cells": [{"source": ["see \\u00a76"]}]}', encoding="utf-8")
    assert _section_signs([clean, cited, nb]) == {cited: [3], nb: [1]}


def _doc_references(paths: list[Path]) -> tuple[set[tuple[str, str]], set[tuple[str, str, str]]]:
    docs, sections = set(), set()
    for p in paths:
        text = _text(p)
        docs |= {(_rel(p), m) for m in DOC_PATH.findall(text)}
        sections |= {(_rel(p), d, s) for d, s in DOC_SECTION.findall(text)}
    return docs, sections


def test_every_cited_doc_exists() -> None:
    docs, _ = _doc_references(_files())
    assert docs, "no docs/*.md reference found: the pattern is broken"
    missing = sorted((f, d) for f, d in docs if not (ROOT / "docs" / d).is_file())
    assert not missing, f"these files cite docs that do not exist: {missing}"


def test_every_quoted_section_exists() -> None:
    _, sections = _doc_references(_files())
    assert sections, "no docs/<name>.md, \"Section\" reference found: the pattern is broken"
    missing = []
    for f, d, s in sorted(sections):
        path = ROOT / "docs" / d
        titles = HEADING.findall(path.read_text(encoding="utf-8")) if path.is_file() else []
        if not any(t.startswith(s) for t in titles):
            missing.append((f, d, s))
    assert not missing, f"these files quote a section their doc does not have: {missing}"
