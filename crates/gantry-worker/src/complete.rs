//! The completer: records finished attempts in Postgres in batches (one
//! transaction for everything that finished meanwhile), then acknowledges
//! their jobs in Redis and frees their slots.

use crate::held::Held;
use crate::Config;
use gantry_coordinator::Engine;
use gantry_queue::Delivery;
use gantry_store::AttemptResult;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

/// Most results recorded in one transaction.
const MAX_BATCH: usize = 512;

/// A finished attempt on its way to Postgres.
pub(crate) struct Done {
    tx: mpsc::UnboundedSender<Finished>,
    delivery: Delivery,
    permit: OwnedSemaphorePermit,
}

pub(crate) struct Finished {
    result: AttemptResult,
    delivery: Delivery,
    _permit: OwnedSemaphorePermit,
}

impl Done {
    pub(crate) fn sender(
        tx: mpsc::UnboundedSender<Finished>,
        delivery: Delivery,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            tx,
            delivery,
            permit,
        }
    }

    pub(crate) fn send(self, result: AttemptResult) {
        let _ = self.tx.send(Finished {
            result,
            delivery: self.delivery,
            _permit: self.permit,
        });
    }
}

pub(crate) async fn run(
    engine: Engine,
    config: Arc<Config>,
    held: Held,
    mut rx: mpsc::UnboundedReceiver<Finished>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        let results: Vec<AttemptResult> = batch.iter().map(|f| f.result.clone()).collect();
        if record(&engine, &config, &results).await {
            let deliveries: Vec<Delivery> = batch.iter().map(|f| f.delivery.clone()).collect();
            if let Err(e) = engine.queue.ack(&deliveries).await {
                tracing::warn!(error = %e, "ack failed; the jobs will be reclaimed and dropped");
            }
        }
        for f in &batch {
            held.remove(f.result.run_id, f.result.node);
        }
        // Dropping the batch frees the slots.
    }
}

/// Record results, retrying while Postgres is unreachable for up to one
/// lease; after that the lease expires and the node runs again elsewhere.
async fn record(engine: &Engine, config: &Config, results: &[AttemptResult]) -> bool {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(50);
    loop {
        let recorded = if config.inline_advance {
            engine.record_results(results).await
        } else {
            engine
                .store
                .record_results(&config.id, results)
                .await
                .map_err(Into::into)
        };
        match recorded {
            Ok(accepted) => {
                let stale = accepted.iter().filter(|a| !**a).count();
                if stale > 0 {
                    tracing::info!(stale, "late results rejected (attempt fenced)");
                }
                return true;
            }
            Err(e) if started.elapsed() < config.lease => {
                tracing::warn!(error = %e, retry_in = ?backoff, "recording results failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                tracing::error!(error = %e, results = results.len(), "giving up recording results; leases will expire");
                return false;
            }
        }
    }
}
