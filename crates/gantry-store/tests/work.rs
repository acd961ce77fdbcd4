//! Workers' side: claims under concurrency, fenced results, leases,
//! re-delivery and outputs.

mod common;

use common::{claim, fixture, join_def, node_row, result, LEASE};
use gantry_dag::{Event, NodeIdx, NodeStatus, Outcome};
use gantry_store::{ClaimJob, Store};
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

fn wide_def(n: usize) -> serde_json::Value {
    let nodes: Vec<_> = (0..n)
        .map(|i| json!({"id": format!("n{i}"), "agent": "noop"}))
        .collect();
    json!({"name": "wide", "nodes": nodes})
}

#[sqlx::test(migrations = "./migrations")]
async fn each_node_is_claimed_exactly_once_under_concurrency(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let fx = fixture(&store, wide_def(40)).await;
    let (run, jobs) = fx.start(json!({"k": "v"})).await;
    let jobs: Vec<ClaimJob> = jobs.iter().map(ClaimJob::from).collect();
    assert_eq!(jobs.len(), 40);
    assert!(
        jobs.iter().all(|j| j.queued.is_some()),
        "a queued node's job says how it was queued: {jobs:?}"
    );

    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(12));
    let tasks: Vec<_> = (0..12)
        .map(|w| {
            let store = store.clone();
            let barrier = barrier.clone();
            // Overlapping batches in different orders: no deadlock, no double claim.
            let mut mine = jobs.clone();
            mine.rotate_left(w * 3);
            if w % 2 == 1 {
                mine.reverse();
            }
            // A third of the workers read the nodes (as for a job that
            // does not say how its node was queued); the rest decide on
            // what the job says. Both race for the same rows.
            if w % 3 == 0 {
                for j in &mut mine {
                    j.queued = None;
                }
            }
            tokio::spawn(async move {
                barrier.wait().await;
                store.claim(&format!("w{w}"), &mine, LEASE).await
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap().unwrap());
    }
    assert_eq!(claimed.len(), 40);
    let distinct: HashSet<NodeIdx> = claimed.iter().map(|c| c.node).collect();
    assert_eq!(distinct.len(), 40);
    for c in &claimed {
        assert_eq!(c.run_id, run.id);
        assert_eq!(c.attempt, 1);
        assert_eq!(c.workflow_id, fx.wf.id);
        assert_eq!(*c.run_input, json!({"k": "v"}));
    }
    let (attempts, running): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM attempts WHERE status = 'running'),
                (SELECT count(*) FROM nodes WHERE status = 'running' AND tries = 1
                    AND lease_owner IS NOT NULL AND lease_expires_at > now())",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((attempts, running), (40, 40));

    // A duplicate delivery claims nothing, whether it says how its node
    // was queued (stale: the compare-and-set finds it running) or not (the
    // read finds it running).
    assert!(store.claim("late", &jobs, LEASE).await.unwrap().is_empty());
    let unsaid: Vec<ClaimJob> = jobs
        .iter()
        .map(|j| ClaimJob { queued: None, ..*j })
        .collect();
    assert!(store
        .claim("late", &unsaid, LEASE)
        .await
        .unwrap()
        .is_empty());
}

#[sqlx::test(migrations = "./migrations")]
async fn a_claim_decided_on_a_stale_read_writes_nothing(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let fx = fixture(&store, wide_def(3)).await;
    let (_, jobs) = fx.start(json!({})).await;
    let jobs: Vec<(Uuid, NodeIdx)> = jobs.iter().map(|d| (d.run_id, d.node)).collect();
    let read = store.claim_views(&jobs).await.unwrap();
    assert_eq!(read.len(), 3);
    let decided: Vec<_> = read
        .iter()
        .map(|r| (r, gantry_dag::claim(&r.view).unwrap()))
        .collect();
    // Another worker claims one node between this read and its write.
    assert_eq!(
        store
            .claim("fast", &[ClaimJob::from(jobs[0])], LEASE)
            .await
            .unwrap()
            .len(),
        1
    );
    let won = store.write_claims("slow", &decided, LEASE).await.unwrap();
    let mut won: Vec<NodeIdx> = won.iter().map(|c| c.node).collect();
    won.sort_unstable();
    let mut rest: Vec<NodeIdx> = jobs[1..].iter().map(|j| j.1).collect();
    rest.sort_unstable();
    assert_eq!(won, rest);
    let attempts: Vec<(i32, String)> =
        sqlx::query_as("SELECT idx, worker FROM attempts ORDER BY idx")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(attempts.len(), 3, "one attempt per node: {attempts:?}");
    assert_eq!(
        attempts.iter().filter(|a| a.1 == "fast").count(),
        1,
        "{attempts:?}"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn nothing_is_claimed_in_a_cancelled_run(pool: PgPool) {
    let store = Store::from_pool(pool);
    let fx = fixture(&store, join_def("cancel")).await;
    let (run, jobs) = fx.start(json!({})).await;
    let first = claim(&store, "w", &jobs[..1]).await;
    assert_eq!(first.len(), 1);
    let out = fx.apply(run.id, Event::Cancel).await;
    assert!(out.is_empty());
    assert!(claim(&store, "w", &jobs).await.is_empty());
    // The running attempt was closed, and its late result is fenced off.
    let accepted = store
        .record_results(
            "w",
            &[result(&first[0], Outcome::Succeeded, Some(json!(1)))],
        )
        .await
        .unwrap();
    assert_eq!(accepted, [false]);
    let node = store.get_node(run.id, "a").await.unwrap().unwrap();
    assert_eq!(node.node.status, NodeStatus::Cancelled);
    assert_eq!(node.node.error.as_deref(), Some("cancelled"));
    assert_eq!(node.attempts_detail[0].status, "failed");
    assert!(node.attempts_detail[0].finished_at.is_some());
    let detail = store.get_run(run.id).await.unwrap().unwrap();
    assert!(detail.run.finished_at.is_some());
    assert!(detail
        .nodes
        .iter()
        .all(|n| n.status == NodeStatus::Cancelled));
}

#[sqlx::test(migrations = "./migrations")]
async fn results_are_fenced_by_attempt(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let fx = fixture(&store, join_def("fence")).await;
    let (run, jobs) = fx.start(json!({})).await;
    let claimed = claim(&store, "w1", &jobs).await;
    assert_eq!(claimed.len(), 2);
    let (a, b) = (&claimed[0], &claimed[1]);

    let mut stale = result(a, Outcome::Succeeded, Some(json!({"x": 1})));
    stale.attempt = 2;
    let mut pending_node = result(a, Outcome::Succeeded, None);
    pending_node.node = fx.idx("c");
    let good = result(a, Outcome::Succeeded, Some(json!({"x": 1})));
    let accepted = store
        .record_results("w1", &[stale, pending_node, good.clone(), good.clone()])
        .await
        .unwrap();
    assert_eq!(accepted, [false, false, true, false]);
    assert_eq!(
        store.record_results("w1", &[good]).await.unwrap(),
        [false],
        "a duplicate is rejected"
    );
    assert_eq!(
        node_row(&store, run.id, a.node).await,
        ("running".into(), 1, 0, true)
    );
    assert_eq!(
        node_row(&store, run.id, b.node).await,
        ("running".into(), 1, 0, false)
    );
    assert_eq!(
        node_row(&store, run.id, fx.idx("c")).await,
        ("pending".into(), 0, 2, false)
    );

    let (status, output, exit, log, done): (
        String,
        Option<serde_json::Value>,
        Option<i32>,
        Option<String>,
        bool,
    ) = sqlx::query_as(
        "SELECT status, output, exit_code, log_tail, finished_at IS NOT NULL FROM attempts
             WHERE run_id = $1 AND idx = $2 AND attempt = 1",
    )
    .bind(run.id)
    .bind(a.node as i32)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, "succeeded");
    assert_eq!(output, Some(json!({"x": 1})));
    assert_eq!(
        (exit, log.as_deref(), done),
        (Some(0), Some("log line"), true)
    );

    // An empty batch records nothing.
    assert!(store.record_results("w1", &[]).await.unwrap().is_empty());
}

#[sqlx::test(migrations = "./migrations")]
async fn expired_leases_become_retryable_failures(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let fx = fixture(&store, join_def("lease")).await;
    let (run, jobs) = fx.start(json!({})).await;
    let a = store
        .claim(
            "dead",
            &[(run.id, jobs[0].node).into()],
            Duration::from_millis(1),
        )
        .await
        .unwrap();
    let b = store
        .claim("alive", &[(run.id, jobs[1].node).into()], LEASE)
        .await
        .unwrap();
    assert_eq!((a.len(), b.len()), (1, 1));
    tokio::time::sleep(Duration::from_millis(20)).await;

    let mut listener = store
        .listen(&[gantry_store::ADVANCE_CHANNEL])
        .await
        .unwrap();
    assert_eq!(store.expire_leases(100).await.unwrap(), 1);
    let note = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("advance notification")
        .unwrap();
    assert_eq!(note.channel(), gantry_store::ADVANCE_CHANNEL);
    assert_eq!(store.expire_leases(100).await.unwrap(), 0, "expired once");

    let (status, retryable, error): (String, bool, Option<String>) = sqlx::query_as(
        "SELECT status, retryable, error FROM attempts WHERE run_id = $1 AND idx = $2",
    )
    .bind(run.id)
    .bind(a[0].node as i32)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), retryable, error.as_deref()),
        ("failed", true, Some("lease expired"))
    );
    assert!(node_row(&store, run.id, a[0].node).await.3);

    // The dead worker's late result and renewal are refused; the live one renews.
    let late = store
        .record_results("dead", &[result(&a[0], Outcome::Succeeded, None)])
        .await
        .unwrap();
    assert_eq!(late, [false]);
    let held_a = (run.id, a[0].node, a[0].attempt);
    let held_b = (run.id, b[0].node, b[0].attempt);
    assert_eq!(
        store.renew_leases("dead", &[held_a], LEASE).await.unwrap(),
        [held_a]
    );
    assert_eq!(
        store
            .renew_leases("intruder", &[held_b], LEASE)
            .await
            .unwrap(),
        [held_b]
    );
    let before: (chrono::DateTime<chrono::Utc>,) =
        sqlx::query_as("SELECT lease_expires_at FROM nodes WHERE run_id = $1 AND idx = $2")
            .bind(run.id)
            .bind(b[0].node as i32)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(store
        .renew_leases("alive", &[held_b], Duration::from_secs(120))
        .await
        .unwrap()
        .is_empty());
    let after: (chrono::DateTime<chrono::Utc>,) =
        sqlx::query_as("SELECT lease_expires_at FROM nodes WHERE run_id = $1 AND idx = $2")
            .bind(run.id)
            .bind(b[0].node as i32)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(after.0 > before.0 + chrono::Duration::seconds(60));

    // The coordinator turns the expiry into a retry with a delay.
    let (locked, out) = fx.coordinate().await.unwrap();
    assert_eq!(locked, 1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].node, a[0].node);
    let delay = out[0].delay_ms.expect("a retry is delayed");
    assert!((500..1000).contains(&delay), "delay {delay}");
    let (status, tries, error, due): (String, i32, Option<String>, bool) = sqlx::query_as(
        "SELECT status, tries, error, retry_at > clock_timestamp() + interval '300 ms'
         FROM nodes WHERE run_id = $1 AND idx = $2",
    )
    .bind(run.id)
    .bind(a[0].node as i32)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), tries, error.as_deref(), due),
        ("retrying", 1, Some("lease expired"), true)
    );

    // Not claimable before it is due; claimable once due, as attempt 2.
    assert!(claim(&store, "w2", &out).await.is_empty());
    sqlx::query("UPDATE nodes SET retry_at = clock_timestamp() WHERE run_id = $1 AND idx = $2")
        .bind(run.id)
        .bind(a[0].node as i32)
        .execute(&pool)
        .await
        .unwrap();
    let again = claim(&store, "w2", &out).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
    assert_eq!(
        node_row(&store, run.id, a[0].node).await,
        ("running".into(), 2, 0, false)
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn deliverable_lists_old_queued_and_due_retrying_nodes(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let fx = fixture(&store, join_def("redeliver")).await;
    let (run, jobs) = fx.start(json!({})).await;
    assert!(store
        .deliverable(Duration::from_secs(3600), 10)
        .await
        .unwrap()
        .is_empty());
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut found = store.deliverable(Duration::ZERO, 10).await.unwrap();
    found.sort_by_key(|d| d.node);
    assert_eq!(found, jobs);
    assert_eq!(store.deliverable(Duration::ZERO, 1).await.unwrap().len(), 1);

    sqlx::query(
        "UPDATE nodes SET status = 'retrying', retry_at = clock_timestamp() - interval '1 s'
         WHERE run_id = $1 AND idx = 0",
    )
    .bind(run.id)
    .execute(&pool)
    .await
    .unwrap();
    let found = store.deliverable(Duration::ZERO, 10).await.unwrap();
    assert_eq!(found.len(), 2);
    // What the reconciler delivers claims both: the retrying node's job is
    // decided on its row, the queued one's on what the job says.
    let claimed = claim(&store, "w", &found).await;
    assert_eq!(claimed.len(), 2);
    assert!(store
        .deliverable(Duration::ZERO, 10)
        .await
        .unwrap()
        .is_empty());
}

#[sqlx::test(migrations = "./migrations")]
async fn outputs_of_succeeded_nodes_are_returned(pool: PgPool) {
    let store = Store::from_pool(pool);
    let fx = fixture(&store, join_def("outputs")).await;
    let (run, jobs) = fx.start(json!({})).await;
    let claimed = claim(&store, "w", &jobs).await;
    let results: Vec<_> = claimed
        .iter()
        .map(|c| result(c, Outcome::Succeeded, Some(json!({"from": c.node}))))
        .collect();
    assert_eq!(
        store.record_results("w", &results).await.unwrap(),
        [true, true]
    );
    let wanted = vec![(run.id, 0), (run.id, 1)];
    assert!(
        store.outputs(&wanted).await.unwrap().is_empty(),
        "not succeeded until the coordinator applied the results"
    );
    let (_, out) = fx.coordinate().await.unwrap();
    assert_eq!(out.len(), 1);
    let got = store.outputs(&wanted).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[&(run.id, 0)], json!({"from": 0}));
    assert_eq!(got[&(run.id, 1)], json!({"from": 1}));
}

#[sqlx::test(migrations = "./migrations")]
async fn a_claim_waits_for_a_cancel_in_progress_and_then_claims_nothing(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let fx = fixture(&store, join_def("wait")).await;
    let (run, jobs) = fx.start(json!({})).await;

    // The cancel has read the queued nodes but not written yet: a claim now
    // must wait on the run lock, or the cancel would overwrite its attempt.
    let mut tx = store.begin().await.unwrap();
    let head = tx.lock_run(run.id).await.unwrap().unwrap();
    let mut state = tx.load_state(&head, None).await.unwrap();
    let claiming = {
        let store = store.clone();
        let jobs = jobs.clone();
        tokio::spawn(async move { claim(&store, "w", &jobs).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!claiming.is_finished(), "the claim waits for the run lock");
    let t = gantry_dag::advance(&fx.dag, &fx.plan, &mut state, Event::Cancel, 0.5);
    tx.save((&head, &fx.dag, &fx.plan), &state, &t, &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let claimed = tokio::time::timeout(Duration::from_secs(5), claiming)
        .await
        .expect("claim finishes after the cancel commits")
        .unwrap();
    assert!(claimed.is_empty());
    assert_eq!(
        node_row(&store, run.id, 0).await,
        ("cancelled".into(), 0, 0, false)
    );
    let (attempts,): (i64,) = sqlx::query_as("SELECT count(*) FROM attempts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 0);
}
