-- attempts(run_id, idx) no longer carries a foreign key to nodes. Its
-- check ran once per inserted attempt, through a plan each connection
-- caches the first time it needs it; on a fresh database that plan was made
-- against an almost empty `nodes` and stayed slow as the table grew. A
-- 5,000-node fan-out on a fresh database ran at 960 nodes/s with the key
-- and 6,070 without (`gantry bench fanout --nodes 5000`, first run after
-- `gantry migrate`). The rule the key stated still holds by construction:
-- attempts are only inserted by the claim, for the node row it has just
-- locked and updated in the same statement.
ALTER TABLE attempts DROP CONSTRAINT attempts_run_id_idx_fkey;
