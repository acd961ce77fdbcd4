//! The attempts this worker holds: renewing their leases, and stopping them
//! when their run is cancelled or their lease is lost.

use crate::Config;
use futures::StreamExt;
use gantry_dag::NodeIdx;
use gantry_engine::Engine;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

type Key = (Uuid, NodeIdx);

/// Attempts in progress: node -> (attempt, stop token).
#[derive(Clone, Default)]
pub(crate) struct Held(Arc<Mutex<HashMap<Key, (u32, CancellationToken)>>>);

impl Held {
    pub(crate) fn insert(&self, run: Uuid, node: NodeIdx, attempt: u32) -> CancellationToken {
        let token = CancellationToken::new();
        self.0
            .lock()
            .expect("held lock")
            .insert((run, node), (attempt, token.clone()));
        token
    }

    pub(crate) fn remove(&self, run: Uuid, node: NodeIdx) {
        self.0.lock().expect("held lock").remove(&(run, node));
    }

    /// Job ids (`RUN:NODE`, as `Dispatch::job_id`) of the attempts held.
    pub(crate) fn job_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .0
            .lock()
            .expect("held lock")
            .keys()
            .map(|(run, node)| format!("{run}:{node}"))
            .collect();
        ids.sort();
        ids
    }

    pub(crate) fn len(&self) -> usize {
        self.0.lock().expect("held lock").len()
    }

    fn snapshot(&self) -> Vec<(Uuid, NodeIdx, u32)> {
        self.0
            .lock()
            .expect("held lock")
            .iter()
            .map(|((r, n), (a, _))| (*r, *n, *a))
            .collect()
    }

    fn cancel_where(&self, f: impl Fn(&Key, u32) -> bool) {
        for (k, (a, t)) in self.0.lock().expect("held lock").iter() {
            if f(k, *a) {
                t.cancel();
            }
        }
    }

    pub(crate) fn cancel_all(&self) {
        self.cancel_where(|_, _| true);
    }
}

/// Renew leases every third of the lease time; stop attempts whose lease
/// was lost (the node was re-delivered elsewhere or the run ended).
pub(crate) async fn renew(
    engine: Engine,
    config: Arc<Config>,
    held: Held,
    stop: CancellationToken,
) {
    let every = (config.lease / 3).max(Duration::from_millis(50));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mine = held.snapshot();
        if mine.is_empty() {
            continue;
        }
        match engine.renew_leases(&config.id, &mine, config.lease).await {
            Ok(lost) => {
                for (run, node, attempt) in lost {
                    tracing::warn!(%run, node, attempt, "lease lost; stopping the attempt");
                    held.cancel_where(|k, a| *k == (run, node) && a == attempt);
                }
            }
            Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
        }
    }
}

/// Stop attempts of runs that were cancelled.
pub(crate) async fn listen_cancel(engine: Engine, held: Held, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(200);
    while !stop.is_cancelled() {
        let mut stream = match engine.cancellations().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to cancellations");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                msg = stream.next() => match msg {
                    Some(run) => {
                        if let Ok(run) = run.parse::<Uuid>() {
                            held.cancel_where(|k, _| k.0 == run);
                        }
                    }
                    None => break,
                },
            }
        }
    }
}
