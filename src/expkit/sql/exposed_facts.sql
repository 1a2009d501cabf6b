-- name: exposed_facts
-- description: A day's per-user rollup in a warehouse where several experiments run at once
--   (docs/metrics.md, "Several experiments"): the rows of a view "facts" (user_facts or
--   user_latency_hist over the day, keyed by the experiment the requests carry) once per
--   experiment the user was exposed to that day (a view "exposures", one row per user and
--   experiment), with that experiment's id and the user's arm in it (a row is identified by
--   experiment_id, user_id and the rest of the grain of facts). Every experiment runs the
--   whole day, so a user's facts are the same in each; ratio_stats then reads each experiment's
--   users exactly as with one experiment.
-- params: (none)
-- reads: facts, exposures
-- grain: experiment_id, user_id
WITH x AS (
    SELECT experiment_id, user_id, arg_min(bucket, timestamp_ms) AS bucket
    FROM exposures
    WHERE NOT shadow
    GROUP BY experiment_id, user_id
)
SELECT x.experiment_id, x.bucket, f.* EXCLUDE (experiment_id, bucket)
FROM facts AS f
JOIN x ON x.user_id = f.user_id
