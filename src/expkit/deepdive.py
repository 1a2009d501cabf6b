"""The deep dive of one experiment: what ``notebooks/deepdive/experiment.ipynb`` shows (docs/deepdive.md).

A data scientist opens the deep dive to see *why* the day's numbers look the way they do. Each
section is computed here from the rollups, through the readers, the tiles' shared pieces and
:mod:`expkit.stats`, and returned as a :class:`Section` (notes, charts, a table) that the
notebook only shows:

* :func:`readout_section`: the readout tile (verdict, reasons, trust gates, guardrails);
* :func:`lift_section`: every listed metric's relative lift per value of every listed slice, one
  forest plot per metric, the segments whose effect differs from the rest marked (the lift tile's
  test, :func:`expkit.tiles.lift.segment_frame`, over the same family as its headline ``segments``);
* :func:`timeline_section`: the cumulative lift per experiment day with CUPED on and off;
* :func:`guardrail_section`: each guardrail judged against its margin;
* :func:`query` and :func:`arm_sums`: any query template over the rollups, and the per-arm
  sums an :mod:`expkit.stats` function takes.

Parameters are checked by :func:`open_deepdive` (each error names the parameter), so
``expkit deepdive`` refuses bad ones before a kernel starts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from expkit.atomic import atomic_write_json
from expkit.errors import ExpkitError
from expkit.names import WINDOWS, Status

if TYPE_CHECKING:
    from expkit.tiles.base import TileParams
    from expkit.warehouse import Warehouse

DEEPDIVE_WINDOWS = (*WINDOWS, "cum")
"""Windows the deep dive reads: the tiles' and ``cum`` (the experiment to date, its default)."""
DEEPDIVE_PARAMETERS = ("event_date", "window", "metrics", "slices", "params_file", "warehouse")
"""The parameters of the deep-dive notebook a user sets (``expkit deepdive -p KEY=VALUE``)."""


@dataclass(frozen=True)
class DeepDive:
    """The checked parameters of a deep dive.

    Attributes:
        scope: what it reads (a :class:`~expkit.tiles.base.TileParams`: every arm, no slice, no
            filter, the window ``window`` ending on the report date).
        window: the window of the lift per slice and the guardrails (``cum``: the experiment to date).
        metrics: the outcome metric ids shown, in the experiment's order.
        slices: the slice columns the lift is broken down by.
        svg: whether charts also carry a static SVG (for front ends that cannot draw Vega-Lite).
    """

    scope: TileParams
    window: str
    metrics: list[str]
    slices: list[str]
    svg: bool = True

    @property
    def event_date(self) -> dt.date:
        """The report date."""
        return self.scope.event_date

    @property
    def experiment_id(self) -> str:
        """The experiment."""
        return str(self.scope.config.experiment_id)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly parameters (the page header and the sidecar)."""
        return {"event_date": self.event_date.isoformat(), "window": self.window, "metrics": self.metrics,
                "slices": self.slices, "params_file": str(self.scope.params_file),
                "warehouse": str(self.scope.warehouse.root), "experiment_id": self.experiment_id}


def _id_list(value: Any, name: str) -> list[str] | None:
    """A list of ids from a list or a comma-separated string (``None``/empty: the default)."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()] or None
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    example = "ctr,recall" if name == "metrics" else "region,cohort"
    raise ExpkitError(f"parameter {name}={value!r}: give a list of ids or a comma-separated string, "
                      f'e.g. {name}="{example}"')


def _check_day(day: dt.date, experiment_id: str, start: dt.date, wh: Warehouse) -> None:
    """Refuse a report date the deep dive has nothing to show for (before the start, not rolled up)."""
    from expkit.rollup import STATS_ROLLUP

    if day < start:
        raise ExpkitError(f"parameter event_date={day}: before the start of experiment {experiment_id} ({start}); "
                          f"the deep dive covers its days from {start} on")
    if not wh.rollup_files(STATS_ROLLUP, [day]):
        days = [d for d in wh.rollup_dates(STATS_ROLLUP) if d >= start]
        newest = f"the newest is {days[-1]}" if days else "none is rolled up yet"
        raise ExpkitError(f"parameter event_date={day}: no outcome statistics of that day in warehouse {wh.root}; "
                          f"roll it up ('expkit rollup --date {day}') or choose a rolled-up date ({newest})")


def open_deepdive(
    event_date: str | dt.date | None = None,
    window: str = "cum",
    metrics: Sequence[str] | str | None = None,
    slices: Sequence[str] | str | None = None,
    params_file: str | Path | None = None,
    warehouse: str | Path | None = None,
    svg: bool = True,
) -> DeepDive:
    """Check the deep dive's parameters; every error names the parameter and the fix.

    Defaults: the newest rolled-up date, the experiment to date, the outcome metrics and slices
    of the experiment's parameters file (``params/experiment.yaml``), the default warehouse
    (docs/reports.md, "Running a tile by hand").
    """
    from expkit.schema import SLICE_COLUMNS
    from expkit.tiles.base import resolve_params

    if window not in DEEPDIVE_WINDOWS:
        raise ExpkitError(f"parameter window={window!r} is not a window; choose one of {list(DEEPDIVE_WINDOWS)}")
    base = resolve_params("deepdive", ("bucket",), event_date=event_date, params_file=params_file,
                          warehouse=warehouse)
    cfg = base.config
    _check_day(base.event_date, cfg.experiment_id, cfg.start_date, base.warehouse)
    chosen = _id_list(metrics, "metrics")
    if chosen is not None:
        unknown = [m for m in chosen if m not in cfg.outcome_metrics]
        if unknown:
            raise ExpkitError(f"parameter metrics: {unknown[0]!r} is not an outcome metric of experiment "
                              f"{cfg.experiment_id}; choose among {cfg.outcome_metrics}")
    shown = [m for m in cfg.outcome_metrics if chosen is None or m in chosen]
    picked = _id_list(slices, "slices")
    if picked is not None:
        bad = [s for s in picked if s not in SLICE_COLUMNS or s == "bucket"]
        if bad:
            raise ExpkitError(f"parameter slices: {bad[0]!r} is not a slice column; choose among "
                              f"{[s for s in SLICE_COLUMNS if s != 'bucket']}")
    cuts = picked if picked is not None else [s for s in cfg.slices if s != "bucket"]
    return DeepDive(scope=replace(base, window=window), window=window, metrics=shown, slices=cuts, svg=bool(svg))


@dataclass
class Section:
    """One section of the deep dive, ready to show.

    Attributes:
        title: the section's heading.
        summary: one line on what it found.
        notes: lines to read before the charts (flagged segments, reasons, caveats).
        charts: Altair charts.
        table: the numbers behind the charts.
        status: ``ok``, ``warn``, ``breach`` or ``no_data`` (the readout's is the page's status).
    """

    title: str
    summary: str
    notes: list[str] = field(default_factory=list)
    charts: list[Any] = field(default_factory=list)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    status: Status = "ok"

    def outputs(self, svg: bool = True) -> list[dict[str, Any]]:
        """The section as MIME bundles: summary and notes, each chart, the table."""
        import html

        from expkit.charts import chart_bundle
        from expkit.tiles.display import table_html

        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        head = (f'<div class="expkit-headline" data-status="{html.escape(self.status)}">{html.escape(self.summary)}'
                + (f"<ul>{notes}</ul>" if notes else "") + "</div>")
        out: list[dict[str, Any]] = [{"text/html": head}]
        out.extend(chart_bundle(c, svg=svg) for c in self.charts)
        if not self.table.empty:
            out.append({"text/html": table_html(self.table)})
        return out

    def show(self, svg: bool = True) -> None:
        """Display the section (in a notebook)."""
        from IPython.display import display

        for bundle in self.outputs(svg):
            display(bundle, raw=True)


def readout_section(dd: DeepDive) -> Section:
    """The readout tile on the report date: verdict and reasons per arm, trust gates, guardrails."""
    from expkit.api import compute_tile

    p = dd.scope
    r = compute_tile("readout", event_date=dd.event_date, params_file=p.params_file, warehouse=p.warehouse.root)
    head = r.headline
    verdict = str(head.get("verdict", "no data")).replace("_", " ")
    return Section(title="Readout", summary=f"Verdict: {verdict}. {r.summary}" if head.get("verdict") else r.summary,
                   notes=list(r.notes), charts=list(r.charts), table=r.table, status=r.status)


def novelty_section(dd: DeepDive) -> Section:
    """The novelty tile on the report date: each metric's lift by days since the user's first
    exposure, with the trend test (docs/statistics.md, "Novelty and primacy")."""
    from expkit.api import compute_tile

    p = dd.scope
    r = compute_tile("novelty", event_date=dd.event_date, params_file=p.params_file, warehouse=p.warehouse.root)
    return Section(title="Novelty and primacy", summary=r.summary, notes=list(r.notes), charts=list(r.charts),
                   table=r.table, status=r.status)


FLAG_COLUMN = "effect_differs"
"""Column of :func:`lift_frame` that marks a flagged segment (and the forest plot's red ring)."""


def segments(dd: DeepDive) -> pd.DataFrame:
    """Every segment-vs-rest test of the experiment over the deep dive's window (the lift tile's
    family: every outcome metric, every user-attribute slice of the experiment; BH-adjusted),
    with ``flagged`` where the adjusted p-value is below the lift tile's level."""
    from expkit.tiles.arms import shown_treatments
    from expkit.tiles.lift import SEGMENT_ALPHA, segment_frame, segment_stats

    p = dd.scope
    out = segment_frame(segment_stats(p), p.config.control, shown_treatments(p))
    return out.assign(flagged=out["adj_pvalue"].lt(SEGMENT_ALPHA).to_numpy())


def lift_frame(dd: DeepDive, tests: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per treatment arm, listed metric and value of every listed slice (plus the overall
    ``slice = "all"`` rows): the lift tile's comparison fields (:func:`expkit.tiles.lift.lift_frame`),
    ``slice``, and :data:`FLAG_COLUMN` (the value's effect differs from the rest's, per ``tests``
    of :func:`segments`)."""
    from expkit.tiles.lift import lift_frame as tile_lift_frame
    from expkit.tiles.srm import srm_check

    p = dd.scope
    tests = segments(dd) if tests is None else tests
    check = srm_check(p)
    parts = []
    for i, slice_ in enumerate(dd.slices):
        frame = tile_lift_frame(replace(p, slice=slice_), check)
        if frame.empty:
            continue
        frame = frame.assign(slice=np.where(frame["slice_value"].eq("all"), "all", slice_))
        parts.append(frame if i == 0 else frame[frame["slice"] != "all"])
    if not parts:
        overall = tile_lift_frame(p, check)
        if overall.empty:
            return overall
        parts = [overall.assign(slice="all")]
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[frame["metric"].isin(dd.metrics)].reset_index(drop=True)
    flagged = tests[tests["flagged"]]
    keys = set(zip(flagged["bucket"], flagged["metric"], flagged["slice"], flagged["value"].astype(str), strict=True))
    frame[FLAG_COLUMN] = [(b, m, s, str(v)) in keys for b, m, s, v in
                          zip(frame["bucket"], frame["metric"], frame["slice"], frame["slice_value"], strict=True)]
    return frame


LIFT_COLUMNS = ["bucket", "metric", "slice", "slice_value", "users_control", "users_treatment", "rel_lift", "rel_low",
                "rel_high", "seq_low", "seq_high", "pvalue", "adj_pvalue", "cuped", FLAG_COLUMN, "untrustworthy"]
"""The columns of the lift section's table."""


def lift_section(dd: DeepDive) -> Section:
    """Every listed metric's lift per slice value as a forest plot, flagged segments ringed in red."""
    from expkit.charts import forest_chart
    from expkit.tiles.lift import segment_note

    p = dd.scope
    tests = segments(dd)
    frame = lift_frame(dd, tests)
    if frame.empty or frame["rel_lift"].isna().all():
        return Section("Lift per slice", f"No data: no comparable arms in the {dd.window} window ending "
                       f"{dd.event_date}", status="no_data")
    flagged = tests[tests["flagged"] & tests["metric"].isin(dd.metrics) & tests["slice"].isin(dd.slices)]
    cat = p.config.catalogue
    charts = []
    for metric in dd.metrics:
        rows = frame[frame["metric"] == metric]
        if rows.empty:
            continue
        label = ["all users" if s == "all" else f"{s} = {v}" for s, v in zip(rows["slice"], rows["slice_value"],
                                                                             strict=True)]
        data = rows.assign(row=label, arm=rows["bucket"])
        charts.append(forest_chart(
            data, label="row", estimate="rel_lift", low="rel_low", high="rel_high", outer_low="seq_low",
            outer_high="seq_high", color="arm", flag=FLAG_COLUMN,
            title=f"{cat[metric].title}: relative lift vs {p.config.control} ({dd.window}); thick 95%, thin "
                  "always-valid; red ring: effect differs from the rest (BH-adjusted p < 0.05)"))
    tested = int(tests["pvalue"].notna().sum())
    summary = (f"{len(flagged)} segment{'s' if len(flagged) != 1 else ''} whose effect differs from the rest, "
               f"of {tested} segment-vs-rest tests (Benjamini–Hochberg over all of them)")
    notes = [segment_note(r) for r in flagged.sort_values("adj_pvalue").to_dict("records")]
    skipped = [s for s in dd.slices if s not in set(frame["slice"])]
    if skipped:
        notes.append(f"no rows for slice {', '.join(skipped)} (per-user metrics have no impression-attribute slices)")
    return Section("Lift per slice", summary, notes, charts, frame[LIFT_COLUMNS])


def cumulative_lift(dd: DeepDive) -> pd.DataFrame:
    """Per experiment day, treatment arm and listed metric: the lift over the experiment to that
    day (window ``cum``) twice, CUPED-adjusted (``cuped_on`` True, where the rollups carry the
    pre-period) and unadjusted (``cuped_on`` False)."""
    from expkit.estimates import compare_frame
    from expkit.readers import PRE_STAT_COLUMNS, ratio_stats_table
    from expkit.tiles.arms import shown_treatments, tuning_n
    from expkit.tiles.srm import experiment_days

    p = dd.scope
    treatments = shown_treatments(p)
    stats = ratio_stats_table(replace(p, slice="bucket"), dd.metrics, ["cum"], experiment_days(p))
    if stats.empty or not treatments:
        return pd.DataFrame()
    key = ("day", "metric", "slice_value")
    on = compare_frame(stats, p.config.control, treatments, tuning_n(p), key=key)
    off = compare_frame(stats.drop(columns=PRE_STAT_COLUMNS), p.config.control, treatments, tuning_n(p), key=key)
    if on.empty:
        return on
    return pd.concat([on.assign(cuped_on=True), off.assign(cuped_on=False)], ignore_index=True)


def timeline_section(dd: DeepDive) -> Section:
    """The cumulative lift of each listed metric per day with CUPED on and off, and the variance
    CUPED removed on the last day."""
    from expkit.charts import DAY_AXIS, bands_chart

    p = dd.scope
    lift = cumulative_lift(dd)
    if lift.empty:
        return Section("Timeline, CUPED on and off", f"No data: no experiment day up to {dd.event_date}",
                       status="no_data")
    cat = p.config.catalogue
    adjusted = lift[lift["cuped_on"]]
    series = np.where(lift["cuped_on"] & lift["cuped"], "CUPED on",
                      np.where(lift["cuped_on"], "CUPED on (no pre-period)", "CUPED off"))
    data = lift.assign(day=pd.to_datetime(lift["day"]), metric=[cat[m].title for m in lift["metric"]],
                       line=[f"{a} · {s}" for a, s in zip(lift["bucket"], series, strict=True)], zero=0.0)
    chart = bands_chart(data, x="day", y="rel_lift", bands=[("rel_low", "rel_high")], color="line",
                        reference="zero", facet="metric", value_format="+.1%", x_axis=DAY_AXIS,
                        title=f"Cumulative lift vs {p.config.control}, CUPED on and off: 95% band")
    last = adjusted[adjusted["day"] == adjusted["day"].max()]
    notes = [f"{cat[r.metric].title}, {r.bucket}: variance {-r.variance_reduction:+.0%} with CUPED on {r.day}"
             for r in last.itertuples() if r.cuped and np.isfinite(r.variance_reduction)]
    if lift["day"].max() < dd.event_date:
        notes.append(f"no data for {dd.event_date}: the last experiment day with statistics is {lift['day'].max()}")
    if not adjusted["cuped"].any():
        notes.append("no pre-period in the rollups: CUPED on equals CUPED off "
                     '(docs/statistics.md, "CUPED from the rollups")')
    table = lift[["day", "bucket", "metric", "cuped_on", "cuped", "users_treatment", "rel_lift", "rel_low",
                  "rel_high", "seq_low", "seq_high", "variance_reduction"]].sort_values(
        ["metric", "bucket", "day", "cuped_on"]).reset_index(drop=True)
    return Section("Timeline, CUPED on and off",
                   f"cumulative lift from {lift['day'].min()} to {lift['day'].max()}, {lift['day'].nunique()} days",
                   notes, [chart], table)


def guardrail_section(dd: DeepDive) -> Section:
    """Each guardrail metric judged against its margin over the deep dive's window, per treatment arm."""
    from expkit.guardrails import guardrail_results

    results = guardrail_results(dd.scope, dd.window)
    rows = [{"bucket": arm, **dataclasses.asdict(g)} for arm, gs in results.items() for g in gs]
    table = pd.DataFrame(rows, columns=["bucket", "metric", "status", "estimate", "low", "high", "margin",
                                        "relative", "reason"])
    if table.empty:
        return Section("Guardrails", "the experiment lists no guardrail_metrics", status="no_data")
    counts = table["status"].value_counts()
    summary = ", ".join(f"{int(counts[s])} {s}" for s in ("fail", "inconclusive", "pass") if s in counts)
    status: Status = "breach" if "fail" in counts else "warn" if "inconclusive" in counts else "ok"
    notes = [f"{r['bucket']}: {r['metric']} {r['status']}" + (f" ({r['reason']})" if r["reason"] else "")
             for r in rows if r["status"] != "pass"]
    return Section("Guardrails", f"{summary} ({dd.window} window, always-valid intervals against the margins)",
                   notes, [], table, status)


def query(dd: DeepDive, template: str, days: Sequence[dt.date | str] | None = None,
          filters: Mapping[str, str | Sequence[str]] | None = None, **values: Any) -> pd.DataFrame:
    """Run query template ``template`` (:data:`expkit.templates.TEMPLATES`) over the warehouse and
    return its rows.

    Each table the template reads is registered from the rollup of that name (its partitions of
    ``days``: dates or ``"YYYY-MM-DD"``; default the report date), else from the event table of
    that name. ``values`` are the template's parameters and ``filters`` its optional filters, all
    bound, never pasted.
    """
    from expkit.readers import connect, run_template
    from expkit.templates import TEMPLATES
    from expkit.warehouse import parse_date

    if template not in TEMPLATES:
        raise ExpkitError(f"unknown query template {template!r}; choose one of {sorted(TEMPLATES)}")
    wh = dd.scope.warehouse
    wanted = [parse_date(d, "parameter days") for d in days] if days is not None else [dd.event_date]
    con = connect()
    try:
        for table in TEMPLATES[template].reads:
            files = wh.rollup_files(table, wanted) if (wh.rollups / table).is_dir() else [
                f for d in wanted for f in wh.event_files(table, d)]
            if not files:
                raise ExpkitError(f"template {template}: no data for table {table!r} on {', '.join(map(str, wanted))}")
            con.register(table, con.read_parquet([str(f) for f in files], union_by_name=True, hive_partitioning=True))
        return run_template(con, template, filters, **values).df()
    finally:
        con.close()


def arm_sums(dd: DeepDive, metric: str, arm: str, cuped: bool = True) -> dict[str, float]:
    """The per-user sums of ``metric`` in ``arm`` over the deep dive's window (every user), as
    the :mod:`expkit.stats` functions take them (``n``, ``sum_num`` …; with ``cuped`` also the
    pre-period cross sums when the rollups carry them)."""
    from expkit.readers import ALL_STAT_COLUMNS, STAT_COLUMNS, ratio_stats

    stats = ratio_stats(replace(dd.scope, slice="bucket"), metric)
    row = stats[(stats["bucket"] == arm) & (stats["slice_value"] == "all")]
    if row.empty:
        raise ExpkitError(f"no users of arm {arm!r} for {metric} in the {dd.window} window ending {dd.event_date}")
    cols = ALL_STAT_COLUMNS if cuped else STAT_COLUMNS
    return {c: float(row.iloc[0][c]) for c in cols if np.isfinite(float(row.iloc[0][c]))}


def save_sidecar(dd: DeepDive, readout: Section, path: str | Path | None) -> None:
    """Write the page's sidecar (the readout's status and verdict line, the parameters, the data's
    time) atomically; nothing when ``path`` is None."""
    from expkit.tiles.common import data_as_of

    if path:
        atomic_write_json(path, {"tile": "deepdive", "section": "deepdive", "title": "Deep dive",
                                 "status": readout.status, "headline": {}, "summary": readout.summary,
                                 "params": dd.describe(), "as_of": data_as_of(dd.scope),
                                 "experiment_id": dd.experiment_id})
