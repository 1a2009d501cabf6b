"""Synthetic-day testing (docs/validation.md, "Synthetic-day test: `expkit selftest`").

In a work folder, generate days with known truth and injected incidents on the last day,
then run the pipeline the way production would see it and compare with the truth:

1. ``expkit.synth.generate``; the rows that land late (``part-late-*.parquet``) are held back;
2. rollups of every day; then the late files land (after their day was rolled up);
3. validation of every day: clean days (no incident window) must not fail any check, and
   each incident must be caught by its check (on the right table and hours), with the
   injected numbers (orphan rate, duplicate count) recovered;
4. late data: detected for exactly the incident's day, backfilled, rollups changed by the
   late rows, then clean; a second backfill changes nothing;
5. alerts: each incident with an alert rule fires it, clean days fire nothing;
6. tiles: every tile has data on the last day (from the daily report's ``summary.json``, or,
   with ``--no-report``, by running the tiles in-process), and on a clean day the true per-arm
   CTR, save rate, Recall@K and session depth lie inside the tiles' intervals.

It drives the whole pipeline, so it sits beside the daily job, above every part it runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.stats import norm

from expkit.config import ExperimentConfig, default_params_file, load_experiment
from expkit.errors import ExpkitError
from expkit.names import HOUR_MS
from expkit.validation.api import validate
from expkit.validation.history import ValidationRun
from expkit.validation.query import open_engine
from expkit.validation.results import CheckResult
from expkit.warehouse import DAY_MS, Warehouse, day_bounds_ms

Progress = Callable[[str], None] | None

OK, MISS, SKIP = "ok", "miss", "skip"


@dataclass(frozen=True)
class Detection:
    """A way an incident is caught: a failed check (on one of ``tables``) or a fired alert rule."""

    kind: str  # "check" | "alert"
    name: str
    tables: tuple[str, ...] = ()


CHECK_DETECTIONS: dict[str, tuple[Detection, ...]] = {
    "stale_partition": (Detection("check", "event_delay", ("impressions",)),),
    "late_data": (Detection("check", "late_data"),),
    "ctr_collapse": (Detection("check", "partition_completeness", ("clicks",)),),
    "orphan_clicks": (Detection("check", "join_integrity", ("clicks",)),),
    "duplicate_events": (Detection("check", "unique_ids", ("clicks", "impressions")),),
}
"""Incident → the validation checks that catch it (attributed by table and time)."""


def detections(incident: str) -> tuple[Detection, ...]:
    """How ``incident`` is caught: its checks, then the alert rules the generator says it fires.

    Any one suffices.
    """
    from expkit.synth import INCIDENTS

    alerts = tuple(Detection("alert", rule) for rule in getattr(INCIDENTS[incident], "alerts", ()))
    return CHECK_DETECTIONS.get(incident, ()) + alerts


@dataclass(frozen=True)
class SelftestOptions:
    """What to generate and run.

    Attributes:
        incidents: incident specs (``NAME`` or ``NAME@HH:MM/MINUTES``) on the last day.
        days, users, seed, end: the synthetic warehouse.
        report: run the daily HTML report when ``expkit.daily`` is installed.
        tiles: check the tiles (data present, truth inside the intervals).
        workdir: keep everything here (default: a temporary folder, deleted afterwards).
        params_file: the experiment definition (default ``params/experiment.yaml``).
        coverage: truth-inside-interval test level; the tiles' 95% intervals are widened to it,
            so the several comparisons of a run together rarely miss by chance.
    """

    incidents: tuple[str, ...] = ()
    days: int = 5
    users: int = 4000
    seed: int = 0
    end: dt.date = dt.date(2026, 11, 14)
    report: bool = True
    tiles: bool = True
    workdir: Path | None = None
    params_file: Path | None = None
    coverage: float = 0.999


@dataclass(frozen=True)
class Outcome:
    """One line of the self-test table."""

    area: str
    item: str
    expected: str
    observed: str
    result: str  # ok | miss | skip


@dataclass(frozen=True)
class RollupSnapshot:
    """Column totals of one day's rollups (to see whether a backfill changed them)."""

    totals: dict[str, dict[str, float]]
    mtimes: dict[str, list[float]]

    def same_totals(self, other: RollupSnapshot, rel: float = 1e-9) -> bool:
        """Equal totals (floating sums may differ in the last bits between builds)."""
        return self.totals.keys() == other.totals.keys() and all(
            self.totals[n].keys() == other.totals[n].keys()
            and all(math.isclose(v, other.totals[n][c], rel_tol=rel) for c, v in self.totals[n].items())
            for n in self.totals)


@dataclass
class BackfillOutcome:
    """The late-data round trip."""

    day: dt.date
    detected: list[dt.date]
    late_rows: int
    rebuilt: list[dt.date]
    before: RollupSnapshot
    after: RollupSnapshot
    second_rebuilt: list[dt.date]
    again: RollupSnapshot
    run_after: ValidationRun
    forced: RollupSnapshot


@dataclass
class SelftestReport:
    """Everything the self-test saw; ``ok`` when nothing was missed."""

    options: SelftestOptions
    workdir: Path
    truth: dict[str, Any]
    outcomes: list[Outcome] = field(default_factory=list)
    runs: dict[dt.date, ValidationRun] = field(default_factory=dict)
    alerts: dict[dt.date, list[dict[str, Any]]] = field(default_factory=dict)
    backfill: BackfillOutcome | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(o.result != MISS for o in self.outcomes)

    @property
    def warehouse(self) -> Path:
        return self.workdir / "warehouse"

    def add(self, area: str, item: str, expected: str, observed: str, passed: bool | None) -> None:
        result = SKIP if passed is None else OK if passed else MISS
        self.outcomes.append(Outcome(area, item, expected, observed, result))

    def format_table(self) -> str:
        """The result table printed by ``expkit selftest``."""
        w = [max(len(h), *(len(getattr(o, f)) for o in self.outcomes)) if self.outcomes else len(h)
             for h, f in (("area", "area"), ("item", "item"), ("expected", "expected"))]
        lines = [f"{'RESULT':6}  {'area':{w[0]}}  {'item':{w[1]}}  {'expected':{w[2]}}  observed"]
        for o in self.outcomes:
            lines.append(f"{o.result.upper():6}  {o.area:{w[0]}}  {o.item:{w[1]}}  {o.expected:{w[2]}}  {o.observed}")
        misses = sum(o.result == MISS for o in self.outcomes)
        skips = sum(o.result == SKIP for o in self.outcomes)
        kept = (f"work folder {self.workdir}" if self.workdir.exists()
                else "work folder deleted (use --workdir to keep it)")
        lines.append(f"selftest {'passed' if self.ok else 'FAILED'}: {len(self.outcomes)} checks, {misses} missed, "
                     f"{skips} skipped, {self.seconds:.0f} s; {kept}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 1),
            "workdir": str(self.workdir),
            "incidents": list(self.options.incidents),
            "outcomes": [dataclasses.asdict(o) for o in self.outcomes],
        }


# --- helpers ------------------------------------------------------------------------------


def hold_back_late_files(wh: Warehouse, store: Path) -> list[Path]:
    """Move every ``part-late-*.parquet`` out of the warehouse into ``store``; return their homes."""
    moved = []
    for path in sorted(wh.events.glob("*/event_date=*/part-late-*.parquet")):
        target = store / path.relative_to(wh.events)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), target)
        moved.append(path)
    return moved


def land_late_files(wh: Warehouse, store: Path, homes: list[Path]) -> None:
    """Put held-back files in place (they now land after their day was rolled up)."""
    for home in homes:
        shutil.move(str(store / home.relative_to(wh.events)), home)


def snapshot(wh: Warehouse, day: dt.date, names: tuple[str, ...] = ("ingest_bins", "health_bins", "outcome_stats")
             ) -> RollupSnapshot:
    """Totals of every numeric column of ``day``'s rollups ``names`` (read from the rollups)."""
    totals, mtimes = {}, {}
    for name in names:
        files = wh.rollup_files(name, [day])
        table = pq.read_table(files) if files else None
        totals[name] = {} if table is None else {
            f.name: float(pc.sum(table[f.name]).as_py() or 0)
            for f in table.schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)}
        mtimes[name] = [f.stat().st_mtime for f in files]
    return RollupSnapshot(totals, mtimes)


def _find(run: ValidationRun, name: str, table: str | None = None) -> list[CheckResult]:
    return [c for c in run.checks if c.name == name and (table is None or c.table == table)]


def _overlaps(check: CheckResult, start_ms: int, end_ms: int) -> bool:
    """Whether a check's offending hours (if it lists any) meet the incident window."""
    hours = check.facts.get("bad_hours")
    if not hours:
        return True
    starts = [int(dt.datetime.fromisoformat(h.replace("Z", "+00:00")).timestamp() * 1000) for h in hours]
    return any(s < end_ms and s + HOUR_MS > start_ms for s in starts)


def _alert_fired(alerts: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [a for a in alerts if a.get("rule") == rule and a.get("fired_at")]


# --- the steps ----------------------------------------------------------------------------


def _caught(report: SelftestReport, incident: dict[str, Any], day: dt.date) -> None:
    run = report.runs[day]
    seen: list[str] = []
    missed: list[str] = []
    alerts_known = day in report.alerts
    ways = detections(incident["name"])
    for det in ways:
        if det.kind == "check":
            hits = [c for c in _find(run, det.name) if c.failed and (not det.tables or c.table in det.tables)
                    and _overlaps(c, incident["start_ms"], incident["end_ms"])]
            (seen if hits else missed).append(f"check {det.name}" + (
                f" on {', '.join(sorted({c.table for c in hits}))}" if hits else ""))
        elif alerts_known:
            fired = _alert_fired(report.alerts[day], det.name)
            (seen if fired else missed).append(f"alert {det.name}")
    expected = " or ".join(f"{d.kind} {d.name}" for d in ways)
    if seen:
        report.add("incident", incident["name"], expected, "caught by " + "; ".join(seen), True)
    elif missed:
        report.add("incident", incident["name"], expected, "not caught (" + "; ".join(missed) + " did not fire)", False)
    else:
        report.add("incident", incident["name"], expected, "alert engine not installed (expkit.alerts)", None)


ROW_DROPPING = ("traffic_imbalance",)
"""Incidents that drop rows after the others were injected (their injected counts then overstate)."""


def _near(got: float, rate: float, n: int) -> bool:
    """``got`` is a plausible share of ``n`` rows for true share ``rate`` (4 binomial standard errors)."""
    return n > 0 and abs(got - rate) <= 4 * math.sqrt(rate * (1 - rate) / n) + 1e-9


def _numbers(report: SelftestReport, incident: dict[str, Any], day: dt.date) -> None:
    """The injected magnitudes the checks must recover: shares always, counts when nothing dropped rows."""
    run, injected, params = report.runs[day], incident.get("injected") or {}, incident.get("params") or {}
    exact = not any(i["name"] in ROW_DROPPING for i in report.truth["incidents"])
    if incident["name"] == "orphan_clicks":
        c = _find(run, "join_integrity", "clicks")[0]
        want = params["orphan_rate"] / (1 + params["orphan_rate"])  # orphans among all click rows
        report.add("numbers", "orphan share of clicks", f"{want:.2%} injected", f"{c.value:.2%} detected",
                   _near(c.value or 0.0, want, c.facts.get("rows", 0)))
    if incident["name"] == "duplicate_events":
        rate = params["duplicate_rate"]
        for table in incident["tables"]:
            c = _find(run, "unique_ids", table)[0]
            rows, got = c.facts.get("rows", 0), c.value
            if exact:
                want = int(injected.get(table, 0))
                report.add("numbers", f"duplicate {table}", f"{want:,} injected", f"{got:,} counted", got == want)
            else:
                report.add("numbers", f"duplicate {table}", f"{rate / (1 + rate):.2%} of rows injected",
                           f"{got:,} counted ({c.facts.get('duplicate_rate', 0):.2%})",
                           _near(c.facts.get("duplicate_rate", 0.0), rate / (1 + rate), rows))


def _late_data_round_trip(report: SelftestReport, config: ExperimentConfig, day: dt.date, progress: Progress
                          ) -> None:
    from expkit.rollup import STATS_ROLLUP, build_range, build_rollups
    from expkit.validation.late import scan_late_data

    wh = Warehouse.open(report.warehouse)
    first = report.options.end - dt.timedelta(days=report.options.days - 1)
    days = [first + dt.timedelta(days=i) for i in range(report.options.days)]
    engine = open_engine()
    try:
        scan = scan_late_data(wh, engine, days)
    finally:
        engine.close()
    late_total = sum(report.truth.get("late_rows", {}).values())
    found = sum(d.total_late_rows for d in scan.late)
    report.add("late data", "dates detected", str([day.isoformat()]),
               str([d.isoformat() for d in scan.affected_dates]), scan.affected_dates == [day])
    report.add("late data", "late rows", f"{late_total:,} written late", f"{found:,} found", found == late_total)
    before = snapshot(wh, day)
    _say(progress, "backfill")
    # days rebuilt whole; later days whose windows read the late day get their statistics refreshed too
    rebuilt = [r.day for r in build_range(wh, first, report.options.end, config, backfill=True)
               if set(r.rows) != {STATS_ROLLUP}]
    after = snapshot(wh, day)
    report.add("late data", "backfill rebuilt", str([day.isoformat()]), str([d.isoformat() for d in rebuilt]),
               rebuilt == [day])
    grew = after.totals["ingest_bins"].get("n", 0) - before.totals["ingest_bins"].get("n", 0)
    report.add("late data", "rollup rows added", f"{late_total:,} (ingest_bins n)", f"{grew:,.0f}", grew == late_total)
    changed = [n for n in ("health_bins", "outcome_stats") if after.totals[n] != before.totals[n]]
    report.add("late data", "tiles' rollups changed", "health_bins, outcome_stats", ", ".join(changed) or "none",
               len(changed) == 2)
    run_after = validate(wh, day, config=config)
    still = [c for c in run_after.checks if c.failed and c.name in ("late_data", "rollup_freshness")]
    report.add("late data", "after backfill", "late_data, rollup_freshness pass",
               "; ".join(f"{c.name} {c.status}" for c in still) or "pass", not still)
    second = [r.day for r in build_range(wh, first, report.options.end, config, backfill=True)]
    again = snapshot(wh, day)
    same = again == after
    report.add("late data", "second backfill", "rebuilds nothing, same content",
               f"rebuilt {[d.isoformat() for d in second]}, content {'same' if same else 'CHANGED'}",
               not second and same)
    build_rollups(wh, day, config)  # a forced rebuild of the same events
    forced = snapshot(wh, day)
    report.add("late data", "forced rebuild", "same content", "same" if forced.same_totals(after) else "CHANGED",
               forced.same_totals(after))
    report.backfill = BackfillOutcome(day, scan.affected_dates, found, rebuilt, before, after, second, again, run_after,
                                      forced)


def _tile_statuses(report: SelftestReport, day: dt.date, params_file: Path, progress: Progress
                   ) -> tuple[str, dict[str, tuple[str, str | None]]]:
    """Tile → (status, error) from the daily report (when installed and asked for) or in-process runs."""
    if report.options.report:
        from expkit.daily import daily

        _say(progress, f"daily report of {day}")
        reports = report.workdir / "reports"
        daily(warehouse=report.warehouse, day=day, out=reports, params_file=params_file, timeout=300)
        summary = json.loads((reports / day.isoformat() / "summary.json").read_text())
        return "daily report", {t: (v.get("status"), v.get("error")) for t, v in summary.get("tiles", {}).items()}
    from expkit import run_tile
    from expkit.tiles.registry import TILES

    out: dict[str, tuple[str, str | None]] = {}
    for tile in TILES:
        try:
            res = run_tile(tile, event_date=day, warehouse=report.warehouse, params_file=params_file)
            out[tile] = (res.status, None)
        except Exception as err:  # a broken tile is a finding, not a crash of the self-test
            out[tile] = ("failed", f"{type(err).__name__}: {err}")
    return "tiles run in-process", out


def _tiles(report: SelftestReport, last: dt.date, clean: list[dt.date], params_file: Path, progress: Progress
           ) -> None:
    try:
        source, statuses = _tile_statuses(report, last, params_file, progress)
    except Exception as err:
        report.add("tiles", "all tiles", "have data", f"could not run: {type(err).__name__}: {err}", False)
        return
    for tile, (status, error) in statuses.items():
        report.add("tiles", tile, "has data", f"{status} ({source})" + (f": {error}" if error else ""),
                   status not in ("no_data", "failed", None))
    if not clean:
        report.add("truth", "metrics", "inside intervals", "no clean day to compare on", None)
        return
    truth_in_intervals(report, clean[-1], params_file)


def truth_in_intervals(report: SelftestReport, day: dt.date, params_file: Path) -> None:
    """True per-arm metric values inside the tiles' intervals (widened to ``options.coverage``) on ``day``."""
    from expkit import run_tile

    scale = norm.ppf(0.5 + report.options.coverage / 2) / norm.ppf(0.975)
    truth, truth_se = report.truth["metrics"], report.truth.get("metric_se", {})
    # the metrics with a known truth that have a tile page in the experiment's catalogue
    tiles = load_experiment(params_file).catalogue.tile_ids
    for metric in [m for m in truth if m in tiles]:
        try:
            arms = run_tile(metric, event_date=day, window="24h", warehouse=report.warehouse,
                            params_file=params_file).headline.get("arms", {})
        except Exception as err:
            report.add("truth", metric, "tile runs", f"{type(err).__name__}: {err}", False)
            continue
        for arm, true in truth.get(metric, {}).items():
            a = arms.get(arm)
            if not a or a.get("estimate") is None:
                report.add("truth", f"{metric} {arm}", f"{true:.4g}", "no estimate", False)
                continue
            se = (a["high"] - a["low"]) / (2 * norm.ppf(0.975))
            se = math.hypot(se, truth_se.get(metric, {}).get(arm, 0.0))
            lo, hi = a["estimate"] - scale * se * norm.ppf(0.975), a["estimate"] + scale * se * norm.ppf(0.975)
            report.add("truth", f"{metric} {arm} ({day})", f"{true:.4g}",
                       f"{a['estimate']:.4g} [{a['low']:.4g}, {a['high']:.4g}] 95%", lo <= true <= hi)


def _alerts(report: SelftestReport, day: dt.date, config: ExperimentConfig, params_file: Path) -> None:
    from expkit.alerts import evaluate_day

    report.alerts[day] = list(evaluate_day(report.warehouse, day, config, params_file=params_file) or [])


def _say(progress: Progress, msg: str) -> None:
    if progress:
        progress(f"selftest: {msg}")


def run_selftest(options: SelftestOptions, progress: Progress = None) -> SelftestReport:
    """Run the synthetic-day test described in the module docstring; never raises on a miss."""
    from expkit.rollup import build_range
    from expkit.synth import generate, parse_incident

    for spec in options.incidents:
        parse_incident(spec)  # reject a bad spec before any work
    if options.days < 2:
        raise ExpkitError("selftest needs --days ≥ 2 (a clean day before the incident day)")
    params_file = Path(options.params_file) if options.params_file else default_params_file()
    config = load_experiment(params_file)
    t0 = time.perf_counter()
    tmp = None if options.workdir else tempfile.mkdtemp(prefix="expkit-selftest-")
    workdir = Path(options.workdir or tmp)  # type: ignore[arg-type]
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        if (workdir / "warehouse").exists():
            shutil.rmtree(workdir / "warehouse")
        _say(progress, f"generating {options.days} days, {options.users:,} users, incidents {list(options.incidents)}")
        truth = generate(workdir / "warehouse", days=options.days, end=options.end, users=options.users,
                         seed=options.seed, incidents=options.incidents, experiment_id=config.experiment_id,
                         buckets=config.buckets, control=config.control)
        report = SelftestReport(options, workdir, truth)
        wh = Warehouse.open(report.warehouse)
        days = [options.end - dt.timedelta(days=options.days - 1 - i) for i in range(options.days)]
        held = hold_back_late_files(wh, workdir / "held-back")
        _say(progress, f"rollups of {days[0]} to {days[-1]} ({len(held)} late files held back)")
        build_range(wh, days[0], days[-1], config)
        land_late_files(wh, workdir / "held-back", held)

        windows = [(i["start_ms"], i["end_ms"]) for i in truth["incidents"]]
        clean = [d for d in days if not any(s < day_bounds_ms(d)[0] + DAY_MS and e > day_bounds_ms(d)[0]
                                            for s, e in windows)]
        for day in days:
            _say(progress, f"validating {day}")
            report.runs[day] = validate(wh, day, config=config)
            _alerts(report, day, config, params_file)
        for day in clean:
            failed = report.runs[day].failed
            report.add("clean day", f"{day} validation", "no failed check",
                       "; ".join(f"{c.name}/{c.table}" for c in failed) or f"{len(report.runs[day].checks)} passed",
                       not failed)
            if day in report.alerts:
                fired = [a["rule"] for a in report.alerts[day] if a.get("fired_at")]
                report.add("clean day", f"{day} alerts", "none fire", ", ".join(fired) or "none", not fired)
            else:
                report.add("clean day", f"{day} alerts", "none fire", "alert engine not installed", None)
        for incident in truth["incidents"]:  # every incident ends on the last day
            _caught(report, incident, days[-1])
            _numbers(report, incident, days[-1])
        if held:
            _late_data_round_trip(report, config, days[-1], progress)
        if options.tiles:
            _tiles(report, days[-1], clean, params_file, progress)
        report.seconds = time.perf_counter() - t0
        return report
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
