"""The eight health tiles on synthetic warehouses with known incidents (docs/metrics.md, docs/alerts.md).

Every tile is called through ``expkit.run_tile`` exactly as its notebook calls it; the
warehouses come from ``conftest.py`` (clean history, one day with five incidents at distinct
times, one day with traffic imbalance).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pytest

import expkit
from expkit.errors import ExpkitError
from expkit.readers import window_bounds
from expkit.tiles.base import TileResult, headline_of
from expkit.tiles.health_core import Health
from expkit.tiles.registry import HEALTH_IDS, TILES
from expkit.warehouse import BIN_MS

from .conftest import END, INCIDENTS, ROOT, SynthWarehouse

METRIC_TILE = {
    "latency_p95": "latency",
    "error_rate": "errors",
    "topk_fill": "coverage",
    "coverage": "coverage",
    "cache_hit_rate": "cache",
    "freshness": "freshness",
}
"""The tile that judges each metric an incident breaks (truth.json ``metrics``); the
cache failure's warm/cold latency mix is shown on the latency tile, not judged."""
ANOMALY_METRIC = {
    "latency_spike": "latency p95 (ms)",
    "error_burst": "error rate",
    "cache_failure": "cache hit rate",
    "coverage_drop": "coverage",
    "stale_partition": "p95 ingest delay (min)",
}


def run(wh: SynthWarehouse | Path, tile: str, **params: object) -> TileResult:
    root = wh.root if isinstance(wh, SynthWarehouse) else wh
    return expkit.run_tile(tile, warehouse=root, event_date=params.pop("event_date", END.isoformat()), **params)


def breach_ms(result: TileResult) -> set[int]:
    """Bins (start ms) where a breach-level rule fired."""
    return {int(b) for b in result.flagged.loc[result.flagged["level"] == "breach", "bin_ms"].dropna()}


def bins_of(window: tuple[int, int]) -> set[int]:
    start, end = window
    return set(range(start - start % BIN_MS, end, BIN_MS))


@pytest.fixture(scope="module")
def clean_day(clean: SynthWarehouse) -> dict[str, TileResult]:
    return {t: run(clean, t) for t in HEALTH_IDS}


@pytest.fixture(scope="module")
def incident_day(incidents: SynthWarehouse) -> dict[str, TileResult]:
    return {t: run(incidents, t) for t in HEALTH_IDS}


def expected_tiles(wh: SynthWarehouse, incident: str) -> set[str]:
    inc = next(i for i in wh.truth["incidents"] if i["name"] == incident)
    return {METRIC_TILE[m] for m in inc["metrics"] if m in METRIC_TILE}


def test_registry_lists_the_eight_health_tiles_with_current_thin_notebooks() -> None:
    import sys

    import nbformat

    sys.path.insert(0, str(ROOT / "scripts"))
    from make_notebooks import notebook_for

    assert [t for t in TILES if TILES[t].section == "health"] == list(HEALTH_IDS)
    for t in HEALTH_IDS:
        path = ROOT / "notebooks" / "health" / f"{t}.ipynb"
        assert TILES[t].notebook == path
        nb = nbformat.read(path, as_version=4)
        expected = notebook_for(t, TILES[t].title)
        sources = [c.source for c in nb.cells]
        assert sources == [c.source for c in expected.cells], f"run scripts/make_notebooks.py ({t})"


def test_clean_day_every_health_tile_is_ok(clean_day: dict[str, TileResult]) -> None:
    for tile, result in clean_day.items():
        assert result.status == "ok", (tile, result.summary)
        assert result.headline.get("breach_bins", []) == []
        json.dumps(result.sidecar())
        # the compute step's typed result is what the headline shows
        assert isinstance(result.result, Health) and result.headline == headline_of(result.result), tile
        assert result.result.status == result.status and result.result.breach_bin_count == 0, tile


def test_expected_tiles_follow_the_generators_truth(incidents: SynthWarehouse) -> None:
    # Failed requests return no items: the error burst lowers Top-K fill below 99% as well
    # (truth lists topk_fill), so the coverage tile breaches on its fill rate, not coverage.
    assert {i: expected_tiles(incidents, i) for i in INCIDENTS} == {
        "stale_partition": {"freshness"}, "latency_spike": {"latency"}, "coverage_drop": {"coverage"},
        "cache_failure": {"cache"}, "error_burst": {"errors", "coverage"},
    }


@pytest.mark.parametrize("incident", INCIDENTS)
def test_incident_breaches_its_tile_in_its_bins_only(
    incidents: SynthWarehouse, incident_day: dict[str, TileResult], incident: str
) -> None:
    window = bins_of(incidents.window(incident))
    expected = expected_tiles(incidents, incident)
    for tile, result in incident_day.items():
        inside = breach_ms(result) & window
        if tile in expected:
            assert result.status == "breach", (tile, result.summary)
            assert len(inside) >= len(window) / 2, (tile, incident, sorted(inside))
        else:
            assert not inside, f"{tile} breaches during {incident}: {sorted(inside)}"


def test_every_breach_lies_in_an_incident_of_its_tile(
    incidents: SynthWarehouse, incident_day: dict[str, TileResult]
) -> None:
    for tile, result in incident_day.items():
        own = [i for i in INCIDENTS if tile in expected_tiles(incidents, i)]
        allowed = set().union(*(bins_of(incidents.window(i)) for i in own))
        stray = breach_ms(result) - allowed
        assert not stray, f"{tile} breaches outside its incidents: {sorted(stray)[:5]}"
    # the tiles without an incident of their own stay out of breach altogether
    for tile in ("fallback", "volume", "anomaly"):
        assert incident_day[tile].status != "breach"


def test_error_burst_breaks_fill_but_not_coverage(incidents: SynthWarehouse,
                                                  incident_day: dict[str, TileResult]) -> None:
    cov = incident_day["coverage"]
    assert cov.result.metric_status == cov.headline["metric_status"] == {"coverage": "breach", "topk_fill": "breach"}
    burst = bins_of(incidents.window("error_burst"))
    f = cov.flagged[cov.flagged["bin_ms"].isin(burst)]
    assert set(f["metric"]) == {"Top-K fill"}
    drop = bins_of(incidents.window("coverage_drop"))
    assert "coverage" in set(cov.flagged.loc[cov.flagged["bin_ms"].isin(drop), "metric"])


def test_cache_failure_shows_on_the_cold_share_without_a_latency_breach(
    incidents: SynthWarehouse, incident_day: dict[str, TileResult]
) -> None:
    lat = incident_day["latency"].bins
    overall = lat[lat["series"] == "all"].set_index("bin_ms")
    during = overall.loc[sorted(bins_of(incidents.window("cache_failure"))), "cold_share"]
    assert during.min() > 0.5 > overall["cold_share"].median()
    assert not breach_ms(incident_day["latency"]) & bins_of(incidents.window("cache_failure"))


def test_traffic_imbalance_leaves_every_health_tile_ok(imbalance: SynthWarehouse) -> None:
    for tile in HEALTH_IDS:
        result = run(imbalance, tile)
        assert result.status == "ok", (tile, result.summary)


def test_anomaly_tile_flags_every_incident(incidents: SynthWarehouse, incident_day: dict[str, TileResult]) -> None:
    result = incident_day["anomaly"]
    assert result.status == "warn"
    flagged = result.flagged
    for incident, metric in ANOMALY_METRIC.items():
        window = bins_of(incidents.window(incident))
        hit = flagged[(flagged["metric"] == metric) & flagged["bin_ms"].isin(window)]
        assert len(hit) >= len(window) / 2, (incident, metric, len(hit))
    for episode in result.headline["sustained"]:
        start = int(dt.datetime.fromisoformat(episode["start"].replace("Z", "+00:00")).timestamp() * 1000)
        assert any(start in bins_of(incidents.window(i)) for i in INCIDENTS), episode


def test_anomaly_clean_week_flags_at_most_one_percent(clean: SynthWarehouse) -> None:
    result = run(clean, "anomaly", window="7d")
    head = result.headline
    assert head["points_scored"] > 20_000
    assert head["flag_rate"] <= 0.01, head
    assert head["points_insufficient_history"] < head["points_scored"] / 10


def test_anomaly_without_history_says_so(clean: SynthWarehouse) -> None:
    first = END - dt.timedelta(days=10)
    result = run(clean, "anomaly", event_date=first.isoformat())
    assert result.status == "no_data"
    assert result.headline["points_scored"] == 0 and result.headline["points_insufficient_history"] > 0
    # nothing was scored, so nothing can be said about sustained anomalies either
    assert "no sustained anomaly" not in result.summary, result.summary


def _exact(query: str, files: str, params: dict) -> list[float]:
    con = duckdb.connect()
    try:
        return list(con.execute(query.format(files=files), params).fetchone())
    finally:
        con.close()


@pytest.mark.parametrize("window", ["24h", "7d", "30d"])
def test_latency_percentiles_within_one_percent_of_exact(clean: SynthWarehouse, window: str) -> None:
    result = run(clean, "latency", window=window)
    start, end = window_bounds(END, window)
    files = str(clean.root / "events" / "requests" / "*" / "*.parquet")
    query = (
        "SELECT quantile_disc(latency_ms, [0.5, 0.95, 0.99]) FROM read_parquet('{files}') "
        "WHERE NOT shadow AND timestamp_ms >= $lo AND timestamp_ms < $hi AND ($c IS NULL OR cache_hit = $c)"
    )
    for cache, flag in (("all", None), ("warm", True), ("cold", False)):
        exact = _exact(query, files, {"lo": start, "hi": end, "c": flag})[0]
        got = result.headline["latency_ms"][cache]
        for q, want in zip(("p50", "p95", "p99"), exact, strict=True):
            assert abs(got[q] / want - 1) <= 0.01, (window, cache, q, got[q], want)


def test_quantile_disc_is_numpys_inverted_cdf(clean: SynthWarehouse) -> None:
    files = str(clean.root / "events" / "requests" / f"event_date={END}" / "*.parquet")
    con = duckdb.connect()
    values = con.execute(f"SELECT latency_ms FROM read_parquet('{files}') WHERE NOT shadow").fetchnumpy()["latency_ms"]
    disc = con.execute(f"SELECT quantile_disc(latency_ms, [0.5, 0.95, 0.99]) FROM read_parquet('{files}') "
                       "WHERE NOT shadow").fetchone()[0]
    con.close()
    assert list(disc) == list(np.quantile(values, [0.5, 0.95, 0.99], method="inverted_cdf"))


def test_ingest_delay_percentiles_within_one_percent_of_exact(clean: SynthWarehouse,
                                                              clean_day: dict[str, TileResult]) -> None:
    start, end = window_bounds(END, "24h")
    tables = clean_day["freshness"].headline["tables"]
    for table, got in tables.items():
        files = str(clean.root / "events" / table / "*" / "*.parquet")
        exact = _exact("SELECT quantile_disc(ingest_ms - timestamp_ms, [0.5, 0.95, 0.99]) FROM read_parquet('{files}') "
                       "WHERE timestamp_ms >= $lo AND timestamp_ms < $hi", files, {"lo": start, "hi": end})[0]
        for q, want in zip(("p50_min", "p95_min", "p99_min"), exact, strict=True):
            assert abs(got[q] * 60_000 / want - 1) <= 0.01, (table, q)


BAD_INPUTS = [
    ({"slice": "colour"}, "not a slice column"),
    ({"slice": "genre"}, "does not support slice='genre'"),
    ({"window": "3w"}, "not a window"),
    ({"filters": {"colour": ["red"]}}, "unknown column 'colour'"),
    ({"filters": {"region": ["eu' OR '1'='1"]}}, "not a slice value"),
]


@pytest.mark.parametrize("tile", HEALTH_IDS)
@pytest.mark.parametrize(("params", "message"), BAD_INPUTS, ids=[p[1] for p in BAD_INPUTS])
def test_bad_input_gives_a_clear_error(clean: SynthWarehouse, tile: str, params: dict, message: str) -> None:
    if tile == "freshness" and "filters" in params and "colour" not in str(params):
        message = "filters"  # freshness is per event table: any filter is refused first
    with pytest.raises(ExpkitError, match=message):
        run(clean, tile, **params)


@pytest.mark.parametrize("tile", HEALTH_IDS)
def test_no_data_is_not_zero(clean: SynthWarehouse, tile: str) -> None:
    result = run(clean, tile, event_date=(END + dt.timedelta(days=3)).isoformat())
    assert result.status == "no_data"
    assert result.headline["no_data"] is True and result.summary.startswith("No data")


def _window_slice_cases() -> tuple[list, list]:
    """Every tile × window (sliced per arm) and every tile × supported slice (24h).

    A fast subset covers each tile, each window and each slice at least once; the full matrix
    runs with the slow tests.
    """
    windows, slices = ["1h", "7d", "30d"], ["cohort", "region", "surface", "client"]
    cases, fast = [], set()
    for i, tile in enumerate(HEALTH_IDS):
        cases += [(tile, w, "bucket") for w in windows]
        fast.add((tile, windows[i % 3], "bucket"))
        supported = [s for s in slices if s in TILES[tile].slices]
        cases += [(tile, "24h", s) for s in supported]
        if supported:
            fast.add((tile, "24h", supported[i % len(supported)]))
    marks = [pytest.param(*c, marks=() if c in fast else pytest.mark.slow, id="-".join(c)) for c in cases]
    return marks, sorted(fast)


@pytest.mark.parametrize(("tile", "window", "slice_"), _window_slice_cases()[0])
def test_every_window_and_slice(clean: SynthWarehouse, tmp_path: Path, tile: str, window: str, slice_: str) -> None:
    result = run(clean, tile, window=window, slice=slice_)
    assert result.status == "ok", result.summary
    column = "series" if tile == "anomaly" else "table" if tile == "freshness" else slice_
    values = set(result.table[column])
    assert "all" in values or tile == "freshness"
    assert len(values) >= 3
    result.save_sidecar(tmp_path / "s.json")
    side = json.loads((tmp_path / "s.json").read_text())
    assert side["status"] == result.status and side["params"]["window"] == window and side["params"]["slice"] == slice_


def test_filters_narrow_the_series(clean: SynthWarehouse) -> None:
    everyone = run(clean, "errors")
    eu = run(clean, "errors", slice="region", filters='{"region": ["eu"]}')
    assert set(eu.table["region"]) == {"all", "eu"}
    assert eu.headline["requests"] < everyone.headline["requests"]
    arm = run(clean, "coverage", buckets=["treatment"])
    assert set(arm.table["bucket"]) == {"all", "treatment"}


def test_freshness_shows_validation_checks(clean: SynthWarehouse) -> None:
    from expkit.tiles.base import resolve_params
    from expkit.tiles.health_freshness import freshness_tile

    p = resolve_params("freshness", ("bucket",), event_date=END, warehouse=clean.root)
    checks = [
        {"name": "event_delay_p95", "table": "clicks", "status": "pass", "value": 1.2, "threshold": 15, "detail": ""},
        {"name": "join_integrity", "table": "clicks", "status": "fail", "value": 0.95, "threshold": 0.99,
         "detail": "orphan clicks"},
    ]
    result = freshness_tile(p, checks=checks)
    assert result.status == "breach"
    assert result.headline["validation"] == {"pass": 1, "warn": 0, "fail": 1} == result.result.values.validation
    assert len(result.tables["Validation checks"]) == 2
    assert freshness_tile(p, checks=checks[:1]).status == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("incident", INCIDENTS)
def test_single_incident_day_breaches_exactly_its_tiles(clean: SynthWarehouse, health_root: Path,
                                                        config: object, incident: str) -> None:
    from .conftest import _last_day_variant

    wh = _last_day_variant(clean, health_root / f"single-{incident}", config, (incident,))
    expected = expected_tiles(wh, incident)
    for tile in HEALTH_IDS:
        result = run(wh, tile)
        want = "breach" if tile in expected else "warn" if tile == "anomaly" else "ok"
        assert result.status == want, (incident, tile, result.summary)


def test_a_day_still_running_ends_at_now(clean: SynthWarehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    from expkit.tiles import health_core
    from expkit.warehouse import day_bounds_ms

    now = day_bounds_ms(END)[0] + (14 * 60 + 37) * 60_000  # 14:37 on the report date
    monkeypatch.setattr(health_core, "now_ms", lambda: now)
    for tile in HEALTH_IDS:
        result = run(clean, tile)
        assert result.status == "ok", (tile, result.summary)  # later hours are not "missing"
        assert result.headline["end"] == f"{END}T14:35:00Z"
    assert run(clean, "freshness").headline["report_time"] == f"{END}T14:37:00Z"
