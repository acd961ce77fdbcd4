-- Wait nodes (SPEC 2.1 and 9). A node that begins to wait gets an attempt
-- (worker 'event') and a row here with its event name, rendered key,
-- deadline and the time its run started. The row is the one arbiter of how
-- the wait ends: 'matched' by an event (which then finishes the attempt
-- with the event's data), 'timed_out' by the reconciler, or 'closed' when
-- its node ended another way (a cancel). An event finds the open waits for
-- its name and key through the partial index, never by a scan of the
-- waiting nodes; the reconciler finds the ones past their deadline through
-- the other. Both sides take an advisory lock on (name, key) before they
-- look at each other's rows, so an event sent while a node begins to wait
-- is matched by exactly one of them.
CREATE TABLE waits (
    run_id          uuid NOT NULL,
    idx             integer NOT NULL,
    attempt         integer NOT NULL CHECK (attempt > 0),
    name            text NOT NULL,
    key             text NOT NULL,
    run_started_at  timestamptz NOT NULL,
    deadline        timestamptz NOT NULL,
    state           text NOT NULL DEFAULT 'open'
                    CHECK (state IN ('open', 'matched', 'timed_out', 'closed')),
    event_seq       bigint,
    started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at        timestamptz,
    PRIMARY KEY (run_id, idx, attempt),
    FOREIGN KEY (run_id, idx) REFERENCES nodes (run_id, idx) ON DELETE CASCADE
);
CREATE INDEX waits_open_idx ON waits (name, key) WHERE state = 'open';
CREATE INDEX waits_deadline_idx ON waits (deadline) WHERE state = 'open';

-- A wait's attempt that timed out, as a type (like `lost`): the state
-- machine reads it as `Outcome::TimedOut` and fails or skips the node as
-- its `on_timeout` says.
ALTER TABLE attempts ADD COLUMN timed_out boolean NOT NULL DEFAULT false;

-- The new node status and skip reason. NOT VALID: every stored row meets
-- the narrower old checks, so no scan under the table lock.
ALTER TABLE nodes DROP CONSTRAINT nodes_status_check;
ALTER TABLE nodes ADD CONSTRAINT nodes_status_check
    CHECK (status IN ('pending', 'waiting_approval', 'waiting', 'queued', 'running',
                      'retrying', 'succeeded', 'failed', 'skipped', 'cancelled')) NOT VALID;
ALTER TABLE nodes DROP CONSTRAINT nodes_skip_reason_check;
ALTER TABLE nodes ADD CONSTRAINT nodes_skip_reason_check
    CHECK (skip_reason IN ('condition_false', 'upstream_failed', 'upstream_skipped',
                           'timed_out')) NOT VALID;
