-- name: check_staleness
-- description: Validation: per event table, the newest ingest_ms that had landed by visible_ms, and
--   how many rows landed in the window_ms before it (the table's recent arrival rate, which tells
--   whether a silence is long enough to mean something). Staleness = now - newest_ingest_ms.
-- params: visible_ms: int, window_ms: int
-- reads: requests, impressions, clicks, saves, plays
-- grain: event_table
WITH e AS (
    SELECT 'requests' AS event_table, ingest_ms FROM requests
    UNION ALL SELECT 'impressions', ingest_ms FROM impressions
    UNION ALL SELECT 'clicks', ingest_ms FROM clicks
    UNION ALL SELECT 'saves', ingest_ms FROM saves
    UNION ALL SELECT 'plays', ingest_ms FROM plays
),
visible AS (
    SELECT event_table, ingest_ms FROM e WHERE ingest_ms <= $visible_ms
),
newest AS (
    SELECT event_table, max(ingest_ms) AS newest_ingest_ms FROM visible GROUP BY event_table
)
SELECT
    n.event_table,
    n.newest_ingest_ms,
    sum(CASE WHEN v.ingest_ms > n.newest_ingest_ms - $window_ms THEN 1 ELSE 0 END) AS recent_rows
FROM newest AS n
JOIN visible AS v ON v.event_table = n.event_table
GROUP BY n.event_table, n.newest_ingest_ms
