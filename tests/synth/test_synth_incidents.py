"""Each injected incident breaks its own metrics inside its window, and nothing else."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy.stats import chisquare
from synth_support import BIN_MS, END, Warehouse, breaches, make

from expkit.schema import EVENT_TABLES
from expkit.synth import INCIDENTS

# Health metrics (synth_support.HEALTH_SLOS) an incident may push out of SLO in its window.
ALLOWED = {
    "latency_spike": {"p95", "p95_warm", "p95_cold"},
    "error_burst": {"error_rate", "fill"},
    "cache_failure": {"cache_hit"},
    "coverage_drop": {"coverage", "fill"},
}
DAYS = {"ctr_collapse": 2}

_cache: dict[str, Warehouse] = {}


@pytest.fixture
def incident(request, tmp_path_factory) -> Warehouse:
    name = request.param
    if name not in _cache:
        _cache[name] = make(tmp_path_factory, name, incidents=[name], days=DAYS.get(name, 1))
    return _cache[name]


def _window(wh: Warehouse) -> tuple[int, int]:
    (entry,) = wh.truth["incidents"]
    return entry["start_ms"], entry["end_ms"]


def _in_window(bins: pd.DataFrame, wh: Warehouse) -> pd.Series:
    start, end = _window(wh)
    return (bins.bin_ms + BIN_MS > start) & (bins.bin_ms < end)


@pytest.mark.parametrize("incident", list(INCIDENTS), indirect=True)
def test_health_breaks_only_inside_window(incident: Warehouse) -> None:
    name = incident.truth["incidents"][0]["name"]
    bins = incident.health_bins()
    inside = _in_window(bins, incident)
    window_bins = set(bins.loc[inside, "bin_ms"])
    found = breaches(bins)
    assert set(found) <= ALLOWED.get(name, set()), found
    for metric, where in found.items():
        assert set(where) <= window_bins, (metric, where)
    # Every window bin shows the incident's main symptom.
    w = bins[inside]
    match name:
        case "latency_spike":
            assert (w.p95 > 150).all()
        case "error_burst":
            assert (w.error_rate > 0.01).all() and (w.error_rate < 0.06).all()
            assert (w.coverage >= 0.95).all()
        case "cache_failure":
            assert (w.cache_hit < 0.35).all() and (w.cache_hit > 0.05).all()
            assert (w.p95_cold < 100).all() and (w.p95 < 100).all()
        case "coverage_drop":
            assert (w.coverage < 0.95).all() and (w.coverage > 0.75).all()
            assert (w.fill < 0.95).all()
        case _:
            assert "p95" not in found


@pytest.mark.parametrize("incident", list(INCIDENTS), indirect=True)
def test_truth_records_incident(incident: Warehouse) -> None:
    (entry,) = incident.truth["incidents"]
    info = INCIDENTS[entry["name"]]
    last = incident.day_ms(END)
    start = max(last + info.default_start_minute * 60_000,
                incident.day_ms(END - dt.timedelta(days=incident.truth["days"] - 1)))
    assert entry["start_ms"] == start
    assert entry["end_ms"] == last + (info.default_start_minute + info.default_minutes) * 60_000
    assert entry["start"].endswith("Z") and entry["end"].endswith("Z")
    assert entry["tables"] and entry["metrics"] and entry["params"] == dict(info.params)
    assert entry["injected"], "the generator reports what it injected"


def _freshness_breaches(wh: Warehouse) -> dict[str, set[int]]:
    f = wh.freshness_bins()
    bad = f[f.p95_min >= 15]
    return {t: set(g.bin_ms) for t, g in bad.groupby("tbl")}


@pytest.mark.parametrize("incident", ["stale_partition"], indirect=True)
def test_stale_partition(incident: Warehouse) -> None:
    stale = _freshness_breaches(incident)
    assert set(stale) == {"impressions"}
    f = incident.freshness_bins()
    imp = f[f.tbl == "impressions"].reset_index(drop=True)
    inside = _in_window(imp, incident)
    assert set(imp.loc[inside, "bin_ms"]) == stale["impressions"]
    assert (imp.loc[inside, "p95_min"] > 40).all()


@pytest.mark.parametrize("incident", ["late_data"], indirect=True)
def test_late_data_files(incident: Warehouse) -> None:
    start, end = _window(incident)
    day_end = incident.day_ms(END) + 86_400_000
    late_total = 0
    for table in EVENT_TABLES:
        folder = incident.path / "events" / table / f"event_date={END}"
        late = sorted(folder.glob("part-late-*.parquet"))
        assert late, table
        t = pq.read_table(late).to_pandas()
        assert (t.ingest_ms >= day_end + 3_600_000).all()
        assert t.timestamp_ms.between(start - 3_600_000, day_end - 1).all()
        late_total += len(t)
        assert len(t) == incident.truth["late_rows"][table]
        on_time = pq.read_table(sorted(set(folder.glob("*.parquet")) - set(late))).to_pandas()
        assert (on_time.ingest_ms < day_end + 3_600_000).all()
    # A quarter of the window's sessions are late.
    r = incident.df(f"""select avg((filename like '%part-late%')::int) s from read_parquet(
        '{incident.path}/events/requests/*/*.parquet', filename = true)
        where timestamp_ms >= {start + 600_000} and timestamp_ms < {end}""")
    assert 0.15 < r.s[0] < 0.35
    assert late_total == sum(incident.truth["late_rows"].values())


@pytest.mark.parametrize("incident", ["traffic_imbalance"], indirect=True)
def test_traffic_imbalance(incident: Warehouse) -> None:
    n = incident.df("""select bucket, count(distinct user_id) n from requests where not shadow
        group by 1 order by 1""").set_index("bucket")["n"]
    share = n / n.sum()
    assert abs(share["treatment"] / 0.5 - 1) > 0.10
    assert chisquare(n.to_numpy(), n.sum() * 0.5 * pd.Series([1, 1]).to_numpy()).pvalue < 0.001
    # The users were still assigned as planned.
    assert abs(incident.truth["realized_allocation"]["treatment"]["share"] - 0.5) < 0.03


@pytest.mark.parametrize("incident", ["ctr_collapse"], indirect=True)
def test_ctr_collapse(incident: Warehouse, healthy: Warehouse) -> None:
    sql = """
        with i as (select event_date, bucket, count(*) n from impressions where not shadow
                   group by all),
             c as (select c.event_date, r.bucket, count(*) n from clicks c
                   join requests r using (request_id) where not c.shadow group by all)
        select i.event_date, i.bucket, coalesce(c.n, 0) / i.n as ctr
        from i left join c using (event_date, bucket) order by 1, 2"""
    collapsed = incident.df(sql)
    assert len(collapsed) == 4  # both days (the default window spans them), both arms
    assert collapsed.ctr.max() < 0.005
    assert healthy.df(sql).ctr.min() > 0.02


@pytest.mark.parametrize("incident", ["orphan_clicks"], indirect=True)
def test_orphan_clicks(incident: Warehouse) -> None:
    r = incident.df("""select count(*) total, count(*) filter (where i.request_id is null) orphans
        from clicks c left join impressions i using (request_id, item_id)""").iloc[0]
    assert 0.02 <= r.orphans / r.total <= 0.05
    assert r.orphans == incident.truth["incidents"][0]["injected"]["orphan_clicks"]
    # Orphans still point at a real request of the same user.
    assert incident.df("""select count(*) n from clicks c anti join requests r
        using (request_id, user_id, session_id)""")["n"][0] == 0


@pytest.mark.parametrize("incident", ["duplicate_events"], indirect=True)
def test_duplicate_events(incident: Warehouse) -> None:
    r = incident.df("""select
        (select count(*) from clicks) clicks,
        (select count(*) - count(distinct click_id) from clicks) dup_clicks,
        (select count(*) from impressions) imps,
        (select count(*) - count(distinct (request_id, item_id)) from impressions) dup_imps
        """).iloc[0]
    assert 0.01 <= r.dup_clicks / r.clicks <= 0.03
    assert 0.01 <= r.dup_imps / r.imps <= 0.03
    injected = incident.truth["incidents"][0]["injected"]
    assert injected == {"clicks": r.dup_clicks, "impressions": r.dup_imps}


@pytest.mark.parametrize("incident", ["latency_spike", "error_burst", "coverage_drop"],
                         indirect=True)
def test_data_outside_window_unchanged(incident: Warehouse, healthy: Warehouse) -> None:
    start, end = _window(incident)
    outside = f"timestamp_ms < {start} or timestamp_ms >= {end}"

    def rows(wh: Warehouse) -> str:
        return (f"select * from read_parquet('{wh.path}/events/requests/*/*.parquet') "
                f"where {outside}")

    diff = healthy.df(f"""select
        (select count(*) from ({rows(incident)} except all {rows(healthy)})) as extra,
        (select count(*) from ({rows(healthy)} except all {rows(incident)})) as missing,
        (select count(*) from ({rows(healthy)})) as n""").iloc[0]
    assert diff.extra == diff.missing == 0
    assert diff.n > 0.9 * incident.truth["tables"]["requests"]
