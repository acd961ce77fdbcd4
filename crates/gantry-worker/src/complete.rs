//! The completer: records finished attempts in Postgres in batches (one
//! transaction for everything that finished meanwhile; `record.rs` says
//! what happens when Postgres refuses one), then acknowledges their jobs in
//! Redis and frees their slots.

use crate::held::Held;
use crate::record::{record, Fate, GIVEN_UP};
use crate::Config;
use gantry_engine::Engine;
use gantry_queue::{Delivery, Job};
use gantry_store::AttemptResult;
use std::sync::Arc;
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
        let fates = record(&engine, &config, &results).await;
        let done: Vec<Delivery> = batch
            .iter()
            .zip(&fates)
            .filter(|(_, fate)| **fate != Fate::Unreachable)
            .map(|(f, _)| f.delivery.clone())
            .collect();
        if let Err(e) = engine.ack(&done).await {
            tracing::warn!(error = %e, "ack failed; the jobs will be reclaimed and dropped");
        }
        bury(&engine, &batch, &fates).await;
        for f in &batch {
            held.remove(f.result.run_id, f.result.node);
        }
        // Dropping the batch frees the slots.
    }
}

/// List the jobs whose results were given up as dead jobs, so an operator
/// sees them (their nodes' leases expire and the reconciler moves them on).
async fn bury(engine: &Engine, batch: &[Finished], fates: &[Fate]) {
    let dead: Vec<(Job, u64)> = batch
        .iter()
        .zip(fates)
        .filter(|(_, fate)| **fate == Fate::GivenUp)
        .map(|(f, _)| {
            let d = &f.delivery;
            let job = Job {
                id: d.id.clone(),
                queue: d.queue.clone(),
                payload: d.payload.clone(),
            };
            (job, d.deliveries)
        })
        .collect();
    if dead.is_empty() {
        return;
    }
    if let Err(e) = engine.bury_jobs(&dead, GIVEN_UP).await {
        tracing::warn!(jobs = dead.len(), error = %e, "cannot list given-up jobs as dead");
    }
}
