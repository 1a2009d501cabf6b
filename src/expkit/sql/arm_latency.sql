-- name: arm_latency
-- description: A day's latency histogram per experiment and arm (docs/reports.md, "The portfolio"):
--   the per-user latency histograms of the day (a view "user_latency" of user_latency_hist rows,
--   repeated per exposed experiment by exposed_facts) summed per experiment, arm and log-scale
--   bucket, so that an arm whose requests are slow shows in its own experiment's row.
-- params: (none)
-- reads: user_latency
-- grain: experiment_id, bucket, idx
SELECT experiment_id, bucket, idx, sum(n) AS n
FROM user_latency
GROUP BY experiment_id, bucket, idx
ORDER BY experiment_id, bucket, idx
