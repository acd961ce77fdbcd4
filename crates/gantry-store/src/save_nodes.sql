-- RunTx::save: new states of the changed nodes of run $1 (already locked in
-- idx order by the caller). $2 idx, $3 status, $4 attempt, $5 tries,
-- $6 waiting_on, $7 retry delay (ms), $8 the error text the state machine
-- gave (a skipped node's reason, a failed condition's cause), $9 whether the
-- node's pending result was processed, $11 failed parents, $12 skipped
-- parents, $13 the skip reason, $14..$18 and $19 a map node's instance counts
-- (items, next item, active, succeeded, first failed item; parked), $10 the longest retry
-- delay (ms; gantry_dag::limits::MAX_DELAY_MS): even a delay past it can
-- never make the timestamp arithmetic fail with "interval out of range".
-- Two forms, made by save.rs from the /*...*/ markers: a narrow batch (at
-- most WIDE_BATCH nodes) joins nodes by `run_id = $1 AND idx = ANY($2)`,
-- the fastest for a few rows. In a wide batch every row is found by one
-- primary-key probe per change (the fenced LATERAL
-- below, which yields the row's ctid) and updated through that ctid: a TID
-- scan is the only way in, whatever the planner estimates. Joining nodes by
-- `run_id = $1 AND idx = ANY($2)` left the plan to the estimates, and
-- `run_id` has no statistics (migration 0002): the first custom plans read
-- every row of the run per call (a 50,000-node fan-out read 50,000 rows to
-- update 513), and once autovacuum analyzed `nodes` mid-run the generic plan
-- became a nested loop that re-ran the UNNEST for every node row (262,656
-- joined rows for 513 changes, 45 ms per call became 330 ms). The ctid is
-- stable: the caller holds these rows FOR NO KEY UPDATE.
UPDATE nodes n
SET status = s.status,
    attempt = s.attempt,
    tries = s.tries,
    waiting_on = s.waiting_on,
    failed_parents = s.failed_parents,
    skipped_parents = s.skipped_parents,
    skip_reason = s.skip_reason,
    items = s.items,
    next_item = s.next_item,
    items_active = s.items_active,
    items_succeeded = s.items_succeeded,
    failed_item = s.failed_item,
    items_parked = s.items_parked,
    pending_advance = CASE WHEN s.processed THEN false ELSE n.pending_advance END,
    -- queued_at is when the node became ready: queued, or parked for approval
    -- (what the approval wait is measured from).
    queued_at = CASE
        WHEN s.status IN ('queued', 'waiting_approval') AND n.status <> s.status
            THEN clock_timestamp()
        ELSE n.queued_at END,
    retry_at = CASE
        WHEN s.status = 'retrying' AND n.status <> 'retrying'
            THEN clock_timestamp()
                 + LEAST(COALESCE(s.delay_ms, 0), $10::bigint)::float8 * interval '1 millisecond'
        WHEN s.status = 'retrying' THEN n.retry_at
        ELSE NULL END,
    output = CASE
        WHEN s.status = 'succeeded' THEN s.a_output
        WHEN s.status IN ('pending', 'waiting_approval', 'queued') THEN NULL
        ELSE n.output END,
    error = CASE s.status
        WHEN 'failed' THEN CASE
            WHEN s.given_error IS NOT NULL THEN s.given_error
            WHEN s.a_attempt IS NULL THEN 'rejected'
            ELSE COALESCE(s.a_error, 'attempt ' || s.a_attempt || ' failed') END
        WHEN 'retrying' THEN s.a_error
        WHEN 'skipped' THEN s.given_error
        WHEN 'cancelled' THEN 'cancelled'
        ELSE NULL END,
    finished_at = CASE
        WHEN s.status IN ('succeeded', 'failed', 'skipped', 'cancelled')
            THEN CASE WHEN n.status = s.status THEN n.finished_at ELSE clock_timestamp() END
        ELSE NULL END,
    lease_owner = CASE WHEN s.status = 'running' THEN n.lease_owner END,
    lease_expires_at = CASE WHEN s.status = 'running' THEN n.lease_expires_at END
FROM (
    SELECT t.*/*TID*/, a.output AS a_output, a.error AS a_error, a.attempt AS a_attempt
    FROM unnest($2::int[], $3::text[], $4::int[], $5::int[], $6::int[], $7::bigint[], $9::bool[],
                $8::text[], $11::int[], $12::int[], $13::text[],
                $14::int[], $15::int[], $16::int[], $17::int[], $18::int[], $19::int[])
        AS t(idx, status, attempt, tries, waiting_on, delay_ms, processed,
             given_error, failed_parents, skipped_parents, skip_reason,
             items, next_item, items_active, items_succeeded, failed_item, items_parked)
    /*PROBE*/
    -- A fenced (OFFSET 0) LATERAL lookup is one probe of the primary key per
    -- row. As a plain join, a new run's id (UUIDv7, past the histogram) made
    -- the planner expect one attempt and filter all of the run's per row.
    LEFT JOIN LATERAL (
        SELECT a.output, a.error, a.attempt FROM attempts a
        WHERE a.run_id = $1 AND a.idx = t.idx AND a.attempt = t.attempt
        OFFSET 0
    ) a ON true
) s
-- Wide: no `n.run_id = $1` here, it would offer the planner a scan of the
-- run's rows to hash on ctid; `n.idx = s.idx` only re-checks the row found.
WHERE /*TARGET*/ AND n.idx = s.idx
