-- name: user_latency_hist
-- description: Per-user log-scale latency histograms of a day: one row per user and latency bucket
--   with the user's requests in it (the buckets of latency_hist and expkit.histogram: bucket i holds
--   latencies in (gamma^(i-1), gamma^i] ms, its midpoint within 1% of every value in it). bucket and
--   first_ms are the user's arm and first request of the day, so that a window of several days
--   takes each user's arm at first exposure. Mergeable across days by summing n per (user, idx):
--   what the user-clustered quantile interval of a latency guardrail needs for any window
--   (expkit.stats.guardrails.quantile_arm, template latency_quantile_stats).
-- params: start_ms: int, end_ms: int, ln_gamma: float, min_ms: float
-- reads: requests
-- grain: experiment_id, user_id, idx
WITH r AS (
    SELECT
        experiment_id, user_id, bucket, timestamp_ms,
        CAST(ceil(ln(greatest(latency_ms, $min_ms)) / $ln_gamma) AS INTEGER) AS idx
    FROM requests
    WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
),
users AS (
    SELECT experiment_id, user_id, arg_min(bucket, timestamp_ms) AS bucket, min(timestamp_ms) AS first_ms
    FROM r
    GROUP BY experiment_id, user_id
),
hist AS (
    SELECT experiment_id, user_id, idx, count(*) AS n
    FROM r
    GROUP BY experiment_id, user_id, idx
)
SELECT h.experiment_id, u.bucket, h.user_id, u.first_ms, h.idx, h.n
FROM hist AS h
JOIN users AS u ON u.experiment_id = h.experiment_id AND u.user_id = h.user_id
