-- name: ingest_rows
-- description: Ingest-delay histogram rows (the ingest_bins rollup) at the rollup's own 5-minute grain,
--   for expkit.series to merge into quantiles: per event table (code = its 1-based position in tables,
--   0 for others: integers are cheaper than strings downstream), event-time bin and delay bucket, the row count.
--   See ingest_rows_binned for coarser bins, ingest_landings for the newest ingest times.
-- params: start_ms: int, end_ms: int, tables: list[str]
-- reads: ingest_bins
-- grain: code, bin_ms, idx
SELECT bin_ms, CAST(coalesce(array_position($tables, event_table), 0) AS INTEGER) AS code, idx, n
FROM ingest_bins
WHERE bin_ms >= $start_ms AND bin_ms < $end_ms
