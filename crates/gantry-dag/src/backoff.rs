//! Retry delays as an `Iterator<Item = Duration>`: exponential with a seeded
//! jitter, so the state machine stays deterministic.

use crate::model::RetryPolicy;
use std::time::Duration;

/// Delays before retries 1, 2, ... of a policy: exponential, capped at
/// `max_delay_ms`, computed in closed form (the same sequence as backon's
/// exponential backoff without its internal randomness; `backoff_impl.rs`
/// says why it is not used directly); `jitter` in `[0, 1)` scales each delay
/// into `[delay/2, delay)`.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    jitter: f64,
    next: u32,
}

impl Backoff {
    pub fn new(policy: RetryPolicy, jitter: f64) -> Self {
        Self {
            policy,
            jitter: jitter.clamp(0.0, 1.0),
            next: 0,
        }
    }

    /// The delay after `tries` failed tries (1-based).
    pub fn delay_after(policy: &RetryPolicy, tries: u32, jitter: f64) -> Duration {
        crate::backoff_impl::delay_after(policy, tries, jitter)
    }
}

impl Iterator for Backoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        self.next += 1;
        if self.next >= self.policy.max_attempts {
            return None;
        }
        Some(Self::delay_after(&self.policy, self.next, self.jitter))
    }
}
