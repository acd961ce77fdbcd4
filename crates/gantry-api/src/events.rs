//! Server-sent run events. One task per API process LISTENs on
//! [`gantry_store::RUN_CHANNEL`] and fans run ids out over a broadcast; each
//! stream sends a `snapshot`, then `node` events for nodes whose status or
//! attempt count changed, then a final `run` event when the run ends.

use crate::error::{Error, ErrorBody, Result};
use crate::routes::{path_run_id, PathParams};
use crate::Ctx;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use gantry_dag::NodeStatus;
use gantry_store::{Reads, RunDetail, RUN_CHANNEL};
use serde::Serialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Reload the run this often even without a notification (a lost NOTIFY,
/// a listener reconnecting).
const TICK: Duration = Duration::from_secs(2);
const KEEP_ALIVE: Duration = Duration::from_secs(15);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const CHANNEL_CAPACITY: usize = 1024;

/// Fan-out of run notifications. `Some(run)`: that run changed; `None`:
/// notifications may have been lost, every stream should reload.
#[derive(Clone)]
pub(crate) struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    tx: broadcast::Sender<Option<Uuid>>,
    store: Reads,
    shutdown: CancellationToken,
    /// Set when the listener task starts; dropping it (with the router)
    /// stops the task.
    started: OnceLock<oneshot::Sender<()>>,
}

impl Hub {
    pub(crate) fn new(store: Reads, shutdown: CancellationToken) -> Self {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        Self {
            inner: Arc::new(HubInner {
                tx,
                store,
                shutdown,
                started: OnceLock::new(),
            }),
        }
    }

    /// Subscribe, starting the listener task on first use (inside the
    /// runtime, so building the router needs none).
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Option<Uuid>> {
        let inner = &self.inner;
        inner.started.get_or_init(|| {
            let (stop_tx, stop_rx) = oneshot::channel();
            tokio::spawn(listen(
                inner.store.clone(),
                inner.tx.clone(),
                stop_rx,
                inner.shutdown.clone(),
            ));
            stop_tx
        });
        inner.tx.subscribe()
    }
}

/// Hold a LISTEN connection, reconnecting with a backoff, until the hub is
/// dropped or the server shuts down.
async fn listen(
    store: Reads,
    tx: broadcast::Sender<Option<Uuid>>,
    mut stop: oneshot::Receiver<()>,
    shutdown: CancellationToken,
) {
    let mut backoff = BACKOFF_MIN;
    let mut reconnecting = false;
    loop {
        let conn = tokio::select! {
            _ = &mut stop => return,
            _ = shutdown.cancelled() => return,
            c = store.listen(&[RUN_CHANNEL]) => c,
        };
        match conn {
            Ok(mut listener) => {
                if reconnecting {
                    let _ = tx.send(None);
                }
                backoff = BACKOFF_MIN;
                loop {
                    let next = tokio::select! {
                        _ = &mut stop => return,
                        _ = shutdown.cancelled() => return,
                        n = listener.try_recv() => n,
                    };
                    match next {
                        Ok(Some(n)) => {
                            if let Ok(id) = n.payload().trim().parse::<Uuid>() {
                                let _ = tx.send(Some(id));
                            }
                        }
                        // The connection dropped; sqlx reconnects on the next
                        // call, and what was sent meanwhile is lost.
                        Ok(None) => {
                            let _ = tx.send(None);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "run event listener failed");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for run events"),
        }
        reconnecting = true;
        tokio::select! {
            _ = &mut stop => return,
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Payload of a `node` event.
#[derive(Debug, Serialize)]
struct NodeEvent<'a> {
    node: &'a str,
    status: NodeStatus,
    attempts: u32,
    error: Option<&'a str>,
    /// A map node's instances by status.
    #[serde(skip_serializing_if = "Option::is_none")]
    instances: Option<&'a gantry_store::InstanceCounts>,
}

/// What a `node` event is sent for a change of: status, attempts, and a
/// map node's instance counts.
type Seen = (NodeStatus, u32, Option<gantry_store::InstanceCounts>);

fn seen_of(n: &gantry_store::NodeSummary) -> Seen {
    (n.status, n.attempts, n.instances.clone())
}

/// Payload of the final `run` event.
#[derive(Debug, Serialize)]
struct RunEvent {
    id: Uuid,
    status: gantry_dag::RunStatus,
}

/// Server-sent events of a run until it ends.
#[utoipa::path(
    get,
    path = "/v1/runs/{id}/events",
    tag = "runs",
    params(("id" = String, Path, description = "run id (uuid)")),
    responses(
        (status = 200, content_type = "text/event-stream",
         description = "`snapshot` (the run), `node` ({node, status, attempts, error}) and a final `run` ({id, status})"),
        (status = 404, description = "no such run", body = ErrorBody),
    )
)]
pub(crate) async fn run_events(
    State(ctx): State<Ctx>,
    PathParams(id): PathParams<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let id = path_run_id(&id)?;
    // Subscribe before the snapshot so no change falls between the two.
    let rx = ctx.hub.subscribe();
    let run = ctx
        .store()
        .get_run(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("run {id} not found")))?;
    Ok(Sse::new(stream(ctx, run, rx)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn stream(
    ctx: Ctx,
    first: RunDetail,
    mut rx: broadcast::Receiver<Option<Uuid>>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    async_stream::stream! {
        let id = first.run.id;
        let mut seen: HashMap<String, Seen> = first
            .nodes
            .iter()
            .map(|n| (n.id.clone(), seen_of(n)))
            .collect();
        if let Some(e) = event("snapshot", &first) {
            yield Ok(e);
        }
        if first.run.status.is_terminal() {
            if let Some(e) = event("run", &RunEvent { id, status: first.run.status }) {
                yield Ok(e);
            }
            return;
        }
        drop(first);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut hub_open = true;
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                _ = tick.tick() => {}
                m = rx.recv(), if hub_open => match m {
                    Ok(Some(other)) if other != id => continue,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        hub_open = false;
                        continue;
                    }
                },
            }
            // One reload covers every notification queued so far.
            while rx.try_recv().is_ok() {}
            let run = match ctx.store().get_run(id).await {
                Ok(Some(run)) => run,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(run = %id, error = %e, "reloading run for events failed");
                    continue;
                }
            };
            for n in &run.nodes {
                let now = seen_of(n);
                if seen.get(&n.id) == Some(&now) {
                    continue;
                }
                seen.insert(n.id.clone(), now);
                let payload = NodeEvent {
                    node: &n.id,
                    status: n.status,
                    attempts: n.attempts,
                    error: n.error.as_deref(),
                    instances: n.instances.as_ref(),
                };
                if let Some(e) = event("node", &payload) {
                    yield Ok(e);
                }
            }
            if run.run.status.is_terminal() {
                if let Some(e) = event("run", &RunEvent { id, status: run.run.status }) {
                    yield Ok(e);
                }
                break;
            }
        }
    }
}

fn event(name: &str, data: &impl Serialize) -> Option<Event> {
    match Event::default().event(name).json_data(data) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::error!(error = %e, event = name, "cannot serialize run event");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::PgPool;

    async fn notify(pool: &PgPool, payload: &str) {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(RUN_CHANNEL)
            .bind(payload)
            .execute(pool)
            .await
            .unwrap();
    }

    async fn next(rx: &mut broadcast::Receiver<Option<Uuid>>) -> Option<Uuid> {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("no notification within 10 s")
            .unwrap()
    }

    /// Notify until one arrives: the listener subscribes asynchronously.
    async fn until_delivered(pool: &PgPool, rx: &mut broadcast::Receiver<Option<Uuid>>) {
        let probe = Uuid::new_v4();
        for _ in 0..100 {
            notify(pool, &probe.to_string()).await;
            if let Ok(Ok(got)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
                if got == Some(probe) {
                    while rx.try_recv().is_ok() {}
                    return;
                }
            }
        }
        panic!("the listener never delivered a notification");
    }

    #[sqlx::test(migrations = false)]
    async fn hub_fans_out_run_ids_and_survives_a_dropped_connection(pool: PgPool) {
        let hub = Hub::new(
            gantry_store::Store::from_pool(pool.clone()).reads().clone(),
            CancellationToken::new(),
        );
        let mut rx = hub.subscribe();
        let mut rx2 = hub.subscribe();
        until_delivered(&pool, &mut rx).await;
        while rx2.try_recv().is_ok() {}

        let run = Uuid::new_v4();
        notify(&pool, &run.to_string()).await;
        assert_eq!(next(&mut rx).await, Some(run));
        assert_eq!(next(&mut rx2).await, Some(run), "every subscriber gets it");

        // Junk payloads are ignored.
        notify(&pool, "not a uuid").await;
        let after = Uuid::new_v4();
        notify(&pool, &after.to_string()).await;
        assert_eq!(next(&mut rx).await, Some(after));

        // Kill the listening connection: subscribers are told to reload
        // (`None`), and notifications flow again afterwards.
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND query ILIKE 'LISTEN%'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(killed, [true], "one listening connection");
        assert_eq!(next(&mut rx).await, None);
        until_delivered(&pool, &mut rx).await;
    }
}
