-- name: request_experiments
-- description: The experiment ids a day's requests carry, with their non-shadow requests (the
--   health_bins rollup): which experiment's parameters the platform's health tiles of a day with
--   several experiments read (docs/reports.md, "The portfolio").
-- params: (none)
-- reads: health_bins
-- grain: experiment_id
SELECT experiment_id, CAST(sum(requests) AS BIGINT) AS requests
FROM health_bins
GROUP BY experiment_id
ORDER BY experiment_id
