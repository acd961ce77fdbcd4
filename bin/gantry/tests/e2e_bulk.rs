//! Bulk cancel and retry (SPEC section 4) through the real `gantry dev`
//! process: cancelling 2,000 running runs by tag cancels exactly those,
//! nothing new starts in them, and another tag's runs go on to succeed;
//! a bulk retry by tag retries the cancelled ones; bad filters are 422s.

// Not every helper of the shared harness is used here.
#[allow(unused_imports)]
mod common;

use common::Env;
use serde_json::json;
use sqlx::Connection;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_cancel_by_tag_cancels_exactly_those_runs_and_others_go_on() {
    const DOOMED: usize = 2000;
    const KEPT: usize = 20;
    let mut env = Env::new().await;
    let _dev = env.dev(&[("GANTRY_CONCURRENCY", "16")]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "slow", "nodes": [
        {"id": "a", "agent": "sleep", "input": {"ms": 3000}},
        {"id": "b", "agent": "noop", "depends_on": ["a"]}
    ]}))
    .await;
    let start = |batch: &'static str| {
        let env = &env;
        async move {
            let (status, body) = env
                .post(
                    "/v1/workflows/slow/runs",
                    &json!({"input": {}, "tags": {"batch": batch}}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            body["id"].as_str().expect("id").to_owned()
        }
    };
    let mut kept = Vec::new();
    for _ in 0..KEPT {
        kept.push(start("kept").await);
    }
    for _ in 0..DOOMED {
        start("doomed").await;
    }
    for (body, field) in [
        (json!({"tags": {"Bad Key": "x"}}), "tags.Bad Key"),
        (json!({"status": "paused"}), "status"),
    ] {
        let (status, answer) = env.post("/v1/runs/cancel", &body).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["error"]["details"][0]["field"], field, "{answer}");
    }
    let (status, answer) = env
        .post("/v1/runs/cancel", &json!({"tags": {"batch": "doomed"}}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"matched": DOOMED, "more": false}));

    let mut db = sqlx::PgConnection::connect(&env.db_url)
        .await
        .expect("connect");
    let (cancelled_at,): (chrono::DateTime<chrono::Utc>,) =
        sqlx::query_as("SELECT clock_timestamp()")
            .fetch_one(&mut db)
            .await
            .expect("now");
    let counts: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT tags->>'batch', status, count(*) FROM runs GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(&mut db)
    .await
    .expect("counts");
    let doomed: i64 = counts
        .iter()
        .filter(|(b, s, _)| b == "doomed" && s == "cancelled")
        .map(|(_, _, n)| n)
        .sum();
    assert_eq!(doomed, DOOMED as i64, "{counts:?}");
    assert!(
        counts
            .iter()
            .all(|(b, s, _)| b != "kept" || s != "cancelled"),
        "{counts:?}"
    );
    for id in &kept {
        let run = env.wait_run(id, T).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
    }
    let (started,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM attempts a JOIN runs r ON r.id = a.run_id
         WHERE r.tags->>'batch' = 'doomed' AND a.started_at > $1",
    )
    .bind(cancelled_at)
    .fetch_one(&mut db)
    .await
    .expect("late attempts");
    assert_eq!(started, 0, "an attempt started in a cancelled run");

    // Retry by tag and a creation window: the 2,000 cancelled runs, not
    // the succeeded ones.
    let (status, answer) = env
        .post(
            "/v1/runs/retry",
            &json!({"tags": {"batch": "doomed"}, "created_before": cancelled_at}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["matched"], DOOMED, "{answer}");
    let (status, answer) = env
        .post("/v1/runs/cancel", &json!({"tags": {"batch": "doomed"}}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let (code, out, err) = env.cli(&["runs", "cancel", "--tag", "batch=kept"], T).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("cancel: 0 runs"), "the kept runs ended: {out}");
}
