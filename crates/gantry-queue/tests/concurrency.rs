//! Several consumers on one queue: exclusive delivery and reclaiming what a
//! dead consumer held.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{delete_prefix, job, queues, setup};
use tokio::time::Instant;

#[tokio::test]
async fn two_consumers_never_receive_the_same_entry() {
    let (q, p) = setup("twoconsumers").await;
    let total = 200;
    let mut readers = Vec::new();
    for name in ["c1", "c2"] {
        let mut c = q.consumer(name, &queues(&["default"])).await.unwrap();
        let q = q.clone();
        readers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut idle = 0;
            while idle < 3 && Instant::now() < deadline {
                let got = c.fetch(7, Duration::from_millis(300)).await.unwrap();
                if got.is_empty() {
                    idle += 1;
                    continue;
                }
                idle = 0;
                ids.extend(got.iter().map(|d| d.id.clone()));
                q.ack(&got).await.unwrap();
            }
            ids
        }));
    }
    for batch in 0..10 {
        let jobs: Vec<_> = (0..total / 10)
            .map(|i| job(&format!("j{}", batch * 20 + i), "default"))
            .collect();
        q.enqueue(&jobs).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut per_consumer = Vec::new();
    for r in readers {
        let ids = r.await.unwrap();
        per_consumer.push(ids.len());
        for id in ids {
            *counts.entry(id).or_default() += 1;
        }
    }
    println!("jobs per consumer: {per_consumer:?}");
    assert_eq!(counts.len(), total);
    assert!(
        counts.values().all(|n| *n == 1),
        "a job was delivered twice"
    );
    delete_prefix(&p).await;
}

#[tokio::test]
async fn unacked_entries_are_reclaimed_after_min_idle() {
    let (q, p) = setup("reclaim").await;
    let mut dead = q.consumer("dead", &queues(&["default"])).await.unwrap();
    let mut alive = q.consumer("alive", &queues(&["default"])).await.unwrap();
    q.enqueue(&[job("a", "default"), job("b", "default")])
        .await
        .unwrap();
    let held = dead.fetch(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(held.len(), 2);

    let min_idle = Duration::from_millis(300);
    assert!(alive.reclaim(min_idle, 10).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(350)).await;
    let taken = alive.reclaim(min_idle, 10).await.unwrap();
    assert_eq!(taken.len(), 2);
    for (t, h) in taken.iter().zip(&held) {
        assert_eq!((&t.id, &t.entry, &t.payload), (&h.id, &h.entry, &h.payload));
        assert_eq!(t.deliveries, 2);
    }
    // Nothing idle is left, and the new owner's ack clears everything.
    assert!(alive.reclaim(min_idle, 10).await.unwrap().is_empty());
    q.ack(&taken).await.unwrap();
    assert_eq!(q.stats("default").await.unwrap(), Default::default());
    // The dead consumer's late ack is harmless.
    q.ack(&held).await.unwrap();
    delete_prefix(&p).await;
}

#[tokio::test]
async fn reclaim_respects_max() {
    let (q, p) = setup("reclaimmax").await;
    let mut dead = q.consumer("dead", &queues(&["default"])).await.unwrap();
    let mut alive = q.consumer("alive", &queues(&["default"])).await.unwrap();
    let jobs: Vec<_> = (0..5).map(|i| job(&format!("j{i}"), "default")).collect();
    q.enqueue(&jobs).await.unwrap();
    assert_eq!(
        dead.fetch(10, Duration::from_secs(2)).await.unwrap().len(),
        5
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    let first = alive.reclaim(Duration::from_millis(50), 3).await.unwrap();
    assert_eq!(first.len(), 3);
    let rest = alive.reclaim(Duration::from_millis(50), 3).await.unwrap();
    assert_eq!(rest.len(), 2);
    delete_prefix(&p).await;
}

#[tokio::test]
async fn a_consumer_of_two_queues_never_gets_more_than_max() {
    let (q, p) = setup("twoqueues").await;
    let mut c = q.consumer("c1", &queues(&["one", "two"])).await.unwrap();
    let jobs: Vec<_> = (0..6)
        .flat_map(|i| [job(&format!("a{i}"), "one"), job(&format!("b{i}"), "two")])
        .collect();
    q.enqueue(&jobs).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let got = c.fetch(4, Duration::from_millis(200)).await.unwrap();
        assert!(got.len() <= 4);
        if got.is_empty() {
            break;
        }
        seen.extend(got.iter().map(|d| d.id.clone()));
        q.ack(&got).await.unwrap();
    }
    seen.sort();
    let mut want: Vec<_> = jobs.iter().map(|j| j.id.clone()).collect();
    want.sort();
    assert_eq!(seen, want);
    delete_prefix(&p).await;
}
