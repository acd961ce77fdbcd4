-- Child runs (SPEC 2.1): a `workflow` node (or one of its instances) starts
-- an ordinary run that names its parent's run and node slot. At most one
-- child per parent slot: a retried parent slot retries that child, and a
-- start repeated after a crash finds the one already made. `depth` bounds
-- nesting. Deleting a parent deletes its children.
ALTER TABLE runs
    ADD COLUMN parent_run_id uuid REFERENCES runs (id) ON DELETE CASCADE,
    ADD COLUMN parent_idx integer,
    ADD COLUMN depth integer NOT NULL DEFAULT 0 CHECK (depth >= 0);

CREATE UNIQUE INDEX runs_parent_idx ON runs (parent_run_id, parent_idx)
    WHERE parent_run_id IS NOT NULL;
