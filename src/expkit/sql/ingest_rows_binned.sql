-- name: ingest_rows_binned
-- description: Ingest-delay histogram counts (the ingest_bins rollup) summed per event-time bin of bin_ms
--   ms, or over the whole range (per_bin false: bin_ms 0), per event table (code = its 1-based position
--   in tables, 0 for others) and delay bucket.
-- params: start_ms: int, end_ms: int, tables: list[str], bin_ms: int, per_bin: bool
-- reads: ingest_bins
-- grain: bin_ms, code, idx
SELECT
    CASE WHEN $per_bin THEN bin_ms - (bin_ms % $bin_ms) ELSE 0 END AS bin_ms,
    CAST(coalesce(array_position($tables, event_table), 0) AS INTEGER) AS code, idx, sum(n) AS n
FROM ingest_bins
WHERE bin_ms >= $start_ms AND bin_ms < $end_ms
GROUP BY 1, 2, 3
