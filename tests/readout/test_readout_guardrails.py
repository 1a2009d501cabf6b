"""Guardrails from the rollups (docs/readout.md, "Guardrails"): error rate and coverage as per-user
ratio metrics of the catalogue, checked against pandas over the raw request events, and the
judgment of a treatment with an error burst against a clean warehouse."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from expkit.config import load_experiment
from expkit.guardrails import guardrail_results
from expkit.histogram import LN_GAMMA, bucket_index
from expkit.metrics_sql import ratio_stats_query
from expkit.readers import STAT_COLUMNS, ReadScope, latency_quantile_stats, ratio_stats
from expkit.rollup import build_range
from expkit.stats.guardrails import QUANTILE_KEYS, quantile_arm, quantile_sums
from expkit.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "params" / "experiment.yaml"
START = dt.date(2026, 11, 1)  # start_date of params/experiment.yaml
END = dt.date(2026, 11, 2)


def _warehouse(root: Path, incidents: tuple[str, ...] = ()) -> Warehouse:
    from expkit.synth import generate

    generate(root, days=2, end=END, users=800, seed=11, incidents=incidents)
    build_range(root, START, END, load_experiment(PARAMS))
    return Warehouse.open(root)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return _warehouse(tmp_path_factory.mktemp("clean") / "warehouse")


@pytest.fixture(scope="module")
def burst(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """The pipeline's commands: ``expkit synth`` with a 10-hour error burst in treatment, ``expkit rollup``."""
    root = tmp_path_factory.mktemp("burst") / "warehouse"
    expkit = [sys.executable, "-m", "expkit.cli"]
    for args in (["synth", "--quiet", "--params", str(PARAMS), "--out", str(root), "--days", "2",
                  "--end", END.isoformat(), "--users", "800", "--seed", "11",
                  "--incident", "error_burst@08:00/600:treatment"],
                 ["rollup", "--quiet", "--params", str(PARAMS), "--warehouse", str(root),
                  "--date", START.isoformat(), "--to", END.isoformat()]):
        proc = subprocess.run([*expkit, *args], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
    return Warehouse.open(root)


def _scope(wh: Warehouse) -> ReadScope:
    cfg = load_experiment(PARAMS)
    return ReadScope(event_date=END, window="cum", slice="bucket", filters={}, buckets=list(cfg.buckets),
                     config=cfg, warehouse=wh)


# --- the shipped catalogue ------------------------------------------------------------------

def test_shipped_catalogue_guardrails_are_outcome_metrics() -> None:
    cfg = load_experiment(PARAMS)
    assert cfg.outcome_metrics[-2:] == ["coverage", "error_rate"]
    assert cfg.catalogue["latency_p95"].kind == "health"
    assert "'error_rate'" in ratio_stats_query(cfg.catalogue).template.sql


# --- per-user sums against pandas over the raw events ---------------------------------------

def _pandas_sums(wh: Warehouse) -> pd.DataFrame:
    """Per arm n and the five per-user sums of error_rate and coverage, from the raw requests
    (pandas; shadow traffic excluded, a user's arm is the bucket of their first request)."""
    req = pd.concat(pd.read_parquet(f) for f in sorted((wh.root / "events" / "requests").rglob("*.parquet")))
    req = req[~req["shadow"]].sort_values("timestamp_ms")
    req["error"] = (req["status"] == "error").astype(float)
    req["covered"] = ((req["status"] == "ok") & (req["k_returned"] >= 1)).astype(float)
    per_user = req.groupby("user_id").agg(bucket=("bucket", "first"), errors=("error", "sum"),
                                          covered=("covered", "sum"), requests=("error", "size"))
    rows = []
    for metric, num in (("error_rate", "errors"), ("coverage", "covered")):
        for bucket, g in per_user.groupby("bucket"):
            x, y = g[num].to_numpy(float), g["requests"].to_numpy(float)
            rows.append({"metric": metric, "bucket": bucket, "n": len(g), "sum_num": x.sum(), "sum_den": y.sum(),
                         "sum_num2": (x * x).sum(), "sum_den2": (y * y).sum(), "sum_numden": (x * y).sum()})
    return pd.DataFrame(rows)


def test_error_rate_and_coverage_sums_match_pandas(burst: Warehouse) -> None:
    expected = _pandas_sums(burst)
    scope = _scope(burst)
    for metric in ("error_rate", "coverage"):
        got = ratio_stats(scope, metric, window="cum").set_index("bucket")
        want = expected[expected["metric"] == metric].set_index("bucket")
        assert sorted(got.index) == sorted(want.index)
        for b in want.index:
            np.testing.assert_allclose(got.loc[b, STAT_COLUMNS].to_numpy(float),
                                       want.loc[b, STAT_COLUMNS].to_numpy(float), rtol=1e-12)
    # the burst is in the data: treatment's error rate is well above control's
    er = expected[expected["metric"] == "error_rate"].set_index("bucket")
    rate = er["sum_num"] / er["sum_den"]
    assert rate["treatment"] > rate["control"] + 0.005


# --- judgments -----------------------------------------------------------------------------

def test_error_burst_in_treatment_fails_error_rate(burst: Warehouse) -> None:
    results = guardrail_results(_scope(burst))
    assert list(results) == ["treatment"]
    by_metric = {r.metric: r for r in results["treatment"]}
    assert list(by_metric) == ["coverage", "error_rate", "latency_p95"]
    er = by_metric["error_rate"]
    assert er.status == "fail", er
    assert er.margin == pytest.approx(0.001) and not er.relative
    assert er.low > 0.001 and er.low <= er.estimate <= er.high
    assert er.reason == ""
    # errored requests return no item: coverage falls by as much, within its margin of -1 point
    cov = by_metric["coverage"]
    assert cov.margin == pytest.approx(-0.01)
    assert cov.estimate == pytest.approx(-er.estimate, rel=1e-9)
    assert cov.status == "pass" and cov.low > -0.01


def test_clean_warehouse_fails_no_guardrail(clean: Warehouse) -> None:
    results = guardrail_results(_scope(clean))
    statuses = {r.metric: r.status for r in results["treatment"]}
    assert "fail" not in statuses.values(), results
    # the synthetic service fails 1 request in 100,000 and always returns items: no error and full
    # coverage in both arms of this small warehouse, so the difference has no interval
    for r in results["treatment"]:
        if r.metric in ("coverage", "error_rate"):
            assert r.status == "inconclusive" and r.estimate == 0 and r.reason == "zero variance in both arms"
    # the same latency distribution in both arms: p95 within its +10% margin
    lat = next(r for r in results["treatment"] if r.metric == "latency_p95")
    assert lat.relative and lat.margin == pytest.approx(0.10)
    assert np.isfinite([lat.estimate, lat.low, lat.high]).all() and lat.low < lat.estimate < lat.high
    assert lat.status in ("pass", "inconclusive") and lat.reason == ("" if lat.status == "pass" else lat.reason)


def test_no_rollup_is_inconclusive_with_a_reason(tmp_path: Path) -> None:
    wh = Warehouse.open(tmp_path, must_exist=False)  # no events, no rollups
    results = guardrail_results(_scope(wh))
    for r in results["treatment"]:
        assert r.status == "inconclusive" and r.reason.startswith("no data"), r
        assert np.isnan(r.estimate)


# --- the latency quantile per arm against gbstats, from the raw events ------------------------

def _requests(wh: Warehouse) -> pd.DataFrame:
    """Non-shadow requests (pandas over the event files), each with its user's arm at first request."""
    req = pd.concat(pd.read_parquet(f) for f in sorted((wh.root / "events" / "requests").rglob("*.parquet")))
    req = req[~req["shadow"]].sort_values(["timestamp_ms", "request_id"], kind="stable")
    first = req.groupby("user_id")["bucket"].first()
    return req.assign(arm=req["user_id"].map(first))


def _gb(stats: dict[str, float]):  # noqa: ANN202
    gb = pytest.importorskip("gbstats.models.statistics", reason="gbstats not installed (make venv)")
    return gb.QuantileClusteredStatistic(
        n=int(stats["n_events"]), n_star=int(stats["n_events"]), nu=float(stats["nu"]),
        quantile_hat=float(stats["quantile"]), quantile_lower=float(stats["quantile_lower"]),
        quantile_upper=float(stats["quantile_upper"]), main_sum=float(stats["sum_below"]),
        main_sum_squares=float(stats["sum_below2"]), denominator_sum=float(stats["sum_events"]),
        denominator_sum_squares=float(stats["sum_events2"]),
        main_denominator_sum_product=float(stats["sum_below_events"]), n_clusters=int(stats["n"]))


def _histogram_quantile_sums(latency: np.ndarray, users: np.ndarray, nu: float) -> dict[str, float]:
    """The statistics of the latency quantile ``nu`` from the histogram of the raw latencies (numpy and
    pandas): values of rank h = p N read log-linearly inside their bucket, per-user events below the
    quantile with its bucket shared pro rata (docs/readout.md, "Guardrails")."""
    z = 1.959963984540054  # z_0.975 (scipy.stats.norm.ppf)
    idx = bucket_index(latency)
    buckets, counts = np.unique(idx, return_counts=True)
    cum = np.cumsum(counts).astype(float)
    n_ev = float(len(latency))

    def at(h: float) -> tuple[int, float, float]:
        i = int(np.searchsorted(cum, h, side="left"))
        frac = (h - (cum[i] - counts[i])) / counts[i]
        return int(buckets[i]), frac, float(np.exp(LN_GAMMA * (buckets[i] - 1 + frac)))

    half = z * np.sqrt(nu * (1 - nu) / n_ev)
    idx_q, frac_q, q = at(nu * n_ev)
    lo, hi = at(max(nu - half, 0) * n_ev)[2], at(min(nu + half, 1) * n_ev)[2]
    below = np.where(idx < idx_q, 1.0, np.where(idx == idx_q, frac_q, 0.0))
    per_user = pd.DataFrame({"user": users, "below": below}).groupby("user")["below"].agg(["sum", "size"])
    b, e = per_user["sum"].to_numpy(float), per_user["size"].to_numpy(float)
    return {"n_events": n_ev, "n": len(per_user), "nu": nu, "quantile": q, "quantile_lower": lo,
            "quantile_upper": hi, "sum_below": b.sum(), "sum_below2": (b * b).sum(), "sum_events": e.sum(),
            "sum_events2": (e * e).sum(), "sum_below_events": (b * e).sum()}


def test_latency_quantile_matches_gbstats_from_raw_events(burst: Warehouse) -> None:
    """Per arm, the rollup's p95 statistics against pandas over the raw requests, fed to gbstats
    0.8.0's QuantileClusteredStatistic, and against the exact order statistics of the raw latencies."""
    nu = 0.95
    got = latency_quantile_stats(_scope(burst), "cum").set_index("bucket")
    req = _requests(burst)
    assert sorted(got.index) == ["control", "treatment"]
    for arm, g in req.groupby("arm"):
        want = _histogram_quantile_sums(g["latency_ms"].to_numpy(), g["user_id"].to_numpy(), nu)
        row = got.loc[arm]
        for k in QUANTILE_KEYS:
            assert row[k] == pytest.approx(want[k], rel=1e-9), (arm, k)
        gb = _gb(want)
        a = quantile_arm({k: row[k] for k in QUANTILE_KEYS})
        assert float(a.estimate) == pytest.approx(gb.mean, rel=1e-12)
        assert float(a.var) == pytest.approx(gb.variance / gb.n, rel=1e-9)
        # the exact order statistics of the raw latencies (numpy's linear quantile, per-user events at
        # or below it) agree to the histogram's resolution: estimate within 1%, standard error within 10%
        codes = pd.factorize(g["user_id"])[0]
        exact = quantile_arm({k: v for k, v in quantile_sums(g["latency_ms"].to_numpy(), codes, nu).items()})
        assert float(a.estimate) == pytest.approx(float(exact.estimate), rel=0.01)
        assert np.sqrt(float(a.var)) == pytest.approx(np.sqrt(float(exact.var)), rel=0.10)
