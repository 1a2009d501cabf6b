-- name: health_bins
-- description: Additive health counts per 5-minute bin and request slice (non-shadow requests).
--   coverage = covered / requests; Top-K fill = k_returned / k_requested; error rate = errors / requests;
--   cache hit rate = cache_hits / requests; fallback share = fallback_<L> / requests.
-- params: start_ms: int, end_ms: int, bin_ms: int
-- reads: requests
-- grain: experiment_id, bin_ms, bucket, cohort, region, surface, client
SELECT
    experiment_id,
    timestamp_ms - (timestamp_ms % $bin_ms) AS bin_ms,
    bucket, cohort, region, surface, client,
    count(*) AS requests,
    sum(CASE WHEN status = 'ok' AND k_returned >= 1 THEN 1 ELSE 0 END) AS covered,
    sum(k_returned) AS k_returned,
    sum(k_requested) AS k_requested,
    sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
    sum(CASE WHEN cache_hit THEN 1 ELSE 0 END) AS cache_hits,
    sum(CASE WHEN fallback_level = 0 THEN 1 ELSE 0 END) AS fallback_0,
    sum(CASE WHEN fallback_level = 1 THEN 1 ELSE 0 END) AS fallback_1,
    sum(CASE WHEN fallback_level = 2 THEN 1 ELSE 0 END) AS fallback_2,
    sum(CASE WHEN fallback_level = 3 THEN 1 ELSE 0 END) AS fallback_3,
    sum(latency_ms) AS latency_sum_ms
FROM requests
WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
GROUP BY experiment_id, timestamp_ms - (timestamp_ms % $bin_ms), bucket, cohort, region, surface, client
