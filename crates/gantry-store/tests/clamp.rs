//! Defense in depth for huge numbers (issue 10 item 4): a retry delay past
//! `MAX_DELAY_MS` (from a plan stored before the bounds) is saved as at most
//! that far ahead, never "interval out of range", and a NUL in an error or a
//! log tail is stored as U+FFFD instead of failing the batch.

mod common;

use common::{claim, fixture, join_def};
use gantry_dag::limits::MAX_DELAY_MS;
use gantry_dag::{Action, NodeStatus, Outcome};
use gantry_store::{AttemptResult, Store};
use sqlx::PgPool;
use std::time::Duration;

#[sqlx::test(migrations = "./migrations")]
async fn a_huge_retry_delay_is_clamped_when_saved(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let f = fixture(&store, join_def("w")).await;
    let (run, _) = f.start(serde_json::json!({})).await;
    let a = f.idx("a");
    let mut tx = store.begin().await.unwrap();
    let head = tx.lock_run(run.id).await.unwrap().unwrap();
    let mut state = tx.load_state(&head, None).await.unwrap();
    let node = state.nodes.get_mut(&a).unwrap();
    node.status = NodeStatus::Retrying;
    node.tries = 1;
    let actions = [Action::Schedule {
        node: a,
        delay: Duration::MAX,
    }];
    let t = gantry_dag::Transition {
        changed: vec![a],
        actions: actions.to_vec(),
        ..Default::default()
    };
    let dispatches = tx
        .save((&head, &f.dag, &f.plan), &state, &t, &[])
        .await
        .expect("a huge delay saves");
    tx.commit().await.unwrap();
    assert_eq!(dispatches[0].delay_ms, Some(MAX_DELAY_MS));
    let (ahead,): (f64,) = sqlx::query_as(
        "SELECT extract(epoch FROM retry_at - clock_timestamp())::float8
         FROM nodes WHERE run_id = $1 AND idx = $2",
    )
    .bind(run.id)
    .bind(a as i32)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        ahead > 0.0 && ahead <= (MAX_DELAY_MS / 1000) as f64,
        "retry_at {ahead}s ahead"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn nul_in_errors_and_logs_is_stored_escaped(pool: PgPool) {
    let store = Store::from_pool(pool);
    let f = fixture(&store, join_def("w")).await;
    let (run, dispatches) = f.start(serde_json::json!({})).await;
    let claimed = claim(&store, "w1", &dispatches).await;
    assert_eq!(claimed.len(), 2);
    let results: Vec<AttemptResult> = claimed
        .iter()
        .map(|c| AttemptResult {
            run_id: c.run_id,
            node: c.node,
            attempt: c.attempt,
            outcome: Outcome::Failed { retryable: false },
            output: None,
            error: Some("bad\0error".into()),
            exit_code: Some(78),
            log_tail: Some("\0log\0".into()),
        })
        .collect();
    let accepted = store
        .record_results("w1", &results)
        .await
        .expect("NUL text stores");
    assert_eq!(accepted, vec![true, true]);
    let detail = store.get_node(run.id, "a").await.unwrap().expect("node a");
    let attempt = &detail.attempts_detail[0];
    assert_eq!(attempt.error.as_deref(), Some("bad\u{FFFD}error"));
    assert_eq!(attempt.log_tail.as_deref(), Some("\u{FFFD}log\u{FFFD}"));
}
