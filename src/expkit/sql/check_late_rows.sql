-- name: check_late_rows
-- description: Validation (late data): per event table, rows of the day [start_ms, end_ms) that landed
--   after the day was rolled up, i.e. with ingest_ms above the newest ingest_ms that table's rollup saw
--   (its watermark, wm_<table>; -1 when the rollup saw no rows of it), and the newest ingest_ms now.
-- params: start_ms: int, end_ms: int, wm_requests: int, wm_impressions: int, wm_clicks: int, wm_saves: int, wm_plays: int
-- reads: requests, impressions, clicks, saves, plays
-- grain: event_table
WITH e AS (
    SELECT 'requests' AS event_table, timestamp_ms, ingest_ms, $wm_requests AS wm FROM requests
    UNION ALL SELECT 'impressions', timestamp_ms, ingest_ms, $wm_impressions FROM impressions
    UNION ALL SELECT 'clicks', timestamp_ms, ingest_ms, $wm_clicks FROM clicks
    UNION ALL SELECT 'saves', timestamp_ms, ingest_ms, $wm_saves FROM saves
    UNION ALL SELECT 'plays', timestamp_ms, ingest_ms, $wm_plays FROM plays
)
SELECT
    event_table,
    count(*) AS n_rows,
    sum(CASE WHEN ingest_ms > wm THEN 1 ELSE 0 END) AS late_rows,
    min(CASE WHEN ingest_ms > wm THEN ingest_ms END) AS first_late_ingest_ms,
    max(ingest_ms) AS newest_ingest_ms
FROM e
WHERE timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
GROUP BY event_table
