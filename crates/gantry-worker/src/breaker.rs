//! A circuit breaker as a pure state machine: `allow(now)` before an attempt,
//! `on_result(now, outcome)` after it. Time comes in as an argument, so tests
//! drive it with paused or synthetic clocks.

use std::time::Duration;
use tokio::time::Instant;

/// Breaker settings.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// Consecutive runtime failures that open the breaker.
    pub threshold: u32,
    /// How long it stays open before a half-open probe.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            threshold: 5,
            cooldown: Duration::from_secs(10),
        }
    }
}

/// What an attempt told the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The runtime worked (whatever the agent's own result).
    Healthy,
    /// The runtime itself failed (daemon unreachable, image missing, ...).
    RuntimeFailure,
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out since `since`; everything else waits. A probe that
    /// never reports (its job was a duplicate, its worker died) is replaced
    /// after a cooldown.
    HalfOpen {
        since: Instant,
    },
}

/// Whether an attempt may start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// This attempt is the half-open probe.
    Probe,
    /// Put the job back; retry after this long.
    Reject {
        retry_after: Duration,
    },
}

/// One circuit breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: State,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: State::Closed { failures: 0 },
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn is_open(&self) -> bool {
        !matches!(self.state, State::Closed { .. })
    }

    /// Ask before starting an attempt.
    pub fn allow(&mut self, now: Instant) -> Decision {
        match self.state {
            State::Closed { .. } => Decision::Allow,
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen { since: now };
                Decision::Probe
            }
            State::HalfOpen { since } if now.duration_since(since) >= self.config.cooldown => {
                self.state = State::HalfOpen { since: now };
                Decision::Probe
            }
            State::Open { until } => Decision::Reject {
                retry_after: until - now,
            },
            // Wait for the probe; look again after a fraction of the cooldown.
            State::HalfOpen { .. } => Decision::Reject {
                retry_after: (self.config.cooldown / 4).max(Duration::from_millis(100)),
            },
        }
    }

    /// Report how an attempt that was allowed went.
    pub fn on_result(&mut self, now: Instant, outcome: Outcome) {
        self.state = match (self.state, outcome) {
            (_, Outcome::Healthy) => State::Closed { failures: 0 },
            (State::Closed { failures }, Outcome::RuntimeFailure) => {
                let failures = failures + 1;
                if failures >= self.config.threshold {
                    State::Open {
                        until: now + self.config.cooldown,
                    }
                } else {
                    State::Closed { failures }
                }
            }
            (State::HalfOpen { .. } | State::Open { .. }, Outcome::RuntimeFailure) => State::Open {
                until: now + self.config.cooldown,
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            threshold: 3,
            cooldown: Duration::from_secs(10),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_and_closes_after_a_good_probe() {
        let mut b = Breaker::new(cfg());
        for _ in 0..2 {
            assert_eq!(b.allow(Instant::now()), Decision::Allow);
            b.on_result(Instant::now(), Outcome::RuntimeFailure);
        }
        assert!(!b.is_open());
        b.on_result(Instant::now(), Outcome::RuntimeFailure);
        assert!(b.is_open());
        match b.allow(Instant::now()) {
            Decision::Reject { retry_after } => assert_eq!(retry_after, Duration::from_secs(10)),
            d => panic!("expected reject, got {d:?}"),
        }
        tokio::time::advance(Duration::from_secs(4)).await;
        match b.allow(Instant::now()) {
            Decision::Reject { retry_after } => assert_eq!(retry_after, Duration::from_secs(6)),
            d => panic!("expected reject, got {d:?}"),
        }
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(b.allow(Instant::now()), Decision::Probe);
        // While the probe is out, others wait.
        assert!(matches!(b.allow(Instant::now()), Decision::Reject { .. }));
        b.on_result(Instant::now(), Outcome::Healthy);
        assert_eq!(b.state(), State::Closed { failures: 0 });
        assert_eq!(b.allow(Instant::now()), Decision::Allow);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_never_reports_is_replaced_after_a_cooldown() {
        let mut b = Breaker::new(cfg());
        for _ in 0..3 {
            b.on_result(Instant::now(), Outcome::RuntimeFailure);
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.allow(Instant::now()), Decision::Probe);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(matches!(b.allow(Instant::now()), Decision::Reject { .. }));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.allow(Instant::now()), Decision::Probe);
        b.on_result(Instant::now(), Outcome::Healthy);
        assert_eq!(b.allow(Instant::now()), Decision::Allow);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_again_for_a_full_cooldown() {
        let mut b = Breaker::new(cfg());
        for _ in 0..3 {
            b.on_result(Instant::now(), Outcome::RuntimeFailure);
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.allow(Instant::now()), Decision::Probe);
        b.on_result(Instant::now(), Outcome::RuntimeFailure);
        match b.allow(Instant::now()) {
            Decision::Reject { retry_after } => assert_eq!(retry_after, Duration::from_secs(10)),
            d => panic!("expected reject, got {d:?}"),
        }
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let now = Instant::now();
        let mut b = Breaker::new(cfg());
        b.on_result(now, Outcome::RuntimeFailure);
        b.on_result(now, Outcome::RuntimeFailure);
        b.on_result(now, Outcome::Healthy);
        b.on_result(now, Outcome::RuntimeFailure);
        b.on_result(now, Outcome::RuntimeFailure);
        assert!(!b.is_open());
    }
}
