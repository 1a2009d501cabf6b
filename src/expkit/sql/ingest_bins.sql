-- name: ingest_bins
-- description: Ingest delay (ingest_ms - timestamp_ms) per event table and 5-minute bin as a
--   log-scale histogram (same buckets as latency_hist, in ms), with the newest ingest time and
--   the largest delay. Counts every row (shadow included): freshness is about the pipeline.
-- params: start_ms: int, end_ms: int, bin_ms: int, ln_gamma: float, min_ms: float
-- reads: requests, impressions, clicks, saves, plays
-- grain: event_table, bin_ms, idx
WITH e AS (
    SELECT 'requests' AS event_table, timestamp_ms, ingest_ms FROM requests
    UNION ALL SELECT 'impressions', timestamp_ms, ingest_ms FROM impressions
    UNION ALL SELECT 'clicks', timestamp_ms, ingest_ms FROM clicks
    UNION ALL SELECT 'saves', timestamp_ms, ingest_ms FROM saves
    UNION ALL SELECT 'plays', timestamp_ms, ingest_ms FROM plays
)
SELECT
    event_table,
    timestamp_ms - (timestamp_ms % $bin_ms) AS bin_ms,
    CAST(ceil(ln(greatest(CAST(ingest_ms - timestamp_ms AS DOUBLE), $min_ms)) / $ln_gamma) AS INTEGER) AS idx,
    count(*) AS n,
    max(ingest_ms) AS max_ingest_ms,
    max(ingest_ms - timestamp_ms) AS max_delay_ms
FROM e
WHERE timestamp_ms >= $start_ms AND timestamp_ms < $end_ms
GROUP BY event_table, timestamp_ms - (timestamp_ms % $bin_ms),
    CAST(ceil(ln(greatest(CAST(ingest_ms - timestamp_ms AS DOUBLE), $min_ms)) / $ln_gamma) AS INTEGER)
