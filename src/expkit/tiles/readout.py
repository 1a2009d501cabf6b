"""The readout tile: is the treatment winning, can we trust it, should we ship (docs/readout.md).

Over the experiment to date (the ``cum`` window, from ``start_date`` to the report date), per
treatment arm: the primary metric's relative lift with its fixed-horizon and always-valid
intervals, the guardrails judged against their margins, the progress towards the sample the
``mde`` needs, and the trust gates (SRM overall and on any day, the day's validation, users in
several arms, P1/P2 alerts and kill switches of the day, and, with a CUPED pre-period, that
the arms did not differ before the start). After the verdict's own reasons come the findings
that do not change it (:func:`findings`): a lift that decays with the days since first exposure
("CTR proxy lift falls from +12.0% on day 0 to +3.0% after day 7: novelty ...") and the segments
whose effect differs ("effect differs in region=eu: +15.0% vs +3.0% elsewhere, adjusted p = 0.004
..."). The primary comparison is CUPED-adjusted when the
rollups carry the pre-period (docs/statistics.md, "CUPED from the rollups"). :func:`expkit.decision.decide` turns
them into the verdict (ship / roll_back / keep_running / no_effect / untrustworthy) with its
reasons; the report copies it to ``summary.json`` ``decision`` and to the top of the index.

Status: ``breach`` for ``roll_back`` or ``untrustworthy``, ``ok`` otherwise (the card shows the
verdict itself), ``no_data`` before any user of the experiment.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from expkit.charts import forest_chart
from expkit.decision import (
    ArmEvidence,
    Decision,
    GuardrailResult,
    OverallProgress,
    PrimaryResult,
    ProgressResult,
    TrustGate,
    Verdict,
    decide,
    with_findings,
)
from expkit.estimates import ALPHA
from expkit.guardrails import guardrail_results
from expkit.names import Status
from expkit.readers import PRE_STAT_COLUMNS, STAT_COLUMNS, ratio_stats
from expkit.stats import compare_ratios
from expkit.stats.compare import Comparison, pre_period_balance
from expkit.stats.progress import progress
from expkit.tiles.arms import arm_level, tuning_n, with_all_arms
from expkit.tiles.base import SHOWN_ONLY, TileParams, TileResult
from expkit.tiles.common import no_data_result, typed_result
from expkit.tiles.exposure import novelty, novelty_note
from expkit.tiles.segments import flagged_segments, segment_frame, segment_note, segment_stats
from expkit.tiles.srm import srm_check, srm_days
from expkit.trust import alerts_gate, bucket_gate, srm_gate, validation_gate

TITLE = "Readout"
WINDOW = "cum"
"""The readout judges the experiment to date."""
STATUS_OF: dict[str, Status] = {
    "ship": "ok", "keep_running": "ok", "no_effect": "ok", "roll_back": "breach", "untrustworthy": "breach",
}
"""The tile's status per verdict (its card shows the verdict itself)."""


class Comparisons(NamedTuple):
    """The treatment arms' comparisons with the control over the window, vectorized over arms.

    Attributes:
        arms: the treatment arms compared (those with users).
        result: :func:`expkit.stats.compare_ratios` (CUPED-adjusted when ``cuped``).
        n_control, n_treatment: users per arm (control repeated per treatment arm).
        cuped: whether the pre-period covariate was used (docs/statistics.md, CUPED).
        balance: the arms' pre-period comparison (``None`` without a pre-period).
    """

    arms: list[str]
    result: Comparison
    n_control: np.ndarray
    n_treatment: np.ndarray
    cuped: bool
    balance: Comparison | None


def comparisons(p: TileParams, metric: str) -> Comparisons | None:
    """``metric`` compared arm against control over the experiment to date; ``None`` without
    users in the control."""
    stats = ratio_stats(with_all_arms(arm_level(p)), metric, window=WINDOW)
    stats = stats[stats["slice_value"] == "all"].set_index("bucket")
    control = p.config.control
    arms = [a for a in p.config.treatments if a in stats.index]
    if control not in stats.index or not arms or stats.loc[control, "n"] <= 0:
        return None
    cols = [*STAT_COLUMNS, *(k for k in PRE_STAT_COLUMNS if k in stats.columns)]
    c = {k: np.full(len(arms), float(stats.loc[control, k])) for k in cols}
    t = {k: stats.loc[arms, k].to_numpy(float) for k in cols}
    cuped = len(cols) == len(STAT_COLUMNS) + len(PRE_STAT_COLUMNS) and bool(
        np.all([np.isfinite(a[k]) for a in (c, t) for k in PRE_STAT_COLUMNS]) and c["sum_pre_den"][0] > 0)
    r = compare_ratios(c, t, alpha=ALPHA, sequential=True, tuning_n=tuning_n(p), covariate=cuped)
    balance = pre_period_balance(c, t) if cuped else None
    return Comparisons(arms, r, c["n"], t["n"], cuped, balance)


def balance_gate(balance: Comparison, arms: list[str], metric: str, threshold: float) -> TrustGate:
    """The pre-period imbalance gate: users' behaviour before the start cannot differ between
    arms unless randomization is broken (same strict level as SRM)."""
    pvalues = np.atleast_1d(balance.pvalue)
    bad = [f"{a} p = {pv:.2g}" for a, pv in zip(arms, pvalues, strict=True) if np.isfinite(pv) and pv < threshold]
    if bad:
        return TrustGate("pre_period_balance", "fail",
                         f"the arms' {metric} before the start differs ({', '.join(bad)} < {threshold:g})")
    return TrustGate("pre_period_balance", "pass", f"the arms' {metric} before the start agrees")


def readout(p: TileParams) -> Decision | None:
    """The verdict of the experiment on the report date (``None`` before any user)."""
    cfg = p.config
    primary = cfg.catalogue[cfg.primary_metric]
    found = comparisons(p, cfg.primary_metric)
    if found is None:
        return None
    arms, r = found.arms, found.result
    days_run = max((p.event_date - cfg.start_date).days + 1, 0)
    prog = progress(r, found.n_control, found.n_treatment, days_run, mde=cfg.mde)
    guards = guardrail_results(p, WINDOW)
    check = srm_check(p, WINDOW)
    gates = [srm_gate(check.pvalue, check.threshold, srm_days(p)), validation_gate(p.checks),
             bucket_gate(p.checks), alerts_gate(p.alerts, p.event_date)]
    if found.balance is not None:  # with a CUPED pre-period
        gates.append(balance_gate(found.balance, arms, primary.title, cfg.srm_pvalue_threshold))
    evidence = {
        arm: ArmEvidence(PrimaryResult.from_comparison(primary.title, r, index=i),
                         ProgressResult.from_progress(prog, days_run, index=i), guards.get(arm, []))
        for i, arm in enumerate(arms)
    }
    return decide(evidence, trust=gates, min_days=cfg.min_days, mde=cfg.mde, direction=primary.direction)


def findings(p: TileParams) -> list[str]:
    """What the deep dives found over the experiment to date, as sentences for the reasons: each
    metric whose lift decays with the days since first exposure (:mod:`expkit.tiles.exposure`), then
    each segment whose effect differs (:mod:`expkit.tiles.segments`), largest evidence first."""
    scope = dataclasses.replace(p, window=WINDOW)
    arms = list(p.config.treatments)
    cat = p.config.catalogue
    trends = novelty(scope, arms).trends
    decaying = trends[trends["verdict"] == "decaying"].sort_values("adj_pvalue")
    out = [novelty_note(r, cat[r["metric"]].title) for r in decaying.to_dict("records")]
    segments = flagged_segments(segment_frame(segment_stats(scope), p.config.control, arms))
    return out + [segment_note(r) for r in segments.to_dict("records")]


def _guardrail_detail(g: GuardrailResult) -> str:
    kind = "relative lift" if g.relative else "difference"
    if not math.isfinite(g.estimate):
        return f"no comparison: {g.reason or 'no data'} (margin: {kind} {g.margin:g})"
    if g.relative:
        return f"{kind} {g.estimate:+.1%} (always-valid {g.low:+.1%} to {g.high:+.1%}), margin {g.margin:.0%}"
    return f"{kind} {g.estimate:+.4g} (always-valid {g.low:+.4g} to {g.high:+.4g}), margin {g.margin:g}"


def _table(decision: Decision) -> pd.DataFrame:
    rows = [{"arm": "all", "kind": "trust gate", "name": g.gate, "status": g.status, "detail": g.detail}
            for g in decision.trust]
    for arm, a in decision.arms.items():
        rows += [{"arm": arm, "kind": "guardrail", "name": g.metric, "status": g.status,
                  "detail": _guardrail_detail(g)} for g in a.evidence.guardrails]
    return pd.DataFrame(rows, columns=["arm", "kind", "name", "status", "detail"])


@dataclass(frozen=True)
class ReadoutArm:
    """One treatment arm's verdict (``headline.arms.<arm>``).

    Attributes:
        verdict: the arm's verdict; reasons: why, in plain sentences.
        primary: the primary metric's relative lift with both intervals.
        guardrails: each guardrail judged against its margin.
    """

    verdict: Verdict
    reasons: list[str]
    primary: PrimaryResult
    guardrails: list[GuardrailResult]


@dataclass(frozen=True)
class Readout:
    """What the readout tile computed: the verdict (its headline, in this order, is summary.json's
    ``decision`` plus the window).

    Attributes:
        verdict: the experiment's verdict (most severe over arms); reasons: its reasons, then
            the findings that do not change it.
        arms: treatment arm → :class:`ReadoutArm`.
        progress: the progress towards the required sample (:meth:`Decision.progress`).
        trust: every trust gate once (:meth:`Decision.gates`).
        window: :data:`WINDOW`.
        decision: the :class:`~expkit.decision.Decision` it shows.
    """

    verdict: Verdict
    reasons: list[str]
    arms: dict[str, ReadoutArm]
    progress: OverallProgress
    trust: list[TrustGate]
    window: str
    decision: Decision = field(metadata=SHOWN_ONLY)

    @property
    def status(self) -> Status:
        """:data:`STATUS_OF` the verdict."""
        return STATUS_OF[self.verdict]

    @property
    def notes(self) -> list[str]:
        """The reasons, shown under the headline."""
        return list(self.reasons)


def compute_readout(p: TileParams) -> Readout | None:
    """The verdict over the experiment to date with the findings beside it; ``None`` before any user."""
    decision = readout(p)
    if decision is None:
        return None
    decision = with_findings(decision, findings(p))
    arms = {arm: ReadoutArm(a.verdict, list(a.reasons), a.evidence.primary, list(a.evidence.guardrails))
            for arm, a in decision.arms.items()}
    return Readout(verdict=decision.verdict, reasons=list(decision.reasons), arms=arms,
                   progress=decision.progress(), trust=decision.gates(), window=WINDOW, decision=decision)


def render_readout(p: TileParams, r: Readout) -> TileResult:
    """The readout tile's page: the verdict and its reasons, the forest chart of the primary
    lift per arm, the table of trust gates and guardrails."""
    primary = p.config.catalogue[p.config.primary_metric]
    lifts = pd.DataFrame([{"arm": arm, **{k: getattr(a.primary, k)
                                          for k in ("rel_lift", "rel_low", "rel_high", "seq_low", "seq_high")}}
                          for arm, a in r.arms.items()])
    chart = forest_chart(lifts.fillna(np.nan), label="arm", estimate="rel_lift", low="rel_low", high="rel_high",
                         outer_low="seq_low", outer_high="seq_high",
                         title=f"{primary.title}: relative lift vs {p.config.control}, experiment to date "
                               "(thick 95%, thin always-valid)")
    summary = f"{r.verdict.replace('_', ' ')}: " + "; ".join(r.reasons)
    return typed_result(p, "outcomes", TITLE, r, summary, _table(r.decision), [chart])


def readout_tile(p: TileParams) -> TileResult:
    """The readout tile: :func:`compute_readout`, then :func:`render_readout`."""
    r = compute_readout(p)
    if r is None:
        return no_data_result(p, "readout", "outcomes", TITLE,
                              f"no users of the experiment from {p.config.start_date} to {p.event_date}")
    return render_readout(p, r)
