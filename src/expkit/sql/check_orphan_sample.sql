-- name: check_orphan_sample
-- description: Validation: up to sample_size orphan keys per relation (children with event time in
--   [start_ms, end_ms) whose parent is missing; see check_join_integrity), smallest keys first, so a
--   rerun shows the same sample. item_id is null for impressions -> requests.
-- params: start_ms: int, end_ms: int, visible_ms: int, sample_size: int
-- reads: requests, impressions, clicks, saves
-- grain: relation, request_id, item_id
WITH wanted AS (
    SELECT request_id, item_id FROM clicks WHERE timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
    UNION SELECT request_id, item_id FROM saves WHERE timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
),
imp AS (
    SELECT DISTINCT i.request_id, i.item_id
    FROM impressions AS i JOIN wanted AS w ON i.request_id = w.request_id AND i.item_id = w.item_id
    WHERE i.ingest_ms <= $visible_ms
),
req AS (
    SELECT DISTINCT request_id FROM requests WHERE ingest_ms <= $visible_ms
),
orphans AS (
    SELECT 'clicks' AS relation, c.request_id, c.item_id
    FROM clicks AS c LEFT JOIN imp AS p ON c.request_id = p.request_id AND c.item_id = p.item_id
    WHERE p.request_id IS NULL
        AND c.timestamp_ms >= $start_ms AND c.timestamp_ms < $end_ms AND c.ingest_ms <= $visible_ms
    UNION ALL
    SELECT 'saves', s.request_id, s.item_id
    FROM saves AS s LEFT JOIN imp AS p ON s.request_id = p.request_id AND s.item_id = p.item_id
    WHERE p.request_id IS NULL
        AND s.timestamp_ms >= $start_ms AND s.timestamp_ms < $end_ms AND s.ingest_ms <= $visible_ms
    UNION ALL
    SELECT 'impressions', i.request_id, CAST(NULL AS BIGINT)
    FROM impressions AS i LEFT JOIN req AS p ON i.request_id = p.request_id
    WHERE p.request_id IS NULL
        AND i.timestamp_ms >= $start_ms AND i.timestamp_ms < $end_ms AND i.ingest_ms <= $visible_ms
),
ranked AS (
    SELECT relation, request_id, item_id,
        row_number() OVER (PARTITION BY relation ORDER BY request_id, item_id) AS rn
    FROM (SELECT DISTINCT relation, request_id, item_id FROM orphans) AS d
)
SELECT relation, request_id, item_id FROM ranked WHERE rn <= $sample_size
