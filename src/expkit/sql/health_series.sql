-- name: health_series
-- description: Health counts (the health_bins rollup) summed per 5-minute bin, or over the whole range
--   (per_bin false: bin_ms 0), and per value of one request slice column (slice 'all': one value 'all').
--   The counts stay additive: rates are ratios of these sums (expkit.series.add_rates).
-- params: start_ms: int, end_ms: int, slice: str, per_bin: bool
-- reads: health_bins
-- grain: bin_ms, slice_value
-- filters: where: bucket, cohort, region, surface, client, experiment_id
SELECT
    CASE WHEN $per_bin THEN bin_ms ELSE 0 END AS bin_ms,
    CASE $slice WHEN 'bucket' THEN bucket WHEN 'cohort' THEN cohort WHEN 'region' THEN region
        WHEN 'surface' THEN surface WHEN 'client' THEN client ELSE 'all' END AS slice_value,
    CAST(sum(requests) AS BIGINT) AS requests,
    CAST(sum(covered) AS BIGINT) AS covered,
    CAST(sum(k_returned) AS BIGINT) AS k_returned,
    CAST(sum(k_requested) AS BIGINT) AS k_requested,
    CAST(sum(errors) AS BIGINT) AS errors,
    CAST(sum(cache_hits) AS BIGINT) AS cache_hits,
    CAST(sum(fallback_0) AS BIGINT) AS fallback_0,
    CAST(sum(fallback_1) AS BIGINT) AS fallback_1,
    CAST(sum(fallback_2) AS BIGINT) AS fallback_2,
    CAST(sum(fallback_3) AS BIGINT) AS fallback_3,
    sum(latency_sum_ms) AS latency_sum_ms
FROM health_bins
WHERE bin_ms >= $start_ms AND bin_ms < $end_ms /*where*/
GROUP BY 1, 2
ORDER BY 1, 2
