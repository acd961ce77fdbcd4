-- Events sent from outside (SPEC section 9). `seq` orders them for listing
-- (newest first, paged by seq); `id` is the sender's idempotency id, or a
-- generated one; `request_hash` tells a repeat of the same event (200 with
-- the first answer) from another event under a used id (409). What an event
-- matched is counted on its row. Waits find their events by (name, key) in
-- the order they were received.
CREATE TABLE events (
    seq            bigserial PRIMARY KEY,
    id             text NOT NULL UNIQUE,
    name           text NOT NULL,
    key            text NOT NULL DEFAULT '',
    data           jsonb NOT NULL,
    request_hash   text NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    waits_matched  int NOT NULL DEFAULT 0,
    runs_started   int NOT NULL DEFAULT 0
);
CREATE INDEX events_name_key_idx ON events (name, key, seq);
