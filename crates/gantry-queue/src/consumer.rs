//! A worker's reader: promotes due delayed jobs, blocks on XREADGROUP over
//! its own connection, and takes over entries abandoned by dead consumers.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use redis::{AsyncConnectionConfig, RedisError};

use crate::keys::{check_queue_name, GROUP};
use crate::{Delivery, Job, Queue, Result};

/// Delayed jobs moved per queue per fetch; more wait for the next fetch,
/// which then does not block.
const PROMOTE_LIMIT: usize = 1000;
/// Client-side allowance on top of the server-side BLOCK.
const BLOCK_MARGIN: Duration = Duration::from_secs(2);
/// Upper bound on promote-then-read rounds in one fetch.
const MAX_ROUNDS: usize = 1000;
/// Reads retried after re-creating a vanished group; then fetch returns
/// nothing and the caller simply fetches again.
const GROUP_RETRIES: usize = 3;
/// XAUTOCLAIM calls per queue per reclaim (each scans up to 10 x COUNT).
const RECLAIM_ROUNDS: usize = 10;

/// A consumer with its own connection for blocking reads.
pub struct Consumer {
    queue: Queue,
    name: String,
    queues: Vec<String>,
    streams: Vec<String>,
    by_stream: HashMap<String, String>,
    /// Only this consumer's blocking reads use it: on the shared multiplexed
    /// connection every other command would wait behind the BLOCK.
    blocking: Option<MultiplexedConnection>,
}

/// The stream or its group is gone (an emptied stream is deleted on ack;
/// Redis may be flushed or restarted): re-create the group and read again.
fn is_nogroup(e: &RedisError) -> bool {
    matches!(e.code(), Some("NOGROUP" | "UNBLOCKED"))
}

/// Field `name` of a stream entry as a string.
fn field(entry: &StreamId, name: &str) -> Option<String> {
    entry
        .map
        .get(name)
        .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
}

impl Consumer {
    pub(crate) async fn new(queue: Queue, name: &str, queues: &[String]) -> Result<Self> {
        let mut names: Vec<String> = Vec::with_capacity(queues.len());
        for q in queues {
            check_queue_name(q)?;
            if !names.contains(q) {
                names.push(q.clone());
            }
        }
        let streams: Vec<String> = names.iter().map(|q| queue.keys.stream(q)).collect();
        let by_stream = streams.iter().cloned().zip(names.iter().cloned()).collect();
        let mut consumer = Self {
            queue,
            name: name.to_owned(),
            queues: names,
            streams,
            by_stream,
            blocking: None,
        };
        consumer.ensure_groups().await?;
        consumer.blocking = Some(consumer.connect_blocking().await?);
        Ok(consumer)
    }

    /// The queues this consumer reads.
    pub fn queues(&self) -> &[String] {
        &self.queues
    }

    /// Create each stream's group (from the stream's start, so entries added
    /// before the group existed are delivered) unless it exists.
    async fn ensure_groups(&self) -> Result<()> {
        let mut conn = self.queue.conn.clone();
        if !self.queues.is_empty() {
            redis::cmd("SADD")
                .arg(self.queue.keys.queues())
                .arg(&self.queues)
                .query_async::<()>(&mut conn)
                .await?;
        }
        for stream in &self.streams {
            let created = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(stream)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async::<()>(&mut conn)
                .await;
            match created {
                Ok(()) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn connect_blocking(&self) -> Result<MultiplexedConnection> {
        // No client-side response timeout: fetch bounds each read itself,
        // a little longer than the BLOCK it asks the server for.
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(Duration::from_secs(2)));
        Ok(self
            .queue
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    /// Move due delayed jobs to their streams, then read up to `max` new
    /// jobs, blocking at most `block` (less when a delayed job comes due
    /// sooner). Returns as soon as at least one job is available.
    pub async fn fetch(&mut self, max: usize, block: Duration) -> Result<Vec<Delivery>> {
        if max == 0 || self.streams.is_empty() {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + block;
        // Each round ends when a job arrives, the deadline passes, or a
        // delayed job comes due (then the next round promotes and reads it).
        for _ in 0..MAX_ROUNDS {
            let due_in = self.promote().await?;
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = due_in
                .map_or(left, |d| d.min(left))
                .max(Duration::from_millis(1));
            let mut deliveries = self.read_with_group(max, wait).await?;
            if deliveries.len() > max {
                // COUNT applies per stream: give the surplus back at the tail.
                let surplus = deliveries.split_off(max);
                self.give_back(&surplus).await?;
            }
            if !deliveries.is_empty() || Instant::now() >= deadline {
                return Ok(deliveries);
            }
        }
        Ok(Vec::new())
    }

    async fn read_with_group(&mut self, max: usize, block: Duration) -> Result<Vec<Delivery>> {
        for _ in 0..GROUP_RETRIES {
            match self.read(max, block).await {
                Err(e) if is_nogroup(&e) => self.ensure_groups().await?,
                read => return Ok(read?),
            }
        }
        Ok(Vec::new())
    }

    /// Returns how long until the next delayed job is due, if any waits.
    async fn promote(&self) -> Result<Option<Duration>> {
        let mut inv = self.queue.scripts.promote.prepare_invoke();
        for q in &self.queues {
            inv.key(self.queue.keys.delayed(q));
            inv.key(self.queue.keys.stream(q));
            inv.key(self.queue.keys.jobs(q));
        }
        inv.arg(PROMOTE_LIMIT);
        let mut conn = self.queue.conn.clone();
        let wait_ms: i64 = inv.invoke_async(&mut conn).await?;
        Ok(u64::try_from(wait_ms).ok().map(Duration::from_millis))
    }

    async fn read(&mut self, max: usize, block: Duration) -> Result<Vec<Delivery>, RedisError> {
        let conn = match self.blocking.as_mut() {
            Some(conn) => conn,
            None => {
                let conn = self.connect_blocking().await.map_err(|e| match e {
                    crate::Error::Redis(e) => e,
                    other => RedisError::from(std::io::Error::other(other.to_string())),
                })?;
                self.blocking.insert(conn)
            }
        };
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.name)
            .arg("COUNT")
            .arg(max)
            .arg("BLOCK")
            .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX))
            .arg("STREAMS")
            .arg(&self.streams);
        for _ in &self.streams {
            cmd.arg(">");
        }
        let reply = tokio::time::timeout(
            block + BLOCK_MARGIN,
            cmd.query_async::<Option<StreamReadReply>>(conn),
        )
        .await;
        let reply = match reply {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                if e.code().is_none() {
                    // Not a server reply: the connection is suspect.
                    self.blocking = None;
                }
                return Err(e);
            }
            Err(_) => {
                self.blocking = None;
                return Err(RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "blocking read outlived its block",
                )));
            }
        };
        let mut deliveries = Vec::new();
        let mut malformed = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            let Some(queue) = self.by_stream.get(&key.key) else {
                continue;
            };
            for entry in key.ids {
                self.to_delivery(queue, entry, 1, &mut deliveries, &mut malformed);
            }
        }
        self.drop_malformed(malformed).await;
        Ok(deliveries)
    }

    fn to_delivery(
        &self,
        queue: &str,
        entry: StreamId,
        deliveries: u64,
        out: &mut Vec<Delivery>,
        malformed: &mut Vec<Delivery>,
    ) {
        match (field(&entry, "id"), field(&entry, "payload")) {
            (Some(id), Some(payload)) => out.push(Delivery {
                id,
                queue: queue.to_owned(),
                payload,
                entry: entry.id,
                deliveries,
            }),
            _ => malformed.push(Delivery {
                id: String::new(),
                queue: queue.to_owned(),
                payload: String::new(),
                entry: entry.id,
                deliveries,
            }),
        }
    }

    /// Entries without an id or payload were not written by this crate;
    /// acknowledge them so they do not sit in the pending list forever.
    async fn drop_malformed(&self, malformed: Vec<Delivery>) {
        if malformed.is_empty() {
            return;
        }
        tracing::warn!(count = malformed.len(), "dropping malformed stream entries");
        if let Err(e) = self.queue.ack(&malformed).await {
            tracing::warn!(error = %e, "could not drop malformed stream entries");
        }
    }

    /// Re-enqueue deliveries this consumer cannot take, then acknowledge
    /// the originals (the ack keeps the new entry's presence).
    async fn give_back(&self, surplus: &[Delivery]) -> Result<()> {
        let jobs: Vec<Job> = surplus
            .iter()
            .map(|d| Job {
                id: d.id.clone(),
                queue: d.queue.clone(),
                payload: d.payload.clone(),
            })
            .collect();
        self.queue.enqueue(&jobs).await?;
        self.queue.ack(surplus).await
    }

    /// Take over entries that other consumers have held for more than
    /// `min_idle` (XAUTOCLAIM), e.g. after their worker died.
    pub async fn reclaim(&mut self, min_idle: Duration, max: usize) -> Result<Vec<Delivery>> {
        let mut out = Vec::new();
        let mut malformed = Vec::new();
        let min_idle_ms = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let mut conn = self.queue.conn.clone();
        for (queue, stream) in self.queues.iter().zip(&self.streams) {
            let mut cursor = "0-0".to_owned();
            for _ in 0..RECLAIM_ROUNDS {
                let want = max.saturating_sub(out.len());
                if want == 0 {
                    break;
                }
                let reply = redis::cmd("XAUTOCLAIM")
                    .arg(stream)
                    .arg(GROUP)
                    .arg(&self.name)
                    .arg(min_idle_ms)
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(want)
                    .query_async::<StreamAutoClaimReply>(&mut conn)
                    .await;
                let reply = match reply {
                    Ok(reply) => reply,
                    Err(e) if is_nogroup(&e) => {
                        self.ensure_groups().await?;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                };
                let counts = self.delivery_counts(stream, &reply.claimed).await?;
                for entry in reply.claimed {
                    let n = counts.get(&entry.id).copied().unwrap_or(2);
                    self.to_delivery(queue, entry, n, &mut out, &mut malformed);
                }
                cursor = reply.next_stream_id;
                if cursor == "0-0" {
                    break;
                }
            }
        }
        self.drop_malformed(malformed).await;
        Ok(out)
    }

    /// Delivery counts of freshly claimed entries, from XPENDING.
    async fn delivery_counts(
        &self,
        stream: &str,
        claimed: &[StreamId],
    ) -> Result<HashMap<String, u64>> {
        let (Some(first), Some(last)) = (claimed.first(), claimed.last()) else {
            return Ok(HashMap::new());
        };
        let mut conn = self.queue.conn.clone();
        let reply: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(stream)
            .arg(GROUP)
            .arg(&first.id)
            .arg(&last.id)
            .arg(claimed.len())
            .arg(&self.name)
            .query_async(&mut conn)
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|p| (p.id, p.times_delivered as u64))
            .collect())
    }
}
