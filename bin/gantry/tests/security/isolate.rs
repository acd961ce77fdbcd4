//! One run whose advance keeps failing never blocks the others (issue 10
//! item 3, coordinator side): a run whose stored workflow is corrupt
//! (written straight into Postgres: its node depends on itself) is flagged
//! for the coordinator, which cannot advance it; ten other runs, advanced
//! by the same coordinator (the worker leaves every advance to it), finish
//! meanwhile, and the coordinator stays ready.

use super::pool::Pool;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_cannot_advance_is_set_aside() {
    let pool = Pool::start_with("4", &[("GANTRY_INLINE_ADVANCE", "false")]).await;
    let env = &pool.env;
    // Parked for approval: no worker ever loads its workflow.
    env.agent(
        json!({"name": "gated", "runtime": "builtin", "builtin": "echo",
                     "approval": "required", "timeout_s": 30}),
    )
    .await;
    env.workflow(json!({"name": "doomed", "nodes": [{"id": "g", "agent": "gated"}]}))
        .await;
    let doomed = env.start("doomed", json!({})).await;
    env.wait_node(&doomed, "g", "waiting_approval", Duration::from_secs(10))
        .await;
    let db = sqlx::PgPool::connect(&env.db_url)
        .await
        .expect("test database");
    sqlx::query(
        "UPDATE workflows SET definition = jsonb_set(definition, '{nodes,0,depends_on}', '[\"g\"]')
         WHERE name = 'doomed'",
    )
    .execute(&db)
    .await
    .expect("corrupt the workflow");
    sqlx::query("UPDATE nodes SET pending_advance = true WHERE run_id = $1::uuid")
        .bind(&doomed)
        .execute(&db)
        .await
        .expect("flag the run");
    sqlx::query("SELECT pg_notify('gantry_advance', '')")
        .execute(&db)
        .await
        .expect("notify");

    // Its id is older than theirs, so it leads every batch.
    let plain = pool.plain_runs(10).await;
    pool.all_succeed(&plain, Duration::from_secs(60)).await;
    let log = pool.coordinator_log();
    assert!(
        log.contains("set aside"),
        "the coordinator says what it did:\n{log}"
    );
    assert_eq!(
        pool.probe_at(&pool.coordinator_metrics, "/readyz").await,
        200,
        "{log}"
    );
    let more = pool.plain_runs(5).await;
    pool.all_succeed(&more, Duration::from_secs(60)).await;
}
