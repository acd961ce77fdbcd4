//! Creating runs (5,000 nodes, idempotency) and reading them back.

mod common;

use common::{fixture, join_def};
use gantry_dag::RunStatus;
use gantry_store::{Created, NewRun, RunFilter, Store};
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[sqlx::test(migrations = "./migrations")]
async fn create_run_with_5000_nodes_is_fast_and_correct(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    // 10 roots, each with 499 children.
    let nodes: Vec<_> = (0..5000)
        .map(|i| {
            if i < 10 {
                json!({"id": format!("n{i}"), "agent": "noop"})
            } else {
                json!({"id": format!("n{i}"), "agent": "noop",
                       "depends_on": [format!("n{}", i % 10)]})
            }
        })
        .collect();
    let fx = fixture(&store, json!({"name": "big", "nodes": nodes})).await;
    let started = Instant::now();
    let (run, jobs) = fx.start(json!({"repo": "x"})).await;
    let took = started.elapsed();
    eprintln!("create_run with 5,000 nodes took {took:?}");
    // Milliseconds in practice; a per-node insert takes seconds.
    assert!(took < Duration::from_secs(2), "create_run took {took:?}");
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!((run.workflow.as_str(), run.version), ("big", 1));
    assert_eq!(jobs.len(), 10);
    let mut roots: Vec<u32> = jobs.iter().map(|d| d.node).collect();
    roots.sort_unstable();
    assert_eq!(roots, (0..10).collect::<Vec<u32>>());
    for d in &jobs {
        assert_eq!(d.run_id, run.id);
        assert_eq!(d.queue, "default");
        assert_eq!(d.workflow_id, fx.wf.id);
        assert_eq!(d.plan_hash, store.put_plan(&fx.plan).await.unwrap());
        assert_eq!(d.delay_ms, None);
    }

    let counts: Vec<(String, i64, i32, i32, bool)> = sqlx::query_as(
        "SELECT status, count(*), min(waiting_on), max(waiting_on), bool_and(queued_at IS NOT NULL)
         FROM nodes WHERE run_id = $1 GROUP BY status ORDER BY status",
    )
    .bind(run.id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        counts,
        vec![
            ("pending".to_owned(), 4990, 1, 1, false),
            ("queued".to_owned(), 10, 0, 0, true),
        ]
    );
    let (remaining, failed): (i32, i32) =
        sqlx::query_as("SELECT remaining, failed FROM runs WHERE id = $1")
            .bind(run.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((remaining, failed), (5000, 0));

    let detail = store.get_run(run.id).await.unwrap().unwrap();
    assert_eq!(detail.nodes.len(), 5000);
    assert_eq!(detail.input, json!({"repo": "x"}));
    assert!(detail
        .nodes
        .iter()
        .enumerate()
        .all(|(i, n)| n.id == format!("n{i}")));
}

#[sqlx::test(migrations = "./migrations")]
async fn idempotency_key_returns_the_same_run_or_a_conflict(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let fx = fixture(&store, join_def("idem")).await;
    let input = json!({"n": 1});
    let tags = gantry_dag::Tags::new();
    let new = |key: &'static str, hash: &'static str| NewRun {
        workflow: &fx.wf,
        dag: &fx.dag,
        plan: &fx.plan,
        input: &input,
        idempotency: Some((key, hash)),
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        tags: &tags,
    };
    let Created::New(first, jobs) = store.create_run(new("k1", "h1")).await.unwrap() else {
        panic!("first use of a key creates a run");
    };
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|d| d.traceparent.is_some()));
    match store.create_run(new("k1", "h1")).await.unwrap() {
        Created::Existing(again) => assert_eq!(again.id, first.id),
        other => panic!("expected Existing, got {other:?}"),
    }
    assert!(matches!(
        store.create_run(new("k1", "h2")).await.unwrap(),
        Created::Conflict
    ));
    let (runs, nodes): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM nodes)")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((runs, nodes), (1, 3));

    // Racing requests with one key: exactly one creates, all see its id.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let (wf, dag, plan) = (fx.wf.clone(), fx.dag.clone(), fx.plan.clone());
            tokio::spawn(async move {
                let input = json!({"n": 2});
                store
                    .create_run(NewRun {
                        workflow: &wf,
                        dag: &dag,
                        plan: &plan,
                        input: &input,
                        idempotency: Some(("k2", "h")),
                        traceparent: None,
                        tags: &gantry_dag::Tags::new(),
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut created = 0;
    let mut ids = HashSet::new();
    for t in tasks {
        match t.await.unwrap() {
            Created::New(r, _) => {
                created += 1;
                ids.insert(r.id);
            }
            Created::Existing(r) => {
                ids.insert(r.id);
            }
            Created::Conflict => panic!("same key and hash must not conflict"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);

    // Without a key every request is a new run.
    let a = fx.start(json!({})).await.0;
    let b = fx.start(json!({})).await.0;
    assert_ne!(a.id, b.id);
}

#[sqlx::test(migrations = "./migrations")]
async fn list_runs_pages_newest_first_with_filters(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let one = fixture(&store, join_def("one")).await;
    let two = fixture(&store, join_def("two")).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let fx = if i % 2 == 0 { &one } else { &two };
        ids.push(fx.start(json!({"i": i})).await.0.id);
    }
    sqlx::query("UPDATE runs SET status = 'failed' WHERE id = $1")
        .bind(ids[3])
        .execute(&pool)
        .await
        .unwrap();
    ids.reverse();

    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let (page, next) = store
            .list_runs(&RunFilter {
                parent: None,
                limit: 3,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|r| r.id));
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, ids);

    let (page, next) = store
        .list_runs(&RunFilter {
            parent: None,
            workflow: Some("two".to_owned()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 3);
    assert!(page.iter().all(|r| r.workflow == "two"));
    assert!(next.is_none());

    let (page, _) = store
        .list_runs(&RunFilter {
            parent: None,
            workflow: Some("two".to_owned()),
            status: Some(RunStatus::Failed),
            tags: Vec::new(),
            limit: 0,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), [ids[3]]);

    let (page, next) = store
        .list_runs(&RunFilter {
            parent: None,
            limit: 10,
            cursor: Some("not a cursor".to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(page.is_empty() && next.is_none());
}

#[sqlx::test(migrations = "./migrations")]
async fn get_run_and_get_node_read_back_what_was_stored(pool: PgPool) {
    let store = Store::from_pool(pool);
    let fx = fixture(&store, join_def("read")).await;
    let (run, jobs) = fx.start(json!({"who": "me"})).await;
    let claimed = common::claim(&store, "w1", &jobs[..1]).await;
    assert_eq!(claimed.len(), 1);

    let detail = store.get_run(run.id).await.unwrap().unwrap();
    assert_eq!(detail.run.id, run.id);
    assert_eq!(detail.run.workflow, "read");
    let ids: Vec<&str> = detail.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(detail.nodes[0].attempts, 1);
    assert!(detail.nodes[0].started_at.is_some());

    let node = store.get_node(run.id, "c").await.unwrap().unwrap();
    assert_eq!(node.depends_on, ["a", "b"]);
    assert!(node.attempts_detail.is_empty());
    let node = store.get_node(run.id, "a").await.unwrap().unwrap();
    assert!(node.depends_on.is_empty());
    assert_eq!(node.attempts_detail.len(), 1);
    assert_eq!(node.attempts_detail[0].worker, "w1");
    assert_eq!(node.attempts_detail[0].status, "running");

    assert!(store.get_node(run.id, "zz").await.unwrap().is_none());
    assert!(store.get_run(uuid::Uuid::now_v7()).await.unwrap().is_none());
    let times = store.attempt_times(run.id).await.unwrap();
    assert_eq!(times.len(), 1);
    assert_eq!((times[0].node, times[0].attempt), (0, 1));
}
