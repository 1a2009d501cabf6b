-- name: ingest_extremes
-- description: Per event-time bin of bin_ms ms, or over the whole range (per_bin false: bin_ms 0), and
--   event table (code = its 1-based position in tables, 0 for others): the largest ingest delay, the newest ingest
--   time, and the newest ingest time not after as_of_ms (the report time) from the ingest_bins rollup.
-- params: start_ms: int, end_ms: int, tables: list[str], bin_ms: int, per_bin: bool, as_of_ms: int
-- reads: ingest_bins
-- grain: bin_ms, code
SELECT
    CASE WHEN $per_bin THEN bin_ms - (bin_ms % $bin_ms) ELSE 0 END AS bin_ms,
    CAST(coalesce(array_position($tables, event_table), 0) AS INTEGER) AS code,
    max(max_delay_ms) AS max_delay_ms,
    max(max_ingest_ms) AS max_ingest_ms,
    max(CASE WHEN max_ingest_ms <= $as_of_ms THEN max_ingest_ms END) AS newest_ingest_ms
FROM ingest_bins
WHERE bin_ms >= $start_ms AND bin_ms < $end_ms
GROUP BY 1, 2
