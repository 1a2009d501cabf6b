-- name: played_items
-- description: The (user, item) pairs played in a period, with what Recall@K needs to count each of them in
--   any window that holds the period, so that a window reads these small tables of its days instead of
--   every (user, item) pair shown in it (docs/metrics.md, "Outcome metrics"; the definition itself is the
--   fragment recall_ctes). Reads the period's per (user, item) facts (a view "day_items": a day's
--   user_items, or its last hour's) and those of the earlier days of the experiment (a view
--   "earlier_items": their user_items; empty for a last hour). One row per pair played in the period:
--   shown_before = shown at position <= K in the period before its first play there; last_shown_ms =
--   its first top-K impression on the latest earlier day with one, last_played_ms = its first play on
--   the latest earlier day with one (NULL: none since the experiment's start). In a window starting at
--   a day boundary a, the pair's first play of the window is this period's when last_played_ms is NULL
--   or before a, and it is then a hit when shown_before or last_shown_ms >= a (template ratio_stats).
-- params: (none)
-- reads: day_items, earlier_items
-- grain: user_id, item_id
WITH earlier AS (
    -- a semi join: the look back scans the earlier days once, keeping only the pairs played in the period
    SELECT e.user_id, e.item_id, max(e.first_topk_shown_ms) AS last_shown_ms, max(e.first_play_ms) AS last_played_ms
    FROM earlier_items AS e
    WHERE EXISTS (
        SELECT 1 FROM day_items AS d
        WHERE d.first_play_ms IS NOT NULL AND d.user_id = e.user_id AND d.item_id = e.item_id
    )
    GROUP BY e.user_id, e.item_id
)
SELECT
    d.user_id, d.item_id,
    coalesce(d.first_topk_shown_ms < d.first_play_ms, FALSE) AS shown_before,
    e.last_shown_ms, e.last_played_ms
FROM day_items AS d
LEFT JOIN earlier AS e ON e.user_id = d.user_id AND e.item_id = d.item_id
WHERE d.first_play_ms IS NOT NULL
