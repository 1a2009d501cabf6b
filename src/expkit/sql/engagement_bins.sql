-- name: engagement_bins
-- description: Impressions, clicks and saves per 5-minute bin, bucket and fallback level of the
--   serving request (fallback effectiveness = CTR per level; CTR anomaly series).
--   A click or save belongs to the impression with the same (request_id, item_id); clicks and
--   saves are counted per (request_id, item_id) together, so impressions are joined once.
--   (Distinct items shown come from item_hours.)
-- params: start_ms: int, end_ms: int, bin_ms: int
-- reads: requests, impressions, clicks, saves
-- grain: experiment_id, bin_ms, bucket, fallback_level
WITH eng AS (
    SELECT request_id, item_id,
        count(*) FILTER (WHERE kind = 0) AS clicks, count(*) FILTER (WHERE kind = 1) AS saves
    FROM (
        SELECT request_id, item_id, 0 AS kind FROM clicks
        WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
        UNION ALL
        SELECT request_id, item_id, 1 AS kind FROM saves
        WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
    ) AS e
    GROUP BY request_id, item_id
),
req AS (
    SELECT request_id, min(fallback_level) AS fallback_level FROM requests
    WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
    GROUP BY request_id
)
SELECT
    i.experiment_id,
    i.timestamp_ms - (i.timestamp_ms % $bin_ms) AS bin_ms,
    i.bucket,
    coalesce(req.fallback_level, -1) AS fallback_level,
    count(*) AS impressions,
    sum(coalesce(eng.clicks, 0)) AS clicks,
    sum(coalesce(eng.saves, 0)) AS saves
FROM impressions AS i
LEFT JOIN eng ON eng.request_id = i.request_id AND eng.item_id = i.item_id
LEFT JOIN req ON req.request_id = i.request_id
WHERE NOT i.shadow AND i.timestamp_ms >= $start_ms AND i.timestamp_ms < $end_ms
GROUP BY i.experiment_id, i.timestamp_ms - (i.timestamp_ms % $bin_ms), i.bucket,
    coalesce(req.fallback_level, -1)
