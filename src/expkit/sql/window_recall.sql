-- fragment: window_recall
-- description: Recall@K per user over a window, from the played pairs of its days (a view "played_items",
--   template played_items) and the window's first instant $window_start_ms (a day boundary; the last
--   hour's start for 1h): a pair counts once, in the period of its first play of the window (none
--   earlier since $window_start_ms), as a hit when shown at position <= K before that play within the
--   window. The same numbers as the definition, the fragment recall_ctes over the window's per (user,
--   item) facts (tests/rollup/test_rollup_recall.py), while reading only pairs that were played. Two CTEs,
--   window_plays and recall (user_id, plays, hits), each followed by a comma: include it inside a WITH list.
window_plays AS (
    SELECT
        user_id,
        last_played_ms IS NULL OR last_played_ms < $window_start_ms AS first_here,
        shown_before OR coalesce(last_shown_ms >= $window_start_ms, FALSE) AS hit
    FROM played_items
),
recall AS (
    SELECT
        user_id,
        sum(CASE WHEN first_here THEN 1 ELSE 0 END) AS plays,
        sum(CASE WHEN first_here AND hit THEN 1 ELSE 0 END) AS hits
    FROM window_plays
    GROUP BY user_id
),
