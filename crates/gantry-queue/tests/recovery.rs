//! Redis flushed or restarted under a live Queue and Consumer: errors are
//! returned (never a panic) and both work again once Redis is back.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{delete_prefix, job, queues, setup, unique_prefix};
use gantry_queue::Queue;
use tokio::time::Instant;

#[tokio::test]
async fn fetch_after_a_flush_recreates_the_group() {
    let (q, p) = setup("flush").await;
    let mut c = q.consumer("c1", &queues(&["default"])).await.unwrap();
    q.enqueue(&[job("before", "default")]).await.unwrap();
    assert_eq!(c.fetch(1, Duration::from_secs(1)).await.unwrap().len(), 1);

    // Everything of ours is gone, including the group and the in-flight job.
    delete_prefix(&p).await;
    q.enqueue(&[job("after", "default")]).await.unwrap();
    let got = c.fetch(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, "after");
    q.ack(&got).await.unwrap();
    delete_prefix(&p).await;
}

#[tokio::test]
async fn a_blocked_fetch_survives_a_flush() {
    let (q, p) = setup("blockedflush").await;
    let mut c = q.consumer("c1", &queues(&["default"])).await.unwrap();
    let reader = tokio::spawn(async move { c.fetch(10, Duration::from_secs(5)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    delete_prefix(&p).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = Instant::now();
    q.enqueue(&[job("x", "default")]).await.unwrap();
    let got = reader.await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert!(sent.elapsed() < Duration::from_secs(1));
    delete_prefix(&p).await;
}

#[tokio::test]
async fn connect_to_a_dead_redis_is_a_retryable_error() {
    let err = Queue::connect("redis://127.0.0.1:1", &unique_prefix("dead"))
        .await
        .err()
        .expect("nothing listens on port 1");
    assert!(err.is_retryable(), "{err}");
}

/// A private redis-server we may kill and restart (the shared one is not ours).
struct Server {
    port: u16,
    child: Child,
}

impl Server {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for the restart test");
        Self { port, child }
    }

    async fn wait_ready(&self) {
        let url = format!("redis://127.0.0.1:{}", self.port);
        for _ in 0..100 {
            if let Ok(client) = redis::Client::open(url.as_str()) {
                if client.get_multiplexed_async_connection().await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private redis-server did not start");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn queue_and_consumer_work_again_after_a_restart() {
    let port = 20000 + (std::process::id() % 20000) as u16;
    let mut server = Server::start(port);
    server.wait_ready().await;
    let url = format!("redis://127.0.0.1:{port}");
    let q = Queue::connect(&url, "restart").await.unwrap();
    let mut c = q.consumer("c1", &queues(&["default"])).await.unwrap();
    q.enqueue(&[job("one", "default")]).await.unwrap();
    assert_eq!(c.fetch(1, Duration::from_secs(1)).await.unwrap().len(), 1);

    server.stop();
    let err = q.enqueue(&[job("two", "default")]).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let err = c.fetch(1, Duration::from_millis(100)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(q.stats("default").await.unwrap_err().is_retryable());

    let _server = {
        let s = Server::start(port);
        s.wait_ready().await;
        s
    };
    // The connection manager reconnects in the background; give it a bounded
    // number of tries.
    let mut enqueued = false;
    for _ in 0..50 {
        if q.enqueue(&[job("three", "default")]).await.is_ok() {
            enqueued = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(enqueued, "queue did not recover after the restart");
    let mut got = Vec::new();
    for _ in 0..20 {
        match c.fetch(10, Duration::from_millis(200)).await {
            Ok(d) if !d.is_empty() => {
                got = d;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert_eq!(got.len(), 1, "consumer did not recover after the restart");
    assert_eq!(got[0].id, "three");
    q.ack(&got).await.unwrap();
    assert_eq!(q.stats("default").await.unwrap(), Default::default());
}
