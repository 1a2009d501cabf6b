-- name: latency_rows_binned
-- description: Latency histogram counts (the latency_hist rollup) of one slice summed per bin of bin_ms
--   ms, or over the whole range (per_bin false: bin_ms 0), per slice value (NULL unless sliced), cache
--   state and histogram bucket. Counts merge by adding, so quantiles of the coarser bins are exact to
--   the histogram's 1%.
-- params: start_ms: int, end_ms: int, slice: str, sliced: bool, bin_ms: int, per_bin: bool
-- reads: latency_hist
-- grain: bin_ms, slice_value, cache_hit, idx
-- filters: where: slice_value, experiment_id
SELECT
    CASE WHEN $per_bin THEN bin_ms - (bin_ms % $bin_ms) ELSE 0 END AS bin_ms,
    CASE WHEN $sliced THEN slice_value END AS slice_value,
    cache_hit, idx, sum(n) AS n
FROM latency_hist
WHERE slice = $slice AND bin_ms >= $start_ms AND bin_ms < $end_ms /*where*/
GROUP BY 1, 2, 3, 4
