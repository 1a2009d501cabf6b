-- name: items_shown
-- description: Distinct items shown and impressions (the item_hours rollup) in the whole hours of
--   [start_ms, end_ms), per arm (by_bucket) or over all arms (bucket 'all'). Exact: item_hours keeps
--   every item of every hour.
-- params: start_ms: int, end_ms: int, by_bucket: bool
-- reads: item_hours
-- grain: bucket
-- filters: where: bucket, experiment_id
SELECT
    CASE WHEN $by_bucket THEN bucket ELSE 'all' END AS bucket,
    count(DISTINCT item_id) AS items,
    CAST(sum(impressions) AS BIGINT) AS impressions
FROM item_hours
WHERE hour_ms >= $start_ms AND hour_ms < $end_ms /*where*/
GROUP BY 1
ORDER BY 1
