//! Shared helpers for the Redis tests: URL, a unique key prefix per test,
//! listing and deleting that prefix's keys.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use gantry_queue::{Job, Queue};

pub fn redis_url() -> String {
    std::env::var("GANTRY_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A key prefix no other test (or test run) uses.
pub fn unique_prefix(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "gqtest-{test}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A connected queue on its own prefix. Panics (fails the test) when Redis
/// is not reachable.
pub async fn setup(test: &str) -> (Queue, String) {
    let prefix = unique_prefix(test);
    let queue = Queue::connect(&redis_url(), &prefix)
        .await
        .expect("redis must be running at GANTRY_REDIS_URL (default redis://127.0.0.1:6379)");
    (queue, prefix)
}

pub async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Every key under `prefix`, sorted.
pub async fn keys(prefix: &str) -> Vec<String> {
    let mut conn = raw().await;
    let mut out: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    out.sort();
    out
}

/// What a FLUSHALL does to this test, without touching anyone else's keys.
pub async fn delete_prefix(prefix: &str) {
    let found = keys(prefix).await;
    if !found.is_empty() {
        let mut conn = raw().await;
        redis::cmd("DEL")
            .arg(found)
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
}

pub fn job(id: &str, queue: &str) -> Job {
    Job {
        id: id.to_owned(),
        queue: queue.to_owned(),
        payload: format!("{{\"job\":\"{id}\"}}"),
    }
}

pub fn queues(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}
