-- No planner statistics on run_id. Run ids are UUIDv7 and a run has up to
-- thousands of nodes, so the most-common-values list holds the last few runs
-- and a run started since the last ANALYZE is estimated at zero rows. With
-- that estimate the planner stops probing the primary key: it filtered every
-- attempt of a 5,000-node run per row, and scanned the whole partial
-- `queued` index per claimed job (fan-out 5,000 ran at 600 nodes/s instead
-- of thousands). Without statistics it uses a small default selectivity and
-- always looks rows up by (run_id, idx).
ALTER TABLE nodes ALTER COLUMN run_id SET STATISTICS 0;
ALTER TABLE attempts ALTER COLUMN run_id SET STATISTICS 0;
