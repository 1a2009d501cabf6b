-- name: error_bins
-- description: Failed requests per 5-minute bin, request slice, error component and severity.
-- params: start_ms: int, end_ms: int, bin_ms: int
-- reads: requests
-- grain: experiment_id, bin_ms, bucket, cohort, region, surface, client, error_component, error_severity
SELECT
    experiment_id,
    timestamp_ms - (timestamp_ms % $bin_ms) AS bin_ms,
    bucket, cohort, region, surface, client,
    coalesce(error_component, 'unknown') AS error_component,
    coalesce(error_severity, 'unknown') AS error_severity,
    count(*) AS errors
FROM requests
WHERE NOT shadow AND status = 'error' AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
GROUP BY experiment_id, timestamp_ms - (timestamp_ms % $bin_ms), bucket, cohort, region, surface, client,
         coalesce(error_component, 'unknown'), coalesce(error_severity, 'unknown')
