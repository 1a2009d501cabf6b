-- name: user_cum
-- description: Each user's facts over the experiment to date (start_date through a day): the running
--   totals that the cum window's statistics read instead of every day's user_day since the start
--   (docs/architecture.md, "Experiment-to-date running totals"). Reads a view "user_facts" holding the
--   previous day's user_cum and the day's user_day (or, when the previous day has none yet, the user_day
--   of every experiment day to date: the same numbers). One row per (experiment, user, slice, value), in
--   the schema of user_day: the per-day sums summed, first_ms the earliest, and the arm and attributes
--   those of that first exposure, which is what ratio_stats takes per user over a window. Sums and the
--   earliest exposure do not depend on how the days are grouped, so the totals are exact.
--   The declarative metrics of the catalogue add their m_<id>_num / m_<id>_den sums: expkit.metrics_sql
--   writes the marked region metric_sums.
-- params: (none)
-- reads: user_facts
-- grain: experiment_id, user_id, slice, slice_value
SELECT
    experiment_id,
    arg_min(bucket, first_ms) AS bucket,
    user_id, slice, slice_value,
    arg_min(cohort, first_ms) AS cohort,
    arg_min(region, first_ms) AS region,
    arg_min(client, first_ms) AS client,
    min(first_ms) AS first_ms,
    CAST(sum(impressions) AS BIGINT) AS impressions, CAST(sum(clicks) AS BIGINT) AS clicks,
    CAST(sum(saves) AS BIGINT) AS saves, CAST(sum(sessions) AS BIGINT) AS sessions,
    CAST(sum(depth) AS BIGINT) AS depth
    /*metric_sums:begin*//*metric_sums:end*/
FROM user_facts
GROUP BY experiment_id, user_id, slice, slice_value
