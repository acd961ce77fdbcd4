-- Re-runs (SPEC section 4): a run started from another one names it, and
-- each node it reused (kept from the old run with its output, no attempt)
-- says so. Deleting the old run leaves its re-runs, unlinked.
ALTER TABLE runs ADD COLUMN rerun_of uuid REFERENCES runs (id) ON DELETE SET NULL;
CREATE INDEX runs_rerun_of_idx ON runs (rerun_of) WHERE rerun_of IS NOT NULL;
ALTER TABLE nodes ADD COLUMN reused boolean NOT NULL DEFAULT false;
