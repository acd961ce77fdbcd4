//! Live workers: each worker writes its presence under a key of its own
//! with a time to live, renewed by its heartbeat, so a worker that dies
//! simply expires. A set of ids lets `GET /v1/workers` find them.

use crate::{Queue, Result};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a worker says of itself on each heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub id: String,
    pub queues: Vec<String>,
    pub concurrency: usize,
    /// Job ids (`RUN:NODE`) of the attempts running now.
    pub running: Vec<String>,
    /// Unix milliseconds.
    pub started_at_ms: u64,
    /// Unix milliseconds of this heartbeat.
    pub last_heartbeat_ms: u64,
    /// This worker's circuit breakers, by agent (older workers send none).
    #[serde(default)]
    pub breakers: Vec<BreakerInfo>,
    /// The agent runtimes it runs (`builtin`, `process`, `docker`); older
    /// workers send none.
    #[serde(default)]
    pub runtimes: Vec<String>,
}

/// One circuit breaker of a worker, as its heartbeat reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerInfo {
    /// Agent name, or `docker:daemon` for the Docker daemon's breaker.
    pub agent: String,
    /// `closed`, `open` or `half_open`.
    pub state: String,
    /// Consecutive runtime failures while closed.
    pub failures: u32,
}

impl Queue {
    /// Record `info` as live for `ttl`.
    pub async fn heartbeat(&self, info: &WorkerInfo, ttl: Duration) -> Result<()> {
        let json = serde_json::to_string(info).expect("worker info serializes");
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .sadd(self.keys.workers(), &info.id)
            .ignore()
            .cmd("SET")
            .arg(self.keys.worker(&info.id))
            .arg(json)
            .arg("PX")
            .arg(ttl_ms)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Forget a worker now (it is shutting down).
    pub async fn worker_gone(&self, id: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .del(self.keys.worker(id))
            .ignore()
            .srem(self.keys.workers(), id)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Live workers, by id. Ids whose presence expired are pruned.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        let mut conn = self.conn.clone();
        let mut ids: Vec<String> = conn.smembers(self.keys.workers()).await?;
        ids.sort();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.keys.worker(id)).collect();
        let values: Vec<Option<String>> =
            redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for (id, value) in ids.into_iter().zip(values) {
            match value.and_then(|v| serde_json::from_str::<WorkerInfo>(&v).ok()) {
                Some(info) => live.push(info),
                None => gone.push(id),
            }
        }
        if !gone.is_empty() {
            let _: () = conn.srem(self.keys.workers(), &gone).await?;
        }
        Ok(live)
    }
}
