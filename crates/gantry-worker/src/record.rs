//! Writing a batch of attempt results to Postgres so that one bad row never
//! blocks the others: the batch in one transaction; when Postgres refuses
//! it (not an outage), row by row; a row still refused becomes its node's
//! permanent failure with a short fixed error; and a row even that cannot
//! store is given up (acked and listed as a dead job), never retried in a
//! loop.

use crate::Config;
use gantry_dag::Outcome;
use gantry_engine::{Engine, Error};
use gantry_store::AttemptResult;
use std::time::{Duration, Instant};

/// The error stored for an attempt whose real result Postgres refused. Fixed
/// text, so it holds no SQL detail and cannot itself fail to store.
pub(crate) const UNSTORABLE: &str =
    "the attempt's result could not be stored; the node fails without a retry";

/// The dead-job note of a result given up.
pub(crate) const GIVEN_UP: &str =
    "the attempt's result could not be stored, not even as a failure; its lease will expire";

/// What became of one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Recorded (as it was, or as its node's permanent failure).
    Stored,
    /// Postgres refused it in every form: ack the job and list it as dead.
    GivenUp,
    /// Postgres did not answer within a lease: leave the job unacked; the
    /// lease expires and the node runs again elsewhere.
    Unreachable,
}

/// Why a write did not happen.
enum Failure {
    /// Connection-level, past the lease.
    Unreachable,
    /// Postgres answered and refused.
    Refused(Error),
}

/// Record `results`; returns each one's fate, in order.
pub(crate) async fn record(
    engine: &Engine,
    config: &Config,
    results: &[AttemptResult],
) -> Vec<Fate> {
    match write(engine, config, results, config.inline_advance).await {
        Ok(()) => return vec![Fate::Stored; results.len()],
        Err(Failure::Unreachable) => return vec![Fate::Unreachable; results.len()],
        Err(Failure::Refused(e)) if results.len() > 1 => {
            tracing::warn!(error = %e, results = results.len(),
                "recording a batch of results failed; recording them one by one");
        }
        Err(Failure::Refused(_)) => {}
    }
    let mut fates = Vec::with_capacity(results.len());
    for r in results {
        fates.push(record_one(engine, config, r, results.len() == 1).await);
    }
    fates
}

/// One result alone: as it is (with, then without applying it to its run),
/// else as its node's permanent failure, else given up. `tried` says the
/// first form was already refused alone.
async fn record_one(engine: &Engine, config: &Config, r: &AttemptResult, tried: bool) -> Fate {
    let one = std::slice::from_ref(r);
    let mut last = None;
    // Applying the result to its run may be what fails (a run the
    // coordinator then sets aside); recording alone leaves it to that.
    let mut forms = vec![false];
    if config.inline_advance && !tried {
        forms.insert(0, true);
    }
    for inline in forms {
        match write(engine, config, one, inline).await {
            Ok(()) => return Fate::Stored,
            Err(Failure::Unreachable) => return Fate::Unreachable,
            Err(Failure::Refused(e)) => last = Some(e),
        }
    }
    let error = last.map(|e| e.to_string()).unwrap_or_default();
    tracing::error!(run = %r.run_id, node = r.node, attempt = r.attempt, %error,
        "postgres refused an attempt's result; recording the node's permanent failure instead");
    let failure = unstorable(r);
    match write(engine, config, std::slice::from_ref(&failure), false).await {
        Ok(()) => Fate::Stored,
        Err(Failure::Unreachable) => Fate::Unreachable,
        Err(Failure::Refused(e)) => {
            tracing::error!(run = %r.run_id, node = r.node, attempt = r.attempt, error = %e,
                "postgres refused even the failure; giving the job up");
            Fate::GivenUp
        }
    }
}

/// `r` as a permanent failure that carries nothing the agent wrote.
pub(crate) fn unstorable(r: &AttemptResult) -> AttemptResult {
    AttemptResult {
        outcome: Outcome::Failed { retryable: false },
        output: None,
        error: Some(UNSTORABLE.to_owned()),
        log_tail: None,
        ..r.clone()
    }
}

/// One write, retried with a capped backoff while Postgres is unreachable,
/// for up to one lease; a refusal returns at once. Reports to the engine's
/// write health.
async fn write(
    engine: &Engine,
    config: &Config,
    results: &[AttemptResult],
    inline: bool,
) -> Result<(), Failure> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(50);
    // Bounded by the lease in time, and by this in count.
    for _ in 0..1000 {
        let recorded = if inline {
            engine.record_results(results).await
        } else {
            engine.record_results_deferred(&config.id, results).await
        };
        match recorded {
            Ok(accepted) => {
                engine.health.ok();
                let stale = accepted.iter().filter(|a| !**a).count();
                if stale > 0 {
                    tracing::info!(stale, "late results rejected (attempt fenced)");
                }
                return Ok(());
            }
            Err(e) if !e.is_retryable() => {
                engine.health.failed();
                return Err(Failure::Refused(e));
            }
            Err(e) if started.elapsed() < config.lease => {
                engine.health.failed();
                tracing::warn!(error = %e, retry_in = ?backoff, "recording results failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                engine.health.failed();
                tracing::error!(error = %e, results = results.len(),
                    "giving up recording results; leases will expire");
                return Err(Failure::Unreachable);
            }
        }
    }
    Err(Failure::Unreachable)
}

#[cfg(test)]
mod tests;
