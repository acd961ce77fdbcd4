-- Approval timeouts (SPEC section 3): a gate parked with an
-- approval_timeout_s gets its deadline, and the reconciler decides the
-- gates past theirs. Who decided a gate ('api' or 'timeout') is kept on the
-- row that waited (a node, or an instance of a for_each node).
ALTER TABLE nodes ADD COLUMN approval_deadline timestamptz;
ALTER TABLE nodes ADD COLUMN approval_decided_by text;
CREATE INDEX nodes_approval_deadline_idx ON nodes (approval_deadline)
    WHERE status = 'waiting_approval' AND approval_deadline IS NOT NULL;
