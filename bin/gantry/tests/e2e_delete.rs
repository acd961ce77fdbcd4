//! `DELETE /v1/runs/{id}` (SPEC sections 4 and 4.1) through the real
//! `gantry dev` process: a finished run goes with its child runs, nodes,
//! attempts and tags (204, then 404); a running run, and a finished child
//! of a running parent, are 409s; deletions are counted in
//! `gantry_runs_deleted_total`.

// Not every helper of the shared harness is used here.
#[allow(unused_imports)]
mod common;

use common::Env;
use serde_json::json;
use sqlx::Connection;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

async fn count(env: &Env, sql: &str, run: &str) -> i64 {
    let mut db = sqlx::PgConnection::connect(&env.db_url)
        .await
        .expect("connect");
    let (n,): (i64,) = sqlx::query_as(sql)
        .bind(uuid::Uuid::parse_str(run).expect("uuid"))
        .fetch_one(&mut db)
        .await
        .expect(sql);
    n
}

async fn delete(env: &Env, run: &str) -> (u16, serde_json::Value) {
    let resp = env
        .http
        .delete(format!("{}/v1/runs/{run}", env.base))
        .send()
        .await
        .expect("DELETE");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_is_deleted_with_everything_it_owns_and_nothing_running_is() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(
        json!({"name": "kid", "nodes": [{"id": "a", "agent": "echo", "input": {"x": 1}}]}),
    )
    .await;
    env.workflow(json!({"name": "parent", "nodes": [
        {"id": "k", "workflow": "kid"},
        {"id": "after", "agent": "sleep", "depends_on": ["k"], "input": {"ms": "{{run.input.ms}}"}}
    ]}))
    .await;

    let (status, run) = env
        .post(
            "/v1/workflows/parent/runs",
            &json!({"input": {"ms": 0}, "tags": {"team": "a"}}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let done_id = run["id"].as_str().expect("id").to_owned();
    env.wait_run(&done_id, T).await;
    let (_, kids) = env.get(&format!("/v1/runs?parent={done_id}")).await;
    let kid = kids["runs"][0]["id"].as_str().expect("a child").to_owned();

    let slow = env.start("parent", json!({"ms": 20_000})).await;
    env.wait_node(&slow, "after", "running", T).await;
    let (_, kids) = env.get(&format!("/v1/runs?parent={slow}")).await;
    let slow_kid = kids["runs"][0]["id"].as_str().expect("a child").to_owned();
    let (status, body) = delete(&env, &slow).await;
    assert_eq!(status, 409, "a running run: {body}");
    let (status, body) = delete(&env, &slow_kid).await;
    assert_eq!(status, 409, "a finished child of a running parent: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("still running")),
        "{body}"
    );

    let attempts = "SELECT count(*) FROM attempts WHERE run_id = $1";
    assert!(count(&env, attempts, &kid).await > 0);
    let (status, body) = delete(&env, &done_id).await;
    assert_eq!(status, 204, "{body}");
    for id in [&done_id, &kid] {
        let (status, _) = env.get(&format!("/v1/runs/{id}")).await;
        assert_eq!(status, 404, "{id} is gone");
        assert_eq!(count(&env, attempts, id).await, 0, "attempts of {id}");
        let nodes = "SELECT count(*) FROM nodes WHERE run_id = $1";
        assert_eq!(count(&env, nodes, id).await, 0, "nodes of {id}");
        let tags = "SELECT count(*) FROM run_tags WHERE run_id = $1";
        assert_eq!(count(&env, tags, id).await, 0, "tags of {id}");
    }
    let (status, _) = delete(&env, &done_id).await;
    assert_eq!(status, 404);
    let (status, _) = env.get(&format!("/v1/runs/{slow}")).await;
    assert_eq!(status, 200, "the running run is untouched");

    let metrics = env
        .http
        .get(format!("{}/metrics", env.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let deleted = metrics
        .lines()
        .find(|l| l.starts_with("gantry_runs_deleted_total "))
        .unwrap_or_else(|| panic!("no counter: {metrics}"));
    assert_eq!(
        deleted, "gantry_runs_deleted_total 2",
        "the run and its child"
    );
}
