"""Executed notebook -> one self-contained HTML page per tile (nbconvert, no code shown).

The page uses nbconvert's "lab" cell markup through a small template of our own
(``templates/nbconvert/expkit_page``) that leaves out everything the stock templates
fetch from CDNs (require.js, MathJax, Mermaid, widget managers, fonts). Altair charts
arrive as Vega-Lite specs and are drawn in the browser by one inline copy of the chart
library per page (:mod:`expkit.report.vega`); a page without charts has no script at all.
Static SVG outputs (notebooks run by hand) are inlined when they cannot run script.
The header (experiment, date, window, parameters, as-of, code version, run time) is
rendered by an autoescaping Jinja2 environment, so every data value shows as text.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import nbformat
from markupsafe import Markup
from nbconvert import HTMLExporter
from nbformat.v4.nbjson import JSONReader
from traitlets.config import Config

import expkit
from expkit.atomic import atomic_write_text
from expkit.charts import VEGALITE_MIME
from expkit.report.vega import page_scripts, spec_json

TEMPLATES = Path(__file__).parent / "templates"
NBCONVERT_TEMPLATES = TEMPLATES / "nbconvert"
PAGE_TEMPLATE = "expkit_page"

STATUS_LABELS: dict[str, str] = {
    "ok": "OK",
    "warn": "Warn",
    "breach": "Breach",
    "no_data": "No data",
    "failed": "Failed",
}

# Output types in order of preference. JavaScript and widget views are left out on
# purpose: the only script on a page is expkit's own chart library.
DISPLAY_PRIORITY: list[str] = [
    VEGALITE_MIME,
    "text/html",
    "text/markdown",
    "image/svg+xml",
    "image/png",
    "image/jpeg",
    "text/latex",
    "text/plain",
]

# Cells a notebook author can hide from the report, plus Papermill's error banner
# (the page header shows the error instead).
REMOVE_CELL_TAGS = {"remove_cell", "remove-cell", "papermill-error-cell-tag"}
REMOVE_OUTPUT_TAGS = {"remove_output", "remove-output"}

# Anything that could run script or load a resource from an inline SVG. Charts from
# vl-convert never contain these; an SVG that does is shown as an <img> instead,
# where browsers neither run scripts nor fetch.
_UNSAFE_SVG = re.compile(
    r"<\s*(?:script|foreignObject|iframe|object|embed|image|use|a|style)\b"
    r"|\son[a-z]+\s*="
    r"|javascript:"
    r"|href\s*=\s*[\"'](?!#)"
    r"|url\(\s*[\"']?\s*(?!#)"
    r"|@import",
    re.IGNORECASE,
)
_XML_PROLOG = re.compile(r"^\s*(?:<\?xml[^>]*\?>\s*)?(?:<!DOCTYPE[^>]*>\s*)?", re.IGNORECASE)


@dataclass
class PageInfo:
    """Everything the header of a tile page shows (all values are escaped on output)."""

    tile_id: str
    title: str
    section: str
    status: str
    date: str
    summary: str = ""
    error: str | None = None
    experiment_id: str | None = None
    window: str | None = None
    as_of: str | None = None
    code_version: str = ""
    generated_at: str = ""
    duration_s: float = 0.0
    params: Mapping[str, Any] = field(default_factory=dict)
    index_href: str | None = "../index.html"
    notebook_href: str | None = None
    day_nav: bool = False
    """Whether the header has links to the neighbouring days (pages of a daily report;
    filled in by :func:`expkit.report.index.set_tile_nav`)."""
    badge: tuple[str, str] | None = None
    """The badge's label and colour when it is not the status's: the card's verdict or outcome
    (:func:`expkit.report.index.card_badge`)."""


@functools.lru_cache(maxsize=1)
def jinja_env() -> jinja2.Environment:
    """The autoescaping environment for expkit's own templates."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


@functools.lru_cache(maxsize=1)
def stylesheet() -> str:
    """The report stylesheet (inlined in every page)."""
    return (TEMPLATES / "style.css").read_text(encoding="utf-8")


def format_value(value: Any) -> str:
    """A parameter value as short text: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def clean_svg(svg: str | bytes) -> str:
    """Inline ``svg`` if it cannot run script or load anything, else wrap it in an ``<img>``."""
    text = svg.decode("utf-8") if isinstance(svg, bytes) else str(svg)
    text = _XML_PROLOG.sub("", text, count=1)
    if text.lstrip().lower().startswith("<svg") and not _UNSAFE_SVG.search(text):
        return text
    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return f'<img alt="chart" src="data:image/svg+xml;base64,{data}">'


def _make_exporter() -> HTMLExporter:
    c = Config()
    c.HTMLExporter.template_name = PAGE_TEMPLATE
    c.HTMLExporter.extra_template_basedirs = [str(NBCONVERT_TEMPLATES)]
    c.HTMLExporter.exclude_input = True
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    c.HTMLExporter.exclude_anchor_links = True
    c.HTMLExporter.embed_images = True
    c.NbConvertBase.display_data_priority = list(DISPLAY_PRIORITY)
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = set(REMOVE_CELL_TAGS)
    c.TagRemovePreprocessor.remove_all_outputs_tags = set(REMOVE_OUTPUT_TAGS)
    exporter = HTMLExporter(config=c)
    exporter.register_filter("expkit_svg", clean_svg)
    return exporter


_NOTEBOOK_READER = JSONReader()
_CHART_MARKUP = 'class="jp-OutputArea-output expkit-chart'
_CHART_LIBRARY_MARKER = "<!-- expkit:chart-library -->"

_local = threading.local()


def _exporter() -> HTMLExporter:
    # One exporter per thread: building one costs ~0.1 s, sharing one across the
    # worker threads is not documented as safe.
    exp = getattr(_local, "exporter", None)
    if exp is None:
        exp = _local.exporter = _make_exporter()
    return exp


def render_page_parts(page: PageInfo) -> tuple[Markup, Markup]:
    """The escaped header and footer HTML of a tile page."""
    env = jinja_env()
    page_view = _PageView(page, [(k, format_value(v)) for k, v in page.params.items()])
    header = env.get_template("page_header.html.j2").render(page=page_view, status_labels=STATUS_LABELS)
    footer = env.get_template("page_footer.html.j2").render(page=page_view, version=expkit.__version__)
    return Markup(header), Markup(footer)


class _PageView:
    """``PageInfo`` with its parameters as display pairs (what the template iterates)."""

    def __init__(self, page: PageInfo, params: list[tuple[str, str]]):
        self._page = page
        self.params = params

    def __getattr__(self, name: str) -> Any:
        return getattr(self._page, name)


def render_notebook_html(
    notebook: str | Path | nbformat.NotebookNode,
    page: PageInfo,
    source_dir: Path | None = None,
) -> str:
    """Render an executed notebook as a tile page without code cells.

    ``source_dir`` is where relative image links in markdown cells are looked up
    (they are embedded as data URIs). Raises what nbconvert raises on a broken
    notebook.
    """
    raw = json.loads(Path(notebook).read_text(encoding="utf-8")) if isinstance(notebook, (str, Path)) else notebook
    if raw.get("nbformat") != 4:
        raw = nbformat.reads(json.dumps(raw), as_version=4)  # an older format: upgrade first
    lifted, charts = _lift_chart_specs(raw)
    nb = _NOTEBOOK_READER.to_notebook(lifted)  # nbformat.read's steps after json.loads
    header, footer = render_page_parts(page)
    resources: dict[str, Any] = {
        "metadata": {"name": page.title, "path": str(source_dir or "")},
        "expkit": {
            "title": f"{page.title} · {page.date}",
            "css": stylesheet(),
            "header": header,
            "footer": footer,
            "chart_mime": VEGALITE_MIME,
        },
    }
    body, _ = _exporter().from_notebook_node(nb, resources=resources)
    # The specs and the library go in after nbconvert's own passes over the page (copies,
    # validation, BeautifulSoup), which would otherwise handle every spec several times and
    # parse the library's 0.9 MB for every page.
    for token, spec in charts.items():
        body = body.replace(token, spec, 1)
    scripts = page_scripts() if _CHART_MARKUP in body else ""
    return body.replace(_CHART_LIBRARY_MARKER, scripts, 1)


def _lift_chart_specs(nb: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A copy of notebook dict ``nb`` whose chart specs are replaced by unguessable tokens,
    and the script-safe JSON of each spec by token (``nb`` itself is not changed)."""
    nonce = secrets.token_hex(8)
    charts: dict[str, str] = {}
    cells = []
    for cell in nb.get("cells", []):
        outputs = cell.get("outputs") or []
        if any(VEGALITE_MIME in (o.get("data") or {}) for o in outputs):
            cell = dict(cell)
            cell["outputs"] = [dict(o) for o in outputs]
            for out in cell["outputs"]:
                if VEGALITE_MIME in (out.get("data") or {}):
                    token = f"expkit-chart-{nonce}-{len(charts)}"
                    charts[token] = spec_json(out["data"][VEGALITE_MIME])
                    out["data"] = {**out["data"], VEGALITE_MIME: token}
        cells.append(cell)
    return {**nb, "cells": cells}, charts


def render_failure_html(page: PageInfo) -> str:
    """A tile page for a tile whose notebook could not even be rendered."""
    header, footer = render_page_parts(page)
    return (
        jinja_env()
        .get_template("failure_page.html.j2")
        .render(
            title=f"{page.title} · {page.date}",
            css=Markup(stylesheet()),
            header=header,
            footer=footer,
        )
    )


def write_tile_page(
    notebook: str | Path | nbformat.NotebookNode | None,
    page: PageInfo,
    path: Path,
    source_dir: Path | None = None,
) -> str | None:
    """Render and atomically write a tile page; returns the render error, if any.

    With no notebook (it never got written), or when nbconvert fails on it, a page
    with just the header and the error is written instead, so every tile has a page.
    """
    error = None
    text = None
    if notebook is not None:
        try:
            text = render_notebook_html(notebook, page, source_dir=source_dir)
        except Exception as exc:  # a corrupt or partial notebook must still get a page
            error = f"{type(exc).__name__}: {exc}"
            page.error = page.error or error
    if text is None:
        text = render_failure_html(page)
    atomic_write_text(path, text)
    return error
