"""The chart library of report pages: one inline copy of Vega, Vega-Lite and Vega-Embed per page.

Tile charts reach a page as Vega-Lite specs (``<script type="application/json">`` blocks,
see :func:`spec_json`) and are drawn in the browser as SVG by :data:`DRAW_CHARTS`, with
tooltips and an export menu, and with nothing fetched from the network. The library comes
from vl-convert (:func:`vl_convert.javascript_bundle`, the same Vega-Lite version Altair
writes); building it takes 1–2 s, so it is kept in a cache file (:func:`cache_dir`) named
after both versions and built once per machine and upgrade.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any

from expkit.atomic import atomic_write_text

DRAW_CHARTS = """(() => {
  const options = {renderer: "svg", actions: {export: true, source: false, compiled: false, editor: false}};
  const charts = Array.from(document.querySelectorAll("div.expkit-chart"));
  window.expkitChartsReady = Promise.all(charts.map((chart) => {
    const view = chart.querySelector(".expkit-chart-view");
    let spec;
    try {
      spec = JSON.parse(chart.querySelector("script.expkit-chart-spec").textContent);
    } catch (err) {
      return Promise.reject(err);
    }
    view.textContent = "";
    return vegaEmbed(view, spec, options).then(() => { chart.dataset.state = "drawn"; });
  })).catch((err) => {
    console.error("expkit: a chart could not be drawn", err);
    throw err;
  });
})();"""
"""Draws every ``div.expkit-chart`` of the page; ``window.expkitChartsReady`` settles when done."""


def cache_dir() -> Path:
    """Where the library is cached: ``$EXPKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/expkit``
    (default ``~/.cache/expkit``)."""
    if os.environ.get("EXPKIT_CACHE_DIR"):
        return Path(os.environ["EXPKIT_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "expkit"


def vegalite_version() -> str:
    """The Vega-Lite ``major.minor`` that Altair writes specs for (e.g. ``6.4``)."""
    import altair as alt

    return ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])


@functools.lru_cache(maxsize=1)
def javascript_bundle() -> str:
    """Vega, Vega-Lite and Vega-Embed as one script that sets ``window.vegaEmbed`` (~0.9 MB).

    Read from the cache file when there is one; otherwise built by vl-convert and cached (a
    cache folder that cannot be written only costs the build again next time).
    """
    import vl_convert

    vl = vegalite_version()
    vlc = vl_convert.__version__  # type: ignore[attr-defined]  # missing from vl-convert's stubs
    path = cache_dir() / f"vega-embed-vl{vl}-vlconvert{vlc}.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    supported = getattr(vl_convert, "get_vegalite_versions", lambda: [vl])()
    # The snippet argument is optional at run time; vl-convert's stubs say otherwise.
    bundle = vl_convert.javascript_bundle(vl_version=vl if vl in supported else None)  # type: ignore[call-arg]
    if "</script" in bundle.lower():  # would end the inline <script> early
        raise RuntimeError(f"the vl-convert {vlc} chart library cannot be inlined in a page")
    try:
        atomic_write_text(path, bundle)
    except OSError:
        pass
    return bundle


_UNSAFE_IN_SCRIPT = re.compile(r"[<>&\u2028\u2029]")


def spec_json(spec: Any) -> str:
    """``spec`` as JSON safe inside an inline ``<script>``: ``<``, ``>`` and ``&`` escaped as
    ``\\u003c``…, so no data value can close the element or open another one.

    >>> spec_json({"title": "</script><b>"})
    '{"title":"\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e"}'
    """
    text = json.dumps(spec, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return _UNSAFE_IN_SCRIPT.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def page_scripts() -> str:
    """The two scripts a page with charts ends with: the library, then :data:`DRAW_CHARTS`."""
    return (f'<script data-expkit="chart-library">{javascript_bundle()}</script>\n'
            f'<script data-expkit="draw-charts">{DRAW_CHARTS}</script>')
