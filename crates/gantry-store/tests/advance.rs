//! Runs advanced through `RunTx` by the pure `gantry_dag::advance`: a full
//! cycle, failure and retry, and the key guarantee that a child of two
//! parents finishing at the same instant is dispatched exactly once.

mod common;

use common::{claim, fixture, join_def, node_row, result, Fixture};
use gantry_dag::{Event, NodeStatus, Outcome, RunStatus};
use gantry_store::{Dispatch, Store, RUN_CHANNEL};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn diamond() -> serde_json::Value {
    json!({"name": "diamond", "nodes": [
        {"id": "a", "agent": "noop"},
        {"id": "b", "agent": "noop", "depends_on": ["a"]},
        {"id": "c", "agent": "noop", "depends_on": ["a"]},
        {"id": "d", "agent": "noop", "depends_on": ["b", "c"]}
    ]})
}

/// Work every dispatched job to success and coordinate until the run ends.
/// Returns how often each node was dispatched.
async fn drive(fx: &Fixture, run: Uuid, mut jobs: Vec<Dispatch>) -> HashMap<u32, usize> {
    let mut dispatched = HashMap::new();
    for _ in 0..20 {
        for d in &jobs {
            *dispatched.entry(d.node).or_default() += 1;
        }
        let claimed = claim(&fx.store, "w", &jobs).await;
        assert_eq!(
            claimed.len(),
            jobs.len(),
            "every dispatched job is claimable"
        );
        let results: Vec<_> = claimed
            .iter()
            .map(|c| result(c, Outcome::Succeeded, Some(json!({"node": c.node}))))
            .collect();
        let accepted = fx.store.record_results("w", &results).await.unwrap();
        assert!(accepted.iter().all(|a| *a));
        jobs = fx.coordinate().await.unwrap().1;
        let detail = fx.store.get_run(run).await.unwrap().unwrap();
        if detail.run.status != RunStatus::Running {
            assert!(jobs.is_empty());
            return dispatched;
        }
    }
    panic!("run {run} did not finish in 20 rounds");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_diamond_runs_to_success(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let fx = fixture(&store, diamond()).await;
    let mut listener = store.listen(&[RUN_CHANNEL]).await.unwrap();
    let (run, jobs) = fx.start(json!({"go": true})).await;
    assert_eq!(jobs.len(), 1);
    let note = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("run notification")
        .unwrap();
    assert_eq!(note.payload(), run.id.to_string());

    let dispatched = drive(&fx, run.id, jobs).await;
    assert_eq!(dispatched, HashMap::from([(0, 1), (1, 1), (2, 1), (3, 1)]));

    let detail = store.get_run(run.id).await.unwrap().unwrap();
    assert_eq!(detail.run.status, RunStatus::Succeeded);
    assert!(detail.run.finished_at.is_some());
    for (i, n) in detail.nodes.iter().enumerate() {
        assert_eq!(n.status, NodeStatus::Succeeded, "{}", n.id);
        assert_eq!(n.output, Some(json!({"node": i})));
        assert_eq!(n.attempts, 1);
        assert!(n.queued_at.is_some() && n.started_at.is_some() && n.finished_at.is_some());
        assert_eq!(n.error, None);
    }
    let (remaining, failed, pending): (i32, i32, i64) = sqlx::query_as(
        "SELECT remaining, failed, (SELECT count(*) FROM nodes WHERE pending_advance)
         FROM runs WHERE id = $1",
    )
    .bind(run.id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((remaining, failed, pending), (0, 0, 0));
    assert_eq!(
        fx.coordinate().await.unwrap().0,
        0,
        "nothing left to advance"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_failure_skips_dependents_and_a_retry_reruns_them(pool: PgPool) {
    let store = Store::from_pool(pool);
    let fx = fixture(&store, join_def("fails")).await;
    let (run, jobs) = fx.start(json!({})).await;
    let claimed = claim(&store, "w", &jobs).await;
    let results = [
        result(&claimed[0], Outcome::Failed { retryable: false }, None),
        result(&claimed[1], Outcome::Succeeded, Some(json!("b out"))),
    ];
    assert_eq!(
        store.record_results("w", &results).await.unwrap(),
        [true, true]
    );
    let (_, out) = fx.coordinate().await.unwrap();
    assert!(out.is_empty());

    let detail = store.get_run(run.id).await.unwrap().unwrap();
    assert_eq!(detail.run.status, RunStatus::Failed);
    assert!(detail.run.finished_at.is_some());
    let by_id: HashMap<&str, _> = detail.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    assert_eq!(by_id["a"].status, NodeStatus::Failed);
    assert_eq!(by_id["a"].error.as_deref(), Some("node 0 broke"));
    assert_eq!(by_id["b"].status, NodeStatus::Succeeded);
    assert_eq!(by_id["b"].output, Some(json!("b out")));
    assert_eq!(by_id["c"].status, NodeStatus::Skipped);
    assert_eq!(
        by_id["c"].error.as_deref(),
        Some("skipped: an upstream node failed")
    );

    // Retry re-runs a (as attempt 2) and then c; b keeps its output.
    let jobs = fx.apply(run.id, Event::Retry).await;
    assert_eq!(jobs.iter().map(|d| d.node).collect::<Vec<_>>(), [0]);
    let detail = store.get_run(run.id).await.unwrap().unwrap();
    assert_eq!(detail.run.status, RunStatus::Running);
    assert_eq!(detail.run.finished_at, None);
    assert_eq!(detail.nodes[0].status, NodeStatus::Queued);
    assert_eq!(detail.nodes[0].error, None);
    assert_eq!(detail.nodes[2].status, NodeStatus::Pending);
    let dispatched = drive(&fx, run.id, jobs).await;
    assert_eq!(dispatched, HashMap::from([(0, 1), (2, 1)]));
    let detail = store.get_run(run.id).await.unwrap().unwrap();
    assert_eq!(detail.run.status, RunStatus::Succeeded);
    assert_eq!(detail.nodes[0].attempts, 2);
    assert_eq!(detail.nodes[1].output, Some(json!("b out")));
    assert_eq!(detail.nodes[2].output, Some(json!({"node": 2})));
}

/// One iteration of the race: both parents of `c` finish at the same
/// instant on separate connections while two coordinators advance
/// concurrently. Returns the dispatches of `c` and how many coordinator
/// steps found work.
async fn race_once(fx: Arc<Fixture>) -> (usize, usize) {
    let (run, jobs) = fx.start(json!({})).await;
    let claimed = claim(&fx.store, "w", &jobs).await;
    assert_eq!(claimed.len(), 2);
    let c = fx.idx("c");
    let barrier = Arc::new(tokio::sync::Barrier::new(4));
    let recorded = Arc::new(AtomicUsize::new(0));

    let mut recorders = Vec::new();
    for parent in claimed.clone() {
        let (fx, barrier, recorded) = (fx.clone(), barrier.clone(), recorded.clone());
        recorders.push(tokio::spawn(async move {
            let r = result(&parent, Outcome::Succeeded, Some(json!(parent.node)));
            barrier.wait().await;
            let ok = fx.store.record_results("w", &[r]).await.unwrap();
            recorded.fetch_add(1, Ordering::SeqCst);
            ok
        }));
    }
    let mut coordinators = Vec::new();
    for _ in 0..2 {
        let (fx, barrier, recorded) = (fx.clone(), barrier.clone(), recorded.clone());
        coordinators.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut busy = 0;
            let started = Instant::now();
            barrier.wait().await;
            for _ in 0..10_000 {
                let done = recorded.load(Ordering::SeqCst) == 2;
                let (locked, jobs) = fx.coordinate().await.unwrap();
                busy += usize::from(locked > 0);
                out.extend(jobs);
                if locked == 0 && done {
                    return (out, busy);
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "coordinator stuck"
                );
                tokio::task::yield_now().await;
            }
            panic!("coordinator loop bound reached");
        }));
    }
    for r in recorders {
        assert_eq!(r.await.unwrap(), [true]);
    }
    let mut all = Vec::new();
    let mut busy = 0;
    for t in coordinators {
        let (out, b) = t.await.unwrap();
        all.extend(out);
        busy += b;
    }
    // Whatever the coordinators left (none expected) is drained here.
    for _ in 0..5 {
        let (locked, out) = fx.coordinate().await.unwrap();
        all.extend(out);
        if locked == 0 {
            break;
        }
    }
    assert!(all.iter().all(|d| d.run_id == run.id && d.node == c));
    assert_eq!(
        node_row(&fx.store, run.id, c).await,
        ("queued".into(), 0, 0, false)
    );

    // A duplicated result changes nothing.
    let dup = result(&claimed[0], Outcome::Succeeded, Some(json!("again")));
    assert_eq!(fx.store.record_results("w", &[dup]).await.unwrap(), [false]);
    let (locked, out) = fx.coordinate().await.unwrap();
    assert_eq!((locked, out.len()), (0, 0));
    assert_eq!(
        node_row(&fx.store, run.id, c).await,
        ("queued".into(), 0, 0, false)
    );
    let outputs = fx.store.outputs(&[(run.id, 0)]).await.unwrap();
    assert_eq!(outputs[&(run.id, 0)], json!(claimed[0].node));
    (all.len(), busy)
}

#[sqlx::test(migrations = "./migrations")]
async fn a_child_of_two_parents_finishing_together_is_dispatched_exactly_once(
    _pool: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // A multi-threaded runtime of its own, so the racing tasks really run
    // in parallel, each on its own connection.
    let worker = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .connect_with(connect)
                .await
                .unwrap();
            let store = Store::from_pool(pool.clone());
            let fx = Arc::new(fixture(&store, join_def("race")).await);
            let mut contended = 0;
            for i in 0..500 {
                let (dispatched, busy) = race_once(fx.clone()).await;
                assert_eq!(
                    dispatched, 1,
                    "iteration {i}: child dispatched {dispatched} times"
                );
                contended += usize::from(busy > 1);
            }
            eprintln!("iterations where both results were applied in separate steps: {contended}");
            pool.close().await;
        });
    });
    worker.join().expect("race iterations");
}
