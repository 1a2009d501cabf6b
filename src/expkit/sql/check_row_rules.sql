-- name: check_row_rules
-- description: Validation: rows breaking a per-row rule, per event table (one row per table; a rule
--   that does not apply to a table is 0 there). Rows of the partition of the day [start_ms, end_ms)
--   that had landed by visible_ms. Rules: null_keys (an id, user, session, time or bucket is null),
--   ingest_before_event (ingest_ms < timestamp_ms), outside_partition (event time not in the
--   partition's day), k_returned (not 0..k_requested, or k_requested < 1), latency (negative or NaN),
--   fallback_level (not 0-3), status (not ok/error), position (< 1), source (not rec/search/browse/continue).
-- params: start_ms: int, end_ms: int, visible_ms: int
-- reads: requests, impressions, clicks, saves, plays
-- grain: event_table
WITH e AS (
    SELECT
        'requests' AS event_table, timestamp_ms, ingest_ms,
        CASE WHEN request_id IS NULL OR user_id IS NULL OR session_id IS NULL OR experiment_id IS NULL
            OR bucket IS NULL OR timestamp_ms IS NULL OR ingest_ms IS NULL OR shadow IS NULL
            THEN 1 ELSE 0 END AS null_keys,
        CASE WHEN k_returned IS NULL OR k_requested IS NULL OR k_requested < 1 OR k_returned < 0
            OR k_returned > k_requested THEN 1 ELSE 0 END AS k_returned,
        CASE WHEN latency_ms IS NULL OR isnan(latency_ms) OR latency_ms < 0 THEN 1 ELSE 0 END AS latency,
        CASE WHEN fallback_level IS NULL OR fallback_level < 0 OR fallback_level > 3 THEN 1 ELSE 0 END
            AS fallback_level,
        CASE WHEN status IS NULL OR status NOT IN ('ok', 'error') THEN 1 ELSE 0 END AS status,
        0 AS position,
        0 AS source
    FROM requests
    UNION ALL
    SELECT
        'impressions', timestamp_ms, ingest_ms,
        CASE WHEN request_id IS NULL OR user_id IS NULL OR session_id IS NULL OR experiment_id IS NULL
            OR bucket IS NULL OR item_id IS NULL OR timestamp_ms IS NULL OR ingest_ms IS NULL
            OR shadow IS NULL THEN 1 ELSE 0 END,
        0, 0, 0, 0,
        CASE WHEN position IS NULL OR position < 1 THEN 1 ELSE 0 END,
        0
    FROM impressions
    UNION ALL
    SELECT
        'clicks', timestamp_ms, ingest_ms,
        CASE WHEN click_id IS NULL OR request_id IS NULL OR item_id IS NULL OR user_id IS NULL
            OR session_id IS NULL OR timestamp_ms IS NULL OR ingest_ms IS NULL OR shadow IS NULL
            THEN 1 ELSE 0 END,
        0, 0, 0, 0, 0, 0
    FROM clicks
    UNION ALL
    SELECT
        'saves', timestamp_ms, ingest_ms,
        CASE WHEN save_id IS NULL OR request_id IS NULL OR item_id IS NULL OR user_id IS NULL
            OR session_id IS NULL OR timestamp_ms IS NULL OR ingest_ms IS NULL OR shadow IS NULL
            THEN 1 ELSE 0 END,
        0, 0, 0, 0, 0, 0
    FROM saves
    UNION ALL
    SELECT
        'plays', timestamp_ms, ingest_ms,
        CASE WHEN play_id IS NULL OR user_id IS NULL OR session_id IS NULL OR item_id IS NULL
            OR timestamp_ms IS NULL OR ingest_ms IS NULL OR shadow IS NULL THEN 1 ELSE 0 END,
        0, 0, 0, 0, 0,
        CASE WHEN source IS NULL OR source NOT IN ('rec', 'search', 'browse', 'continue') THEN 1 ELSE 0 END
    FROM plays
)
SELECT
    event_table,
    count(*) AS n_rows,
    sum(null_keys) AS null_keys,
    sum(CASE WHEN ingest_ms < timestamp_ms THEN 1 ELSE 0 END) AS ingest_before_event,
    sum(CASE WHEN timestamp_ms < $start_ms OR timestamp_ms >= $end_ms THEN 1 ELSE 0 END) AS outside_partition,
    sum(k_returned) AS k_returned,
    sum(latency) AS latency,
    sum(fallback_level) AS fallback_level,
    sum(status) AS status,
    sum(position) AS position,
    sum(source) AS source
FROM e
WHERE ingest_ms <= $visible_ms OR ingest_ms IS NULL
GROUP BY event_table
