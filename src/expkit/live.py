"""The live health tier: ``expkit live`` updates the health rollups, the alerts and a page every minute.

One tick (:func:`tick`):

1. the incremental health rollups (:mod:`expkit.incremental`) of the current day, and of the
   day before (the 24-hour window reaches into it), take in the event files that landed;
2. the alert rules are evaluated by the live monitor's own function
   (:func:`expkit.alerts.runner.monitor_once`: same state, cursors, notifications and kill
   switches as ``expkit monitor``, so running both is never needed); the webhooks are called
   by a delivery thread beside the ticks (:class:`expkit.alerts.runner.DeliveryWorker`), so a
   receiver that is down or slow never delays an update;
3. the eight health tiles are computed in this process for the last hour and the last 24 hours
   (their compute functions, no notebook kernel) and ``<out>/index.html`` is written atomically:
   statuses, headline numbers, the tiles' charts with their thresholds, alerts pending and
   firing with their age, kill switches, data freshness per table and the time of the update.

The page reloads itself every minute, draws its charts with an inline copy of the chart
library (it works from ``file://`` with no network) and shows a notice when its update time
is more than :data:`STALE_AFTER_MS` old. See docs/live.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import html
import http.server
import math
import signal
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from expkit import incremental, series
from expkit.alerts.rules import AlertsConfig, default_rules_file, load_alerts
from expkit.alerts.runner import DeliveryWorker, MonitorReport, monitor_once
from expkit.alerts.state import AlertStore
from expkit.api import compute_tile
from expkit.atomic import atomic_write_text
from expkit.charts import deferred
from expkit.config import ExperimentConfig, default_params_file, load_experiment
from expkit.engines import Engine
from expkit.errors import ExpkitError
from expkit.names import Status
from expkit.rollup import open_engine, rollup_lock
from expkit.series import ingest_freshness
from expkit.series_cache import SegmentCache, session
from expkit.tiles.base import TileResult
from expkit.tiles.health import HEALTH_TILES
from expkit.tiles.health_core import report_time
from expkit.warehouse import Warehouse, ms_to_iso

WINDOWS = ("1h", "24h")
"""The windows the live page shows, each ending at the update time."""
STALE_AFTER_MS = 3 * 60_000
"""The page calls itself stale when its update is older than this (checked in the browser)."""
REFRESH_S = 60


@dataclass
class TileCell:
    """One tile in one window on the live page (``error`` set when the tile failed)."""

    tile: str
    title: str
    window: str
    result: TileResult | None
    error: str | None = None

    @property
    def status(self) -> Status:
        return self.result.status if self.result is not None else "failed"


@dataclass
class LiveTick:
    """What one tick did: the rollup updates, the monitor's report, the page and timings (s)."""

    now_ms: int
    updates: list[incremental.LiveUpdate]
    monitor: MonitorReport
    page: Path
    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    """Why the health rollups were not brought up to the landed files (a file they refuse, one
    line); the alerts and tiles then show what the rollups held before."""


def _day(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).date()


def update_rollups(wh: Warehouse, eng: Engine, config: ExperimentConfig,
                   now_ms: int) -> tuple[list[incremental.LiveUpdate], list[str]]:
    """The incremental health rollups of the day of ``now_ms`` and the day before (when they have
    events), and the one-line errors of the days whose new files the rollups refused (such a day
    keeps its rollups as they were, so the monitor does not evaluate past them)."""
    today = _day(now_ms)
    updates, errors = [], []
    for d in (today - dt.timedelta(days=1), today):
        if wh.event_files("requests", d):
            try:
                updates.append(incremental.update_day(wh, eng, d, config, now_ms))
            except ExpkitError as err:
                errors.append(str(err))
    return updates, errors


def experiment_notice(wh: Warehouse, config: ExperimentConfig, params_file: Path, now_ms: int) -> str | None:
    """One line when the health rollups of the day of ``now_ms`` and the day before hold requests,
    but none of the parameters file's ``experiment_id`` (every tile would say "no requests" and no
    health alert could fire, with no hint why); ``None`` otherwise."""
    import pyarrow.parquet as pq

    today = _day(now_ms)
    days = [today - dt.timedelta(days=1), today]
    found: set[str] = set()
    for f in wh.rollup_files("health_bins", days):
        found.update(str(x) for x in pq.read_table(f, columns=["experiment_id"]).column(0).unique().to_pylist())
    if not found or config.experiment_id in found:
        return None
    return (f"experiment_id {config.experiment_id!r} of {params_file} has no requests in the health rollups of "
            f"{days[0]} and {today} (experiments found: {', '.join(sorted(found))}): the tiles show no data and "
            "the health alerts see none; fix experiment_id in the parameters file")


def compute_tiles(wh: Warehouse, params_file: Path, now_ms: int, cache: SegmentCache | None = None) -> list[TileCell]:
    """The health tiles for each of :data:`WINDOWS` ending at ``now_ms`` (a failing tile is a cell
    with its error; the others still run).

    Only the first chart of a tile is shown, so charts are built when drawn (:func:`expkit.charts.deferred`).
    With ``cache`` (kept by a long-running process from one update to the next) the per-bin
    series of rollup files that did not change are not computed again
    (:func:`expkit.series_cache.session`); the numbers are the same.
    """
    cells = []
    day = _day(now_ms)
    with contextlib.ExitStack() as stack:
        stack.enter_context(report_time(now_ms))
        stack.enter_context(series.memoized())
        stack.enter_context(deferred())
        if cache is not None:
            stack.enter_context(session(cache))
        for window in WINDOWS:
            for tile in HEALTH_TILES:
                try:
                    result = compute_tile(tile.id, event_date=day, window=window, params_file=params_file,
                                          warehouse=wh.root)  # with the alert rules' thresholds, as in the report
                    cells.append(TileCell(tile.id, tile.title, window, result))
                except Exception as err:  # one tile's failure is shown, the page still updates
                    cells.append(TileCell(tile.id, tile.title, window, None, f"{type(err).__name__}: {err}"))
    if cache is not None:
        cache.sweep()
    return cells


def tick(
    warehouse: Warehouse | str | Path,
    out: Path | str,
    params_file: Path | str | None = None,
    rules: AlertsConfig | None = None,
    now_ms: int | None = None,
    engine: Engine | None = None,
    wall_ms: int | None = None,
    page: bool = True,
    cache: SegmentCache | None = None,
) -> LiveTick:
    """One live update (see the module docstring); ``now_ms`` defaults to the clock (a replay
    passes the simulated time), ``wall_ms`` (the page's update time) too. Without ``page``,
    rollups and alerts only. ``cache`` carries the tiles' series from one update to the next
    (:func:`run` keeps one). No webhook is called here: the notifications wait in the outbox
    for the delivery worker :func:`run` keeps."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse.open(warehouse)
    params = Path(params_file) if params_file else default_params_file()
    config = load_experiment(params)
    rules = rules or load_alerts(default_rules_file(params))
    now = int(time.time() * 1000) if now_ms is None else now_ms
    eng = engine or open_engine("duckdb", wh)
    seconds: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        updates, errors = update_rollups(wh, eng, config, now)
        seconds["rollups"] = time.perf_counter() - t0
    finally:
        if engine is None:
            eng.close()
    path = Path(out) / "index.html"
    # Read under the rollup lock: a daily job rebuilding a day swaps its tables one at a time, and
    # a page must not show some of them rebuilt and others not (it waits for the rebuild instead).
    with rollup_lock(wh):
        t0 = time.perf_counter()
        report = monitor_once(wh, config, params, rules, now)
        seconds["alerts"] = time.perf_counter() - t0
        if page:
            warnings.filterwarnings("ignore", "I don't know how to infer vegalite type", UserWarning)  # empty tiles
            t0 = time.perf_counter()
            cells = compute_tiles(wh, params, now, cache)
            notice = experiment_notice(wh, config, params, now)
            seconds["tiles"] = time.perf_counter() - t0
    if page:
        t0 = time.perf_counter()
        atomic_write_text(path, render_page(wh, config, rules, cells, now,
                                            int(time.time() * 1000) if wall_ms is None else wall_ms, cache,
                                            "; ".join(errors) or None, notice))
        seconds["page"] = time.perf_counter() - t0
    return LiveTick(now, updates, report, path, seconds, "; ".join(errors) or None)


# --- the page ----------------------------------------------------------------------------------


def _age(ms: int | None, now: int) -> str:
    if ms is None:
        return ""
    minutes = max(0, (now - ms) // 60_000)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.4g}"
    return str(value)


def _headline_items(headline: dict[str, Any], limit: int = 6) -> list[tuple[str, str]]:
    """The scalar numbers of a headline (nested one level: ``all.p95_ms``), first ``limit``."""
    out: list[tuple[str, str]] = []
    for k, v in headline.items():
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, int | float):
            out.append((k, _fmt(v)))
        elif isinstance(v, dict):
            out += [(f"{k}.{k2}", _fmt(v2)) for k2, v2 in v.items()
                    if isinstance(v2, int | float) and not isinstance(v2, bool)][:2]
        if len(out) >= limit:
            break
    return out[:limit]


def _chart(result: TileResult) -> str:
    if not result.charts:
        return ""
    from expkit.charts import VEGALITE_MIME, chart_bundle
    from expkit.report.vega import spec_json

    spec = chart_bundle(result.charts[0], svg=False)[VEGALITE_MIME]
    return ('<div class="expkit-chart"><div class="expkit-chart-view">Drawing the chart… (it needs JavaScript)'
            f'</div><script type="application/json" class="expkit-chart-spec">{spec_json(spec)}</script></div>')


def _cell_html(cell: TileCell) -> str:
    e = html.escape
    if cell.result is None:
        return (f'<td class="tile failed" data-tile="{e(cell.tile)}" data-window="{cell.window}">'
                f'<span class="badge failed">failed</span><p>{e(cell.error or "")}</p></td>')
    r = cell.result
    numbers = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in _headline_items(r.headline))
    return (f'<td class="tile {e(r.status)}" data-tile="{e(cell.tile)}" data-window="{cell.window}" '
            f'data-status="{e(r.status)}"><span class="badge {e(r.status)}">{e(r.status)}</span> '
            f'<p>{e(r.summary)}</p><dl>{numbers}</dl>{_chart(r)}</td>')


_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.4em;vertical-align:top;text-align:left}
.badge{display:inline-block;padding:.1em .5em;border-radius:.3em;font-weight:600;color:#fff;background:#888}
.badge.ok{background:#2e7d32}.badge.warn{background:#ef6c00}.badge.breach,.badge.failed,.badge.firing{background:#c62828}
.badge.pending,.badge.pending_approval{background:#f9a825;color:#222}.badge.engaged{background:#c62828}.badge.no_data{background:#888}
dl{display:grid;grid-template-columns:auto auto;gap:0 1em;font-size:.85em;margin:.3em 0}dd{margin:0}
#stale,#update-error,#experiment-notice,#delivery-error{background:#c62828;color:#fff;padding:.8em;font-weight:700;font-size:1.2em}
.expkit-chart{max-width:520px;overflow-x:auto}"""

_STALE_CHECK = """(() => {
  const updated = Number(document.body.dataset.updatedMs);
  const limit = Number(document.body.dataset.staleAfterMs);
  const check = () => {
    const age = Date.now() - updated;
    const el = document.getElementById("stale");
    if (age > limit) {
      el.hidden = false;
      el.textContent = "STALE: no update for " + Math.floor(age / 60000) + " minutes (last update "
        + new Date(updated).toISOString() + "). Is 'expkit live' running?";
    } else {
      el.hidden = true;
    }
  };
  check();
  setInterval(check, 10000);
})();"""


def _freshness_row(table: str, staleness_ms: float, arrival_p95_ms: float, missing_hours: int) -> str:
    e = html.escape
    stale = _fmt(staleness_ms / 60_000) if math.isfinite(staleness_ms) else "no data"
    p95 = _fmt(arrival_p95_ms / 60_000) if math.isfinite(arrival_p95_ms) else "–"
    return f'<tr data-table="{e(table)}"><td>{e(table)}</td><td>{stale}</td><td>{p95}</td><td>{missing_hours}</td></tr>'


def render_page(wh: Warehouse, config: ExperimentConfig, rules: AlertsConfig, cells: list[TileCell],
                now_ms: int, wall_ms: int, cache: SegmentCache | None = None, error: str | None = None,
                notice: str | None = None) -> str:
    """The live page (self-contained HTML); ``cache`` as for :func:`compute_tiles` (the freshness
    rows); ``error``: why the rollups were not updated, ``notice``: :func:`experiment_notice`
    (both shown at the top, with the alert notifications a webhook has not taken yet)."""
    from expkit.report.vega import page_scripts

    e = html.escape
    store = AlertStore(wh)
    state = store.load()
    alerts = sorted(state.active.values(), key=lambda a: (a.state != "firing", a.active_at))
    alert_rows = "".join(
        f'<tr class="alert {a.state}" data-rule="{e(a.rule)}" data-state="{a.state}">'
        f'<td><span class="badge {a.state}">{a.state}</span></td><td>{e(a.rule)}</td>'
        f'<td>{e(a.labels.get("severity", ""))}</td>'
        f'<td>{e(", ".join(f"{k}={v}" for k, v in a.labels.items() if k not in ("severity", "team")))}</td>'
        f'<td>{e(_fmt(a.value))}</td><td>{e(ms_to_iso(a.active_at) or "")}</td>'
        f'<td>{_age(a.active_at, now_ms)}</td></tr>'
        for a in alerts) or '<tr><td colspan="7">No alert pending or firing.</td></tr>'
    switches = store.killswitches.status()
    switch_rows = "".join(
        f'<tr data-switch="{e(s.key)}"><td>{e(s.key)}</td><td><span class="badge {e(s.state)}">{e(s.state)}</span>'
        f'</td><td>{e(s.reason)}</td><td>{e(s.changed_at or "")}</td></tr>' for s in switches
    ) or '<tr><td colspan="4">No kill switch was ever set.</td></tr>'
    with session(cache) if cache is not None else contextlib.nullcontext():
        fresh = ingest_freshness(wh, [now_ms])
    columns = zip(fresh["table"], fresh["staleness_ms"], fresh["arrival_p95_ms"], fresh["missing_hours"], strict=True)
    fresh_rows = "".join(_freshness_row(str(table), float(stale), float(p95), int(missing))
                         for table, stale, p95, missing in columns) or '<tr><td colspan="4">no data</td></tr>'
    by_tile: dict[str, dict[str, TileCell]] = {}
    for c in cells:
        by_tile.setdefault(c.tile, {})[c.window] = c
    tile_rows = "".join(
        f"<tr><th>{e(next(iter(w.values())).title)}</th>{''.join(_cell_html(w[x]) for x in WINDOWS if x in w)}</tr>"
        for w in by_tile.values())
    updated = ms_to_iso(wall_ms) or ""
    data_time = ms_to_iso(now_ms) or ""
    firing = sum(1 for a in alerts if a.state == "firing")
    evaluated = ms_to_iso(state.cursors["5m"]) if "5m" in state.cursors else None
    error_html = (f'<div id="update-error">The health rollups were not updated: {e(error)}. Alerts and tiles '
                  f'show the data read before it.</div>' if error else "")
    if notice:
        error_html += f'<div id="experiment-notice">{e(notice)}</div>'
    failing = [o for o in state.outbox if o.last_error]
    if failing:
        error_html += (f'<div id="delivery-error">{len(failing)} alert notification(s) not delivered yet, retried '
                       f'in the background: {e(failing[-1].last_error)}</div>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{REFRESH_S}">
<title>expkit live · {e(config.experiment_id)}{f" · {firing} firing" if firing else ""}</title>
<style>{_STYLE}</style></head>
<body data-updated-ms="{wall_ms}" data-stale-after-ms="{STALE_AFTER_MS}" data-now-ms="{now_ms}">
<div id="stale" hidden>STALE: this page has not been updated for over {STALE_AFTER_MS // 60_000} minutes.</div>
{error_html}
<h1>Live health · {e(config.experiment_id)}</h1>
<p>Last update <time id="updated" datetime="{updated}">{updated}</time> · data up to {data_time} ·
alerts evaluated up to {evaluated or "nothing yet"} · reloads every minute · stale after
{STALE_AFTER_MS // 60_000} minutes without an update.</p>
<h2>Alerts pending and firing</h2>
<table id="alerts"><tr><th>state</th><th>rule</th><th>severity</th><th>labels</th><th>value</th><th>since</th>
<th>age</th></tr>{alert_rows}</table>
<h2>Kill switches</h2>
<table id="killswitches"><tr><th>switch</th><th>state</th><th>reason</th><th>changed</th></tr>{switch_rows}</table>
<h2>Data freshness</h2>
<table id="freshness"><tr><th>table</th><th>staleness (min)</th><th>arrival p95 delay (min)</th>
<th>missing hours</th></tr>{fresh_rows}</table>
<h2>Health tiles</h2>
<table id="tiles"><tr><th>tile</th>{''.join(f"<th>last {w}</th>" for w in WINDOWS)}</tr>{tile_rows}</table>
<script>{_STALE_CHECK}</script>
{page_scripts()}
</body></html>
"""


# --- running -----------------------------------------------------------------------------------


def serve(folder: Path, port: int) -> http.server.ThreadingHTTPServer:
    """Serve ``folder`` on 127.0.0.1:``port`` from a daemon thread (returns the server)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, name="expkit-live-serve", daemon=True).start()
    return server


def run(
    warehouse: Path, out: Path, params_file: Path | None, every_s: float, once: bool,
    start_ms: int | None = None, report: Callable[[LiveTick], None] | None = None,
    on_error: Callable[[Exception], None] | None = None, stop: threading.Event | None = None,
    rules_file: Path | None = None,
) -> list[LiveTick]:
    """Tick every ``every_s`` seconds until ``stop`` is set (SIGTERM sets it when called from the
    main thread); with ``start_ms`` the first update is at that time and the clock then advances
    with the wall clock. The ticks share one engine and one series cache (:class:`SegmentCache`).
    ``rules_file`` defaults to ``alerts.yaml`` beside the parameters file; it is read first, so a
    bad rule file fails before anything is done. A :class:`DeliveryWorker` thread calls the
    webhooks; with ``once`` one delivery pass follows the update, after the page is written."""
    params = params_file or default_params_file()
    rules = load_alerts(rules_file or default_rules_file(params))
    wh = Warehouse.open(warehouse)
    stop = stop or threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum: int, frame: FrameType | None) -> None:
            stop.set()
        previous = signal.signal(signal.SIGTERM, on_term)
    ticks = []
    wall0: float | None = None
    eng = open_engine("duckdb", wh)
    cache = SegmentCache()
    worker = DeliveryWorker(AlertStore(wh), rules, every_s=every_s)
    if not once:
        worker.start()
    try:
        while True:
            begun = time.monotonic()
            wall0 = time.time() if wall0 is None else wall0  # the first update is at start_ms exactly
            now = None if start_ms is None else start_ms + int((time.time() - wall0) * 1000)
            try:
                t = tick(wh, out, params, rules, now, eng, cache=cache)
            except Exception as err:
                if on_error is None:
                    raise
                on_error(err)
            else:
                t.monitor.delivery.merge(worker.after_update(last=once))
                ticks.append(t)
                if report is not None:
                    report(t)
            if once or stop.wait(max(0.0, every_s - (time.monotonic() - begun))):
                break
    finally:
        worker.close()
        eng.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return ticks
