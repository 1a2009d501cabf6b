-- name: ratio_stats
-- description: Sufficient statistics of every outcome ratio metric per arm and slice over a
--   window: n users, sum_num, sum_den, sum_num2, sum_den2, sum_numden of the per-user sums
--   (what expkit.stats needs for the delta method). Reads per-user facts (a view "user_facts" of the
--   window's days); a user seen on several days is one unit. A user's bucket and attributes are
--   those of their first exposure in the window. Recall@K is taken over the whole window from the
--   per (user, item) facts of its days (a view "user_items"): plays = distinct items played in the
--   window, hits = those shown at position <= K before their first play in the window (docs/metrics.md, "Outcome metrics").
--   Metrics: ctr = clicks/impressions, save_rate = saves/impressions,
--   saves_per_click = saves/clicks, recall = hits/plays, session_depth = depth/sessions.
--   recall and session_depth exist for the user-level slices (all, cohort, region, client) only.
--   Optional filters (expkit.templates.Template.render): on the user's attributes (the users kept), and
--   on the metric, slice and experiment of the rows (the readers ask for one; the rollup for all).
-- params: (none besides the optional filter values)
-- reads: user_facts, user_items
-- grain: experiment_id, metric, bucket, slice, slice_value
-- filters: attr_filter: a.cohort, a.region, a.client; row_filter: m.metric, s.slice, s.experiment_id
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
-- a user's rows of the window's days; attributes (one row per user) are joined afterwards
facts AS (
    SELECT
        experiment_id, user_id, slice, slice_value,
        sum(impressions) AS impressions, sum(clicks) AS clicks, sum(saves) AS saves,
        sum(sessions) AS sessions, sum(depth) AS depth
    FROM user_facts
    GROUP BY experiment_id, user_id, slice, slice_value
),
per_user AS (
    SELECT
        f.experiment_id, a.bucket, f.user_id, f.slice, f.slice_value, a.cohort, a.region, a.client,
        f.impressions, f.clicks, f.saves, f.sessions, f.depth
    FROM facts AS f
    JOIN attrs AS a ON a.experiment_id = f.experiment_id AND a.user_id = f.user_id
    WHERE 1 = 1 /*attr_filter*/
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
        p.experiment_id, p.bucket, s.slice,
        CASE s.slice WHEN 'cohort' THEN p.cohort WHEN 'region' THEN p.region
            WHEN 'client' THEN p.client ELSE 'all' END AS slice_value,
        CAST(p.impressions AS DOUBLE) AS impressions, CAST(p.clicks AS DOUBLE) AS clicks,
        CAST(p.saves AS DOUBLE) AS saves, CAST(p.sessions AS DOUBLE) AS sessions,
        CAST(p.depth AS DOUBLE) AS depth,
        CAST(coalesce(r.plays, 0) AS DOUBLE) AS plays, CAST(coalesce(r.hits, 0) AS DOUBLE) AS hits
    FROM per_user AS p
    CROSS JOIN user_slices AS s
    LEFT JOIN recall AS r ON r.user_id = p.user_id
    WHERE p.slice = 'all'
    UNION ALL
    SELECT experiment_id, bucket, slice, slice_value,
        CAST(impressions AS DOUBLE), CAST(clicks AS DOUBLE), CAST(saves AS DOUBLE),
        CAST(sessions AS DOUBLE), CAST(depth AS DOUBLE), 0.0, 0.0
    FROM per_user
    WHERE slice <> 'all'
),
-- every metric's sums in one pass over the users, then one row per metric
sums AS (
    SELECT
        experiment_id, bucket, slice, slice_value,
        count(*) AS n,
        sum(impressions) AS imp, sum(clicks) AS clk, sum(saves) AS sav,
        sum(plays) AS pla, sum(hits) AS hit, sum(sessions) AS ses, sum(depth) AS dep,
        sum(impressions * impressions) AS imp2, sum(clicks * clicks) AS clk2, sum(saves * saves) AS sav2,
        sum(plays * plays) AS pla2, sum(hits * hits) AS hit2, sum(sessions * sessions) AS ses2,
        sum(depth * depth) AS dep2,
        sum(clicks * impressions) AS clk_imp, sum(saves * impressions) AS sav_imp,
        sum(saves * clicks) AS sav_clk, sum(hits * plays) AS hit_pla, sum(depth * sessions) AS dep_ses
    FROM expanded
    GROUP BY experiment_id, bucket, slice, slice_value
),
metrics AS (
    SELECT * FROM (VALUES ('ctr'), ('save_rate'), ('saves_per_click'), ('recall'), ('session_depth'))
        AS m (metric)
)
SELECT
    s.experiment_id, m.metric, s.bucket, s.slice, s.slice_value, s.n,
    CASE m.metric WHEN 'ctr' THEN s.clk WHEN 'save_rate' THEN s.sav WHEN 'saves_per_click' THEN s.sav
        WHEN 'recall' THEN s.hit ELSE s.dep END AS sum_num,
    CASE m.metric WHEN 'ctr' THEN s.imp WHEN 'save_rate' THEN s.imp WHEN 'saves_per_click' THEN s.clk
        WHEN 'recall' THEN s.pla ELSE s.ses END AS sum_den,
    CASE m.metric WHEN 'ctr' THEN s.clk2 WHEN 'save_rate' THEN s.sav2 WHEN 'saves_per_click' THEN s.sav2
        WHEN 'recall' THEN s.hit2 ELSE s.dep2 END AS sum_num2,
    CASE m.metric WHEN 'ctr' THEN s.imp2 WHEN 'save_rate' THEN s.imp2 WHEN 'saves_per_click' THEN s.clk2
        WHEN 'recall' THEN s.pla2 ELSE s.ses2 END AS sum_den2,
    CASE m.metric WHEN 'ctr' THEN s.clk_imp WHEN 'save_rate' THEN s.sav_imp WHEN 'saves_per_click' THEN s.sav_clk
        WHEN 'recall' THEN s.hit_pla ELSE s.dep_ses END AS sum_numden
FROM sums AS s CROSS JOIN metrics AS m
WHERE NOT (m.metric IN ('recall', 'session_depth') AND s.slice IN ('surface', 'genre', 'provider')) /*row_filter*/
