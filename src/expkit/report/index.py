"""The day's index page, rendered from its ``summary.json`` document.

The index is a pure function of the summary plus the neighbouring days, so it can be
re-rendered later (e.g. to add a "next day" link once that day's report exists)
without re-running anything.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

import expkit
from expkit.atomic import FileLock, atomic_write_text
from expkit.errors import ExpkitError
from expkit.report.brief import VERDICT_LABELS, ReportBrief, brief, decided, interval
from expkit.report.deepdive import DEEPDIVE_PAGE
from expkit.report.html import STATUS_LABELS, format_value, jinja_env, stylesheet
from expkit.report.summary import ALERT_KEYS, CHECK_KEYS
from expkit.trust import clock

_CARD_KEYS = ("title", "section", "status", "summary", "error", "html", "as_of", "duration_s")
SEVERITY_ORDER = ("P1", "P2", "P3", "P4")
TIMELINE_WIDTH = 760
TIMELINE_LABEL_W = 190
TIMELINE_ROW_H = 20


@dataclass(frozen=True)
class TimelineBar:
    """One alert on the timeline (coordinates in SVG user units)."""

    y: float
    x: float
    width: float
    fired_x: float | None
    label: str
    severity: str
    state: str
    tooltip: str


@dataclass(frozen=True)
class Timeline:
    """A static SVG timeline of the day's alerts (00:00 to 24:00 UTC)."""

    width: int
    height: int
    plot_x: int
    plot_w: int
    bars: list[TimelineBar]
    ticks: list[tuple[float, str]]


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO-8601 time as an aware UTC datetime (naive values are taken as UTC)."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        t = value
    else:
        try:
            t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(dt.timezone.utc)


def alert_timeline(alerts: Sequence[Mapping[str, Any]], day: dt.date) -> Timeline | None:
    """Lay the alerts out on the day's 24 hours; ``None`` when there are none."""
    if not alerts:
        return None
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
    end = start + dt.timedelta(days=1)
    plot_x, plot_w = TIMELINE_LABEL_W, TIMELINE_WIDTH - TIMELINE_LABEL_W - 24

    def xpos(t: dt.datetime) -> float:
        frac = (min(max(t, start), end) - start) / (end - start)
        return round(plot_x + frac * plot_w, 1)

    bars = []
    for i, a in enumerate(alerts):
        active = parse_time(a.get("active_at")) or parse_time(a.get("fired_at")) or start
        fired = parse_time(a.get("fired_at"))
        resolved = parse_time(a.get("resolved_at")) or end
        x0, x1 = xpos(active), xpos(resolved)
        labels = a.get("labels") or {}
        label_text = ",".join(f"{k}={v}" for k, v in labels.items()) if isinstance(labels, Mapping) else str(labels)
        label = f"{a.get('rule', '?')}" + (f" {{{label_text}}}" if label_text else "")
        tip = (
            f"{a.get('rule', '?')} {a.get('severity', '')} {a.get('state', '')}: "
            f"active {a.get('active_at') or '–'}, fired {a.get('fired_at') or '–'}, "
            f"resolved {a.get('resolved_at') or '–'}"
        )
        bars.append(
            TimelineBar(
                y=28 + i * TIMELINE_ROW_H,
                x=x0,
                width=max(2.0, round(x1 - x0, 1)),
                fired_x=xpos(fired) if fired else None,
                label=label if len(label) <= 28 else label[:27] + "\u2026",
                severity=str(a.get("severity", "")),
                state=str(a.get("state", "")),
                tooltip=tip,
            )
        )
    ticks = [(round(plot_x + h / 24 * plot_w, 1), f"{h:02d}:00") for h in range(0, 25, 3)]
    height = 28 + len(alerts) * TIMELINE_ROW_H + 8
    return Timeline(TIMELINE_WIDTH, height, plot_x, plot_w, bars, ticks)


@dataclass(frozen=True)
class HistoryNotice:
    """The notice at the top of the index when the report lacks earlier days (``summary.json``
    ``history``): the missing days, the affected tiles grouped by what of them is affected, and
    the alert rules whose look-back misses days."""

    missing_days: list[str]
    tile_groups: list[tuple[str, list[str]]]
    alerts: list[dict[str, Any]]


def history_notice(history: Any, all_tiles: Sequence[str]) -> HistoryNotice | None:
    """The notice for a ``summary.json`` ``history`` entry (``None`` when nothing is missing).

    Tiles affected in the same way share a line; a part affecting every tile of the report
    (a multi-day window) says "every tile" instead of listing them.
    """
    if not isinstance(history, Mapping) or not history.get("missing_days"):
        return None
    parts: dict[str, list[str]] = {}
    for t in history.get("affected_tiles") or []:
        for part in t.get("parts") or []:
            parts.setdefault(str(part), []).append(str(t.get("tile")))
    groups: dict[tuple[str, ...], list[str]] = {}
    for part, tiles in parts.items():
        groups.setdefault(tuple(tiles), []).append(part)
    every = set(all_tiles)
    tile_groups = [("; ".join(ps), list(tiles)) for tiles, ps in groups.items() if not set(tiles) >= every]
    tile_groups += [("; ".join(ps), ["every tile, when run with that window"])
                    for tiles, ps in groups.items() if every and set(tiles) >= every]
    return HistoryNotice(
        missing_days=[str(d) for d in history["missing_days"]],
        tile_groups=tile_groups,
        alerts=[dict(a) for a in history.get("affected_alerts") or [] if isinstance(a, Mapping)],
    )


def _newest(values: Sequence[Any]) -> str | None:
    times = [t for t in (parse_time(v) for v in values) if t is not None]
    return max(times).isoformat().replace("+00:00", "Z") if times else None


def render_index(
    summary: Mapping[str, Any],
    prev_day: str | None = None,
    next_day: str | None = None,
    deepdive_href: str | None = None,
    *,
    sub: str = "",
    portfolio: Sequence[ReportBrief] | None = None,
    portfolio_missing: Sequence[str] = (),
) -> str:
    """The index page HTML for one day's ``summary`` (the ``summary.json`` document); with
    ``deepdive_href``, a link to the day's deep dive (docs/deepdive.md).

    ``sub`` is the experiment folder of a day with several experiments (``D/<sub>/index.html``:
    its day links go to the same experiment's page of the neighbouring days, and it links the
    day's portfolio). ``portfolio`` makes the page the portfolio (``D/index.html`` of such a day:
    ``summary`` is its ``portfolio.json``): one row per experiment report instead of the outcome
    cards, and the per-experiment arm health of ``summary["arm_health"]``.
    """
    day = dt.date.fromisoformat(str(summary["date"]))
    tiles = summary.get("tiles", {})
    sections: dict[str, list[dict[str, Any]]] = {"health": [], "outcomes": []}
    for tile_id, t in tiles.items():
        card = {k: t.get(k) for k in _CARD_KEYS}
        card["id"] = tile_id
        card["title"] = card["title"] or tile_id
        card["status"] = card["status"] if card["status"] in STATUS_LABELS else "failed"
        card["label"], card["tone"] = card_badge(card["status"], t.get("headline"))
        section = card["section"] if card["section"] in sections else "health"
        sections[section].append(card)
    counts = {s: 0 for s in STATUS_LABELS}
    for cards in sections.values():
        for card in cards:
            counts[card["status"]] += 1
    checks = [{k: c.get(k) for k in CHECK_KEYS} for c in summary.get("checks") or []]
    alerts = [{k: a.get(k) for k in (*ALERT_KEYS, "kill_switch_mode")} for a in summary.get("alerts") or []]
    alerts_sorted = sorted(
        alerts,
        key=lambda a: (
            SEVERITY_ORDER.index(a["severity"]) if a.get("severity") in SEVERITY_ORDER else 9,
            str(a.get("active_at") or a.get("fired_at") or ""),
        ),
    )
    html = (
        jinja_env()
        .get_template("index.html.j2")
        .render(
            s=summary,
            day=day.isoformat(),
            sections=sections,
            counts=counts,
            status_labels=STATUS_LABELS,
            checks=checks,
            failed_checks=[c for c in checks if c.get("status") == "fail"],
            firing=[a for a in alerts_sorted if a.get("state") == "firing"],
            serious=serious_alerts(alerts_sorted, day.isoformat()),
            switches=kill_switches_pulled(alerts_sorted, day.isoformat()),
            alerts=alerts_sorted,
            timeline=alert_timeline(alerts_sorted, day),
            as_of=_newest([t.get("as_of") for t in tiles.values()]),
            experiment_id=summary.get("experiment_id") or (summary.get("params") or {}).get("experiment_id"),
            prev_day=prev_day,
            run_seconds=summary.get("run_seconds"),
            step_errors=dict(summary.get("step_errors") or {}),
            history=history_notice(summary.get("history"), list(tiles)),
            alerts_evaluated=alerts_evaluated(summary),
            notices=list(summary.get("notices") or []),
            next_day=next_day,
            deepdive_href=deepdive_href,
            **day_links(prev_day, next_day, sub),
            portfolio_href="../index.html" if sub else None,
            portfolio=list(portfolio) if portfolio is not None else None,
            portfolio_missing=list(portfolio_missing),
            arm_health=[dict(a) for a in summary.get("arm_health") or [] if isinstance(a, Mapping)],
            interval=interval,
            fmt=format_value,
            num=format_number,
            pct=format_percent,
            decision=summary.get("decision") if isinstance(summary.get("decision"), Mapping) else None,
            decided=decided(_arm_verdicts(summary.get("decision"))),
            badges=OUTCOME_BADGES,
            css=Markup(stylesheet()),
            version=expkit.__version__,
        )
    )
    return html


def day_links(prev_day: str | None, next_day: str | None, sub: str = "") -> dict[str, str | None]:
    """The hrefs of an index page's day links (``prev_href``, ``next_href``) and of the history page
    (``home_href``), relative to ``D/index.html``, or to ``D/<sub>/index.html`` for an experiment's
    page of a day with several experiments.

    >>> day_links("2026-11-13", None, "rec_ranker_v2")["prev_href"]
    '../../2026-11-13/rec_ranker_v2/index.html'
    """
    up = "../../" if sub else "../"
    page = f"{sub}/index.html" if sub else "index.html"
    return {
        "prev_href": f"{up}{prev_day}/{page}" if prev_day else None,
        "next_href": f"{up}{next_day}/{page}" if next_day else None,
        "home_href": f"{up}index.html",
    }


VERDICT_TONES = {"ship": "ok", "roll_back": "breach", "keep_running": "warn", "no_effect": "no_data",
                 "untrustworthy": "breach"}
OUTCOME_BADGES: dict[str, tuple[str, str]] = {
    "win": ("Win", "ok"), "loss": ("Loss", "breach"), "inconclusive": ("Inconclusive", "no_data"),
    **{v: (VERDICT_LABELS[v], tone) for v, tone in VERDICT_TONES.items()},
}
"""A card's badge (label, colour) for a lift outcome or a readout verdict."""


def card_badge(status: str, headline: Any) -> tuple[str, str]:
    """The badge of a tile card: its verdict or outcome where it has one (a lift card says win,
    loss or inconclusive, never a bare "OK"), "Untrustworthy" in red for any card whose numbers
    rest on a sample ratio mismatch (never green), else its status.

    >>> card_badge("ok", {"outcome": "inconclusive"}), card_badge("ok", {"srm": True})
    (('Inconclusive', 'no_data'), ('Untrustworthy', 'breach'))
    >>> card_badge("breach", {"verdict": "roll_back"}), card_badge("warn", {"srm": False})
    (('Roll back', 'breach'), ('Warn', 'warn'))
    """
    head = headline if isinstance(headline, Mapping) else {}
    if status in ("failed", "no_data"):
        return STATUS_LABELS[status], status
    for key in ("verdict", "outcome"):
        if head.get(key) in OUTCOME_BADGES:
            return OUTCOME_BADGES[head[key]]
    if head.get("srm") is True:
        return OUTCOME_BADGES["untrustworthy"]
    return STATUS_LABELS[status], status


SERIOUS_SEVERITIES = ("P1", "P2")
"""Severities the top banner lists whenever they fired that day, resolved or not."""


def _clock(iso: Any, day: str | None = None) -> str:
    """``HH:MM`` of an ISO-8601 UTC time (``?`` when absent; dated when not on ``day``)."""
    return clock(iso, day)


def serious_alerts(alerts: Sequence[Mapping[str, Any]], day: str | None = None) -> list[str]:
    """One line per P1/P2 alert that fired that day, resolved or not (the banner must not hide
    an incident because it ended before midnight); a time not on ``day`` carries its date.

    >>> serious_alerts([{"rule": "error_rate_high", "severity": "P1", "state": "resolved",
    ...                  "fired_at": "2026-11-05T08:10:00Z", "resolved_at": "2026-11-05T08:40:00Z"},
    ...                 {"rule": "cache_hit_low", "severity": "P3", "state": "firing",
    ...                  "fired_at": "2026-11-05T09:00:00Z", "resolved_at": None},
    ...                 {"rule": "latency_p95_high", "severity": "P2", "state": "pending",
    ...                  "fired_at": None, "resolved_at": None}])
    ['error_rate_high (P1) fired 08:10, resolved 08:40 UTC']
    """
    out = []
    for a in alerts:
        if a.get("severity") not in SERIOUS_SEVERITIES or not a.get("fired_at"):
            continue
        end = "still firing" if a.get("state") == "firing" else f"resolved {_clock(a.get('resolved_at'), day)} UTC"
        out.append(f"{a.get('rule')} ({a.get('severity')}) fired {_clock(a.get('fired_at'), day)}, {end}")
    return out


def kill_switches_pulled(alerts: Sequence[Mapping[str, Any]], day: str | None = None) -> list[str]:
    """One line per kill switch an alert pulled (or asked for, in approval mode) that day (a time
    not on ``day`` carries its date). A request whose alert resolved is withdrawn (docs/alerts.md,
    "Kill switches").

    >>> kill_switches_pulled([{"rule": "error_rate_high", "state": "resolved", "kill_switch": "disable_experiment",
    ...                        "kill_switch_mode": "automatic", "fired_at": "2026-11-05T08:10:00Z"},
    ...                       {"rule": "cache_hit_low", "state": "firing", "kill_switch": "bypass_cache",
    ...                        "kill_switch_mode": "approval", "fired_at": "2026-11-05T09:00:00Z"},
    ...                       {"rule": "cache_hit_low", "state": "resolved", "kill_switch": "bypass_cache",
    ...                        "kill_switch_mode": "approval", "fired_at": "2026-11-05T10:00:00Z",
    ...                        "resolved_at": "2026-11-05T10:30:00Z"},
    ...                       {"rule": "coverage_low", "state": "pending", "kill_switch": "serve_cached",
    ...                        "fired_at": None}])  # doctest: +NORMALIZE_WHITESPACE
    ['disable_experiment pulled by error_rate_high at 08:10 UTC',
     'bypass_cache requested by cache_hit_low at 09:00 UTC (needs approval)',
     'bypass_cache requested by cache_hit_low at 10:00 UTC (withdrawn: the alert resolved at 10:30 UTC)']
    """
    out = []
    for a in alerts:
        if not a.get("kill_switch") or not a.get("fired_at"):
            continue
        at = _clock(a.get("fired_at"), day)
        if a.get("kill_switch_mode") == "approval" and a.get("state") == "resolved" and a.get("resolved_at"):
            out.append(f"{a['kill_switch']} requested by {a.get('rule')} at {at} UTC "
                       f"(withdrawn: the alert resolved at {_clock(a.get('resolved_at'), day)} UTC)")
        elif a.get("kill_switch_mode") == "approval":
            out.append(f"{a['kill_switch']} requested by {a.get('rule')} at {at} UTC (needs approval)")
        else:
            out.append(f"{a['kill_switch']} pulled by {a.get('rule')} at {at} UTC")
    return out


def format_percent(value: Any) -> str:
    """A signed percentage for a lift (``n/a`` when absent).

    >>> format_percent(0.0696), format_percent(-0.048), format_percent(None)
    ('+7.0%', '-4.8%', 'n/a')
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "n/a"
    return f"{value:+.1%}"


def _arm_verdicts(decision: Any) -> list[object]:
    """The verdict of each treatment arm of a ``decision`` block (none when it has no arms)."""
    arms = decision.get("arms") if isinstance(decision, Mapping) else None
    return [a.get("verdict") if isinstance(a, Mapping) else None for a in arms.values()] \
        if isinstance(arms, Mapping) else []


def format_number(value: Any) -> str:
    """A check's value or threshold for people: whole numbers with thousands separators, other
    numbers (rates, minutes) to 3 significant digits; anything else as :func:`format_value`.

    >>> [format_number(v) for v in (69597, 0.028982630272952854, 1.386, 0.001, 24.0, 12345.6, None)]
    ['69,597', '0.029', '1.39', '0.001', '24', '12,346', 'null']
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return format_value(value)
    if isinstance(value, int) or (math.isfinite(value) and value == int(value)):
        return f"{int(value):,}"
    if not math.isfinite(value) or abs(value) < 1000:
        return f"{value:.3g}"
    return f"{value:,.0f}"


def alerts_evaluated(summary: Mapping[str, Any]) -> bool:
    """Whether the run evaluated the alert rules to the end (only then is "no alerts" true).

    Summaries written before ``steps_run`` existed count as evaluated unless the step failed.
    """
    if "alerts" in (summary.get("step_errors") or {}):
        return False
    ran = summary.get("steps_run")
    return True if ran is None else "alerts" in ran


def report_days(out: Path, sub: str = "") -> list[str]:
    """The dates (``YYYY-MM-DD``) under ``out`` that hold a finished report, sorted; with ``sub``,
    those whose folder holds experiment ``sub``'s report (``D/<sub>/index.html``)."""
    days = []
    if out.is_dir():
        for p in out.iterdir():
            with contextlib.suppress(ValueError):
                dt.date.fromisoformat(p.name)
                if len(p.name) == 10 and (p / sub / "index.html").is_file():
                    days.append(p.name)
    return sorted(days)


def neighbours(out: Path, day: str, sub: str = "") -> tuple[str | None, str | None]:
    """The nearest earlier and later report dates under ``out`` (``None`` if absent); with ``sub``,
    of experiment ``sub``'s reports (:func:`report_days`)."""
    days = report_days(out, sub)
    earlier = [d for d in days if d < day]
    later = [d for d in days if d > day]
    return (earlier[-1] if earlier else None, later[0] if later else None)


def write_index(day_dir: Path, summary: Mapping[str, Any], out: Path, sub: str = "") -> Path:
    """Render ``summary`` as ``day_dir/index.html`` with links to the neighbouring days, and to
    the day's deep dive when ``day_dir`` has one; ``sub``: ``day_dir`` is experiment ``sub``'s
    folder of a day with several experiments (:func:`render_index`)."""
    prev_day, next_day = neighbours(out, str(summary["date"]), sub)
    deepdive = DEEPDIVE_PAGE if (day_dir / DEEPDIVE_PAGE).is_file() else None
    return atomic_write_text(day_dir / "index.html", render_index(summary, prev_day, next_day, deepdive, sub=sub))


PORTFOLIO_FILE = "portfolio.json"
"""The document of a day with several experiments (``D/portfolio.json``; docs/reports.md, "The
portfolio"): the platform's health tiles, the day's alerts and checks and the arm health, in the
``summary.json`` shapes. Each experiment's own report is ``D/<experiment_id>/summary.json``."""


def experiment_dirs(day_dir: Path) -> list[Path]:
    """The experiment folders of a day with several experiments (those holding a ``summary.json``
    and an ``index.html``), sorted by name."""
    if not day_dir.is_dir():
        return []
    return sorted(p for p in day_dir.iterdir()
                  if p.is_dir() and (p / "summary.json").is_file() and (p / "index.html").is_file())


def portfolio_rows(day_dir: Path) -> list[ReportBrief]:
    """One brief per experiment report of the day (:func:`experiment_dirs`; unreadable ones are
    left out), each linking its page relative to ``day_dir``."""
    rows = []
    for sub in experiment_dirs(day_dir):
        with contextlib.suppress(OSError, ValueError):
            summary = json.loads((sub / "summary.json").read_text(encoding="utf-8"))
            if isinstance(summary, Mapping):
                # quoted: an id such as "search:v3" would otherwise read as a URL scheme
                rows.append(brief(summary, f"{quote(sub.name)}/index.html"))
    return rows


def write_portfolio_index(day_dir: Path, doc: Mapping[str, Any], out: Path) -> Path:
    """Render ``day_dir/index.html`` of a day with several experiments: the portfolio (one row per
    experiment report found in ``day_dir``), then the platform's health, alerts and validation of
    ``doc`` (its ``portfolio.json``)."""
    prev_day, next_day = neighbours(out, str(doc["date"]))
    rows = portfolio_rows(day_dir)
    reported = {d.name for d in experiment_dirs(day_dir)}
    # experiments active on the day (portfolio.json "active") whose report a run of another one left out
    missing = [str(e) for e in doc.get("active") or [] if str(e) not in reported]
    html = render_index(doc, prev_day, next_day, portfolio=rows, portfolio_missing=missing)
    return atomic_write_text(day_dir / "index.html", html)


def rewrite_day_index(day_dir: Path, out: Path) -> bool:
    """Re-render ``day_dir/index.html`` from its ``summary.json`` or ``portfolio.json`` (and each
    experiment's page below it); ``False`` when it has neither."""
    if (day_dir / "summary.json").is_file():
        write_index(day_dir, json.loads((day_dir / "summary.json").read_text(encoding="utf-8")), out)
        return True
    if (day_dir / PORTFOLIO_FILE).is_file():
        write_portfolio_index(day_dir, json.loads((day_dir / PORTFOLIO_FILE).read_text(encoding="utf-8")), out)
        return True
    return False


NAV_START, NAV_END = "<!-- expkit:day-nav -->", "<!-- /expkit:day-nav -->"
"""The markers around a tile page's links to the neighbouring days (rewritten in place)."""
_NAV = re.compile(re.escape(NAV_START) + ".*?" + re.escape(NAV_END), re.DOTALL)


def tile_nav_html(out: Path, tile_id: str, prev_day: str | None, next_day: str | None, sub: str = "") -> str:
    """The day links of tile ``tile_id``'s page: the same tile's page on the previous and next
    report days (that day's index when it has no such page) and the history page; ``sub``: the
    page is in experiment ``sub``'s folder (``D/<sub>/tiles/``) and links that experiment's pages."""
    up = "../../../" if sub else "../../"
    folder = f"{sub}/" if sub else ""

    def link(day: str | None, rel: str, fallback: str) -> str:
        if day is None:
            return f'<span class="muted">{fallback}</span>'
        page = f"{day}/{folder}tiles/{tile_id}.html"
        target = page if (out / page).is_file() else f"{day}/{folder}index.html"
        label = f"&larr; {day}" if rel == "prev" else f"{day} &rarr;"
        return f'<a rel="{rel}" href="{up}{escape(target)}">{label}</a>'

    return (f'{NAV_START}<span class="day-nav">{link(prev_day, "prev", "no earlier report")}'
            f' <a href="{up}index.html">all reports</a> {link(next_day, "next", "no later report")}</span>{NAV_END}')


def set_tile_nav(day_dir: Path, out: Path, prev_day: str | None, next_day: str | None, sub: str = "") -> int:
    """Point the day links of every tile page under ``day_dir/tiles`` at ``prev_day`` and
    ``next_day`` (pages without the markers are left alone); returns the pages rewritten.
    ``sub``: ``day_dir`` is experiment ``sub``'s folder of its day (:func:`tile_nav_html`)."""
    changed = 0
    tiles = day_dir / "tiles"
    for page in sorted(tiles.glob("*.html")) if tiles.is_dir() else ():
        text = page.read_text(encoding="utf-8")
        found = _NAV.search(text)
        if found is None:
            continue
        new = text[:found.start()] + tile_nav_html(out, page.stem, prev_day, next_day, sub) + text[found.end():]
        if new != text:
            atomic_write_text(page, new)
            changed += 1
    return changed


def refresh_nav(out: Path, day: str, lock_timeout: float = 2.0, gone: Sequence[str] = ()) -> list[str]:
    """Re-render the index pages of ``day``'s neighbours, and the day links of their tile pages,
    so they link to it; on a day with several experiments, each experiment's neighbouring pages
    too (``D/<experiment_id>/``), and those of the experiments ``gone`` (the day's folders before
    a rerun that dropped them), so that they no longer link the day.

    Best effort: a neighbour that is being rebuilt (locked), or whose summary cannot
    be read, is skipped. Returns the dates refreshed (``D`` or ``D/<experiment_id>``).
    """
    refreshed = []
    subs = [p.name for p in experiment_dirs(out / day)]
    for sub in ["", *subs, *(g for g in dict.fromkeys(gone) if g and g not in subs)]:
        for other in neighbours(out, day, sub):
            if other is None:
                continue
            try:
                with FileLock(out / f".{other}.lock", timeout=lock_timeout, what=f"report {other}"):
                    folder = out / other / sub
                    if sub:
                        write_index(folder, json.loads((folder / "summary.json").read_text(encoding="utf-8")),
                                    out, sub)
                    elif not rewrite_day_index(folder, out):
                        continue
                    set_tile_nav(folder, out, *neighbours(out, other, sub), sub)
                    refreshed.append(f"{other}/{sub}" if sub else other)
            except (ExpkitError, OSError, ValueError, KeyError, TypeError):
                continue
    return refreshed
