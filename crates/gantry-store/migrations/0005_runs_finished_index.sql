-- The dashboard's "last hour" figures count runs by when they finished.
-- Partial: running runs have no finish time. A run's row gets its
-- finished_at once, so per-node updates of `remaining` stay HOT.
CREATE INDEX runs_finished_idx ON runs (finished_at) WHERE finished_at IS NOT NULL;
