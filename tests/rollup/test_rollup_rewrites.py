"""The rollup templates written for speed give the same rows as their plain formulations.

Each template below was rewritten to scan less or aggregate once (GROUPING SETS, one pass
for every metric); the plain formulation it replaced is kept here as
the reference and both run on the same events: duplicated and orphan events, several days and
the last-hour spans included.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from expkit.config import load_experiment
from expkit.engines.duckdb_engine import DuckDBEngine
from expkit.rollup import HOUR_MS, _event_sources, _params, build_range, stats_sources, window_files, window_start_ms
from expkit.synth import generate
from expkit.templates import TEMPLATES
from expkit.warehouse import Warehouse, day_bounds_ms

REPO = Path(__file__).resolve().parents[2]
END = dt.date(2026, 11, 14)

REFERENCE = {
    "engagement_bins": """
WITH clk AS (
    SELECT request_id, item_id, count(*) AS n FROM clicks
    WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
    GROUP BY request_id, item_id
),
sav AS (
    SELECT request_id, item_id, count(*) AS n FROM saves
    WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
    GROUP BY request_id, item_id
),
req AS (
    SELECT request_id, min(fallback_level) AS fallback_level FROM requests
    WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
    GROUP BY request_id
)
SELECT
    i.experiment_id,
    i.timestamp_ms - (i.timestamp_ms % $bin_ms) AS bin_ms,
    i.bucket,
    coalesce(req.fallback_level, -1) AS fallback_level,
    count(*) AS impressions,
    sum(coalesce(clk.n, 0)) AS clicks,
    sum(coalesce(sav.n, 0)) AS saves
FROM impressions AS i
LEFT JOIN clk ON clk.request_id = i.request_id AND clk.item_id = i.item_id
LEFT JOIN sav ON sav.request_id = i.request_id AND sav.item_id = i.item_id
LEFT JOIN req ON req.request_id = i.request_id
WHERE NOT i.shadow AND i.timestamp_ms >= $start_ms AND i.timestamp_ms < $end_ms
GROUP BY i.experiment_id, i.timestamp_ms - (i.timestamp_ms % $bin_ms), i.bucket,
    coalesce(req.fallback_level, -1)
""",
    "latency_hist": """
WITH r AS (
    SELECT
        experiment_id,
        timestamp_ms - (timestamp_ms % $bin_ms) AS bin_ms,
        bucket, cohort, region, surface, client, cache_hit,
        CAST(ceil(ln(greatest(latency_ms, $min_ms)) / $ln_gamma) AS INTEGER) AS idx
    FROM requests
    WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
),
slices AS (
    SELECT * FROM (VALUES ('all'), ('bucket'), ('cohort'), ('region'), ('surface'), ('client')) AS s (slice)
)
SELECT
    experiment_id, bin_ms, slice,
    CASE slice
        WHEN 'bucket' THEN bucket WHEN 'cohort' THEN cohort WHEN 'region' THEN region
        WHEN 'surface' THEN surface WHEN 'client' THEN client ELSE 'all'
    END AS slice_value,
    cache_hit, idx, count(*) AS n
FROM r CROSS JOIN slices
GROUP BY experiment_id, bin_ms, slice,
    CASE slice
        WHEN 'bucket' THEN bucket WHEN 'cohort' THEN cohort WHEN 'region' THEN region
        WHEN 'surface' THEN surface WHEN 'client' THEN client ELSE 'all'
    END,
    cache_hit, idx
""",
    "user_facts": """
WITH req AS (
    SELECT experiment_id, bucket, user_id, session_id, timestamp_ms, cohort, region, client
    FROM requests
    WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
),
users AS (
    SELECT
        experiment_id, user_id,
        arg_min(bucket, timestamp_ms) AS bucket,
        arg_min(cohort, timestamp_ms) AS cohort,
        arg_min(region, timestamp_ms) AS region,
        arg_min(client, timestamp_ms) AS client,
        min(timestamp_ms) AS first_ms,
        count(DISTINCT session_id) AS sessions
    FROM req
    GROUP BY experiment_id, user_id
),
clk AS (
    SELECT request_id, item_id, count(*) AS n FROM clicks
    WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
    GROUP BY request_id, item_id
),
sav AS (
    SELECT request_id, item_id, count(*) AS n FROM saves
    WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
    GROUP BY request_id, item_id
),
imp AS (
    SELECT
        i.experiment_id, i.user_id, i.surface, i.genre, i.provider,
        coalesce(clk.n, 0) AS clicks,
        coalesce(sav.n, 0) AS saves
    FROM impressions AS i
    LEFT JOIN clk ON clk.request_id = i.request_id AND clk.item_id = i.item_id
    LEFT JOIN sav ON sav.request_id = i.request_id AND sav.item_id = i.item_id
    WHERE NOT i.shadow AND i.timestamp_ms >= $start_ms AND i.timestamp_ms < $end_ms
),
imp_user AS (
    SELECT experiment_id, user_id, count(*) AS impressions, sum(clicks) AS clicks, sum(saves) AS saves
    FROM imp GROUP BY experiment_id, user_id
),
sessions_seen AS (
    SELECT DISTINCT user_id, session_id FROM req
),
acts AS (
    SELECT user_id, session_id, item_id FROM clicks
    WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
    UNION
    SELECT user_id, session_id, item_id FROM saves
    WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
    UNION
    SELECT user_id, session_id, item_id FROM plays
    WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
),
depth AS (
    SELECT a.user_id, count(*) AS depth
    FROM acts AS a
    JOIN sessions_seen AS s ON s.user_id = a.user_id AND s.session_id = a.session_id
    GROUP BY a.user_id
),
event_slices AS (
    SELECT * FROM (VALUES ('surface'), ('genre'), ('provider')) AS s (slice)
),
imp_slice AS (
    SELECT
        experiment_id, user_id, slice,
        CASE slice WHEN 'surface' THEN surface WHEN 'genre' THEN genre ELSE provider END AS slice_value,
        count(*) AS impressions, sum(clicks) AS clicks, sum(saves) AS saves
    FROM imp CROSS JOIN event_slices
    GROUP BY experiment_id, user_id, slice,
        CASE slice WHEN 'surface' THEN surface WHEN 'genre' THEN genre ELSE provider END
)
SELECT
    u.experiment_id, u.bucket, u.user_id, 'all' AS slice, 'all' AS slice_value,
    u.cohort, u.region, u.client, u.first_ms,
    coalesce(iu.impressions, 0) AS impressions,
    coalesce(iu.clicks, 0) AS clicks,
    coalesce(iu.saves, 0) AS saves,
    u.sessions,
    coalesce(d.depth, 0) AS depth
FROM users AS u
LEFT JOIN imp_user AS iu ON iu.experiment_id = u.experiment_id AND iu.user_id = u.user_id
LEFT JOIN depth AS d ON d.user_id = u.user_id
UNION ALL
SELECT
    u.experiment_id, u.bucket, u.user_id, s.slice, s.slice_value,
    u.cohort, u.region, u.client, u.first_ms,
    s.impressions, s.clicks, s.saves,
    0 AS sessions, 0 AS depth
FROM imp_slice AS s
JOIN users AS u ON u.experiment_id = s.experiment_id AND u.user_id = s.user_id
""",
    "ratio_stats": """
WITH attrs AS (
    SELECT
        experiment_id, user_id,
        arg_min(bucket, first_ms) AS bucket,
        arg_min(cohort, first_ms) AS cohort,
        arg_min(region, first_ms) AS region,
        arg_min(client, first_ms) AS client
    FROM user_facts
    WHERE slice = 'all'
    GROUP BY experiment_id, user_id
),
per_user AS (
    SELECT
        f.experiment_id, a.bucket, f.user_id, f.slice, f.slice_value, a.cohort, a.region, a.client,
        sum(f.impressions) AS impressions, sum(f.clicks) AS clicks, sum(f.saves) AS saves,
        sum(f.sessions) AS sessions, sum(f.depth) AS depth
    FROM user_facts AS f
    JOIN attrs AS a ON a.experiment_id = f.experiment_id AND a.user_id = f.user_id
    WHERE 1 = 1 /*attr_filter*/
    GROUP BY f.experiment_id, a.bucket, f.user_id, f.slice, f.slice_value, a.cohort, a.region, a.client
),
played AS (
    SELECT user_id, item_id, min(first_play_ms) AS first_play_ms
    FROM user_items
    WHERE first_play_ms IS NOT NULL
    GROUP BY user_id, item_id
),
hit AS (
    SELECT DISTINCT p.user_id, p.item_id
    FROM played AS p
    JOIN user_items AS i ON i.user_id = p.user_id AND i.item_id = p.item_id
    WHERE i.first_topk_shown_ms < p.first_play_ms
),
recall AS (
    SELECT p.user_id, count(*) AS plays, count(h.item_id) AS hits
    FROM played AS p
    LEFT JOIN hit AS h ON h.user_id = p.user_id AND h.item_id = p.item_id
    GROUP BY p.user_id
),
user_slices AS (
    SELECT * FROM (VALUES ('all'), ('cohort'), ('region'), ('client')) AS s (slice)
),
expanded AS (
    SELECT
        p.experiment_id, p.bucket, p.user_id, s.slice,
        CASE s.slice WHEN 'cohort' THEN p.cohort WHEN 'region' THEN p.region
            WHEN 'client' THEN p.client ELSE 'all' END AS slice_value,
        p.impressions, p.clicks, p.saves, p.sessions, p.depth,
        coalesce(r.plays, 0) AS plays, coalesce(r.hits, 0) AS hits
    FROM per_user AS p
    CROSS JOIN user_slices AS s
    LEFT JOIN recall AS r ON r.user_id = p.user_id
    WHERE p.slice = 'all'
    UNION ALL
    SELECT experiment_id, bucket, user_id, slice, slice_value,
        impressions, clicks, saves, sessions, depth, 0 AS plays, 0 AS hits
    FROM per_user
    WHERE slice <> 'all'
),
metrics AS (
    SELECT * FROM (VALUES ('ctr'), ('save_rate'), ('saves_per_click'), ('recall'), ('session_depth'))
        AS m (metric)
),
unit AS (
    SELECT
        e.experiment_id, m.metric, e.bucket, e.slice, e.slice_value,
        CAST(CASE m.metric WHEN 'ctr' THEN e.clicks WHEN 'save_rate' THEN e.saves
            WHEN 'saves_per_click' THEN e.saves WHEN 'recall' THEN e.hits
            ELSE e.depth END AS DOUBLE) AS num,
        CAST(CASE m.metric WHEN 'ctr' THEN e.impressions WHEN 'save_rate' THEN e.impressions
            WHEN 'saves_per_click' THEN e.clicks WHEN 'recall' THEN e.plays
            ELSE e.sessions END AS DOUBLE) AS den
    FROM expanded AS e CROSS JOIN metrics AS m
    WHERE NOT (m.metric IN ('recall', 'session_depth') AND e.slice IN ('surface', 'genre', 'provider'))
)
SELECT
    experiment_id, metric, bucket, slice, slice_value,
    count(*) AS n,
    sum(num) AS sum_num,
    sum(den) AS sum_den,
    sum(num * num) AS sum_num2,
    sum(den * den) AS sum_den2,
    sum(num * den) AS sum_numden
FROM unit
GROUP BY experiment_id, metric, bucket, slice, slice_value
""",
}
"""The straightforward SQL of each rewritten template (what it computed before the rewrite)."""

@pytest.fixture(scope="module")
def messy_wh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Warehouse, object]:
    """3 days, duplicated and orphan events on the last day, rolled up."""
    config = load_experiment(REPO / "params" / "experiment.yaml")
    out = tmp_path_factory.mktemp("rewrites") / "wh"
    generate(out, days=3, end=END, users=1500, seed=5, incidents=["duplicate_events", "orphan_clicks"])
    build_range(out, END - dt.timedelta(days=2), END, config)
    return Warehouse.open(out), config


def _same_rows(engine: DuckDBEngine, ours: pa.Table, reference: pa.Table) -> None:
    assert ours.schema == reference.schema
    assert ours.num_rows == reference.num_rows > 0
    engine.con.register("ours", ours)
    engine.con.register("ref", reference)
    for a, b in (("ours", "ref"), ("ref", "ours")):
        extra = engine.con.execute(f"SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})").fetchall()
        assert extra[0][0] == 0, f"{extra[0][0]} rows of {a} are not in {b}"


def _shipped(template: str, values: dict) -> dict:
    """The values of the shipped template's own parameters (the catalogue's declarative metrics add
    ``where`` values for the columns the rollup generates, which the shipped text and the reference lack)."""
    return {k: v for k, v in values.items() if k in TEMPLATES[template].params}


@pytest.mark.parametrize("template", ["latency_hist", "user_facts", "engagement_bins"])
@pytest.mark.parametrize("span", ["day", "last_hour"])
def test_event_rollups_match_their_reference(messy_wh, template: str, span: str) -> None:
    wh, config = messy_wh
    start, end = day_bounds_ms(END)
    values = _shipped(template, _params(template, end - HOUR_MS if span == "last_hour" else start, end, config))
    sources = _event_sources(wh, END)
    engine = DuckDBEngine()
    try:
        ours = engine.query(TEMPLATES[template], values, sources).read_all()
        reference = engine.query(TEMPLATES[template], values, sources, sql=REFERENCE[template]).read_all()
        _same_rows(engine, ours, reference)
    finally:
        engine.close()


@pytest.mark.parametrize("window", ["1h", "24h", "7d", "30d", "cum"])
@pytest.mark.parametrize("regions", [None, ["eu", "na"]])
def test_ratio_stats_match_their_reference(messy_wh, window: str, regions: list[str] | None) -> None:
    """The reference reads the window's per (user, item) facts for Recall@K (its definition) and each
    of its days' ``user_day``; the template reads the played pairs of the window's days
    (tests/rollup/test_rollup_recall.py) and, for the windows holding the whole experiment (30d and
    cum of an experiment started on 2026-11-01), the running totals ``user_cum``."""
    wh, config = messy_wh
    template = TEMPLATES["ratio_stats"]
    ours_sql, reference_sql, params = template.sql, REFERENCE["ratio_stats"], {}
    if regions:  # the attribute filter of expkit.readers
        ours_sql = ours_sql.replace("/*attr_filter*/", "AND list_contains($f0, a.region)")
        reference_sql = reference_sql.replace("/*attr_filter*/", "AND list_contains($f0, a.region)")
        params = {"f0": regions}
    sources = stats_sources(wh, END, window, config.start_date)
    items = window_files(wh, END, window, ("user_items", "user_items_last_hour"), config.start_date)
    days = window_files(wh, END, window, ("user_day", "user_last_hour"), config.start_date)
    assert (sources["user_facts"] == wh.rollup_files("user_cum", [END])) == (window in ("30d", "cum"))
    engine = DuckDBEngine()
    try:
        start_ms = window_start_ms(END, window, config.start_date)
        ours = engine.query(template, {**params, "window_start_ms": start_ms}, sources, sql=ours_sql).read_all()
        reference = engine.query(template, params, {**sources, "user_items": items, "user_facts": days},
                                 sql=reference_sql).read_all()
        # the reference predates the CUPED sums
        # (checked against raw events in tests/tiles/outcomes/test_outcomes_cuped.py)
        _same_rows(engine, ours.select(reference.column_names), reference)
    finally:
        engine.close()


def test_user_facts_matches_its_reference_with_null_slice_values(messy_wh, tmp_path: Path) -> None:
    """NULL surfaces, genres and providers are groups of their own in both formulations."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    wh, config = messy_wh
    sources = _event_sources(wh, END)
    impressions = pa.concat_tables([pq.read_table(f) for f in sources["impressions"]])
    for i, column in enumerate(("surface", "genre", "provider")):
        hole = pc.equal(pc.bit_wise_and(impressions["item_id"], pa.scalar(3 << i, pa.int64())), 0)
        values = pc.if_else(hole, pa.scalar(None, pa.string()), impressions[column])
        impressions = impressions.set_column(impressions.schema.get_field_index(column), column, values)
    pq.write_table(impressions, tmp_path / "impressions.parquet")
    sources = {**sources, "impressions": [tmp_path / "impressions.parquet"]}
    start, end = day_bounds_ms(END)
    values = _shipped("user_facts", _params("user_facts", start, end, config))
    engine = DuckDBEngine()
    try:
        ours = engine.query(TEMPLATES["user_facts"], values, sources).read_all()
        reference = engine.query(TEMPLATES["user_facts"], values, sources, sql=REFERENCE["user_facts"]).read_all()
        assert pc.sum(pc.is_null(ours["slice_value"])).as_py() > 0
        _same_rows(engine, ours, reference)
    finally:
        engine.close()
