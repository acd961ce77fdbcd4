//! Queue inspection and the dead-letter hash: list a queue's jobs by state
//! (paginated by cursor), bury a job that keeps killing its workers, and
//! replay a dead job.

use crate::keys::{check_queue_name, GROUP};
use crate::{Delivery, Job, Queue, Result};
use redis::streams::{StreamId, StreamRangeReply};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// A state a job can be listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Ready,
    Delayed,
    InFlight,
    Dead,
}

/// One job as inspection shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    pub state: JobState,
    pub payload: String,
    /// Stream entry (ready, in flight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// Worker holding it (in flight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// Times delivered (in flight, dead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<u64>,
    /// Milliseconds since last delivered (in flight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_ms: Option<u64>,
    /// Unix ms when due (delayed) or when it died (dead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    /// Why it died (dead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A page of jobs and the cursor of the next page, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    pub jobs: Vec<JobView>,
    pub next: Option<String>,
}

/// Milliseconds since the Unix epoch, as job and worker times are kept.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn field(entry: &StreamId, name: &str) -> String {
    entry.get::<String>(name).unwrap_or_default()
}

/// Whether `cursor` is one [`Queue::jobs`] hands out for `state`: a stream
/// id `MS-SEQ` (ready, in flight) that Redis can start a range after, an
/// offset (delayed) or a scan cursor (dead). Anything else would be a Redis
/// error or a silent first page, so callers refuse it up front.
pub fn is_valid_cursor(state: JobState, cursor: &str) -> bool {
    let num = |s: &str| {
        (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match state {
        // `(MAX-MAX` has no id after it: Redis refuses the range.
        JobState::Ready | JobState::InFlight => cursor
            .split_once('-')
            .and_then(|(a, b)| Some((num(a)?, num(b)?)))
            .is_some_and(|id| id != (u64::MAX, u64::MAX)),
        JobState::Delayed => cursor.len() <= 9 && num(cursor).is_some(),
        JobState::Dead => num(cursor).is_some(),
    }
}

impl Queue {
    /// Up to `limit` jobs of `queue` in `state`, after `cursor` (from the
    /// previous page).
    pub async fn jobs(
        &self,
        queue: &str,
        state: JobState,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<JobPage> {
        check_queue_name(queue)?;
        let limit = limit.clamp(1, 1000);
        match state {
            JobState::Ready => self.ready_jobs(queue, limit, cursor).await,
            JobState::InFlight => self.in_flight_jobs(queue, limit, cursor).await,
            JobState::Delayed => self.delayed_jobs(queue, limit, cursor).await,
            JobState::Dead => self.dead_jobs(queue, limit, cursor).await,
        }
    }

    async fn ready_jobs(&self, queue: &str, limit: usize, cursor: Option<&str>) -> Result<JobPage> {
        let stream = self.keys.stream(queue);
        let mut conn = self.conn.clone();
        // Entries after the group's last delivered id have not been handed out.
        // No stream yet reads as no groups.
        let groups: redis::streams::StreamInfoGroupsReply =
            conn.xinfo_groups(&stream).await.unwrap_or_default();
        let delivered = groups
            .groups
            .into_iter()
            .find(|g| g.name == GROUP)
            .map_or_else(|| "0-0".to_owned(), |g| g.last_delivered_id);
        let start = match cursor {
            Some(c) if stream_id_gt(c, &delivered) => c.to_owned(),
            _ => delivered,
        };
        let reply: StreamRangeReply = conn
            .xrange_count(&stream, format!("({start}"), "+", limit)
            .await?;
        let jobs: Vec<JobView> = reply
            .ids
            .iter()
            .map(|e| JobView {
                id: field(e, "id"),
                state: JobState::Ready,
                payload: field(e, "payload"),
                entry: Some(e.id.clone()),
                consumer: None,
                deliveries: None,
                idle_ms: None,
                at_ms: None,
                error: None,
            })
            .collect();
        let next = (jobs.len() == limit)
            .then(|| reply.ids.last().map(|e| e.id.clone()))
            .flatten();
        Ok(JobPage { jobs, next })
    }

    async fn in_flight_jobs(
        &self,
        queue: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<JobPage> {
        let stream = self.keys.stream(queue);
        let mut conn = self.conn.clone();
        let start = cursor.map_or_else(|| "-".to_owned(), |c| format!("({c}"));
        let pending: redis::streams::StreamPendingCountReply = match redis::cmd("XPENDING")
            .arg(&stream)
            .arg(GROUP)
            .arg(&start)
            .arg("+")
            .arg(limit)
            .query_async(&mut conn)
            .await
        {
            Ok(p) => p,
            // No stream or no group yet: nothing in flight.
            Err(e) if e.code() == Some("NOGROUP") => {
                return Ok(JobPage {
                    jobs: vec![],
                    next: None,
                })
            }
            Err(e) => return Err(e.into()),
        };
        let mut jobs = Vec::with_capacity(pending.ids.len());
        for p in &pending.ids {
            let reply: StreamRangeReply = conn.xrange(&stream, &p.id, &p.id).await?;
            let (id, payload) = reply
                .ids
                .first()
                .map(|e| (field(e, "id"), field(e, "payload")))
                .unwrap_or_default();
            jobs.push(JobView {
                id,
                state: JobState::InFlight,
                payload,
                entry: Some(p.id.clone()),
                consumer: Some(p.consumer.clone()),
                deliveries: Some(p.times_delivered as u64),
                idle_ms: Some(p.last_delivered_ms as u64),
                at_ms: None,
                error: None,
            });
        }
        let next = (jobs.len() == limit)
            .then(|| pending.ids.last().map(|p| p.id.clone()))
            .flatten();
        Ok(JobPage { jobs, next })
    }

    async fn delayed_jobs(
        &self,
        queue: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<JobPage> {
        let offset: isize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0).max(0);
        let mut conn = self.conn.clone();
        let rows: Vec<(String, f64)> = conn
            .zrange_withscores(
                self.keys.delayed(queue),
                offset,
                offset + limit as isize - 1,
            )
            .await?;
        let jobs: Vec<JobView> = rows
            .into_iter()
            .map(|(member, score)| {
                let parsed: Option<Job> = serde_json::from_str::<serde_json::Value>(&member)
                    .ok()
                    .map(|v| Job {
                        id: v["id"].as_str().unwrap_or_default().to_owned(),
                        queue: queue.to_owned(),
                        payload: v["payload"].as_str().unwrap_or_default().to_owned(),
                    });
                let job = parsed.unwrap_or(Job {
                    id: String::new(),
                    queue: queue.to_owned(),
                    payload: member,
                });
                JobView {
                    id: job.id,
                    state: JobState::Delayed,
                    payload: job.payload,
                    entry: None,
                    consumer: None,
                    deliveries: None,
                    idle_ms: None,
                    at_ms: Some(score as u64),
                    error: None,
                }
            })
            .collect();
        let next = (jobs.len() == limit).then(|| (offset + limit as isize).to_string());
        Ok(JobPage { jobs, next })
    }

    async fn dead_jobs(&self, queue: &str, limit: usize, cursor: Option<&str>) -> Result<JobPage> {
        let mut conn = self.conn.clone();
        let (next, pairs): (String, Vec<(String, String)>) = redis::cmd("HSCAN")
            .arg(self.keys.dead(queue))
            .arg(cursor.unwrap_or("0"))
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut conn)
            .await?;
        let mut jobs: Vec<JobView> = pairs
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_str::<JobView>(&v).ok())
            .collect();
        jobs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(JobPage {
            jobs,
            next: (next != "0").then_some(next),
        })
    }

    /// Move deliveries to the dead hash with `error` and take them off the
    /// stream: jobs that keep killing or wedging their workers.
    pub async fn bury(&self, deliveries: &[Delivery], error: &str) -> Result<()> {
        let jobs: Vec<(Job, u64)> = deliveries
            .iter()
            .map(|d| {
                let job = Job {
                    id: d.id.clone(),
                    queue: d.queue.clone(),
                    payload: d.payload.clone(),
                };
                (job, d.deliveries)
            })
            .collect();
        self.bury_jobs(&jobs, error).await?;
        self.ack(deliveries).await
    }

    /// Record jobs (with how often each was tried) as dead with `error`.
    pub async fn bury_jobs(&self, jobs: &[(Job, u64)], error: &str) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let now = unix_ms();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (job, tries) in jobs {
            check_queue_name(&job.queue)?;
            let view = JobView {
                id: job.id.clone(),
                state: JobState::Dead,
                payload: job.payload.clone(),
                entry: None,
                consumer: None,
                deliveries: Some(*tries),
                idle_ms: None,
                at_ms: Some(now),
                error: Some(error.to_owned()),
            };
            let json = serde_json::to_string(&view).expect("job view serializes");
            pipe.sadd(self.keys.queues(), &job.queue).ignore();
            pipe.hset(self.keys.dead(&job.queue), &job.id, json)
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// One dead job, if `queue` has it.
    pub async fn dead_job(&self, queue: &str, job: &str) -> Result<Option<JobView>> {
        check_queue_name(queue)?;
        let mut conn = self.conn.clone();
        let value: Option<String> = conn.hget(self.keys.dead(queue), job).await?;
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// Drop a dead job from the list; whether it was there.
    pub async fn forget_dead(&self, queue: &str, job: &str) -> Result<bool> {
        check_queue_name(queue)?;
        let mut conn = self.conn.clone();
        let removed: u64 = conn.hdel(self.keys.dead(queue), job).await?;
        Ok(removed > 0)
    }

    /// Take `job` out of `queue`'s dead hash and deliver it again. `None`
    /// when there is no such dead job.
    pub async fn replay(&self, queue: &str, job: &str) -> Result<Option<JobView>> {
        check_queue_name(queue)?;
        let mut conn = self.conn.clone();
        let dead = self.keys.dead(queue);
        let value: Option<String> = conn.hget(&dead, job).await?;
        let Some(value) = value else { return Ok(None) };
        let removed: u64 = conn.hdel(&dead, job).await?;
        if removed == 0 {
            return Ok(None); // another replay took it
        }
        let view: JobView = serde_json::from_str(&value).unwrap_or(JobView {
            id: job.to_owned(),
            state: JobState::Dead,
            payload: value,
            entry: None,
            consumer: None,
            deliveries: None,
            idle_ms: None,
            at_ms: None,
            error: None,
        });
        self.enqueue(&[Job {
            id: job.to_owned(),
            queue: queue.to_owned(),
            payload: view.payload.clone(),
        }])
        .await?;
        Ok(Some(view))
    }
}

/// Whether stream id `a` sorts after `b` (`ms-seq`).
fn stream_id_gt(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> Option<(u64, u64)> {
        let (ms, seq) = s.split_once('-')?;
        Some((ms.parse().ok()?, seq.parse().ok()?))
    };
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => a > b,
        _ => false,
    }
}

#[cfg(test)]
mod cursor_tests {
    use super::*;

    #[test]
    fn cursors_are_checked_per_state() {
        assert!(is_valid_cursor(JobState::Ready, "1700000000000-3"));
        assert!(is_valid_cursor(JobState::InFlight, "0-0"));
        assert!(!is_valid_cursor(JobState::Ready, "zzz"));
        assert!(!is_valid_cursor(
            JobState::Ready,
            "18446744073709551615-18446744073709551615"
        ));
        assert!(!is_valid_cursor(
            JobState::InFlight,
            "99999999999999999999-0"
        ));
        assert!(is_valid_cursor(JobState::Delayed, "50"));
        assert!(!is_valid_cursor(JobState::Delayed, "-1"));
        assert!(!is_valid_cursor(JobState::Delayed, "1000000000"));
        assert!(is_valid_cursor(JobState::Dead, "18446744073709551615"));
        assert!(!is_valid_cursor(JobState::Dead, "zzz"));
        assert!(!is_valid_cursor(JobState::Dead, "18446744073709551616"));
    }
}
