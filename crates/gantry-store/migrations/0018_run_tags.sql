-- Run tags (SPEC section 4.1): the run row keeps them whole for reads, and
-- one row per tag finds the runs of a tag newest first through an index
-- in list order, so `GET /v1/runs?tag=K:V` pages by index range even with
-- millions of runs (a GIN index on the run row would find them, but in no
-- order: the newest page of a common tag would sort every match). A
-- second tag is checked per candidate by the primary key. A child run
-- inherits its parent's tags. Deleting a run deletes its tag rows.
ALTER TABLE runs ADD COLUMN tags jsonb NOT NULL DEFAULT '{}';
CREATE TABLE run_tags (
    run_id      uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key         text NOT NULL,
    value       text NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX run_tags_list_idx ON run_tags (key, value, created_at DESC, run_id DESC);
