-- name: check_hourly_profile
-- description: Validation: rows and ingest delay (ingest_ms - timestamp_ms) per event table and
--   bin of event time (one hour in the checks), for partition completeness and the event-delay
--   check. Counts every row (shadow included: completeness and freshness are about the pipeline)
--   that had landed by visible_ms. p95 is approximate (t-digest), enough for a 15-minute threshold.
-- params: start_ms: int, end_ms: int, visible_ms: int, bin_ms: int
-- reads: requests, impressions, clicks, saves, plays
-- grain: event_table, bin_ms
WITH e AS (
    SELECT 'requests' AS event_table, timestamp_ms, ingest_ms FROM requests
    UNION ALL SELECT 'impressions', timestamp_ms, ingest_ms FROM impressions
    UNION ALL SELECT 'clicks', timestamp_ms, ingest_ms FROM clicks
    UNION ALL SELECT 'saves', timestamp_ms, ingest_ms FROM saves
    UNION ALL SELECT 'plays', timestamp_ms, ingest_ms FROM plays
)
SELECT
    event_table,
    timestamp_ms - (timestamp_ms % $bin_ms) AS bin_ms,
    count(*) AS n_rows,
    approx_quantile(CAST(ingest_ms - timestamp_ms AS DOUBLE), 0.95) AS p95_delay_ms,
    max(ingest_ms - timestamp_ms) AS max_delay_ms
FROM e
WHERE timestamp_ms >= $start_ms AND timestamp_ms < $end_ms AND ingest_ms <= $visible_ms
GROUP BY event_table, timestamp_ms - (timestamp_ms % $bin_ms)
