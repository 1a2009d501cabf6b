-- name: item_hours
-- description: Impressions per item, arm and hour (non-shadow), so that the number of distinct
--   items shown over any span of whole hours (the catalog coverage of a window) is exact.
-- params: start_ms: int, end_ms: int
-- reads: impressions
-- grain: experiment_id, hour_ms, bucket, item_id
SELECT
    experiment_id,
    timestamp_ms - (timestamp_ms % 3600000) AS hour_ms,
    bucket,
    item_id,
    count(*) AS impressions
FROM impressions
WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
GROUP BY experiment_id, timestamp_ms - (timestamp_ms % 3600000), bucket, item_id
