-- name: ratio_stats
-- description: Sufficient statistics of every outcome ratio metric per arm and slice over a
--   window: n users, sum_num, sum_den, sum_num2, sum_den2, sum_numden of the per-user sums
--   (what expkit.stats needs for the delta method). Reads per-user facts (a view "user_facts" of the
--   window's days); a user seen on several days is one unit. A user's bucket and attributes are
--   those of their first exposure in the window. Recall@K is taken over the whole window from the
--   per (user, item) facts of its days (a view "user_items"): plays = distinct items played in the
--   window, hits = those shown at position <= K before their first play in the window (SPEC §3).
--   Metrics: ctr = clicks/impressions, save_rate = saves/impressions,
--   saves_per_click = saves/clicks, recall = hits/plays, session_depth = depth/sessions.
--   recall and session_depth exist for the user-level slices (all, cohort, region, client) only.
--   /*attr_filter*/ is replaced by bound-parameter conditions on allow-listed attribute columns.
-- params: (none besides the optional filter values)
-- reads: user_facts, user_items
-- grain: experiment_id, metric, bucket, slice, slice_value
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
