-- Why an attempt failed, as a type and not as its error text: `lost` is set
-- when its lease ran out (its worker died or hung). The state machine reads
-- it as `Outcome::Lost` and buries a node lost on its last try; before, the
-- coordinator found those nodes by matching `error = 'lease expired'`.
-- A constant default: ADD COLUMN rewrites nothing.
ALTER TABLE attempts ADD COLUMN lost boolean NOT NULL DEFAULT false;
