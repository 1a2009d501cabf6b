"""Guardrails of an experiment: each treatment arm against control (docs/readout.md, "Guardrails").

Every metric of ``guardrail_metrics`` is compared arm against control on its always-valid
interval (the experiment's ``sequential_tuning_n``) and judged against its margin
(:meth:`expkit.config.ExperimentConfig.margin`) by
:func:`expkit.stats.guardrails.judge_guardrail`: ``pass``, ``fail`` or ``inconclusive``.

A guardrail that is a ratio metric of the catalogue (error rate and coverage are per-user ratios
of requests, docs/metrics.md "Health metrics") reads the same per-user sums as any outcome metric
(``outcome_stats``, delta method per user). ``latency_p95`` is the 95th percentile of request
latency per arm with a user-clustered interval (gbstats' method,
:func:`expkit.stats.guardrails.quantile_arm`) from the per-user latency histograms
(:func:`expkit.readers.latency_quantile_stats`). A guardrail without such a statistic, without
a margin, or without data in either arm is ``inconclusive`` with the reason.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from expkit.config import ExperimentConfig
from expkit.decision import GuardrailResult
from expkit.readers import STAT_COLUMNS, ReadScope, latency_quantile_stats, ratio_stats
from expkit.stats import compare_arms, compare_ratios
from expkit.stats.guardrails import QUANTILE_KEYS, judge_guardrail, quantile_arm

ALPHA = 0.05
"""Two-sided level of the always-valid intervals judged (95%, as every interval shown)."""

QUANTILE_GUARDRAILS = {"latency_p95": 0.95}
"""Guardrails that are a quantile of request latency per arm (id → quantile): user-clustered
quantile intervals from the per-user latency histograms (``user_latency`` rollups)."""

__all__ = ["QUANTILE_GUARDRAILS", "guardrail_results", "inconclusive"]


def inconclusive(metric: str, reason: str, config: ExperimentConfig) -> GuardrailResult:
    """An ``inconclusive`` result without a statistic: NaN estimate and interval, the margin if any."""
    m = config.margin(metric)
    margin = math.nan if m is None else (m.value if m.harm == "increase" else -m.value)
    return GuardrailResult(metric, "inconclusive", math.nan, math.nan, math.nan, margin,
                           bool(m and m.relative), reason)


def _scope(p: ReadScope) -> ReadScope:
    """The whole experiment per arm: no slice and no filter (a guardrail is judged on every user)."""
    return ReadScope(event_date=p.event_date, window=p.window, slice="bucket", filters={},
                     buckets=list(p.config.buckets), config=p.config, warehouse=p.warehouse)


def guardrail_results(p: ReadScope, window: str = "cum") -> dict[str, list[GuardrailResult]]:
    """Per treatment arm, one :class:`~expkit.decision.GuardrailResult` per metric of
    ``guardrail_metrics`` (in that order) over ``window`` ending on ``p.event_date``.

    The interval judged is the always-valid one of the difference treatment − control, or of
    the relative lift when the margin is relative (``max_relative_increase``/``decrease``).
    """
    cfg = p.config
    scope = _scope(p)
    cat = cfg.catalogue
    out: dict[str, list[GuardrailResult]] = {arm: [] for arm in cfg.treatments}
    for metric in cfg.guardrail_metrics:
        margin = cfg.margin(metric)
        if margin is None:
            for arm in out:
                out[arm].append(inconclusive(metric, "no margin: set guardrails." + metric, cfg))
            continue
        if metric in QUANTILE_GUARDRAILS:
            keys: tuple[str, ...] = QUANTILE_KEYS
            stats = latency_quantile_stats(scope, window, QUANTILE_GUARDRAILS[metric])
        elif metric in cat and cat[metric].kind == "ratio":
            stats, keys = ratio_stats(scope, metric, window=window), tuple(STAT_COLUMNS)
        else:
            for arm in out:
                out[arm].append(inconclusive(metric, "no per-user statistic in the rollups", cfg))
            continue
        stats = stats.set_index("bucket")
        if cfg.control not in stats.index:
            for arm in out:
                out[arm].append(inconclusive(metric, f"no data for the control arm {cfg.control}", cfg))
            continue
        control = {k: float(stats.at[cfg.control, k]) for k in keys}
        for arm in out:
            if arm not in stats.index:
                out[arm].append(inconclusive(metric, f"no data for the arm {arm}", cfg))
                continue
            treatment = {k: float(stats.at[arm, k]) for k in keys}
            if metric in QUANTILE_GUARDRAILS:
                comparison = compare_arms(quantile_arm(control), quantile_arm(treatment), alpha=ALPHA,
                                          sequential=True, tuning_n=cfg.sequential_tuning_n)
            else:
                comparison = compare_ratios(control, treatment, alpha=ALPHA, sequential=True,
                                            tuning_n=cfg.sequential_tuning_n)
            judgment = judge_guardrail(comparison, margin.value, "increase" if margin.harm == "increase"
                                       else "decrease", relative=margin.relative, sequential=True)
            estimate = comparison.rel_lift if margin.relative else comparison.diff
            result = GuardrailResult.from_judgment(metric, judgment, np.asarray(estimate),
                                                   relative=margin.relative)
            # a reason explains an inconclusive status (e.g. not the undefined relative lift of a
            # control at 0 when the margin is absolute)
            out[arm].append(result if result.status == "inconclusive" else
                            dataclasses.replace(result, reason=""))
    return out
