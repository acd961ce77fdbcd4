//! Per-agent admission on this worker: a circuit breaker per agent, one for
//! the Docker daemon, and the agent's rate limit. A job that is not admitted
//! goes back to its queue with a delay, without claiming the node, so no
//! attempt is spent.

use crate::breaker::{Breaker, BreakerConfig, Decision, Outcome};
use gantry_dag::{AgentDef, Runtime};
use governor::{clock::Clock, DefaultDirectRateLimiter, Quota};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Whether a job may run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Run,
    Defer(Duration),
}

#[derive(Default)]
struct Inner {
    breakers: HashMap<String, Breaker>,
    docker: Option<Breaker>,
    limiters: HashMap<String, (gantry_dag::RateLimit, DefaultDirectRateLimiter)>,
}

/// Breakers and rate limiters of one worker, shared by its tasks.
#[derive(Clone)]
pub(crate) struct Guards {
    config: BreakerConfig,
    inner: Arc<Mutex<Inner>>,
}

impl Guards {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            inner: Arc::default(),
        }
    }

    /// Decide for one job of `agent`.
    pub(crate) fn admit(&self, agent: &AgentDef, now: Instant) -> Admission {
        let mut inner = self.inner.lock().expect("guards lock");
        let config = self.config;
        if agent.runtime == Runtime::Docker {
            let docker = inner
                .docker
                .get_or_insert_with(|| Breaker::new(docker_config(config)));
            if let Decision::Reject { retry_after } = docker.allow(now) {
                return Admission::Defer(retry_after);
            }
        }
        let breaker = inner
            .breakers
            .entry(agent.name.clone())
            .or_insert_with(|| Breaker::new(config));
        if let Decision::Reject { retry_after } = breaker.allow(now) {
            return Admission::Defer(retry_after);
        }
        if let Some(limit) = agent.rate_limit {
            let entry = inner
                .limiters
                .entry(agent.name.clone())
                .or_insert_with(|| (limit, limiter(limit)));
            if entry.0 != limit {
                *entry = (limit, limiter(limit));
            }
            if let Err(not_until) = entry.1.check() {
                let clock = governor::clock::DefaultClock::default();
                return Admission::Defer(
                    not_until
                        .wait_time_from(clock.now())
                        .max(Duration::from_millis(1)),
                );
            }
        }
        Admission::Run
    }

    /// Report how an admitted attempt of `agent` went.
    pub(crate) fn report(&self, agent: &AgentDef, now: Instant, outcome: Outcome) {
        let mut inner = self.inner.lock().expect("guards lock");
        let config = self.config;
        if agent.runtime == Runtime::Docker {
            let docker = inner
                .docker
                .get_or_insert_with(|| Breaker::new(docker_config(config)));
            docker.on_result(now, outcome);
            publish(DOCKER_LABEL, docker);
        }
        let breaker = inner
            .breakers
            .entry(agent.name.clone())
            .or_insert_with(|| Breaker::new(config));
        breaker.on_result(now, outcome);
        publish(&agent.name, breaker);
    }
}

impl Guards {
    /// Every breaker this worker has, for its heartbeat.
    pub(crate) fn breakers(&self) -> Vec<gantry_queue::BreakerInfo> {
        let inner = self.inner.lock().expect("guards lock");
        let docker = inner.docker.as_ref().map(|b| (DOCKER_LABEL, b));
        let mut out: Vec<_> = docker
            .into_iter()
            .chain(inner.breakers.iter().map(|(a, b)| (a.as_str(), b)))
            .map(|(agent, b)| {
                let (state, failures) = match b.state() {
                    crate::BreakerState::Closed { failures } => ("closed", failures),
                    crate::BreakerState::Open { .. } => ("open", 0),
                    crate::BreakerState::HalfOpen { .. } => ("half_open", 0),
                };
                gantry_queue::BreakerInfo {
                    agent: agent.to_owned(),
                    state: state.to_owned(),
                    failures,
                }
            })
            .collect();
        out.sort_by(|a, b| a.agent.cmp(&b.agent));
        out
    }
}

/// The `agent` label of the daemon's breaker: `:` is not allowed in agent
/// names, so it cannot collide with one.
const DOCKER_LABEL: &str = "docker:daemon";

/// `gantry_circuit_breaker_open{agent}`: 1 unless the breaker is closed (a
/// half-open breaker still holds every job but its probe back).
fn publish(agent: &str, breaker: &Breaker) {
    let open = !matches!(breaker.state(), crate::BreakerState::Closed { .. });
    metrics::gauge!(gantry_telemetry::BREAKER_OPEN, "agent" => agent.to_owned()).set(if open {
        1.0
    } else {
        0.0
    });
}

/// The daemon's breaker needs more evidence than one agent's: a broken image
/// is one agent's problem, a dead daemon everybody's.
fn docker_config(c: BreakerConfig) -> BreakerConfig {
    BreakerConfig {
        threshold: c.threshold * 2,
        cooldown: c.cooldown,
    }
}

fn limiter(limit: gantry_dag::RateLimit) -> DefaultDirectRateLimiter {
    let period = Duration::from_secs_f64(1.0 / limit.per_second.max(1e-6));
    let burst = NonZeroU32::new(limit.burst.max(1)).expect("burst >= 1");
    let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
        .expect("non-zero period")
        .allow_burst(burst);
    DefaultDirectRateLimiter::direct(quota)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str, runtime: &str) -> AgentDef {
        let image = if runtime == "docker" { "x:1" } else { "" };
        serde_json::from_value(serde_json::json!({
            "name": name, "runtime": runtime, "image": image, "builtin": "noop"
        }))
        .unwrap()
    }

    #[test]
    fn breakers_report_each_agent_and_the_docker_daemon() {
        let guards = Guards::new(BreakerConfig {
            threshold: 2,
            cooldown: Duration::from_secs(60),
        });
        assert!(guards.breakers().is_empty());
        let now = Instant::now();
        let (ok, bad) = (agent("ok", "builtin"), agent("bad", "docker"));
        guards.report(&ok, now, Outcome::Healthy);
        guards.report(&bad, now, Outcome::RuntimeFailure);
        guards.report(&bad, now, Outcome::RuntimeFailure);
        let got: Vec<(String, String, u32)> = guards
            .breakers()
            .into_iter()
            .map(|b| (b.agent, b.state, b.failures))
            .collect();
        assert_eq!(
            got,
            [
                ("bad".to_owned(), "open".to_owned(), 0),
                ("docker:daemon".to_owned(), "closed".to_owned(), 2),
                ("ok".to_owned(), "closed".to_owned(), 0),
            ]
        );
    }
}
