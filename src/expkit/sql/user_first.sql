-- name: user_first
-- description: The users first exposed on a day (docs/architecture.md, "Lineage"): one row per user of the
--   experiment seen that day (a view "user_facts": the day's user_day, slice 'all') who is not in the
--   first-exposure rows of any earlier day of the experiment (a view "earlier_first": those days' user_first).
--   bucket is the user's arm at that first exposure, first_ms her first request. The first exposure day of
--   a user is the day of the one partition that holds her, so a window's partitions together give every
--   user's first exposure day; each day reads its own user_day and one row per earlier user, never the
--   whole per-user history.
-- params: (none)
-- reads: user_facts, earlier_first
-- grain: experiment_id, user_id
SELECT f.experiment_id, f.user_id, f.bucket, f.first_ms
FROM user_facts AS f
LEFT JOIN earlier_first AS e ON e.experiment_id = f.experiment_id AND e.user_id = f.user_id
WHERE f.slice = 'all' AND e.user_id IS NULL
