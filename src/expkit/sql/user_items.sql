-- name: user_items
-- description: Per (user, item) facts over [start_ms, end_ms) that Recall@K needs (docs/metrics.md), so that
--   a window of several days is evaluated exactly rather than as a sum of days. One row per
--   distinct (user, item) that the user played or was shown at position <= top_k in the period
--   (non-shadow): first_play_ms = the first play (NULL: not played), first_topk_shown_ms = the first
--   impression at position <= top_k (NULL: not shown there). ratio_stats takes the minimum of each
--   over a window's rows: the item is played in the window when first_play_ms is not NULL, and a
--   hit when its first top-K impression of the window precedes its first play of the window.
--   Plays carry no experiment_id; like user_facts, they belong to the user in every experiment.
-- params: start_ms: int, end_ms: int, top_k: int
-- reads: impressions, plays
-- grain: user_id, item_id
WITH played AS (
    SELECT user_id, item_id, min(timestamp_ms) AS first_play_ms FROM plays
    WHERE NOT shadow AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
    GROUP BY user_id, item_id
),
shown AS (
    SELECT user_id, item_id, min(timestamp_ms) AS first_topk_shown_ms FROM impressions
    WHERE NOT shadow AND position <= $top_k AND timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
    GROUP BY user_id, item_id
)
SELECT
    coalesce(p.user_id, s.user_id) AS user_id,
    coalesce(p.item_id, s.item_id) AS item_id,
    p.first_play_ms,
    s.first_topk_shown_ms
FROM played AS p
FULL OUTER JOIN shown AS s ON s.user_id = p.user_id AND s.item_id = p.item_id
