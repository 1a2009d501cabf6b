-- name: user_facts
-- description: Per-user facts over [start_ms, end_ms): the per-user sums that ratio metrics need
--   (delta method, CUPED), so that a window of several days treats a user as one unit.
--   slice = 'all' has one row per exposed user (cohort/region/client: the user's attributes at
--   first exposure); slice = 'surface' | 'genre' | 'provider' has one row per user and value with
--   that value's impressions, clicks and saves (sessions and depth are 0 there).
--   sessions = distinct sessions with a request; depth = distinct (session, item) clicked, saved or
--   played in those sessions. Recall@K is not a per-day sum: its facts are per (user, item), in
--   user_items. The declarative metrics of the catalogue add a numerator and a denominator column
--   each (m_<id>_num, m_<id>_den): expkit.metrics_sql writes the marked regions metric_ctes,
--   metric_all_columns, metric_all_joins, metric_slice_columns and metric_slice_joins.
-- params: start_ms: int, end_ms: int
-- reads: requests, impressions, clicks, saves, plays
-- grain: experiment_id, bucket, user_id, slice, slice_value
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
-- clicks and saves per (request, item), clicks and saves together
act AS (
    SELECT request_id, item_id, sum(is_click) AS clicks, sum(1 - is_click) AS saves
    FROM (
        SELECT request_id, item_id, 1 AS is_click FROM clicks
        WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
        UNION ALL
        SELECT request_id, item_id, 0 AS is_click FROM saves
        WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
    ) AS a
    GROUP BY request_id, item_id
),
-- impressions per user and surface, genre or provider, in one pass over the impressions; no join
-- here: carrying every impression through a join with act doubled the cost, and few have a click
shown AS (
    SELECT
        experiment_id, user_id,
        CASE WHEN grouping(surface) = 0 THEN 'surface' WHEN grouping(genre) = 0 THEN 'genre'
            ELSE 'provider' END AS slice,
        CASE WHEN grouping(surface) = 0 THEN surface WHEN grouping(genre) = 0 THEN genre
            ELSE provider END AS slice_value,
        count(*) AS impressions
    FROM impressions
    WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
    GROUP BY GROUPING SETS (
        (experiment_id, user_id, surface), (experiment_id, user_id, genre), (experiment_id, user_id, provider))
),
-- clicks and saves of the impressions that have any, per user and surface, genre or provider
engaged AS (
    SELECT
        i.experiment_id, i.user_id,
        CASE WHEN grouping(i.surface) = 0 THEN 'surface' WHEN grouping(i.genre) = 0 THEN 'genre'
            ELSE 'provider' END AS slice,
        CASE WHEN grouping(i.surface) = 0 THEN i.surface WHEN grouping(i.genre) = 0 THEN i.genre
            ELSE i.provider END AS slice_value,
        sum(act.clicks) AS clicks,
        sum(act.saves) AS saves
    FROM impressions AS i
    JOIN act ON act.request_id = i.request_id AND act.item_id = i.item_id
    WHERE NOT i.shadow AND i.timestamp_ms >= $start_ms AND i.timestamp_ms < $end_ms
    GROUP BY GROUPING SETS (
        (i.experiment_id, i.user_id, i.surface), (i.experiment_id, i.user_id, i.genre),
        (i.experiment_id, i.user_id, i.provider))
),
-- every group of engaged is a group of shown (NULL slice values included)
imp AS (
    SELECT
        s.experiment_id, s.user_id, s.slice, s.slice_value, s.impressions,
        coalesce(e.clicks, 0) AS clicks, coalesce(e.saves, 0) AS saves
    FROM shown AS s
    LEFT JOIN engaged AS e
        ON e.experiment_id IS NOT DISTINCT FROM s.experiment_id AND e.user_id IS NOT DISTINCT FROM s.user_id
        AND e.slice = s.slice AND e.slice_value IS NOT DISTINCT FROM s.slice_value
),
-- every impression has one surface (NULL included): a user's totals are the sum over surfaces
imp_user AS (
    SELECT experiment_id, user_id, sum(impressions) AS impressions, sum(clicks) AS clicks, sum(saves) AS saves
    FROM imp WHERE slice = 'surface' GROUP BY experiment_id, user_id
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
)
/*metric_ctes:begin*//*metric_ctes:end*/
SELECT
    u.experiment_id, u.bucket, u.user_id, 'all' AS slice, 'all' AS slice_value,
    u.cohort, u.region, u.client, u.first_ms,
    coalesce(iu.impressions, 0) AS impressions,
    coalesce(iu.clicks, 0) AS clicks,
    coalesce(iu.saves, 0) AS saves,
    u.sessions,
    coalesce(d.depth, 0) AS depth
    /*metric_all_columns:begin*//*metric_all_columns:end*/
FROM users AS u
LEFT JOIN imp_user AS iu ON iu.experiment_id = u.experiment_id AND iu.user_id = u.user_id
LEFT JOIN depth AS d ON d.user_id = u.user_id
/*metric_all_joins:begin*//*metric_all_joins:end*/
UNION ALL
SELECT
    u.experiment_id, u.bucket, u.user_id, s.slice, s.slice_value,
    u.cohort, u.region, u.client, u.first_ms,
    s.impressions, s.clicks, s.saves,
    0 AS sessions, 0 AS depth
    /*metric_slice_columns:begin*//*metric_slice_columns:end*/
FROM imp AS s
JOIN users AS u ON u.experiment_id = s.experiment_id AND u.user_id = s.user_id
/*metric_slice_joins:begin*//*metric_slice_joins:end*/
