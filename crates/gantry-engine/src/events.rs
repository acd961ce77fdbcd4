//! Events sent from outside (SPEC section 9): stored once per `id` before
//! the sender's answer, with the waits they complete, and counted by what
//! they did; and the waits whose timeout ran out.

use crate::{Engine, Result};
use gantry_dag::NewEvent;
use gantry_store::Recorded;

impl Engine {
    /// Record `event` (already checked against its bounds); `request_hash`
    /// identifies its content for a repeat under the same `id`.
    pub async fn send_event(&self, event: &NewEvent, request_hash: &str) -> Result<Recorded> {
        let mut recorded = self.store.record_event(event, request_hash).await?;
        // Its triggers run after the commit; a repeat of an event whose
        // triggers did not all run (its first sender died) runs them.
        let first = matches!(recorded, Recorded::New(_));
        if let Recorded::New(e) | Recorded::Existing(e) = &mut recorded {
            if !e.triggered {
                let started = self.run_event_triggers(e, first).await?;
                e.runs_started = e
                    .runs_started
                    .saturating_add(i32::try_from(started).unwrap_or(i32::MAX));
                e.triggered = true;
            }
        }
        if let Recorded::New(e) = &recorded {
            // An event may both complete waits and start runs: it counts
            // under each; under `unmatched` only when it did neither.
            let outcomes = [
                (e.waits_matched > 0, "matched"),
                (e.runs_started > 0, "started"),
                (e.waits_matched == 0 && e.runs_started == 0, "unmatched"),
            ];
            for (_, outcome) in outcomes.iter().filter(|(did, _)| *did) {
                metrics::counter!(gantry_telemetry::EVENTS_TOTAL, "outcome" => *outcome)
                    .increment(1);
            }
        }
        Ok(recorded)
    }

    /// Time out at most `limit` waits past their deadline (the state
    /// machine then fails or skips each node, as its `on_timeout` says).
    /// Returns how many timed out.
    pub async fn expire_waits(&self, limit: i64) -> Result<u64> {
        Ok(self.store.expire_waits(limit).await?)
    }
}
