-- name: check_bucket_consistency
-- description: Validation: a user stays in one bucket per experiment (the randomization unit is the
--   user). Over requests and impressions with event time in [start_ms, end_ms) that had landed by
--   visible_ms: users seen, users seen in more than one bucket, and the smallest such user id.
-- params: start_ms: int, end_ms: int, visible_ms: int
-- reads: requests, impressions
-- grain: experiment_id
WITH e AS (
    SELECT experiment_id, user_id, bucket, timestamp_ms, ingest_ms FROM requests
    UNION ALL SELECT experiment_id, user_id, bucket, timestamp_ms, ingest_ms FROM impressions
),
per_user AS (
    SELECT experiment_id, user_id, count(DISTINCT bucket) AS buckets
    FROM e
    WHERE timestamp_ms >= $start_ms AND timestamp_ms < $end_ms AND ingest_ms <= $visible_ms
        AND user_id IS NOT NULL
    GROUP BY experiment_id, user_id
)
SELECT
    experiment_id,
    count(*) AS users,
    sum(CASE WHEN buckets > 1 THEN 1 ELSE 0 END) AS mixed_users,
    min(CASE WHEN buckets > 1 THEN user_id END) AS example_user_id
FROM per_user
GROUP BY experiment_id
