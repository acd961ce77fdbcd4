//! Queue inspection, dead jobs and worker presence against real Redis:
//! listing by state with cursors, burying, replaying, heartbeats expiring.

mod common;

use common::{delete_prefix, job, queues, setup};
use gantry_queue::{JobState, WorkerInfo};
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test]
async fn jobs_are_listed_by_state_and_page_by_cursor() {
    let (q, p) = setup("inspect").await;
    let mut c = q.consumer("c1", &queues(&["default"])).await.unwrap();
    q.enqueue(&[job("a", "default"), job("b", "default")])
        .await
        .unwrap();
    // `a` and `b` are handed out: in flight.
    let taken = c.fetch(2, Duration::from_millis(500)).await.unwrap();
    assert_eq!(taken.len(), 2);
    q.enqueue(&[
        job("c", "default"),
        job("d", "default"),
        job("e", "default"),
    ])
    .await
    .unwrap();
    q.schedule(&[(job("later", "default"), Duration::from_secs(60))])
        .await
        .unwrap();

    let page = q.jobs("default", JobState::Ready, 2, None).await.unwrap();
    let ids: Vec<&str> = page.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["c", "d"]);
    let next = page.next.expect("a second page");
    let page = q
        .jobs("default", JobState::Ready, 2, Some(&next))
        .await
        .unwrap();
    let ids: Vec<&str> = page.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["e"]);
    assert_eq!(page.next, None);

    let flying = q
        .jobs("default", JobState::InFlight, 10, None)
        .await
        .unwrap();
    let ids: HashSet<&str> = flying.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, HashSet::from(["a", "b"]));
    assert!(flying
        .jobs
        .iter()
        .all(|j| j.consumer.as_deref() == Some("c1") && j.deliveries == Some(1)));
    assert!(flying.jobs.iter().all(|j| j.payload.contains(&j.id)));

    let delayed = q
        .jobs("default", JobState::Delayed, 10, None)
        .await
        .unwrap();
    assert_eq!(delayed.jobs.len(), 1);
    assert_eq!(delayed.jobs[0].id, "later");
    assert!(delayed.jobs[0].at_ms.is_some());
    delete_prefix(&p).await;
}

#[tokio::test]
async fn a_buried_job_is_listed_dead_and_replay_brings_it_back() {
    let (q, p) = setup("dead").await;
    let mut c = q.consumer("c1", &queues(&["default"])).await.unwrap();
    q.enqueue(&[job("poison", "default")]).await.unwrap();
    let mut got = c.fetch(1, Duration::from_millis(500)).await.unwrap();
    // Each take-over by another consumer counts a delivery, as when the
    // workers holding it keep dying.
    for _ in 0..3 {
        let mut other = q.consumer("c2", &queues(&["default"])).await.unwrap();
        got = other.reclaim(Duration::ZERO, 10).await.unwrap();
        assert_eq!(got.len(), 1);
    }
    assert_eq!(got[0].deliveries, 4);
    q.bury(&got, "delivered too often").await.unwrap();

    let stats = q.stats("default").await.unwrap();
    assert_eq!((stats.ready, stats.in_flight, stats.dead), (0, 0, 1));
    let dead = q.jobs("default", JobState::Dead, 10, None).await.unwrap();
    assert_eq!(dead.jobs.len(), 1);
    let d = &dead.jobs[0];
    assert_eq!(d.id, "poison");
    assert_eq!(d.error.as_deref(), Some("delivered too often"));
    assert_eq!(d.deliveries, Some(4));
    assert_eq!(d.payload, r#"{"job":"poison"}"#);

    assert!(q.replay("default", "nope").await.unwrap().is_none());
    let replayed = q
        .replay("default", "poison")
        .await
        .unwrap()
        .expect("dead job");
    assert_eq!(replayed.id, "poison");
    assert!(
        q.replay("default", "poison").await.unwrap().is_none(),
        "replayed once"
    );
    let stats = q.stats("default").await.unwrap();
    assert_eq!((stats.ready, stats.dead), (1, 0));
    let again = c.fetch(1, Duration::from_millis(500)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, "poison");
    assert_eq!(again[0].deliveries, 1, "a fresh delivery");
    assert_eq!(again[0].payload, replayed.payload);
    delete_prefix(&p).await;
}

async fn live_ids(q: &gantry_queue::Queue) -> Vec<String> {
    q.workers()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect()
}

#[tokio::test]
async fn worker_presence_expires_without_heartbeats() {
    let (q, p) = setup("workers").await;
    let info = |id: &str| WorkerInfo {
        id: id.to_owned(),
        queues: vec!["default".into()],
        concurrency: 4,
        running: vec!["r:1".into()],
        started_at_ms: 1,
        last_heartbeat_ms: 2,
        runtimes: Vec::new(),
        breakers: vec![gantry_queue::BreakerInfo {
            agent: "a".into(),
            state: "open".into(),
            failures: 0,
        }],
    };
    q.heartbeat(&info("w1"), Duration::from_millis(300))
        .await
        .unwrap();
    q.heartbeat(&info("w2"), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(live_ids(&q).await, ["w1", "w2"]);
    assert_eq!(q.workers().await.unwrap()[0], info("w1"));

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(live_ids(&q).await, ["w2"], "w1 stopped beating");
    q.worker_gone("w2").await.unwrap();
    assert!(q.workers().await.unwrap().is_empty());
    delete_prefix(&p).await;
}

#[tokio::test]
async fn settings_warnings_name_what_production_needs() {
    // scripts/services.sh starts Redis with AOF and noeviction.
    let (q, p) = setup("settings").await;
    assert_eq!(q.settings_warnings().await, Vec::<String>::new());
    // An evicting policy is named (only briefly: it matters solely under
    // memory pressure, so other tests sharing this Redis are unaffected).
    let url = std::env::var("GANTRY_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut admin = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let set = |policy: &'static str| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-policy")
            .arg(policy)
            .clone()
    };
    set("allkeys-lru")
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    let warnings = q.settings_warnings().await;
    set("noeviction")
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("maxmemory-policy") && warnings[0].contains("noeviction"));
    delete_prefix(&p).await;
}
