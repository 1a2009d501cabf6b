-- name: check_rollup_watermark
-- description: Validation (late data): what a day's rollup saw of each event table, from its
--   ingest_bins partition: rows and the newest ingest_ms (the watermark; rows landing above it
--   arrived after the rollup was built).
-- params: start_ms: int, end_ms: int
-- reads: ingest_bins
-- grain: event_table
SELECT event_table, sum(n) AS n_rows, max(max_ingest_ms) AS watermark_ms
FROM ingest_bins
WHERE bin_ms >= $start_ms AND bin_ms < $end_ms
GROUP BY event_table
