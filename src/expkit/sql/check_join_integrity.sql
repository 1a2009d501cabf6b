-- name: check_join_integrity
-- description: Validation: join integrity and event order of the three event relations. A click or
--   save belongs to the impression with the same (request_id, item_id); an impression to the request
--   with the same request_id. Per relation: child rows with event time in [start_ms, end_ms) that had
--   landed by visible_ms, orphans (no parent row at all) and rows earlier than their parent (click
--   before its impression). Parents may be on the previous day (a click just after midnight), so
--   the parent tables should cover the day before too.
-- params: start_ms: int, end_ms: int, visible_ms: int
-- reads: requests, impressions, clicks, saves
-- grain: relation
WITH wanted AS (
    -- the impressions clicks and saves point at: aggregating only those is several times faster
    SELECT request_id, item_id FROM clicks WHERE timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
    UNION SELECT request_id, item_id FROM saves WHERE timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
),
imp AS (
    SELECT i.request_id, i.item_id, min(i.timestamp_ms) AS parent_ms
    FROM impressions AS i JOIN wanted AS w ON i.request_id = w.request_id AND i.item_id = w.item_id
    WHERE i.ingest_ms <= $visible_ms
    GROUP BY i.request_id, i.item_id
),
req AS (
    SELECT request_id, min(timestamp_ms) AS parent_ms
    FROM requests
    WHERE ingest_ms <= $visible_ms
    GROUP BY request_id
),
pairs AS (
    SELECT 'clicks' AS relation, c.timestamp_ms, p.parent_ms
    FROM clicks AS c LEFT JOIN imp AS p ON c.request_id = p.request_id AND c.item_id = p.item_id
    WHERE c.timestamp_ms >= $start_ms AND c.timestamp_ms < $end_ms AND c.ingest_ms <= $visible_ms
    UNION ALL
    SELECT 'saves', s.timestamp_ms, p.parent_ms
    FROM saves AS s LEFT JOIN imp AS p ON s.request_id = p.request_id AND s.item_id = p.item_id
    WHERE s.timestamp_ms >= $start_ms AND s.timestamp_ms < $end_ms AND s.ingest_ms <= $visible_ms
    UNION ALL
    SELECT 'impressions', i.timestamp_ms, p.parent_ms
    FROM impressions AS i LEFT JOIN req AS p ON i.request_id = p.request_id
    WHERE i.timestamp_ms >= $start_ms AND i.timestamp_ms < $end_ms AND i.ingest_ms <= $visible_ms
)
SELECT
    relation,
    count(*) AS n_rows,
    sum(CASE WHEN parent_ms IS NULL THEN 1 ELSE 0 END) AS orphans,
    sum(CASE WHEN timestamp_ms < parent_ms THEN 1 ELSE 0 END) AS before_parent
FROM pairs
GROUP BY relation
