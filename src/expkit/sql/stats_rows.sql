-- name: stats_rows
-- description: Rows of the outcome statistics rollup (outcome_stats; see ratio_stats) of some windows and
--   metrics, for one slice column and experiment: the sufficient statistics per arm and slice value that
--   the outcome tiles read when no user-attribute filter asks for a re-aggregation. Every column is kept,
--   so a table registered with its partition column (event_date, from the folder name) keeps the day.
-- params: windows: list[str], metrics: list[str], slice: str, experiment_id: str
-- reads: outcome_stats
-- grain: experiment_id, window_name, metric, bucket, slice, slice_value
SELECT *
FROM outcome_stats
WHERE list_contains($windows, window_name) AND list_contains($metrics, metric)
    AND slice = $slice AND experiment_id = $experiment_id
