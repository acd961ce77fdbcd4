//! Agents, workflow versions and plans against a real Postgres.

mod common;

use common::agent;
use gantry_dag::{NodePlan, Plan, RetryPolicy, WorkflowDef};
use gantry_store::Store;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::collections::BTreeMap;

fn workflow(name: &str, nodes: usize) -> WorkflowDef {
    let nodes: Vec<_> = (0..nodes)
        .map(|i| json!({"id": format!("n{i}"), "agent": "noop"}))
        .collect();
    serde_json::from_value(json!({"name": name, "nodes": nodes})).unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn agents_are_upserted_by_name(pool: PgPool) {
    let store = Store::from_pool(pool);
    let first = store.upsert_agent(&agent("scanner")).await.unwrap();
    let mut changed = agent("scanner");
    changed.queue = "heavy".to_owned();
    changed.timeout_s = 7;
    let second = store.upsert_agent(&changed).await.unwrap();
    assert_eq!(second.created_at, first.created_at);
    assert!(second.updated_at > first.updated_at);
    assert_eq!(second.def, changed);

    let got = store.get_agent("scanner").await.unwrap().unwrap();
    assert_eq!(got.def, changed);
    assert!(store.get_agent("missing").await.unwrap().is_none());

    store.upsert_agent(&agent("alpha")).await.unwrap();
    let names: Vec<String> = store
        .list_agents()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.def.name)
        .collect();
    assert_eq!(names, ["alpha", "scanner"]);

    let some = store
        .agents_by_name(&["scanner".to_owned(), "nope".to_owned()])
        .await
        .unwrap();
    assert_eq!(some.len(), 1);
    assert_eq!(some["scanner"].queue, "heavy");
}

#[sqlx::test(migrations = "./migrations")]
async fn workflow_versions_count_up_even_when_registered_concurrently(pool: PgPool) {
    let store = Store::from_pool(pool);
    for v in 1..=3 {
        let rec = store
            .register_workflow(&workflow("review", v))
            .await
            .unwrap();
        assert_eq!(rec.version, v as i32);
        assert_eq!(rec.name, "review");
    }
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.register_workflow(&workflow("review", 1)).await })
        })
        .collect();
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().unwrap().version);
    }
    versions.sort_unstable();
    assert_eq!(versions, (4..=19).collect::<Vec<i32>>());

    let latest = store.get_workflow("review", None).await.unwrap().unwrap();
    assert_eq!(latest.version, 19);
    let v2 = store
        .get_workflow("review", Some(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.definition, workflow("review", 2));
    assert!(store
        .get_workflow("review", Some(99))
        .await
        .unwrap()
        .is_none());
    assert!(store.get_workflow("other", None).await.unwrap().is_none());

    let by_id = store.workflow_by_id(v2.id).await.unwrap().unwrap();
    assert_eq!((by_id.name.as_str(), by_id.version), ("review", 2));
    assert!(store.workflow_by_id(-1).await.unwrap().is_none());

    let all = store.workflow_versions("review").await.unwrap();
    assert_eq!(
        all.iter().map(|w| w.version).collect::<Vec<_>>(),
        (1..=19).collect::<Vec<i32>>()
    );

    store
        .register_workflow(&workflow("deploy", 4))
        .await
        .unwrap();
    let list = store.list_workflows().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].name, "deploy");
    assert_eq!(
        (list[0].latest_version, list[0].versions, list[0].nodes),
        (1, 1, 4)
    );
    assert_eq!(list[1].name, "review");
    assert_eq!(
        (list[1].latest_version, list[1].versions, list[1].nodes),
        (19, 19, 1)
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn plans_are_stored_once_under_their_hash(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let mut agents = BTreeMap::new();
    agents.insert("noop".to_owned(), agent("noop"));
    let plan = Plan {
        agents,
        nodes: vec![NodePlan {
            agent: "noop".to_owned(),
            queue: "default".to_owned(),
            retry: RetryPolicy::default(),
            timeout_s: 5,
            approval: false,
            approval_timeout_s: None,
            on_approval_timeout: Default::default(),
        }],
    };
    let hash = store.put_plan(&plan).await.unwrap();
    assert_eq!(hash, hex::encode(Sha256::digest(plan.canonical_json())));
    assert_eq!(store.put_plan(&plan).await.unwrap(), hash);
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM plans")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(store.get_plan(&hash).await.unwrap(), Some(plan));
    assert_eq!(store.get_plan("00").await.unwrap(), None);
}

#[sqlx::test(migrations = "./migrations")]
async fn migrate_is_idempotent_and_ping_works(pool: PgPool) {
    let store = Store::from_pool(pool);
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}
