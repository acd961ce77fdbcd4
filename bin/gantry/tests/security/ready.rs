//! `/readyz` of the worker and the coordinator follows their writes (issue
//! 10 item 3): with the test's database made read-only (new sessions only,
//! then every session of it ended, so nothing outside this test changes),
//! writes fail while `SELECT 1` still answers; both turn 503 within
//! `GANTRY_WRITE_FAILURE_S`, `/healthz` stays 200, and both are 200 again
//! once writes work, after which the interrupted run still finishes.

use crate::common::{free_port, Env};
use serde_json::json;
use std::time::Duration;

async fn status(env: &Env, addr: &str, path: &str) -> u16 {
    env.http
        .get(format!("http://{addr}{path}"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// Wait until `GET http://addr/readyz` answers `want`.
async fn ready_becomes(env: &Env, addr: &str, want: u16, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let got = status(env, addr, "/readyz").await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr}/readyz stayed {got}, want {want}, after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Make the test's database read-only for new sessions (or writable again)
/// and end its current sessions, so every pool reconnects under the rule.
async fn set_read_only(env: &Env, on: bool) {
    let admin = std::env::var("GANTRY_DATABASE_URL").expect("GANTRY_DATABASE_URL");
    let admin = sqlx::PgPool::connect(&admin).await.expect("admin database");
    let db: (String,) = sqlx::query_as("SELECT current_database()")
        .fetch_one(&sqlx::PgPool::connect(&env.db_url).await.expect("test db"))
        .await
        .expect("database name");
    let db = db.0;
    assert!(db.starts_with("e2e_"), "only ever a test database: {db}");
    let sql = if on {
        format!("ALTER DATABASE {db} SET default_transaction_read_only = on")
    } else {
        format!("ALTER DATABASE {db} RESET default_transaction_read_only")
    };
    sqlx::query(&sql)
        .execute(&admin)
        .await
        .expect("alter database");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&db)
    .execute(&admin)
    .await
    .expect("end the test database's sessions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_red_while_writes_fail_and_green_after() {
    let mut env = Env::new().await;
    let _api = env.serve("api", &[]).await;
    let fail_s = [("GANTRY_WRITE_FAILURE_S", "1")];
    let coord = format!("127.0.0.1:{}", free_port());
    let mut coord_vars = vec![("GANTRY_METRICS_LISTEN", coord.as_str())];
    coord_vars.extend_from_slice(&fail_s);
    let _coordinator = env.coordinator("coordinator", &coord_vars).await;
    let worker = format!("127.0.0.1:{}", free_port());
    let mut worker_vars = vec![
        ("GANTRY_METRICS_LISTEN", worker.as_str()),
        ("GANTRY_LEASE_MS", "4000"),
        ("GANTRY_DOCKER", "off"),
    ];
    worker_vars.extend_from_slice(&fail_s);
    let w = env.worker("w1", &worker_vars).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "slow", "nodes": [
        {"id": "s", "agent": "sleep", "input": {"ms": 3000}},
        {"id": "e", "agent": "echo", "depends_on": ["s"]}
    ]}))
    .await;
    for addr in [&coord, &worker] {
        ready_becomes(&env, addr, 200, Duration::from_secs(10)).await;
    }

    // The sleep is running when writes start failing: its result cannot be
    // recorded, and the coordinator's reconciler cannot write either.
    let id = env.start("slow", json!({})).await;
    env.wait_node(&id, "s", "running", Duration::from_secs(10))
        .await;
    set_read_only(&env, true).await;
    for addr in [&worker, &coord] {
        ready_becomes(&env, addr, 503, Duration::from_secs(20)).await;
        assert_eq!(status(&env, addr, "/healthz").await, 200, "liveness stays");
    }

    set_read_only(&env, false).await;
    for addr in [&worker, &coord] {
        ready_becomes(&env, addr, 200, Duration::from_secs(20)).await;
    }
    // Nothing was given up: the node runs again and the run finishes.
    let run = env.wait_run(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "succeeded", "{run:#}\n{}", w.log_text());
    assert!(
        !w.log_text().contains("giving the job up"),
        "{}",
        w.log_text()
    );
}
