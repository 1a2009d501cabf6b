"""The healthy synthetic warehouse: schema, keys, realism, and agreement with truth.json."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from synth_support import END, SEED, USERS, Warehouse, breaches

from expkit.schema import EVENT_TABLES
from expkit.synth import Model, generate, warehouse
from expkit.synth.truth import analytic_rate, monte_carlo


def test_layout_and_schema(healthy: Warehouse) -> None:
    for table, schema in EVENT_TABLES.items():
        parts = sorted((healthy.path / "events" / table).iterdir())
        assert [p.name for p in parts] == [f"event_date={END}"]
        files = sorted(parts[0].glob("*.parquet"))
        assert [f.name for f in files] == ["part-00000.parquet", "part-00001.parquet"]
        assert pq.read_schema(files[0]).remove_metadata() == schema, table
    assert not list(healthy.path.rglob("*.tmp"))
    assert not (healthy.path / ".staging").exists()
    assert json.loads((healthy.path / "truth.json").read_text()) == json.loads(
        json.dumps(healthy.truth))


def test_truth_shape(healthy: Warehouse) -> None:
    t = healthy.truth
    assert t["seed"] == SEED and t["users"] == USERS and t["experiment_id"] == "rec_ranker_v2"
    assert t["start_date"] == t["end_date"] == END.isoformat()
    assert t["planned_allocation"] == {"control": 0.5, "treatment": 0.5}
    assert sum(a["users"] for a in t["realized_allocation"].values()) == USERS
    assert t["control"] == "control" and t["true_lift"] == {"treatment": 0.05}
    for metric in ("ctr", "save_rate", "recall", "session_depth"):
        assert set(t["metrics"][metric]) == {"control", "treatment"}
    assert t["metric_lift"]["ctr"]["treatment"] == pytest.approx(0.05)
    assert t["incidents"] == []
    counts = healthy.df("select (select count(*) from requests) r, (select count(*) from "
                        "impressions) i, (select count(*) from clicks) c, (select count(*) "
                        "from saves) s, (select count(*) from plays) p").iloc[0].tolist()
    assert counts == [t["tables"][k] for k in EVENT_TABLES]


def _tables(path) -> dict[str, object]:
    return {str(f.relative_to(path)): pq.read_table(f)
            for f in sorted((path / "events").rglob("*.parquet"))}


def test_reproducible(tmp_path, monkeypatch) -> None:
    """Same arguments give identical rows (also with one worker instead of two); another seed
    gives other rows."""
    kw = {"days": 1, "end": END, "users": 4400, "incidents": ["late_data", "orphan_clicks",
                                                                "duplicate_events"]}
    a = _tables_after(generate(tmp_path / "a", seed=1, **kw), tmp_path / "a")
    monkeypatch.setattr(warehouse, "_WORKERS", 1)
    b = _tables_after(generate(tmp_path / "b", seed=1, **kw), tmp_path / "b")
    c = _tables_after(generate(tmp_path / "c", seed=2, **kw), tmp_path / "c")
    assert len(a[1]) == 5 * 2 * 2  # tables x blocks, on-time and late files
    assert a[1].keys() == b[1].keys()
    assert all(a[1][k].equals(b[1][k]) for k in a[1])
    assert a[0] == b[0]
    assert c[1].keys() == a[1].keys()
    assert not any(a[1][k].equals(c[1][k]) for k in a[1])


def _tables_after(truth: dict, path) -> tuple[dict, dict]:
    return truth, _tables(path)


def test_shadow_traffic(healthy: Warehouse) -> None:
    share = healthy.df("select avg(shadow::int) s from requests")["s"][0]
    assert 0.005 < share < 0.05
    # Shadow is a property of whole requests: impressions and clicks follow their request.
    mismatched = healthy.df("""
        select (select count(*) from impressions i join requests r using (request_id)
                where i.shadow <> r.shadow) +
               (select count(*) from clicks c join requests r using (request_id)
                where c.shadow <> r.shadow) as n""")["n"][0]
    assert mismatched == 0
    assert healthy.df("select count(*) n from impressions where shadow")["n"][0] > 0


def test_keys_and_joins(healthy: Warehouse) -> None:
    one = healthy.df("""select
        (select count(*) - count(distinct request_id) from requests) as dup_requests,
        (select count(*) - count(distinct (request_id, item_id)) from impressions) as dup_imps,
        (select count(*) - count(distinct click_id) from clicks) as dup_clicks,
        (select count(*) - count(distinct save_id) from saves) as dup_saves,
        (select count(*) - count(distinct play_id) from plays) as dup_plays,
        (select count(*) from clicks c anti join impressions i using (request_id, item_id))
            as orphan_clicks,
        (select count(*) from saves c anti join impressions i using (request_id, item_id))
            as orphan_saves,
        (select count(*) from impressions i anti join requests r using (request_id))
            as orphan_imps,
        (select count(*) from clicks c join impressions i using (request_id, item_id)
            where c.timestamp_ms <= i.timestamp_ms) as click_before_imp,
        (select count(*) from (select user_id from requests group by 1
            having count(distinct bucket) > 1)) as users_in_two_buckets,
        (select count(*) from (select r.request_id from requests r left join impressions i
            using (request_id) group by r.request_id, r.k_returned
            having count(i.item_id) <> r.k_returned)) as k_mismatch,
        (select count(*) from impressions where position < 1 or position > 10) as bad_pos,
        (select count(*) from requests where (status = 'error') <> (error_component is not null)
            or (status = 'error') <> (error_severity is not null)
            or (status = 'error' and k_returned <> 0)) as bad_errors,
        (select count(*) from plays where source not in ('rec', 'search', 'browse', 'continue')
            or source is null) as bad_source,
        (select count(*) from (select session_id from requests group by 1
            having count(distinct user_id) > 1)) as shared_sessions
        """).iloc[0]
    assert one.to_dict() == dict.fromkeys(one.index, 0)


def test_request_realism(healthy: Warehouse) -> None:
    r = healthy.df("""select avg(cache_hit::int) hit,
        median(latency_ms) filter (where cache_hit) warm, median(latency_ms) filter
        (where not cache_hit) cold, avg((fallback_level = 0)::int) fb0,
        count(distinct fallback_level) levels, avg((k_returned < k_requested)::int) short,
        count(distinct session_id) sessions, count(*) n,
        count(distinct surface) surfaces, min(k_requested) kmin, max(k_requested) kmax
        from requests where not shadow""").iloc[0]
    assert 0.88 < r.hit < 0.97
    assert r.cold > 3 * r.warm
    assert 0.9 < r.fb0 < 0.99 and r.levels == 4
    assert 0 < r.short < 0.01
    assert 5 < r.n / r.sessions < 30  # several requests per session
    assert r.surfaces == 3 and r.kmin == r.kmax == 10
    i = healthy.df("""select count(distinct item_id) items, count(distinct genre) genres,
        count(distinct provider) providers from impressions""").iloc[0]
    assert i["items"] > 3000 and i.genres >= 10 and i.providers >= 5
    # Genre and provider are item attributes.
    assert healthy.df("""select count(*) n from (select item_id from impressions group by 1
        having count(distinct genre) > 1 or count(distinct provider) > 1)""")["n"][0] == 0
    u = healthy.df("""select count(*) n from (select user_id from requests group by 1 having
        count(distinct cohort) > 1 or count(distinct region) > 1 or count(distinct client) > 1)
        """)["n"][0]
    assert u == 0
    sources = healthy.df("select source, count(*) n from plays group by 1")
    assert set(sources.source) == {"rec", "search", "browse", "continue"}


def test_ingest_delay(healthy: Warehouse) -> None:
    for t in EVENT_TABLES:
        d = healthy.df(f"""select min(ingest_ms - timestamp_ms) lo,
            quantile_cont(ingest_ms - timestamp_ms, 0.95) p95 from {t}""").iloc[0]
        assert d.lo > 0 and 5_000 < d.p95 < 5 * 60_000, t


def test_daily_cycle(healthy: Warehouse) -> None:
    h = healthy.df(f"""select (timestamp_ms - {healthy.day_ms()}) // 3600000 as hour,
        count(*) n from requests group by 1 order by 1""").set_index("hour")["n"]
    assert len(h) == 24
    assert 18 <= h.idxmax() <= 22 and (h.idxmin() <= 6 or h.idxmin() >= 23)
    assert h.max() > 2.5 * h.min()


def _per_user(wh: Warehouse, num_sql: str, den_sql: str) -> dict[str, tuple[np.ndarray, ...]]:
    """Per-user (num, den) arrays per arm; users from non-shadow requests."""
    d = wh.df(f"""with u as (select distinct user_id, bucket from requests where not shadow),
        n as ({num_sql}), d as ({den_sql})
        select u.bucket, coalesce(n.v, 0) num, coalesce(d.v, 0) den
        from u left join n using (user_id) left join d using (user_id)""")
    return {b: (g.num.to_numpy(float), g.den.to_numpy(float)) for b, g in d.groupby("bucket")}


def _ratio(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    keep = den > 0
    num, den = num[keep], den[keep]
    r = num.sum() / den.sum()
    n = len(den)
    return r, math.sqrt(n / (n - 1) * ((num - r * den) ** 2).sum()) / den.sum()


IMPS = "select user_id, count(*) v from impressions where not shadow group by 1"


def test_clicks_cluster_by_user(healthy: Warehouse) -> None:
    arms = _per_user(healthy, "select user_id, count(*) v from clicks where not shadow group by 1",
                     IMPS)
    for clicks, imps in arms.values():
        p = clicks.sum() / imps.sum()
        dispersion = ((clicks - p * imps) ** 2).sum() / (p * (1 - p) * imps).sum()
        assert dispersion > 3  # binomial would give ~1
        _, se = _ratio(clicks, imps)
        naive = math.sqrt(p * (1 - p) / imps.sum())
        assert se > 2 * naive  # the pooled binomial interval is far too narrow


@pytest.mark.parametrize(("metric", "num_sql", "den_sql"), [
    ("ctr", "select user_id, count(*) v from clicks where not shadow group by 1", IMPS),
    ("save_rate", "select user_id, count(*) v from saves where not shadow group by 1", IMPS),
    ("recall", """select p.user_id, count(*) filter (where i.t < p.t) v
        from (select user_id, item_id, min(timestamp_ms) t from plays where not shadow
              group by 1, 2) p
        left join (select user_id, item_id, min(timestamp_ms) t from impressions
              where not shadow and position <= 10 group by 1, 2) i using (user_id, item_id)
        group by 1""",
     """select user_id, count(distinct item_id) v from plays where not shadow group by 1"""),
    ("session_depth", """select user_id, count(*) v from (
        select distinct user_id, session_id, item_id from (
          select user_id, session_id, item_id from clicks where not shadow union all
          select user_id, session_id, item_id from saves where not shadow union all
          select user_id, session_id, item_id from plays where not shadow)) group by 1""",
     """select user_id, count(distinct session_id) v from requests where not shadow
        group by 1"""),
])
def test_outcomes_match_truth(healthy: Warehouse, metric: str, num_sql: str, den_sql: str) -> None:
    arms = _per_user(healthy, num_sql, den_sql)
    mc_se = healthy.truth["metric_se"].get(metric, {})
    for arm, (num, den) in arms.items():
        est, se = _ratio(num, den)
        truth = healthy.truth["metrics"][metric][arm]
        tol = 4 * math.hypot(se, mc_se.get(arm, 0.0))
        assert abs(est - truth) < tol, (metric, arm, est, truth, se)


def test_outcomes_meet_targets(healthy: Warehouse) -> None:
    m = healthy.truth["metrics"]
    for arm in ("control", "treatment"):
        assert 0.02 < m["ctr"][arm] < 0.04
        assert 0.003 < m["save_rate"][arm] < 0.01
        assert 0.2 < m["recall"][arm] < 0.35
        assert m["session_depth"][arm] > 6


def test_healthy_day_inside_every_slo(healthy: Warehouse) -> None:
    bins = healthy.health_bins()
    assert len(bins) == 288 and bins.n.min() > 50
    assert breaches(bins) == {}
    day = healthy.df("select avg((status = 'error')::int) e from requests where not shadow")
    assert day.e[0] < 0.001
    fresh = healthy.freshness_bins()
    assert fresh.p95_min.max() < 15
    alloc = healthy.df("""select bucket, count(distinct user_id) n from requests
        where not shadow group by 1""").set_index("bucket")["n"]
    share = alloc / alloc.sum()
    assert (share / 0.5 - 1).abs().max() < 0.05


def test_multi_arm_allocation(tmp_path) -> None:
    buckets = {"control": 0.5, "a": 0.3, "b": 0.2}
    truth = generate(tmp_path / "wh", days=1, end=END, users=3000, buckets=buckets,
                     lift={"a": 0.1})
    assert truth["true_lift"] == {"a": 0.1, "b": 0.0}
    assert truth["metric_lift"]["ctr"]["a"] == pytest.approx(0.1)
    assert truth["metric_lift"]["ctr"]["b"] == pytest.approx(0.0)
    for arm, plan in buckets.items():
        assert abs(truth["realized_allocation"][arm]["share"] - plan) < 0.03


def test_analytic_truth_agrees_with_monte_carlo() -> None:
    """The analytic CTR and save rate match the simulation code's own Monte-Carlo estimate."""
    model = Model()
    for mult in (1.0, 1.05):
        mc = monte_carlo(model, mult, 0.02)
        assert abs(mc.ctr - analytic_rate(model, "click", mult)) < 4 * mc.ctr_se
        assert abs(mc.save_rate - analytic_rate(model, "save", mult)) < 4 * mc.save_rate_se
