-- name: exposure_ages
-- description: Each user's numerator and denominator of every per-day ratio metric per exposure-age bucket
--   over the experiment to date: what exposure_stats reads (docs/statistics.md, "Novelty and primacy").
--   A user's arm is that of her first exposure (a view "user_first": the user_first partitions of the
--   experiment's days to date); her age on a day is the whole days since it, ages from $tail on grouped in
--   one bucket (age = $tail). Reads the per-user facts of the day (a view "user_facts": its user_day,
--   slice 'all') and the previous day's exposure_ages (a view "earlier_ages"), or, when the previous day has
--   none, the user_day of every experiment day to date and no earlier ages: the same sums, since they do
--   not depend on how the days are grouped (docs/architecture.md, "Experiment-to-date running totals").
--   A per-user-mean metric's denominator is her active days (users). One row per (experiment, user, arm,
--   age bucket); every value a DOUBLE. expkit.metrics_sql writes the marked regions metric_columns, metric_names
--   and metric_sums from the catalogue.
-- params: tail: int, day_ms: int
-- reads: user_facts, user_first, earlier_ages
-- grain: experiment_id, user_id, bucket, age
WITH days AS (
    SELECT
        f.experiment_id, f.user_id, u.bucket,
        least(CAST(((f.first_ms - f.first_ms % $day_ms) - (u.first_ms - u.first_ms % $day_ms)) / $day_ms AS BIGINT),
            CAST($tail AS BIGINT)) AS age,
        CAST(f.impressions AS DOUBLE) AS impressions, CAST(f.clicks AS DOUBLE) AS clicks,
        CAST(f.saves AS DOUBLE) AS saves, CAST(f.sessions AS DOUBLE) AS sessions,
        CAST(f.depth AS DOUBLE) AS depth, CAST(1 AS DOUBLE) AS users
        /*metric_columns:begin*//*metric_columns:end*/
    FROM user_facts AS f
    JOIN user_first AS u ON u.experiment_id = f.experiment_id AND u.user_id = f.user_id
    WHERE f.slice = 'all'
),
merged AS (
    SELECT * FROM days
    UNION ALL
    SELECT
        experiment_id, user_id, bucket, age, impressions, clicks, saves, sessions, depth, users
        /*metric_names:begin*//*metric_names:end*/
    FROM earlier_ages
)
SELECT
    experiment_id, user_id, bucket, age,
    sum(impressions) AS impressions, sum(clicks) AS clicks, sum(saves) AS saves,
    sum(sessions) AS sessions, sum(depth) AS depth, sum(users) AS users
    /*metric_sums:begin*//*metric_sums:end*/
FROM merged
GROUP BY experiment_id, user_id, bucket, age
