-- name: arm_errors
-- description: A day's users, requests and failed requests per experiment and arm (docs/reports.md,
--   "The portfolio") from the per-user facts of the day (a view "user_facts" of user_facts rows,
--   repeated per exposed experiment by exposed_facts; m_error_rate_num and m_error_rate_den are the
--   columns of the catalogue's error_rate metric).
-- params: (none)
-- reads: user_facts
-- grain: experiment_id, bucket
SELECT experiment_id, bucket, count(*) AS users,
    sum(m_error_rate_num) AS errors, sum(m_error_rate_den) AS requests
FROM user_facts
WHERE slice = 'all'
GROUP BY experiment_id, bucket
ORDER BY experiment_id, bucket
