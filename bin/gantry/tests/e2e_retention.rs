//! Retention (SPEC 4.1) through the real `gantry dev` process: the
//! coordinator deletes finished runs past their workflow's
//! `retention_days` (else `GANTRY_RETENTION_DAYS`) with their child runs
//! and attempts, and keeps younger ones, those of a workflow that keeps
//! runs for ever (0), running runs however old, and the finished child of
//! a running parent. Ages are made by moving stored timestamps back.

// Not every helper of the shared harness is used here.
#[allow(unused_imports)]
mod common;

use common::Env;
use serde_json::json;
use sqlx::Connection;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_finished_runs_are_deleted_and_nothing_else() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[("GANTRY_RETENTION_DAYS", "30")]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "plain", "nodes": [{"id": "a", "agent": "noop"}]}))
        .await;
    env.workflow(
        json!({"name": "short", "retention_days": 1, "nodes": [{"id": "a", "agent": "noop"}]}),
    )
    .await;
    env.workflow(
        json!({"name": "forever", "retention_days": 0, "nodes": [{"id": "a", "agent": "noop"}]}),
    )
    .await;
    env.workflow(json!({"name": "kid", "nodes": [{"id": "a", "agent": "noop"}]}))
        .await;
    env.workflow(json!({"name": "parent", "nodes": [
        {"id": "k", "workflow": "kid"},
        {"id": "s", "agent": "sleep", "depends_on": ["k"], "input": {"ms": "{{run.input.ms}}"}}
    ]}))
    .await;
    let (status, body) = env
        .post(
            "/v1/workflows",
            &json!({"name": "bad", "retention_days": 40_000,
                                       "nodes": [{"id": "a", "agent": "noop"}]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["error"]["details"][0]["field"], "retention_days",
        "{body}"
    );

    let mut finished = Vec::new();
    for (wf, input) in [
        ("plain", json!({})),
        ("plain", json!({})),
        ("short", json!({})),
        ("short", json!({})),
        ("forever", json!({})),
        ("parent", json!({"ms": 0})),
    ] {
        let id = env.start(wf, input).await;
        env.wait_run(&id, T).await;
        finished.push(id);
    }
    let running = env.start("plain", json!({})).await;
    let busy = env.start("parent", json!({"ms": 60_000})).await;
    env.wait_node(&busy, "s", "running", T).await;
    let child_of = |id: String| {
        let env = &env;
        async move {
            let (_, kids) = env.get(&format!("/v1/runs?parent={id}")).await;
            kids["runs"][0]["id"].as_str().expect("a child").to_owned()
        }
    };
    let old_kid = child_of(finished[5].clone()).await;
    let busy_kid = child_of(busy.clone()).await;
    env.wait_run(&running, T).await;

    let mut db = sqlx::PgConnection::connect(&env.db_url)
        .await
        .expect("connect");
    let age = |id: &str, days: f64, finished: bool| {
        let id = uuid::Uuid::parse_str(id).expect("uuid");
        let sql = if finished {
            "UPDATE runs SET created_at = created_at - $2 * interval '1 day',
                             finished_at = finished_at - $2 * interval '1 day' WHERE id = $1"
        } else {
            "UPDATE runs SET status = 'running', finished_at = NULL,
                             created_at = created_at - $2 * interval '1 day' WHERE id = $1"
        };
        (sql, id, days)
    };
    for (sql, id, days) in [
        age(&finished[0], 40.0, true),   // plain, past 30 days: deleted
        age(&finished[1], 10.0, true),   // plain, 10 days: kept
        age(&finished[2], 2.0, true),    // short, past 1 day: deleted
        age(&finished[3], 0.5, true),    // short, half a day: kept
        age(&finished[4], 1000.0, true), // forever: kept
        age(&finished[5], 40.0, true),   // an old parent: deleted with its child
        age(&old_kid, 40.0, true),
        age(&busy_kid, 40.0, true), // the old child of a running parent: kept
        age(&running, 100.0, false), // running however old: kept
    ] {
        sqlx::query(sql)
            .bind(id)
            .bind(days)
            .execute(&mut db)
            .await
            .expect("age a run");
    }
    let gone = [&finished[0], &finished[2], &finished[5], &old_kid];
    common::eventually("the expired runs to be deleted", T, || async {
        let mut left = Vec::new();
        for id in gone {
            let (status, _) = env.get(&format!("/v1/runs/{id}")).await;
            if status != 404 {
                left.push(id.clone());
            }
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(json!(left))
        }
    })
    .await;
    for id in [
        &finished[1],
        &finished[3],
        &finished[4],
        &busy,
        &busy_kid,
        &running,
    ] {
        let (status, body) = env.get(&format!("/v1/runs/{id}")).await;
        assert_eq!(status, 200, "{id} must be kept: {body}");
    }
    let (attempts,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM attempts WHERE run_id = ANY($1)")
            .bind(
                gone.iter()
                    .map(|id| uuid::Uuid::parse_str(id).expect("uuid"))
                    .collect::<Vec<_>>(),
            )
            .fetch_one(&mut db)
            .await
            .expect("attempts");
    assert_eq!(attempts, 0, "the deleted runs' attempts are gone");
    let metrics = env
        .http
        .get(format!("{}/metrics", env.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.lines().any(|l| l == "gantry_runs_deleted_total 4"),
        "{metrics}"
    );
}
