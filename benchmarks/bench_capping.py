"""Benchmark: what capping per-user values does to a lift, by simulation (bias against variance).

Per-user plays with heavy tails: each user's rate is lognormal (sigma 1.2), her count Poisson,
and 0.2% of users are "bots" with 50 times the rate. The treatment multiplies every rate by
1.05, so the true lift of the uncapped mean is +5%. Each replication draws two arms, then
compares the per-user mean uncapped and capped at the pooled quantile (both arms, non-zero
values, ``np.quantile(method="linear")``, as ``ratio_stats`` does) of 0.999 and 0.99, with
:func:`expkit.stats.compare_ratios` on the per-user sums (denominator 1 per user). Reported per
variant: mean and standard deviation of the relative lift, median 95% interval width, how
often the interval covers +5% (the uncapped truth), power (p < 0.05), and the false-positive
rate on A/A data (no treatment effect).

    .venv/bin/python benchmarks/bench_capping.py                 # 1,000 replications of 2 x 5,000 users
    .venv/bin/python benchmarks/bench_capping.py --reps 200      # quicker
"""

from __future__ import annotations

import argparse

import numpy as np

from expkit.stats import compare_ratios

LIFT = 0.05
VARIANTS = {"uncapped": None, "cap 99.9th": 0.999, "cap 99th": 0.99}


def _sums(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-user-mean sums of each row of ``x`` (replications × users), denominator 1 per user."""
    n = np.full(x.shape[0], float(x.shape[1]))
    return {"n": n, "sum_num": x.sum(axis=1), "sum_den": n, "sum_num2": (x * x).sum(axis=1), "sum_den2": n,
            "sum_numden": x.sum(axis=1)}


def _users(rng: np.random.Generator, reps: int, users: int, factor: float) -> np.ndarray:
    rate = rng.lognormal(0.5, 1.2, (reps, users)) * np.where(rng.random((reps, users)) < 0.002, 50.0, 1.0)
    return rng.poisson(rate * factor).astype(float)


def _cap(c: np.ndarray, t: np.ndarray, q: float | None) -> tuple[np.ndarray, np.ndarray]:
    if q is None:
        return c, t
    both = np.concatenate([c, t], axis=1)
    limit = np.array([np.quantile(row[row != 0], q, method="linear") for row in both])[:, None]
    return np.minimum(c, limit), np.minimum(t, limit)


def run(reps: int, users: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    c, t, aa = _users(rng, reps, users, 1.0), _users(rng, reps, users, 1.0 + LIFT), _users(rng, reps, users, 1.0)
    lines = [f"{reps} replications of 2 x {users} users; true lift of the uncapped mean +{LIFT:.0%}",
             "variant | mean lift | sd of lift | median CI width | covers +5% | power | A/A false positives"]
    for name, q in VARIANTS.items():
        r = compare_ratios(*[_sums(x) for x in _cap(c, t, q)])
        a = compare_ratios(*[_sums(x) for x in _cap(c, aa, q)])
        lift = np.asarray(r.rel_lift)
        covers = (np.asarray(r.rel_low) <= LIFT) & (LIFT <= np.asarray(r.rel_high))
        lines.append(f"{name} | {lift.mean():+.2%} | {lift.std():.2%} | "
                     f"{np.median(np.asarray(r.rel_high) - np.asarray(r.rel_low)):.2%} | {covers.mean():.1%} | "
                     f"{(np.asarray(r.rel_pvalue) < 0.05).mean():.1%} | {(np.asarray(a.rel_pvalue) < 0.05).mean():.1%}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=20261205)
    args = parser.parse_args()
    print("\n".join(run(args.reps, args.users, args.seed)))


if __name__ == "__main__":
    main()
