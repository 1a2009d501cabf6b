-- name: check_hourly_rows
-- description: Validation: rows per event table and bin of event time over [start_ms, end_ms) (every
--   row, shadow included): the usual volume of each hour on previous days, which partition
--   completeness compares the checked day with.
-- params: start_ms: int, end_ms: int, bin_ms: int
-- reads: requests, impressions, clicks, saves, plays
-- grain: event_table, bin_ms
WITH e AS (
    SELECT 'requests' AS event_table, timestamp_ms FROM requests
    UNION ALL SELECT 'impressions', timestamp_ms FROM impressions
    UNION ALL SELECT 'clicks', timestamp_ms FROM clicks
    UNION ALL SELECT 'saves', timestamp_ms FROM saves
    UNION ALL SELECT 'plays', timestamp_ms FROM plays
)
SELECT event_table, timestamp_ms - (timestamp_ms % $bin_ms) AS bin_ms, count(*) AS n_rows
FROM e
WHERE timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
GROUP BY event_table, timestamp_ms - (timestamp_ms % $bin_ms)
