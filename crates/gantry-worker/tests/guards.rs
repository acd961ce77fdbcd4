//! The worker's circuit breaker and rate limit, end to end on real Postgres
//! and Redis: jobs held back are not claimed, so they spend no attempt.

use gantry_dag::{AgentDef, WorkflowDef};
use gantry_engine::{Engine, Started};
use gantry_executor::Executor;
use gantry_store::Store;
use gantry_worker::{BreakerConfig, Config};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

struct Harness {
    engine: Engine,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Harness {
    async fn start(pool: PgPool, breaker: BreakerConfig, executor: Executor) -> Self {
        let url = std::env::var("GANTRY_REDIS_URL")
            .expect("GANTRY_REDIS_URL must point at a running redis");
        let prefix = format!("test-guards-{}", uuid::Uuid::new_v4().simple());
        let queue = gantry_queue::Queue::connect(&url, &prefix)
            .await
            .expect("redis reachable");
        let engine = Engine::new(Store::from_pool(pool), queue);
        let stop = CancellationToken::new();
        let coord = tokio::spawn({
            let (e, s) = (engine.clone(), stop.clone());
            async move {
                gantry_coordinator::run(e, Default::default(), s)
                    .await
                    .unwrap();
            }
        });
        let worker = tokio::spawn({
            let (e, s) = (engine.clone(), stop.clone());
            let config = Config {
                id: "w1".into(),
                queues: vec!["default".into()],
                concurrency: 4,
                lease: Duration::from_secs(10),
                grace: Duration::from_secs(1),
                breaker,
                inline_advance: true,
            };
            async move {
                gantry_worker::run(e, Arc::new(executor), config, s)
                    .await
                    .unwrap();
            }
        });
        Self {
            engine,
            stop,
            tasks: vec![coord, worker],
        }
    }

    async fn start_run(&self, agent: Value, nodes: Value) -> uuid::Uuid {
        let agent: AgentDef = serde_json::from_value(agent).unwrap();
        self.engine.upsert_agent(&agent).await.unwrap();
        let def: WorkflowDef =
            serde_json::from_value(json!({"name": "wf", "nodes": nodes})).unwrap();
        let wf = self.engine.register_workflow(&def).await.unwrap();
        match self.engine.start_run(&wf, &json!({}), None).await.unwrap() {
            Started::New(r) => r.id,
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn attempts(&self, run: uuid::Uuid) -> Vec<(String, String, u32)> {
        let r = self.engine.reads().get_run(run).await.unwrap().unwrap();
        r.nodes
            .iter()
            .map(|n| (n.id.clone(), n.status.to_string(), n.attempts))
            .collect()
    }

    async fn wait_status(&self, run: uuid::Uuid, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let r = self.engine.reads().get_run(run).await.unwrap().unwrap();
            if r.run.status.as_str() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "run not {want} in time: {:?}",
                self.attempts(run).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn breaker_opens_holds_jobs_without_spending_attempts_and_closes_after_a_probe(pool: PgPool) {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("agent.sh");
    // Not executable yet: every spawn is a runtime failure (a command that
    // does not exist would be refused for good, like one off the list).
    std::fs::write(&exe, "#!/bin/sh\n").unwrap();
    let process = gantry_executor::ProcessRuntime::new(
        Default::default(),
        &gantry_executor::ProcessConfig {
            commands: vec![dir.path().to_owned()],
            ..Default::default()
        },
    )
    .unwrap();
    let h = Harness::start(
        pool,
        BreakerConfig {
            threshold: 3,
            cooldown: Duration::from_millis(1500),
        },
        Executor::new(Default::default()).with_process(process),
    )
    .await;
    let run = h
        .start_run(
            json!({"name": "flaky", "runtime": "process", "command": [exe.to_str().unwrap()],
                   "retry": {"max_attempts": 10, "initial_delay_ms": 20, "max_delay_ms": 50, "multiplier": 1.0}}),
            json!([{"id": "a", "agent": "flaky"}]),
        )
        .await;
    // Three runtime failures open the breaker.
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.attempts(run).await[0].2 < 3 {
        assert!(
            Instant::now() < deadline,
            "no third attempt: {:?}",
            h.attempts(run).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // While it is open the job keeps coming back but no attempt is spent.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let held = h.attempts(run).await;
    assert_eq!(
        held[0].2, 3,
        "attempts spent while the breaker was open: {held:?}"
    );
    assert_ne!(held[0].1, "failed");
    // The runtime recovers; the half-open probe succeeds and closes it.
    std::fs::write(&exe, "#!/bin/sh\ncat >/dev/null\necho '{\"ok\": true}'\n").unwrap();
    std::process::Command::new("chmod")
        .args(["+x", exe.to_str().unwrap()])
        .status()
        .unwrap();
    h.wait_status(run, "succeeded", Duration::from_secs(10))
        .await;
    assert_eq!(
        h.attempts(run).await[0].2,
        4,
        "the probe is the fourth attempt"
    );
    h.stop().await;
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn rate_limit_spreads_starts_and_spends_no_attempts(pool: PgPool) {
    let h = Harness::start(
        pool,
        BreakerConfig::default(),
        Executor::new(Default::default()),
    )
    .await;
    let nodes: Vec<Value> = (0..8)
        .map(|i| json!({"id": format!("n{i}"), "agent": "slow"}))
        .collect();
    let run = h
        .start_run(
            json!({"name": "slow", "runtime": "builtin", "builtin": "noop",
                   "rate_limit": {"per_second": 5.0, "burst": 1}}),
            Value::Array(nodes),
        )
        .await;
    h.wait_status(run, "succeeded", Duration::from_secs(15))
        .await;
    let times = h.engine.reads().attempt_times(run).await.unwrap();
    assert_eq!(times.len(), 8, "one attempt per node");
    let first = times.iter().map(|t| t.started_at).min().unwrap();
    let last = times.iter().map(|t| t.started_at).max().unwrap();
    let spread = (last - first).num_milliseconds();
    // 8 starts at 5/s with a burst of 1 take at least 7 intervals of 200 ms.
    assert!(spread >= 1300, "starts spread over only {spread} ms");
    h.stop().await;
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn a_job_of_a_runtime_the_worker_lacks_waits_for_one_that_has_it(pool: PgPool) {
    // This worker has no process runtime (no allow-list).
    let h = Harness::start(
        pool,
        BreakerConfig::default(),
        Executor::new(Default::default()),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("agent.sh");
    std::fs::write(&exe, "#!/bin/sh\ncat >/dev/null\necho '{\"ok\": true}'\n").unwrap();
    std::process::Command::new("chmod")
        .args(["+x", exe.to_str().unwrap()])
        .status()
        .unwrap();
    let run = h
        .start_run(
            json!({"name": "proc", "runtime": "process", "command": [exe.to_str().unwrap()]}),
            json!([{"id": "a", "agent": "proc"}]),
        )
        .await;
    // Long enough for the job to come back (1 s delay) at least once.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let held = h.attempts(run).await;
    assert_eq!(
        held[0].2, 0,
        "an attempt was spent on a missing runtime: {held:?}"
    );
    assert_eq!(held[0].1, "queued", "{held:?}");

    // A worker that has the runtime takes it.
    let process = gantry_executor::ProcessRuntime::new(
        Default::default(),
        &gantry_executor::ProcessConfig {
            commands: vec![dir.path().to_owned()],
            ..Default::default()
        },
    )
    .unwrap();
    let config = Config {
        id: "w2".into(),
        queues: vec!["default".into()],
        concurrency: 4,
        lease: Duration::from_secs(10),
        grace: Duration::from_secs(1),
        breaker: BreakerConfig::default(),
        inline_advance: true,
    };
    let executor = Arc::new(Executor::new(Default::default()).with_process(process));
    let w2 = tokio::spawn(gantry_worker::run(
        h.engine.clone(),
        executor,
        config,
        h.stop.clone(),
    ));
    h.wait_status(run, "succeeded", Duration::from_secs(15))
        .await;
    assert_eq!(h.attempts(run).await[0].2, 1, "one attempt, on w2");
    h.stop().await;
    w2.await.unwrap().unwrap();
}
