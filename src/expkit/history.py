"""The earlier days a day's report reads, and building their rollups (see docs/reports.md).

The report of day D reads more than D's rollups: the 7d, 30d and experiment-to-date (``cum``)
windows of ``outcome_stats`` sum the per-user rollups of earlier days, the anomaly, volume and
freshness tiles compare D with the same hours of the days before, the timeline and allocation
tiles draw a point per experiment day, and an alert rule whose ``for`` spans days (``ctr_low``:
2d) fires only when the rule held on the earlier days too. :func:`plan_history` derives those
days from the definitions themselves (window lengths, tile baselines, the rules' ``for`` and step)
and compares them with the warehouse; :func:`build_history` builds what is missing, oldest first
(each day's windows read the days before it), and :meth:`HistoryPlan.gaps` says what a report
built without them is missing (``summary.json`` ``history``, the notice on the index page).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from expkit.alerts.rules import AlertsConfig, Rule, format_duration
from expkit.alerts.sources import eval_times
from expkit.config import ExperimentConfig
from expkit.engines import Engine
from expkit.errors import ExpkitError
from expkit.rollup import day_staleness, open_engine, pre_period_days, rebuild_stale_day, stale_dates, window_days
from expkit.tiles import health_anomaly, health_freshness, health_requests
from expkit.tiles.registry import TILES
from expkit.tiles.srm import experiment_span
from expkit.warehouse import Warehouse, day_bounds_ms

CUM = "cum"
"""The experiment-to-date window of ``outcome_stats`` (start_date through the day)."""


@dataclass(frozen=True)
class TileLookBack:
    """A tile that compares the report day with the ``days`` whole days before it."""

    tile: str
    what: str
    days: int


TILE_LOOK_BACKS: tuple[TileLookBack, ...] = (
    TileLookBack("anomaly", f"{health_anomaly.BASELINE_DAYS}-day baseline", health_anomaly.BASELINE_DAYS),
    TileLookBack("volume", f"{health_requests.BASELINE_DAYS}-day baseline", health_requests.BASELINE_DAYS),
    TileLookBack("freshness", f"{health_freshness.BASELINE_DAYS}-day baseline of rows per hour",
                 health_freshness.BASELINE_DAYS),
    TileLookBack("coverage", f"{health_requests.CATALOG_ACTIVE_DAYS}-day catalog coverage",
                 health_requests.CATALOG_ACTIVE_DAYS - 1),
)
"""Tiles whose report-day (24h) view reads earlier days, from each tile's own constant."""

EXPERIMENT_DAY_TILES = ("timeline", "allocation", "readout")
"""Tiles with one point per day of the experiment (:func:`~expkit.tiles.srm.experiment_span`)."""
CUM_TILES = ("timeline", "readout", "novelty")
"""Tiles that read the ``cum`` window (the timeline's cumulative lift, the readout, the lift by exposure age)."""
CUPED_TILES = ("lift", "timeline", "readout")
"""Tiles whose comparisons are CUPED-adjusted with the pre-period (docs/statistics.md, "CUPED from the rollups")."""


@dataclass(frozen=True)
class Need:
    """One reason the report of a day reads earlier days.

    Attributes:
        what: for people (``7d window``, ``7-day baseline``, ``for 2d``).
        days: the days it reads, oldest first (the report day included).
        tiles: the tiles it feeds (empty for an alert rule).
        rule: the alert rule, for a rule's look-back.
    """

    what: str
    days: tuple[dt.date, ...]
    tiles: tuple[str, ...] = ()
    rule: Rule | None = None

    @property
    def label(self) -> str:
        """``7d window``, ``7-day baseline (anomaly)``, ``alert ctr_low (for 2d)``."""
        if self.rule is not None:
            return f"alert {self.rule.name} ({self.what})"
        if set(self.tiles) >= set(TILES):
            return self.what
        return f"{self.what} ({', '.join(self.tiles)})"


@dataclass(frozen=True)
class AffectedTile:
    """A tile whose numbers miss some days: which parts of it, and which days."""

    tile: str
    parts: tuple[str, ...]
    days: tuple[dt.date, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``summary.json`` record."""
        return {"tile": self.tile, "parts": list(self.parts), "days": [d.isoformat() for d in self.days]}


@dataclass(frozen=True)
class AffectedAlert:
    """An alert rule whose look-back misses some days."""

    rule: str
    severity: str
    look_back: str
    days: tuple[dt.date, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``summary.json`` record."""
        return {"rule": self.rule, "severity": self.severity, "for": self.look_back,
                "days": [d.isoformat() for d in self.days]}


@dataclass(frozen=True)
class HistoryGaps:
    """What a report lacks (``summary.json`` ``history``): days it needs whose rollups are missing
    or out of date, the tiles and alert rules that read them, and needed experiment days without
    events (nothing to build: an explicit gap in the data, not a fault of the report)."""

    day: dt.date
    missing_days: tuple[dt.date, ...]
    days_without_events: tuple[dt.date, ...]
    affected_tiles: tuple[AffectedTile, ...]
    affected_alerts: tuple[AffectedAlert, ...]
    built: tuple[dt.date, ...] = ()
    """The days whose rollups this run built (for progress lines; not in ``summary.json``, whose
    numbers must not depend on what earlier runs had already built)."""

    def to_json(self) -> dict[str, Any]:
        """The ``history`` entry of ``summary.json``."""
        return {
            "missing_days": [d.isoformat() for d in self.missing_days],
            "days_without_events": [d.isoformat() for d in self.days_without_events],
            "affected_tiles": [t.to_json() for t in self.affected_tiles],
            "affected_alerts": [a.to_json() for a in self.affected_alerts],
        }


@dataclass(frozen=True)
class HistoryPlan:
    """The days the report of ``day`` needs, and which of them to build.

    Attributes:
        day: the report day.
        needs: why each earlier day is read.
        no_events: needed days without events (they cannot be built).
        stale: needed days with events whose rollups are missing or out of date.
        to_build: what :func:`build_history` builds, oldest first: the stale days and every
            needed day after the first of them (its windows read the days built before it).
        start_date: the experiment's first day.
    """

    day: dt.date
    needs: tuple[Need, ...]
    no_events: tuple[dt.date, ...]
    stale: tuple[dt.date, ...]
    to_build: tuple[dt.date, ...]
    start_date: dt.date

    @property
    def earlier(self) -> tuple[dt.date, ...]:
        """The days to build before the report day."""
        return tuple(d for d in self.to_build if d < self.day)

    def reasons(self, day: dt.date) -> list[str]:
        """Why ``day`` is needed (each need that reads it)."""
        return [n.label for n in self.needs if day in n.days]

    def gaps(self, missing: Iterable[dt.date] | None = None) -> HistoryGaps:
        """What a report built with ``missing`` days absent lacks (default: the stale days
        before the report day, i.e. nothing was built)."""
        gone = set(self.stale if missing is None else missing) - {self.day}
        tiles: dict[str, tuple[list[str], set[dt.date]]] = {}
        alerts = []
        for n in self.needs:
            hit = gone.intersection(n.days)
            if not hit:
                continue
            for t in n.tiles:
                parts, days = tiles.setdefault(t, ([], set()))
                parts.append(n.what)
                days.update(hit)
            if n.rule is not None:
                alerts.append(AffectedAlert(n.rule.name, n.rule.severity, format_duration(n.rule.for_),
                                            tuple(sorted(hit))))
        order = list(TILES)
        affected = [AffectedTile(t, tuple(parts), tuple(sorted(days)))
                    for t, (parts, days) in sorted(tiles.items(), key=lambda kv: _position(order, kv[0]))]
        experiment = set(window_days(self.day, CUM, self.start_date))
        return HistoryGaps(
            day=self.day,
            missing_days=tuple(sorted(gone)),
            days_without_events=tuple(d for d in self.no_events if d in experiment),
            affected_tiles=tuple(affected),
            affected_alerts=tuple(alerts),
        )


def _position(order: Sequence[str], tile: str) -> int:
    return order.index(tile) if tile in order else len(order)


def rule_days(rule: Rule, day: dt.date) -> tuple[dt.date, ...]:
    """The days whose data decide ``rule``'s state at the end of ``day``.

    A rule fires after its condition held at every evaluation for ``for``; the evaluations in
    the last ``for`` (plus the one that started it) each read one step of data before their
    time, so ``ctr_low`` (daily step, ``for: 2d``) reads ``day`` and the two days before it.
    """
    end = day_bounds_ms(day)[1]
    times = eval_times(end - rule.for_ - rule.step_ms, end, rule.step_ms)
    return tuple(sorted({_day_of(t - 1) for t in times}))


def _day_of(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).date()


def _span(day: dt.date, before: int) -> tuple[dt.date, ...]:
    return tuple(day - dt.timedelta(days=i) for i in range(before, -1, -1))


def history_needs(day: dt.date, config: ExperimentConfig, rules: AlertsConfig | None) -> tuple[Need, ...]:
    """Every reason the report of ``day`` reads earlier days (each with the days it reads).

    The windows are the experiment's multi-day windows (every tile's, when run with that
    window; an outcome tile reads only their days from the experiment's start on) and ``cum``
    (the timeline's cumulative lift); the baselines are the tiles' own constants
    (:data:`TILE_LOOK_BACKS`); the alert look-backs follow from each rule's ``for`` and step
    (:func:`rule_days`); the CUPED pre-period days (the per-user rollups the adjusted comparisons
    read, :func:`expkit.rollup.pre_period_days`). Needs that read only ``day`` are left out.
    """
    every_tile = tuple(TILES)
    # The whole window: a health tile's; an outcome tile's is the part from the start on.
    needs = [Need(f"{w} window", tuple(window_days(day, w)), every_tile) for w in config.windows]
    needs.append(Need("the experiment to date (cum)", tuple(window_days(day, CUM, config.start_date)), CUM_TILES))
    needs.append(Need("one point per experiment day", tuple(experiment_span(config.start_date, day)),
                      EXPERIMENT_DAY_TILES))
    if day >= config.start_date:  # days without events contribute nothing (no_events, never a gap)
        needs.append(Need(f"CUPED pre-period ({config.cuped.lookback_days} days before the start)",
                          tuple(pre_period_days(config)), CUPED_TILES))
    needs += [Need(lb.what, _span(day, lb.days), (lb.tile,)) for lb in TILE_LOOK_BACKS]
    for rule in rules.rules if rules is not None else ():
        needs.append(Need(f"for {format_duration(rule.for_)}", rule_days(rule, day), rule=rule))
    return tuple(n for n in needs if any(d < day for d in n.days))


def plan_history(
    wh: Warehouse, day: dt.date, config: ExperimentConfig, rules: AlertsConfig | None = None
) -> HistoryPlan:
    """What the report of ``day`` needs from the warehouse ``wh``, and what to build for it.

    ``rules`` are the alert rules (``None``: no alert look-backs).
    """
    needs = history_needs(day, config, rules)
    needed = sorted({d for n in needs for d in n.days} | {day})  # the report day, whatever it reads
    with_events = set(wh.event_dates())
    present = [d for d in needed if d in with_events]
    stale = stale_dates(wh, present, config) if present else []
    first = min(stale, default=None)
    to_build = tuple(d for d in present if first is not None and d >= first)
    return HistoryPlan(
        day=day,
        needs=needs,
        no_events=tuple(d for d in needed if d not in with_events),
        stale=tuple(sorted(stale)),
        to_build=to_build,
        start_date=config.start_date,
    )


def build_history(
    wh: Warehouse,
    plan: HistoryPlan,
    config: ExperimentConfig,
    engine: str | Engine = "duckdb",
    progress: Callable[[str], None] | None = None,
) -> dict[dt.date, str]:
    """Build the rollups of ``plan.to_build`` in date order; returns the earlier days that could
    not be built, each with its error (the report day's own error is raised).

    Reports what the earlier days are for, then ``building 2026-11-08 (3/7)`` before each of
    them, and says why the report day itself is rebuilt when it was fresh (its windows read the
    days just built).
    """
    say = progress or (lambda _msg: None)
    earlier = plan.earlier
    if earlier:
        why = dict.fromkeys(r for d in earlier for r in plan.reasons(d))
        say(f"{len(earlier)} earlier day{'s' if len(earlier) != 1 else ''} to build for {plan.day} "
            f"({_days_text(earlier)}), read by: {'; '.join(why)}")
    eng = open_engine(engine, wh) if isinstance(engine, str) else engine
    failed: dict[dt.date, str] = {}
    try:
        for i, d in enumerate(plan.to_build, 1):
            # Each day is checked when its turn comes: a day rolled up before the days just built
            # has statistics that read them (expkit.lineage), so only those are recomputed.
            state = day_staleness(wh, d, catalogue=config.catalogue)
            if not state.stale:
                continue
            if d == plan.day:
                if earlier and not state.raw.stale:
                    say(f"rebuilding {d}: its windows read the days just built")
                rebuild_stale_day(wh, eng, d, config)
                continue
            what = "building" if state.raw.stale else "refreshing the statistics of"
            say(f"{what} {d} ({i}/{len(earlier)})")
            try:
                rebuild_stale_day(wh, eng, d, config)
            except ExpkitError as err:  # a broken earlier day leaves a gap the report names
                failed[d] = str(err)
                say(f"could not build {d}: {err}")
    finally:
        if isinstance(engine, str):
            eng.close()
    return failed


def _days_text(days: Sequence[dt.date]) -> str:
    """``2026-11-08 … 2026-11-13`` for a run of consecutive days, else the list."""
    days = sorted(days)
    if len(days) > 2 and (days[-1] - days[0]).days == len(days) - 1:
        return f"{days[0]} … {days[-1]}"
    return ", ".join(map(str, days))
