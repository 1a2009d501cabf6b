-- name: error_series
-- description: Failed requests (the error_bins rollup) per 5-minute bin, or over the whole range (per_bin
--   false: bin_ms 0), per value of one request slice column (slice 'all': one value 'all'), component and
--   severity. Divide by health_series requests for rates.
-- params: start_ms: int, end_ms: int, slice: str, per_bin: bool
-- reads: error_bins
-- grain: bin_ms, slice_value, error_component, error_severity
-- filters: where: bucket, cohort, region, surface, client, experiment_id
SELECT
    CASE WHEN $per_bin THEN bin_ms ELSE 0 END AS bin_ms,
    CASE $slice WHEN 'bucket' THEN bucket WHEN 'cohort' THEN cohort WHEN 'region' THEN region
        WHEN 'surface' THEN surface WHEN 'client' THEN client ELSE 'all' END AS slice_value,
    error_component, error_severity,
    CAST(sum(errors) AS BIGINT) AS errors
FROM error_bins
WHERE bin_ms >= $start_ms AND bin_ms < $end_ms /*where*/
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
