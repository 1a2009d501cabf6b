"""Statistics for experiment analysis, from sufficient statistics (docs/statistics.md).

Pure, vectorized functions: every argument may be a scalar or an array with one
element per slice, and every result field has the broadcast shape of the inputs
(scalar inputs give numpy scalars). Nothing raises on bad data: undefined
results are NaN with an explanation in the result's ``reason`` field ("" when
fine). Invalid *arguments* (unknown method, alpha outside (0, 1), planned
shares not summing to 1) raise ``ValueError``.

Modules:

* :mod:`~expkit.stats.moments`: sums -> centred moments, stable for large offsets.
* :mod:`~expkit.stats.intervals`: one proportion, ratio metric or mean.
* :mod:`~expkit.stats.compare`: two-arm comparisons (z / Welch, lift, Fieller).
* :mod:`~expkit.stats.cuped`: pre-period covariate adjustment.
* :mod:`~expkit.stats.sequential`: always-valid confidence sequences.
* :mod:`~expkit.stats.srm`: sample ratio mismatch.
* :mod:`~expkit.stats.multiple`: Bonferroni, Holm, Hochberg, BH, BY.
* :mod:`~expkit.stats.power`: power, sample size, MDE.
* :mod:`~expkit.stats.anomaly`: classic and robust z against seasonal baselines.
* :mod:`~expkit.stats.guardrails`: non-inferiority judgments, user-clustered quantiles.
* :mod:`~expkit.stats.progress`: required sample, progress and days remaining.
* :mod:`~expkit.stats.heterogeneity`: a segment's lift against the rest's (interaction).

>>> import expkit.stats as st
>>> c = {"n": 4000, "sum_num": 130, "sum_den": 9000, "sum_num2": 310,
...      "sum_den2": 41000, "sum_numden": 1100}
>>> t = dict(c, sum_num=160, sum_num2=380, sum_numden=1350)
>>> r = st.compare_ratios(c, t, sequential=True)
>>> print(f"lift {r.rel_lift:+.1%}, p = {r.pvalue:.3f}, always-valid p = {r.seq_pvalue:.3f}")
lift +23.1%, p = 0.233, always-valid p = 1.000
"""

from .anomaly import AnomalyResult, anomaly_scores, detect_anomalies, seasonal_baseline
from .compare import (
    Comparison,
    compare_arms,
    compare_means,
    compare_proportions,
    compare_ratios,
    pre_period_balance,
)
from .cuped import RATIO_COVARIATE_KEYS, CupedFit, RatioCupedFit, cuped_theta, ratio_cuped
from .guardrails import (
    GUARDRAIL_STATUSES,
    QUANTILE_KEYS,
    GuardrailJudgment,
    judge_guardrail,
    judge_noninferiority,
    quantile_arm,
    quantile_sums,
)
from .heterogeneity import SegmentInteraction, rest_sums, segment_interaction
from .intervals import (
    PROPORTION_METHODS,
    Arm,
    MeanEstimate,
    RatioEstimate,
    mean_estimate,
    proportion_interval,
    ratio_estimate,
)
from .moments import Moments, combine_moments, mean_sums, moments_from_sums, ratio_sums
from .multiple import ADJUST_METHODS, adjust_pvalues
from .novelty import EXPOSURE_KEYS, ExposureTrend, exposure_trend, trend_verdict
from .power import (
    mde_normal,
    mde_proportions,
    mde_ratio,
    power_normal,
    power_proportions,
    ratio_unit_sd,
    sample_size_normal,
    sample_size_proportions,
    sample_size_ratio,
)
from .progress import Progress, progress, required_users
from .sequential import confidence_sequence, mixing_rho2, sequential_pvalue
from .srm import SRMResult, srm_test

__all__ = [
    "ADJUST_METHODS",
    "GUARDRAIL_STATUSES",
    "QUANTILE_KEYS",
    "RATIO_COVARIATE_KEYS",
    "GuardrailJudgment",
    "Progress",
    "RatioCupedFit",
    "judge_guardrail",
    "judge_noninferiority",
    "progress",
    "quantile_arm",
    "quantile_sums",
    "ratio_cuped",
    "required_users",
    "PROPORTION_METHODS",
    "AnomalyResult",
    "Arm",
    "Comparison",
    "CupedFit",
    "MeanEstimate",
    "Moments",
    "RatioEstimate",
    "SRMResult",
    "SegmentInteraction",
    "adjust_pvalues",
    "anomaly_scores",
    "combine_moments",
    "compare_arms",
    "compare_means",
    "compare_proportions",
    "compare_ratios",
    "confidence_sequence",
    "cuped_theta",
    "detect_anomalies",
    "mde_normal",
    "mde_proportions",
    "mde_ratio",
    "mean_estimate",
    "mean_sums",
    "mixing_rho2",
    "moments_from_sums",
    "power_normal",
    "power_proportions",
    "pre_period_balance",
    "proportion_interval",
    "ratio_estimate",
    "ratio_sums",
    "ratio_unit_sd",
    "sample_size_normal",
    "sample_size_proportions",
    "sample_size_ratio",
    "seasonal_baseline",
    "segment_interaction",
    "EXPOSURE_KEYS",
    "ExposureTrend",
    "exposure_trend",
    "trend_verdict",
    "rest_sums",
    "sequential_pvalue",
    "srm_test",
]
