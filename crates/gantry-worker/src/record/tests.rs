//! The row-by-row fallback on real Postgres and Redis: a batch holding one
//! result Postgres refuses (an output with U+0000, which the executor never
//! lets through, built here by hand) records every other result as it is
//! and the bad one as its node's permanent failure.

use super::*;
use crate::BreakerConfig;
use gantry_dag::{AgentDef, WorkflowDef};
use gantry_engine::Started;
use gantry_store::Store;
use serde_json::json;
use sqlx::PgPool;

async fn engine(pool: PgPool) -> Engine {
    let url = std::env::var("GANTRY_REDIS_URL").expect("GANTRY_REDIS_URL must point at redis");
    let prefix = format!("test-record-{}", uuid::Uuid::new_v4().simple());
    let queue = gantry_queue::Queue::connect(&url, &prefix)
        .await
        .expect("redis reachable");
    Engine::new(Store::from_pool(pool), queue)
}

fn config(inline_advance: bool) -> Config {
    Config {
        id: "w1".into(),
        queues: vec!["default".into()],
        concurrency: 4,
        lease: Duration::from_secs(10),
        grace: Duration::from_secs(1),
        breaker: BreakerConfig::default(),
        inline_advance,
    }
}

/// Three runs of a one-node workflow, each node claimed; their results.
async fn claimed(engine: &Engine) -> Vec<AttemptResult> {
    let agent: AgentDef =
        serde_json::from_value(json!({"name": "echo", "runtime": "builtin", "builtin": "echo"}))
            .unwrap();
    engine.upsert_agent(&agent).await.unwrap();
    let def: WorkflowDef =
        serde_json::from_value(json!({"name": "wf", "nodes": [{"id": "a", "agent": "echo"}]}))
            .unwrap();
    let wf = engine.register_workflow(&def).await.unwrap();
    let mut jobs = Vec::new();
    for _ in 0..3 {
        match engine.start_run(&wf, &json!({}), None).await.unwrap() {
            Started::New(r) => jobs.push(gantry_store::ClaimJob::from((r.id, 0))),
            other => panic!("unexpected {other:?}"),
        }
    }
    let claims = engine
        .claim("w1", &jobs, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(claims.len(), 3);
    claims
        .into_iter()
        .map(|c| AttemptResult {
            run_id: c.run_id,
            node: c.node,
            attempt: c.attempt,
            outcome: Outcome::Succeeded,
            output: Some(json!({"ok": true})),
            error: None,
            exit_code: Some(0),
            log_tail: Some("log with a NUL \0 byte".into()),
        })
        .collect()
}

async fn check(engine: &Engine, results: &[AttemptResult]) {
    // The coordinator's part: apply what was recorded.
    gantry_coordinator::drain(engine, 64).await.unwrap();
    for (i, r) in results.iter().enumerate() {
        let run = engine.reads().get_run(r.run_id).await.unwrap().unwrap();
        let node = &run.nodes[0];
        if i == 1 {
            assert_eq!(node.status.to_string(), "failed", "{node:?}");
            assert_eq!(node.error.as_deref(), Some(UNSTORABLE));
        } else {
            assert_eq!(node.status.to_string(), "succeeded", "{node:?}");
            assert_eq!(node.output, Some(json!({"ok": true})));
        }
    }
}

async fn one_bad_row_never_blocks_the_batch(pool: PgPool, inline: bool) {
    let engine = engine(pool).await;
    let mut results = claimed(&engine).await;
    results[1].output = Some(json!({"x": "\0"}));
    let fates = record(&engine, &config(inline), &results).await;
    assert_eq!(fates, vec![Fate::Stored; 3]);
    assert_eq!(
        engine.health.failing_for(),
        None,
        "the last write succeeded"
    );
    check(&engine, &results).await;
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn one_bad_row_never_blocks_the_batch_inline(pool: PgPool) {
    one_bad_row_never_blocks_the_batch(pool, true).await;
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn one_bad_row_never_blocks_the_batch_recorded_only(pool: PgPool) {
    one_bad_row_never_blocks_the_batch(pool, false).await;
}

#[test]
fn the_stand_in_failure_carries_nothing_the_agent_wrote() {
    let r = AttemptResult {
        run_id: uuid::Uuid::nil(),
        node: 2,
        attempt: 3,
        outcome: Outcome::Succeeded,
        output: Some(json!({"x": "\0"})),
        error: Some("\0".into()),
        exit_code: Some(0),
        log_tail: Some("\0".into()),
    };
    let f = unstorable(&r);
    assert_eq!(f.outcome, Outcome::Failed { retryable: false });
    assert_eq!((f.output, f.log_tail), (None, None));
    assert_eq!(f.error.as_deref(), Some(UNSTORABLE));
    assert_eq!((f.node, f.attempt, f.exit_code), (2, 3, Some(0)));
}
