-- Workflow triggers (SPEC section 9). One row per trigger of each
-- workflow's latest version, replaced when a new version is registered.
-- A cron trigger runs the ticks after `since` (its registration, or the
-- workflow's resume: ticks missed before are never run); `last_tick` and
-- `last_run_id` are the latest tick a coordinator started and its run.
-- Each tick's run is made unique by its idempotency key
-- (`cron:WORKFLOW:INDEX:TICK`), so several coordinators can race for it.
CREATE TABLE triggers (
    workflow     text NOT NULL,
    idx          integer NOT NULL CHECK (idx >= 0),
    workflow_id  bigint NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('cron', 'event')),
    cron         text,
    timezone     text,
    event        text,
    since        timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_tick    timestamptz,
    last_run_id  uuid,
    PRIMARY KEY (workflow, idx)
);
CREATE INDEX triggers_event_idx ON triggers (event) WHERE kind = 'event';

-- Workflows whose triggers are paused: no tick and no event starts a run
-- (API starts still do). Kept apart from the versions, so a new version
-- stays paused.
CREATE TABLE workflow_pauses (
    workflow   text PRIMARY KEY,
    paused_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- An event whose triggers have not all been run yet: set false in the
-- transaction that stores an event some trigger listens for, true once
-- its runs are started (by the API after the commit, else by the
-- reconciler). Events stored before this migration had no triggers.
ALTER TABLE events ADD COLUMN triggered boolean NOT NULL DEFAULT true;
ALTER TABLE events ALTER COLUMN triggered SET DEFAULT false;
CREATE INDEX events_untriggered_idx ON events (seq) WHERE NOT triggered;

-- The first answer to an event (`{"waits_matched", "runs_started"}` when
-- it was answered), which a repeat under the same id gets again: the
-- counts on the row grow as waits that begin later find the event.
ALTER TABLE events ADD COLUMN answered jsonb;
