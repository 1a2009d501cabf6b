-- name: exposure_rows
-- description: Rows of the exposure-age statistics rollup (exposure_stats) of some metrics of one experiment:
--   per arm and pair of exposure ages, n and the sums of the lift by days since first exposure and of its
--   trend (the novelty tile's read).
-- params: metrics: list[str], experiment_id: str
-- reads: exposure_stats
-- grain: experiment_id, metric, bucket, age, age2
SELECT *
FROM exposure_stats
WHERE list_contains($metrics, metric) AND experiment_id = $experiment_id
