-- name: check_duplicates
-- description: Validation: event ids seen more than once, per event table (the id of schema.EVENT_ID;
--   an impression is identified by (request_id, item_id), so key2 is its item_id and null elsewhere).
--   One row per duplicated key among the first sample_size keys of each table (smallest first), each
--   carrying its table's totals: duplicated_keys and extra_rows (rows beyond the first copy, i.e. how
--   many rows a count would over-state). No row for a table without duplicates.
-- params: start_ms: int, end_ms: int, visible_ms: int, sample_size: int
-- reads: requests, impressions, clicks, saves, plays
-- grain: event_table, key1, key2
WITH e AS (
    SELECT 'requests' AS event_table, request_id AS key1, CAST(NULL AS BIGINT) AS key2, timestamp_ms, ingest_ms
    FROM requests
    UNION ALL SELECT 'impressions', request_id, item_id, timestamp_ms, ingest_ms FROM impressions
    UNION ALL SELECT 'clicks', click_id, CAST(NULL AS BIGINT), timestamp_ms, ingest_ms FROM clicks
    UNION ALL SELECT 'saves', save_id, CAST(NULL AS BIGINT), timestamp_ms, ingest_ms FROM saves
    UNION ALL SELECT 'plays', play_id, CAST(NULL AS BIGINT), timestamp_ms, ingest_ms FROM plays
),
dup AS (
    SELECT event_table, key1, key2, count(*) AS copies
    FROM e
    WHERE timestamp_ms >= $start_ms AND timestamp_ms < $end_ms AND ingest_ms <= $visible_ms
    GROUP BY event_table, key1, key2
    HAVING count(*) > 1
),
ranked AS (
    SELECT
        event_table, key1, key2, copies,
        count(*) OVER (PARTITION BY event_table) AS duplicated_keys,
        sum(copies - 1) OVER (PARTITION BY event_table) AS extra_rows,
        row_number() OVER (PARTITION BY event_table ORDER BY key1, key2) AS rn
    FROM dup
)
SELECT event_table, key1, key2, copies, duplicated_keys, extra_rows
FROM ranked
WHERE rn <= $sample_size
