-- name: engagement_series
-- description: Impressions, clicks and saves (the engagement_bins rollup) per bin of bin_ms ms, or over the
--   whole range (per_bin false: bin_ms 0), per arm and fallback level of the serving request (-1: the
--   request was not logged).
-- params: start_ms: int, end_ms: int, bin_ms: int, per_bin: bool
-- reads: engagement_bins
-- grain: bin_ms, bucket, fallback_level
-- filters: where: bucket, experiment_id
SELECT
    CASE WHEN $per_bin THEN bin_ms - (bin_ms % $bin_ms) ELSE 0 END AS bin_ms,
    bucket, fallback_level,
    CAST(sum(impressions) AS BIGINT) AS impressions,
    CAST(sum(clicks) AS BIGINT) AS clicks,
    CAST(sum(saves) AS BIGINT) AS saves
FROM engagement_bins
WHERE bin_ms >= $start_ms AND bin_ms < $end_ms /*where*/
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
