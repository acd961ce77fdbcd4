//! Workers claim the nodes their jobs name, and the reconciler expires the
//! leases of attempts whose worker went quiet: the two transitions that
//! start or end an attempt outside a run's lock.

use crate::{Engine, Result};
use gantry_store::{ClaimJob, Claimed};
use std::time::Duration;

impl Engine {
    /// Claim the nodes of `jobs` for `worker` under a lease of `lease`. Jobs
    /// whose node cannot start (a duplicate delivery, a cancelled run) are
    /// left out; the caller acknowledges and drops them.
    pub async fn claim(
        &self,
        worker: &str,
        jobs: &[ClaimJob],
        lease: Duration,
    ) -> Result<Vec<Claimed>> {
        Ok(self.store.claim(worker, jobs, lease).await?)
    }

    /// End, as lost, at most `limit` attempts whose lease ran out, and count
    /// them by queue (sorted). Their runs are advanced by the next drain.
    pub async fn expire_leases(&self, limit: i64) -> Result<Vec<(String, u64)>> {
        Ok(self.store.expire_leases_by_queue(limit).await?)
    }
}
