-- name: user_pre
-- description: CUPED pre-period: each user's numerator and denominator of every outcome ratio metric
--   summed over the pre-period days before the experiment's start (docs/statistics.md, "CUPED from the
--   rollups"). Reads the per-user facts of those days (a view "user_facts", slice 'all') and their per
--   (user, item) facts (a view "user_items", for Recall@K over the whole pre-period). One row per user,
--   whatever experiment id the pre-period traffic carried: the pre-period is the user's history.
--   Column pre_<id>_num / pre_<id>_den per ratio metric of the catalogue: expkit.metrics_sql writes the
--   marked regions metric_sums and pre_columns from it; per-user-mean metrics have denominator 1.
-- params: (none)
-- reads: user_facts, user_items
-- grain: user_id
WITH facts AS (
    SELECT
        user_id,
        sum(impressions) AS impressions, sum(clicks) AS clicks, sum(saves) AS saves,
        sum(sessions) AS sessions, sum(depth) AS depth, 1.0 AS users
        /*metric_sums:begin*//*metric_sums:end*/
    FROM user_facts
    WHERE slice = 'all'
    GROUP BY user_id
),
/*include:recall_ctes*/
per_user AS (
    SELECT
        f.*, coalesce(r.plays, 0) AS plays, coalesce(r.hits, 0) AS hits
    FROM facts AS f
    LEFT JOIN recall AS r ON r.user_id = f.user_id
)
SELECT
    user_id
    /*pre_columns:begin*/, CAST(clicks AS DOUBLE) AS pre_ctr_num , CAST(impressions AS DOUBLE) AS pre_ctr_den , CAST(saves AS DOUBLE) AS pre_save_rate_num , CAST(impressions AS DOUBLE) AS pre_save_rate_den , CAST(saves AS DOUBLE) AS pre_saves_per_click_num , CAST(clicks AS DOUBLE) AS pre_saves_per_click_den , CAST(hits AS DOUBLE) AS pre_recall_num , CAST(plays AS DOUBLE) AS pre_recall_den , CAST(depth AS DOUBLE) AS pre_session_depth_num , CAST(sessions AS DOUBLE) AS pre_session_depth_den/*pre_columns:end*/
FROM per_user
