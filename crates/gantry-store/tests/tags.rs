//! Run tags (SPEC 4.1): 10,000 tagged runs, filtered by one and by two tags
//! and paged by cursor, give each matching run exactly once and no other;
//! a child run carries its parent's tags.

mod common;

use common::fixture;
use gantry_dag::Tags;
use gantry_store::{Created, NewRun, RunFilter, Store};
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashSet;
use uuid::Uuid;

const RUNS: usize = 10_000;

fn tags_of(i: usize) -> Tags {
    [
        ("tenant", ["acme", "globex", "initech", "umbrella"][i % 4]),
        ("env", ["prod", "dev", "test"][i % 3]),
        ("n", if i % 1000 == 7 { "lucky" } else { "plain" }),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Every page of `filter` (page size `limit`), in order.
async fn all_pages(store: &Store, tags: &[(&str, &str)], limit: u32) -> Vec<Uuid> {
    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..(RUNS / limit as usize + 2) {
        let (page, next) = store
            .list_runs(&RunFilter {
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                limit,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.len() <= limit as usize);
        for r in &page {
            for (k, v) in tags {
                assert_eq!(r.tags.get(*k).map(String::as_str), Some(*v), "{r:?}");
            }
        }
        seen.extend(page.iter().map(|r| r.id));
        cursor = next;
        if cursor.is_none() {
            return seen;
        }
    }
    panic!("paging did not end");
}

#[sqlx::test(migrations = "./migrations")]
async fn filtering_by_tags_and_paging_gives_each_match_once_and_nothing_else(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let fx = fixture(
        &store,
        json!({"name": "tagged", "nodes": [{"id": "a", "agent": "noop"}]}),
    )
    .await;
    let input = json!({});
    let mut ids = Vec::with_capacity(RUNS);
    for i in 0..RUNS {
        let tags = tags_of(i);
        let new = NewRun {
            workflow: &fx.wf,
            dag: &fx.dag,
            plan: &fx.plan,
            input: &input,
            idempotency: None,
            traceparent: None,
            tags: &tags,
        };
        match store.create_run(new).await.unwrap() {
            Created::New(run, _) => {
                assert_eq!(run.tags, tags);
                ids.push(run.id);
            }
            other => panic!("{other:?}"),
        }
    }
    let expect = |want: &dyn Fn(&Tags) -> bool| -> Vec<Uuid> {
        // Newest first, as listed (UUIDv7 ids of runs made in order).
        let mut v: Vec<Uuid> = (0..RUNS)
            .filter(|&i| want(&tags_of(i)))
            .map(|i| ids[i])
            .collect();
        v.reverse();
        v
    };
    for (filter, limit) in [
        (vec![("tenant", "acme")], 500),
        (vec![("tenant", "acme"), ("env", "dev")], 97),
        (
            vec![("env", "test"), ("tenant", "umbrella"), ("n", "lucky")],
            3,
        ),
        (vec![("tenant", "nobody")], 50),
    ] {
        let got = all_pages(&store, &filter, limit).await;
        let unique: HashSet<&Uuid> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "{filter:?}: a run listed twice");
        let want = expect(&|t: &Tags| {
            filter
                .iter()
                .all(|(k, v)| t.get(*k).map(String::as_str) == Some(*v))
        });
        assert_eq!(got, want, "{filter:?}");
    }
    // Tags combine with the other filters.
    let (page, _) = store
        .list_runs(&RunFilter {
            workflow: Some("other".into()),
            tags: vec![("tenant".into(), "acme".into())],
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(page.is_empty());
    let (detail,) = (store.get_run(ids[5]).await.unwrap().unwrap(),);
    assert_eq!(detail.run.tags, tags_of(5));
}
