-- A run's output (SPEC 2.1): its workflow's `output` template rendered when
-- the run succeeds, else an object from each leaf node's id to its output.
-- Null until the run succeeds, and again while a retried run runs.
ALTER TABLE runs ADD COLUMN output jsonb;
