//! A worker's claim of a delivered node, decided here like every other
//! transition: whether the node may start an attempt now, with which attempt
//! number (the fencing token of its result), and, when it may not, why. The
//! store reads what the decision needs, and writes the claim only where the
//! node is still as it read it.

use crate::{NodeState, NodeStatus, RunStatus};

/// How far a retry's due time may lie ahead of the database clock and still
/// be claimed: the delayed job was released by another clock (Redis').
pub const RETRY_SKEW_MS: i64 = 100;

/// What a claim decides on: the node's row and its run's status, read
/// together, and the database clock when they were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimView {
    pub run: RunStatus,
    pub status: NodeStatus,
    pub attempt: u32,
    pub tries: u32,
    /// When a `retrying` node's next attempt is due (Unix ms).
    pub retry_at_ms: Option<i64>,
    pub now_ms: i64,
}

impl ClaimView {
    /// What a job says of its node when it was queued: a node of a running
    /// run, `queued` with this attempt and these tries. A claim decided on
    /// it is written only if the node is still exactly that, so a stale job
    /// (the node moved on, the run was cancelled) writes nothing.
    pub fn queued(attempt: u32, tries: u32) -> Self {
        Self {
            run: RunStatus::Running,
            status: NodeStatus::Queued,
            attempt,
            tries,
            retry_at_ms: None,
            now_ms: 0,
        }
    }
}

/// A claim the store may write: the node leaves `from` (with `from_attempt`
/// and `from_tries`) for `running`, with attempt `attempt` and `tries`
/// spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub from: NodeStatus,
    pub from_attempt: u32,
    pub from_tries: u32,
    pub attempt: u32,
    pub tries: u32,
}

/// Why a delivered node does not start: the job is acknowledged and dropped,
/// and whatever should run it later (a retry's delayed job, the reconciler,
/// an approval) delivers it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The run is cancelled, finished, or not started yet.
    #[error("run is {0}")]
    RunNotRunning(RunStatus),
    /// A duplicate delivery of a node that already started or finished, or
    /// of one that is not ready (pending, waiting for approval).
    #[error("node is {0}")]
    NotReady(NodeStatus),
    /// A retry delivered before its due time.
    #[error("retry due in {0} ms")]
    RetryNotDue(i64),
}

/// Decide the claim of one delivered node.
pub fn claim(view: &ClaimView) -> Result<Claim, Refusal> {
    if view.run != RunStatus::Running {
        return Err(Refusal::RunNotRunning(view.run));
    }
    match view.status {
        NodeStatus::Queued => {}
        NodeStatus::Retrying => {
            // A retrying node without a due time is due now.
            let early = view
                .retry_at_ms
                .map_or(0, |at| at - view.now_ms - RETRY_SKEW_MS);
            if early > 0 {
                return Err(Refusal::RetryNotDue(early));
            }
        }
        other => return Err(Refusal::NotReady(other)),
    }
    Ok(Claim {
        from: view.status,
        from_attempt: view.attempt,
        from_tries: view.tries,
        attempt: view.attempt + 1,
        tries: view.tries + 1,
    })
}

impl NodeState {
    /// [`claim`] applied to a node of a running run whose retry, if any, is
    /// due: what a state machine simulation does when a worker takes a job.
    /// Returns the new attempt number.
    pub fn claim(&mut self) -> Result<u32, Refusal> {
        let c = claim(&ClaimView {
            run: RunStatus::Running,
            status: self.status,
            attempt: self.attempt,
            tries: self.tries,
            retry_at_ms: None,
            now_ms: 0,
        })?;
        self.status = NodeStatus::Running;
        self.attempt = c.attempt;
        self.tries = c.tries;
        Ok(c.attempt)
    }
}
