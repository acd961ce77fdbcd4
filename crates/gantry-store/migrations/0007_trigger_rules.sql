-- Trigger rules and `when` (SPEC 2.1): a node is decided once every parent
-- has finished, from how many of them failed or were skipped, and a skipped
-- node says why. `waiting_on` now counts parents that have not finished
-- (before, parents that had not succeeded: the same for every pending node
-- of a running run, since a failure used to skip its descendants at once).
-- Defaults keep the ADD COLUMNs free of a table rewrite.
ALTER TABLE nodes
    ADD COLUMN failed_parents integer NOT NULL DEFAULT 0 CHECK (failed_parents >= 0),
    ADD COLUMN skipped_parents integer NOT NULL DEFAULT 0 CHECK (skipped_parents >= 0),
    ADD COLUMN skip_reason text
        CHECK (skip_reason IN ('condition_false', 'upstream_failed', 'upstream_skipped'));
