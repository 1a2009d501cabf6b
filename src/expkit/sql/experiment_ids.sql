-- name: experiment_ids
-- description: The experiments a day's outcome statistics hold, with their exposed users up to that
--   day (experiment-to-date window): tells a parameters file whose experiment_id the data lacks.
-- reads: outcome_stats
-- grain: experiment_id
SELECT experiment_id, sum(n) AS users
FROM outcome_stats
WHERE window_name = 'cum' AND metric = 'ctr' AND slice = 'all'
GROUP BY experiment_id
ORDER BY experiment_id
