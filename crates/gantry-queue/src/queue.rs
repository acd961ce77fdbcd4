//! The shared handle: enqueue, schedule, ack, presence, stats and listing,
//! all on one auto-reconnecting multiplexed connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;

use crate::keys::{check_queue_name, Keys, GROUP};
use crate::scripts::Scripts;
use crate::{Consumer, Delivery, Job, QueueStats, Result};

/// How long a non-blocking command may take before it counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Most jobs one enqueue script adds. A script blocks Redis while it runs;
/// in chunks, workers start on a 5,000-node fan-out's first jobs while the
/// rest are still being added.
const ENQUEUE_CHUNK: usize = 256;

/// Handle on the delivery layer. Cheap to clone (multiplexed connection).
#[derive(Clone)]
pub struct Queue {
    pub(crate) client: redis::Client,
    pub(crate) conn: ConnectionManager,
    pub(crate) keys: Arc<Keys>,
    pub(crate) scripts: Arc<Scripts>,
}

/// Numbers the distinct queues of a batch (1-based, as the scripts expect).
#[derive(Default)]
struct QueueIndex {
    names: Vec<String>,
    by_name: HashMap<String, usize>,
}

impl QueueIndex {
    fn index(&mut self, queue: &str) -> Result<usize> {
        if let Some(i) = self.by_name.get(queue) {
            return Ok(*i);
        }
        check_queue_name(queue)?;
        self.names.push(queue.to_owned());
        let i = self.names.len();
        self.by_name.insert(queue.to_owned(), i);
        Ok(i)
    }
}

impl Queue {
    /// Connect; every key starts with `prefix` (tests use a unique prefix).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(2);
        let conn = client.get_connection_manager_with_config(config).await?;
        Ok(Self {
            client,
            conn,
            keys: Arc::new(Keys::new(prefix)),
            scripts: Arc::new(Scripts::new()),
        })
    }

    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// Deliver now: a script that XADDs each job and records its entry id,
    /// one round trip per [`ENQUEUE_CHUNK`] jobs.
    pub async fn enqueue(&self, jobs: &[Job]) -> Result<()> {
        for chunk in jobs.chunks(ENQUEUE_CHUNK) {
            self.enqueue_chunk(chunk).await?;
        }
        Ok(())
    }

    async fn enqueue_chunk(&self, jobs: &[Job]) -> Result<()> {
        let mut index = QueueIndex::default();
        let mut args: Vec<&str> = Vec::with_capacity(jobs.len() * 3);
        let mut ks: Vec<String> = Vec::new();
        let mut triples = Vec::with_capacity(jobs.len());
        for job in jobs {
            let k = index.index(&job.queue)?;
            triples.push((k.to_string(), job));
        }
        let n = index.names.len().to_string();
        let mut inv = self.scripts.enqueue.prepare_invoke();
        inv.key(self.keys.queues());
        for q in &index.names {
            ks.push(self.keys.stream(q));
            ks.push(self.keys.jobs(q));
        }
        inv.key(&ks);
        args.push(&n);
        args.extend(index.names.iter().map(String::as_str));
        for (k, job) in &triples {
            args.extend([k.as_str(), job.id.as_str(), job.payload.as_str()]);
        }
        inv.arg(&args);
        let mut conn = self.conn.clone();
        inv.invoke_async::<u64>(&mut conn).await?;
        Ok(())
    }

    /// Deliver each job after its delay (measured on the Redis server's clock,
    /// so worker and API clocks need not agree).
    pub async fn schedule(&self, jobs: &[(Job, Duration)]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let mut index = QueueIndex::default();
        let mut rows = Vec::with_capacity(jobs.len());
        for (job, delay) in jobs {
            let k = index.index(&job.queue)?;
            let member = serde_json::json!({"id": job.id, "payload": job.payload}).to_string();
            let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX / 2);
            rows.push([k.to_string(), job.id.clone(), member, delay_ms.to_string()]);
        }
        let mut inv = self.scripts.schedule.prepare_invoke();
        inv.key(self.keys.queues());
        for q in &index.names {
            inv.key(self.keys.delayed(q));
            inv.key(self.keys.jobs(q));
        }
        inv.arg(index.names.len());
        inv.arg(&index.names);
        for row in &rows {
            inv.arg(row.as_slice());
        }
        let mut conn = self.conn.clone();
        inv.invoke_async::<u64>(&mut conn).await?;
        Ok(())
    }

    /// A consumer named `name` (unique per worker process) on `queues`.
    pub async fn consumer(&self, name: &str, queues: &[String]) -> Result<Consumer> {
        Consumer::new(self.clone(), name, queues).await
    }

    /// Acknowledge and delete deliveries (after their result is in Postgres).
    pub async fn ack(&self, deliveries: &[Delivery]) -> Result<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut index = QueueIndex::default();
        let mut rows = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            let k = index.index(&d.queue)?;
            rows.push([k.to_string(), d.id.clone(), d.entry.clone()]);
        }
        let mut inv = self.scripts.ack.prepare_invoke();
        for q in &index.names {
            inv.key(self.keys.stream(q));
            inv.key(self.keys.jobs(q));
        }
        inv.arg(GROUP);
        for row in &rows {
            inv.arg(row.as_slice());
        }
        let mut conn = self.conn.clone();
        inv.invoke_async::<u64>(&mut conn).await?;
        Ok(())
    }

    /// Whether each `(queue, id)` is ready, delayed or in flight.
    pub async fn present(&self, jobs: &[(String, String)]) -> Result<Vec<bool>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut index = QueueIndex::default();
        let mut ids_per_queue: Vec<Vec<&str>> = Vec::new();
        let mut slots = Vec::with_capacity(jobs.len());
        for (queue, id) in jobs {
            let k = index.index(queue)?;
            if ids_per_queue.len() < k {
                ids_per_queue.push(Vec::new());
            }
            slots.push((k - 1, ids_per_queue[k - 1].len()));
            ids_per_queue[k - 1].push(id);
        }
        let mut pipe = redis::pipe();
        for (q, ids) in index.names.iter().zip(&ids_per_queue) {
            pipe.cmd("HMGET").arg(self.keys.jobs(q)).arg(ids.as_slice());
        }
        let mut conn = self.conn.clone();
        let found: Vec<Vec<Option<String>>> = pipe.query_async(&mut conn).await?;
        Ok(slots
            .into_iter()
            .map(|(q, i)| {
                found
                    .get(q)
                    .and_then(|row| row.get(i))
                    .is_some_and(Option::is_some)
            })
            .collect())
    }

    /// Every queue that has ever had a job (sorted).
    pub async fn queues(&self) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        let mut names: Vec<String> = conn.smembers(self.keys.queues()).await?;
        names.sort();
        Ok(names)
    }

    /// Counts of every known queue, by name.
    pub async fn all_stats(&self) -> Result<Vec<(String, QueueStats)>> {
        let mut names = self.queues().await?;
        names.sort_unstable();
        names.dedup();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let stats = self.stats(&name).await?;
            out.push((name, stats));
        }
        Ok(out)
    }

    /// Counts of one queue; zeros when it has no keys (e.g. after a flush).
    pub async fn stats(&self, queue: &str) -> Result<QueueStats> {
        check_queue_name(queue)?;
        let mut inv = self.scripts.stats.prepare_invoke();
        inv.key(self.keys.stream(queue))
            .key(self.keys.delayed(queue))
            .key(self.keys.dead(queue))
            .arg(GROUP);
        let mut conn = self.conn.clone();
        let (len, pending, delayed, dead): (u64, u64, u64, u64) =
            inv.invoke_async(&mut conn).await?;
        Ok(QueueStats {
            ready: len.saturating_sub(pending),
            delayed,
            in_flight: pending,
            dead,
        })
    }

    /// Tell workers to stop the attempts of `run_id` (pub/sub).
    pub async fn publish_cancel(&self, run_id: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        conn.publish::<_, _, ()>(self.keys.cancel(), run_id).await?;
        Ok(())
    }

    /// Run ids published by [`Queue::publish_cancel`], as they arrive. The
    /// subscription is re-established when the connection drops (messages
    /// published while it is down are lost: cancellation is also in Postgres).
    pub async fn cancellations(&self) -> Result<futures::stream::BoxStream<'static, String>> {
        crate::cancel::subscribe(self.client.clone(), self.keys.cancel()).await
    }
}

impl Queue {
    /// Redis settings that put deliveries at risk, as warnings: without AOF
    /// a restart loses every job (the reconciler rebuilds them from Postgres,
    /// late); with an evicting memory policy Redis may drop jobs under
    /// memory pressure. Empty when the settings are as production needs, or
    /// when `CONFIG` is not allowed (managed Redis), which is not checked.
    pub async fn settings_warnings(&self) -> Vec<String> {
        let get = |name: &'static str| {
            let mut conn = self.conn.clone();
            async move {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg(name)
                    .query_async::<Vec<String>>(&mut conn)
                    .await
                    .ok()
                    .and_then(|kv| kv.get(1).cloned())
            }
        };
        let mut out = Vec::new();
        if let Some(aof) = get("appendonly").await {
            if aof != "yes" {
                out.push(format!(
                    "redis appendonly is {aof:?}: a restart loses queued jobs until the reconciler rebuilds them; set appendonly yes"
                ));
            }
        }
        if let Some(policy) = get("maxmemory-policy").await {
            if policy != "noeviction" {
                out.push(format!(
                    "redis maxmemory-policy is {policy:?}: jobs may be evicted; set maxmemory-policy noeviction"
                ));
            }
        }
        out
    }
}
