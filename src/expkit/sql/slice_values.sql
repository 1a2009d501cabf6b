-- name: slice_values
-- description: The distinct values of one slice column seen in an experiment up to a report day,
--   from that day's experiment-to-date ('cum') CTR statistics: every exposed user has a CTR row,
--   so every value of a user or impression attribute shows. Tiles check filter values against them.
-- params: slice_column: str, experiment_id: str
-- reads: outcome_stats
-- grain: slice_value
SELECT DISTINCT slice_value
FROM outcome_stats
WHERE window_name = 'cum' AND metric = 'ctr' AND slice = $slice_column AND experiment_id = $experiment_id
ORDER BY slice_value
