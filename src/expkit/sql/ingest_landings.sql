-- name: ingest_landings
-- description: What landed when (the ingest_bins rollup at its own grain): per event table (code = its
--   1-based position in tables, 0 for others), 5-minute event-time bin and delay bucket, the
--   row count and the newest ingest time, for the freshness series (expkit.series.ingest_freshness).
-- params: start_ms: int, end_ms: int, tables: list[str]
-- reads: ingest_bins
-- grain: code, bin_ms, idx
SELECT bin_ms, CAST(coalesce(array_position($tables, event_table), 0) AS INTEGER) AS code, idx, n, max_ingest_ms
FROM ingest_bins
WHERE bin_ms >= $start_ms AND bin_ms < $end_ms
