-- name: latency_rows
-- description: Latency histogram rows (the latency_hist rollup) of one slice at the rollup's own 5-minute
--   grain, for expkit.series to merge into quantiles. slice_value is NULL unless sliced (an unsliced read
--   of a filtered slice merges its values; NULL is cheaper to return than a text per row, and the caller
--   names the merged value). See latency_rows_binned for coarser bins.
-- params: start_ms: int, end_ms: int, slice: str, sliced: bool
-- reads: latency_hist
-- grain: bin_ms, slice_value, cache_hit, idx
-- filters: where: slice_value, experiment_id
SELECT
    bin_ms, CASE WHEN $sliced THEN slice_value END AS slice_value, cache_hit, idx, n
FROM latency_hist
WHERE slice = $slice AND bin_ms >= $start_ms AND bin_ms < $end_ms /*where*/
