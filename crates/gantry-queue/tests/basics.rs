//! Round trip, presence, stats, names and cancellations against real Redis.

mod common;

use std::time::Duration;

use common::{delete_prefix, job, keys, queues, setup};
use gantry_queue::{Error, QueueStats};

#[tokio::test]
async fn round_trip_leaves_no_entry_behind() {
    let (q, p) = setup("roundtrip").await;
    let mut c = q.consumer("c1", &queues(&["default"])).await.unwrap();
    let jobs: Vec<_> = (0..3).map(|i| job(&format!("j{i}"), "default")).collect();
    q.enqueue(&jobs).await.unwrap();

    let got = c.fetch(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(got.len(), 3);
    for (d, j) in got.iter().zip(&jobs) {
        assert_eq!((&d.id, &d.queue, &d.payload), (&j.id, &j.queue, &j.payload));
        assert_eq!(d.deliveries, 1);
    }
    let ids: Vec<_> = jobs
        .iter()
        .map(|j| (j.queue.clone(), j.id.clone()))
        .collect();
    assert_eq!(q.present(&ids).await.unwrap(), vec![true; 3]);

    q.ack(&got).await.unwrap();
    assert_eq!(q.present(&ids).await.unwrap(), vec![false; 3]);
    // The emptied stream keeps its consumer group but holds no entry.
    assert_eq!(
        keys(&p).await,
        vec![format!("{p}:q:default:stream"), format!("{p}:queues")]
    );
    assert_eq!(q.queues().await.unwrap(), vec!["default".to_owned()]);
    assert_eq!(q.stats("default").await.unwrap(), QueueStats::default());
    delete_prefix(&p).await;
}

#[tokio::test]
async fn ack_of_an_old_entry_keeps_a_newer_delivery_present() {
    let (q, p) = setup("oldack").await;
    let mut c = q.consumer("c1", &queues(&["default"])).await.unwrap();
    let key = vec![("default".to_owned(), "x".to_owned())];
    q.enqueue(&[job("x", "default")]).await.unwrap();
    let first = c.fetch(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(first.len(), 1);

    // Delivered again (e.g. by the reconciler) while the first is in flight.
    q.enqueue(&[job("x", "default")]).await.unwrap();
    q.ack(&first).await.unwrap();
    assert_eq!(q.present(&key).await.unwrap(), vec![true]);

    let second = c.fetch(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, "x");
    assert_ne!(second[0].entry, first[0].entry);
    q.ack(&second).await.unwrap();
    assert_eq!(q.present(&key).await.unwrap(), vec![false]);
    delete_prefix(&p).await;
}

#[tokio::test]
async fn present_answers_per_queue_in_input_order() {
    let (q, p) = setup("present").await;
    q.enqueue(&[job("a", "one"), job("b", "two")])
        .await
        .unwrap();
    q.schedule(&[(job("c", "one"), Duration::from_secs(3600))])
        .await
        .unwrap();
    let asked = [
        ("two", "a"),
        ("one", "a"),
        ("one", "c"),
        ("two", "b"),
        ("one", "zz"),
    ]
    .map(|(q, id)| (q.to_owned(), id.to_owned()));
    assert_eq!(
        q.present(&asked).await.unwrap(),
        vec![false, true, true, true, false]
    );
    assert_eq!(
        q.queues().await.unwrap(),
        vec!["one".to_owned(), "two".to_owned()]
    );
    delete_prefix(&p).await;
}

#[tokio::test]
async fn stats_count_ready_delayed_and_in_flight() {
    let (q, p) = setup("stats").await;
    assert_eq!(q.stats("default").await.unwrap(), QueueStats::default());
    let mut c = q.consumer("c1", &queues(&["default"])).await.unwrap();
    let ready: Vec<_> = (0..3).map(|i| job(&format!("r{i}"), "default")).collect();
    q.enqueue(&ready).await.unwrap();
    let later: Vec<_> = (0..2)
        .map(|i| (job(&format!("d{i}"), "default"), Duration::from_secs(3600)))
        .collect();
    q.schedule(&later).await.unwrap();
    let got = c.fetch(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        q.stats("default").await.unwrap(),
        QueueStats {
            ready: 2,
            delayed: 2,
            in_flight: 1,
            dead: 0
        }
    );
    assert_eq!(q.stats("unknown").await.unwrap(), QueueStats::default());
    delete_prefix(&p).await;
}

#[tokio::test]
async fn bad_queue_names_are_rejected() {
    let (q, p) = setup("names").await;
    for bad in ["", "Default", "a:b", "-x", &"a".repeat(64)] {
        assert!(matches!(
            q.enqueue(&[job("x", bad)]).await,
            Err(Error::BadQueueName(_))
        ));
        assert!(matches!(q.stats(bad).await, Err(Error::BadQueueName(_))));
        assert!(matches!(
            q.consumer("c", &queues(&[bad])).await,
            Err(Error::BadQueueName(_))
        ));
    }
    assert!(!Error::BadQueueName(String::new()).is_retryable());
    assert!(keys(&p).await.is_empty());
}

#[tokio::test]
async fn cancellations_arrive_on_the_stream() {
    use futures::StreamExt;
    let (q, p) = setup("cancel").await;
    let mut runs = q.cancellations().await.unwrap();
    q.publish_cancel("run-1").await.unwrap();
    q.publish_cancel("run-2").await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(2), runs.next()).await;
    let second = tokio::time::timeout(Duration::from_secs(2), runs.next()).await;
    assert_eq!(first.unwrap().as_deref(), Some("run-1"));
    assert_eq!(second.unwrap().as_deref(), Some("run-2"));
    delete_prefix(&p).await;
}
