"""Benchmark: many slice comparisons of a ratio metric, then Benjamini–Hochberg.

The work measured is what the lift tile does per metric: ``compare_ratios`` with
the always-valid interval over every slice, then BH-adjusted p-values. The same
work done one slice at a time with statsmodels' z-interval helpers (then
``multipletests``) is timed for comparison, and the two results are checked to
agree.

    .venv/bin/python benchmarks/bench_stats.py                 # print only
    .venv/bin/python benchmarks/bench_stats.py --record        # also append to docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import _zconfint_generic, _zstat_generic

import expkit.stats as st

from _common import record


def make_slices(slices: int, users: int, seed: int) -> tuple[dict, dict]:
    """Per-slice ratio sums of two arms of ``users`` heterogeneous users each."""
    rng = np.random.default_rng(seed)

    def arm(lift: float) -> dict:
        imps = rng.poisson(rng.gamma(0.8, 25.0, (slices, users))).astype(float)
        ctr = np.minimum(rng.beta(0.5, 15.0, (slices, users)) * lift, 1.0)
        clicks = rng.binomial(imps.astype(np.int64), ctr).astype(float)
        return st.ratio_sums(clicks, imps, axis=1)

    return arm(1.0), arm(1.05)


def vectorized(control: dict, treatment: dict, tuning_n: float) -> tuple[np.ndarray, ...]:
    r = st.compare_ratios(control, treatment, sequential=True, tuning_n=tuning_n)
    return r.pvalue, st.adjust_pvalues(r.pvalue, "bh"), r.seq_low, r.seq_high


def per_slice_loop(control: dict, treatment: dict, tuning_n: float) -> tuple[np.ndarray, ...]:
    """One slice at a time: delta method by hand, statsmodels for the z interval and test."""
    count = len(control["n"])
    pvalues, seq_low, seq_high = np.empty(count), np.empty(count), np.empty(count)
    rho2 = (-2 * math.log(0.05) + math.log(1 - 2 * math.log(0.05))) / tuning_n
    for i in range(count):
        est, var = [], 0.0
        for arm in (control, treatment):
            n, sn, sd = arm["n"][i], arm["sum_num"][i], arm["sum_den"][i]
            r = sn / sd
            snn = arm["sum_num2"][i] - sn * sn / n
            sdd = arm["sum_den2"][i] - sd * sd / n
            snd = arm["sum_numden"][i] - sn * sd / n
            var += (snn - 2 * r * snd + r * r * sdd) / (n - 1) / (n * (sd / n) ** 2)
            est.append(r)
        diff, se = est[1] - est[0], math.sqrt(var)
        _zconfint_generic(diff, se, 0.05, "two-sided")
        pvalues[i] = _zstat_generic(diff, 0.0, se, "two-sided", 0.0)[1]
        nr2 = (control["n"][i] + treatment["n"][i]) * rho2
        half = math.sqrt(var * 2 * (nr2 + 1) / nr2 * math.log(math.sqrt(nr2 + 1) / 0.05))
        seq_low[i], seq_high[i] = diff - half, diff + half
    return pvalues, multipletests(pvalues, method="fdr_bh")[1], seq_low, seq_high


def timed(fn, *args, repeat: int) -> tuple[float, tuple]:
    """Median wall time in seconds over ``repeat`` runs, and the last result."""
    times, out = [], ()
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=10_000, help="slices compared at once")
    parser.add_argument("--users", type=int, default=100, help="users per arm and slice")
    parser.add_argument("--repeat", type=int, default=21, help="timed runs (median reported)")
    parser.add_argument("--loop-slices", type=int, default=2_000,
                        help="slices for the per-slice loop (scaled to 10k)")
    parser.add_argument("--tuning-n", type=float, default=5000.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--record", action="store_true", help="append the figures to docs/benchmarks.md")
    args = parser.parse_args(argv)

    control, treatment = make_slices(args.slices, args.users, args.seed)
    vectorized(control, treatment, args.tuning_n)  # warm-up (imports, caches)
    t_vec, vec = timed(vectorized, control, treatment, args.tuning_n, repeat=args.repeat)

    k = min(args.loop_slices, args.slices)
    sub_c = {key: v[:k] for key, v in control.items()}
    sub_t = {key: v[:k] for key, v in treatment.items()}
    t_loop, loop = timed(per_slice_loop, sub_c, sub_t, args.tuning_n, repeat=1)
    sub_vec = vectorized(sub_c, sub_t, args.tuning_n)
    agree = max(float(np.nanmax(np.abs(a - b))) for a, b in zip(sub_vec, loop, strict=True))

    vec_ms = t_vec * 1e3 * 10_000 / args.slices
    loop_ms = t_loop * 1e3 * 10_000 / k
    print(f"compare_ratios(sequential=True) + BH over {args.slices} slices "
          f"(median of {args.repeat}): {vec_ms:.1f} ms per 10k slices")
    print(f"per-slice statsmodels loop over {k} slices: {loop_ms:.0f} ms per 10k slices "
          f"({loop_ms / vec_ms:.0f}x slower); max abs difference of results {agree:.1e}")
    if args.record:
        record("expkit.stats", [
            f"compare_ratios(sequential=True) + BH: {vec_ms:.1f} ms per 10k slices "
            f"(median of {args.repeat}); per-slice statsmodels loop {loop_ms:.0f} ms per 10k "
            f"({loop_ms / vec_ms:.0f}x); max abs difference {agree:.1e}",
        ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
