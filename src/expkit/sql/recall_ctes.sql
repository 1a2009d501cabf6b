-- fragment: recall_ctes
-- description: Recall@K per user from the per (user, item) facts of a period (a view "user_items"):
--   plays = distinct items played in the period, hits = those shown at position <= K before their
--   first play in the period (docs/metrics.md, "Outcome metrics"). The definition: user_pre evaluates
--   it over the CUPED pre-period; the windows of ratio_stats give the same numbers from the played
--   pairs of their days (the fragment window_recall). Three CTEs, played, hit and recall (user_id,
--   plays, hits), each followed by a comma: include it inside a WITH list.
played AS (
    SELECT user_id, item_id, min(first_play_ms) AS first_play_ms
    FROM user_items
    WHERE first_play_ms IS NOT NULL
    GROUP BY user_id, item_id
),
hit AS (
    SELECT DISTINCT p.user_id, p.item_id
    FROM played AS p
    JOIN user_items AS i ON i.user_id = p.user_id AND i.item_id = p.item_id
    WHERE i.first_topk_shown_ms < p.first_play_ms
),
recall AS (
    SELECT p.user_id, count(*) AS plays, count(h.item_id) AS hits
    FROM played AS p
    LEFT JOIN hit AS h ON h.user_id = p.user_id AND h.item_id = p.item_id
    GROUP BY p.user_id
),
