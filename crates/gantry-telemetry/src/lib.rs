//! Telemetry shared by every role: the Prometheus metric names of SPEC
//! section 6, their descriptions, one process-wide recorder whose text each
//! role serves at `/metrics`, and OTLP traces ([`otlp_layer`]).
//!
//! Labels are bounded: workflow, agent, queue, status and error kind, never
//! run or node ids.

mod trace;

pub use trace::{otlp_layer, set_parent, traceparent, Error, OtlpConfig, Tracing};

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const RUNS_TOTAL: &str = "gantry_workflow_runs_total";
pub const RUN_DURATION: &str = "gantry_workflow_run_duration_seconds";
pub const RUNS_ACTIVE: &str = "gantry_workflow_runs_active";
pub const APPROVAL_WAIT: &str = "gantry_approval_wait_seconds";
pub const AGENT_RUNS: &str = "gantry_agent_runs_total";
pub const AGENT_DURATION: &str = "gantry_agent_duration_seconds";
pub const AGENT_ERRORS: &str = "gantry_agent_errors_total";
pub const AGENT_RETRIES: &str = "gantry_agent_retries_total";
pub const QUEUE_JOBS: &str = "gantry_queue_jobs";
pub const DISPATCH_LATENCY: &str = "gantry_node_dispatch_latency_seconds";
pub const BREAKER_OPEN: &str = "gantry_circuit_breaker_open";
pub const HTTP_REQUESTS: &str = "gantry_http_requests_total";
pub const HTTP_DURATION: &str = "gantry_http_request_duration_seconds";
/// Late completions of stale attempts, rejected by fencing.
pub const STALE_RESULTS: &str = "gantry_stale_results_total";
/// Agent run time by agent and workflow, for cost accounting. Milliseconds
/// (each attempt rounded up, as cloud billing does) because `metrics`
/// counters hold integers; dashboards divide by 1000.
pub const AGENT_EXECUTION_MS: &str = "gantry_agent_execution_milliseconds_total";
/// Workers whose heartbeat is live in Redis.
pub const WORKERS_LIVE: &str = "gantry_workers_live";
/// Job slots of the live workers: `state` is `total` or `busy`.
pub const WORKER_SLOTS: &str = "gantry_worker_slots";
/// Running attempts whose lease ran out (worker died or hung), by queue.
pub const LEASE_EXPIRIES: &str = "gantry_lease_expiries_total";
/// Events received, by what they did: `matched` (completed a wait),
/// `started` (started a run through a trigger), `unmatched`.
pub const EVENTS_TOTAL: &str = "gantry_events_total";
/// Runs started by cron ticks, by workflow.
pub const SCHEDULE_TICKS: &str = "gantry_schedule_ticks_total";
/// Finished runs deleted (through the API or by retention), child runs
/// included.
pub const RUNS_DELETED: &str = "gantry_runs_deleted_total";
/// Every `outcome` label of [`EVENTS_TOTAL`].
pub const EVENT_OUTCOMES: [&str; 3] = ["matched", "started", "unmatched"];

/// Buckets (seconds) for every histogram: from a sub-millisecond hop to a
/// long container run or approval wait.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0, 900.0, 3600.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the process-wide recorder (once; later calls return the same
/// handle) and describe every metric.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("static buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness):
            // then this handle renders only what was described here.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            // Unlabelled counters start at zero, so that `rate()` and alerts
            // see a series before the first event.
            metrics::counter!(STALE_RESULTS).increment(0);
            metrics::counter!(RUNS_DELETED).increment(0);
            for outcome in EVENT_OUTCOMES {
                metrics::counter!(EVENTS_TOTAL, "outcome" => outcome).increment(0);
            }
            // Histogram samples wait in a buffer until folded into their
            // buckets; fold them on a timer so a process nobody scrapes
            // does not grow.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                });
            handle
        })
        .clone()
}

/// How often buffered histogram samples are folded into buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

fn describe() {
    describe_counter!(RUNS_TOTAL, "Runs that ended, by workflow and status.");
    describe_histogram!(RUN_DURATION, Unit::Seconds, "Run creation to end.");
    describe_gauge!(RUNS_ACTIVE, "Runs currently running.");
    describe_histogram!(
        APPROVAL_WAIT,
        Unit::Seconds,
        "A node's wait in waiting_approval before it was approved."
    );
    describe_counter!(AGENT_RUNS, "Agent attempts, by agent and status.");
    describe_histogram!(AGENT_DURATION, Unit::Seconds, "Agent attempt run time.");
    describe_counter!(AGENT_ERRORS, "Failed agent attempts, by agent and kind.");
    describe_counter!(AGENT_RETRIES, "Retries scheduled, by agent.");
    describe_gauge!(QUEUE_JOBS, "Jobs in Redis, by queue and state.");
    describe_histogram!(
        DISPATCH_LATENCY,
        Unit::Seconds,
        "A node becoming ready (or due) to a worker claiming it."
    );
    describe_gauge!(
        BREAKER_OPEN,
        "1 while the agent's circuit breaker is open on a worker."
    );
    describe_counter!(HTTP_REQUESTS, "HTTP requests, by method, route and status.");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request handling time.");
    describe_counter!(
        STALE_RESULTS,
        "Late results of stale attempts rejected by fencing."
    );
    describe_counter!(
        AGENT_EXECUTION_MS,
        Unit::Milliseconds,
        "Agent attempt run time, by agent and workflow (cost accounting)."
    );
    describe_gauge!(WORKERS_LIVE, "Workers with a live heartbeat.");
    describe_gauge!(
        WORKER_SLOTS,
        "Job slots of the live workers: total (their concurrency) and busy."
    );
    describe_counter!(
        EVENTS_TOTAL,
        "Events received, by outcome: matched a wait, started a run, or unmatched."
    );
    describe_counter!(
        RUNS_DELETED,
        "Finished runs deleted, through the API or by retention, child runs included."
    );
    describe_counter!(
        SCHEDULE_TICKS,
        "Runs started by cron ticks, by workflow (one per tick across coordinators)."
    );
    describe_counter!(
        LEASE_EXPIRIES,
        "Running attempts whose lease ran out, by queue; their nodes are retried."
    );
}

/// Make `gantry_lease_expiries_total{queue}` exist (at zero) for each of
/// `queues`, so that alerts and `increase()` see it before the first expiry.
pub fn init_lease_expiries<'a>(queues: impl IntoIterator<Item = &'a str>) {
    for queue in queues {
        metrics::counter!(LEASE_EXPIRIES, "queue" => queue.to_owned()).increment(0);
    }
}
