-- name: latency_hist
-- description: Log-scale latency histograms per 5-minute bin, slice and cache state, mergeable by
--   summing counts. Bucket i holds latencies in (gamma^(i-1), gamma^i] ms with
--   gamma = (1 + a) / (1 - a); its midpoint 2 gamma^i / (gamma + 1) is within a (1%) of every
--   value in it (see expkit.histogram). slice = 'all' (slice_value 'all') or a request slice column.
--   One pass over the requests feeds every slice (GROUPING SETS), instead of one row per slice and request.
-- params: start_ms: int, end_ms: int, bin_ms: int, ln_gamma: float, min_ms: float
-- reads: requests
-- grain: experiment_id, bin_ms, slice, slice_value, cache_hit, idx
WITH r AS (
    SELECT
        experiment_id,
        timestamp_ms - (timestamp_ms % $bin_ms) AS bin_ms,
        bucket, cohort, region, surface, client, cache_hit,
        CAST(ceil(ln(greatest(latency_ms, $min_ms)) / $ln_gamma) AS INTEGER) AS idx
    FROM requests
    WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
)
SELECT
    experiment_id, bin_ms,
    CASE WHEN grouping(bucket) = 0 THEN 'bucket' WHEN grouping(cohort) = 0 THEN 'cohort'
        WHEN grouping(region) = 0 THEN 'region' WHEN grouping(surface) = 0 THEN 'surface'
        WHEN grouping(client) = 0 THEN 'client' ELSE 'all' END AS slice,
    CASE WHEN grouping(bucket) = 0 THEN bucket WHEN grouping(cohort) = 0 THEN cohort
        WHEN grouping(region) = 0 THEN region WHEN grouping(surface) = 0 THEN surface
        WHEN grouping(client) = 0 THEN client ELSE 'all' END AS slice_value,
    cache_hit, idx, count(*) AS n
FROM r
GROUP BY GROUPING SETS (
    (experiment_id, bin_ms, cache_hit, idx),
    (experiment_id, bin_ms, bucket, cache_hit, idx),
    (experiment_id, bin_ms, cohort, cache_hit, idx),
    (experiment_id, bin_ms, region, cache_hit, idx),
    (experiment_id, bin_ms, surface, cache_hit, idx),
    (experiment_id, bin_ms, client, cache_hit, idx)
)
