//! Container removal: the per-attempt [`Removal`] (also on a dropped
//! attempt) and the reaper of containers a crashed worker left behind.

use super::create::unix_now;
use super::{DockerRuntime, Result, LABEL_DEADLINE, LABEL_MANAGED};
use bollard::models::ContainerSummaryStateEnum as State;
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use bollard::Docker;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Force-removes one container when run, or from a spawned task when
/// dropped first (an attempt future dropped mid-way).
pub(crate) struct Removal {
    docker: Docker,
    id: Option<String>,
}

impl Removal {
    pub(crate) fn new(docker: Docker, id: String) -> Self {
        Self {
            docker,
            id: Some(id),
        }
    }

    pub(crate) async fn run(mut self) {
        if let Some(id) = self.id.take() {
            remove(&self.docker, &id).await;
        }
    }
}

impl Drop for Removal {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let docker = self.docker.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { remove(&docker, &id).await });
            }
        }
    }
}

/// Removes a container, killing it if it runs; `true` when it is gone.
async fn remove(docker: &Docker, id: &str) -> bool {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => true,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => true,
        Err(e) => {
            // The reaper retries later.
            tracing::warn!(container = id, error = %e, "cannot remove container");
            false
        }
    }
}

impl DockerRuntime {
    /// Removes containers of this runtime that no attempt here is using:
    /// stopped or never started ones older than the reap grace, and running
    /// ones past their `gantry.deadline`. Returns how many were removed.
    pub async fn reap_orphans(&self) -> Result<usize> {
        let filters = HashMap::from([("label", vec![format!("{LABEL_MANAGED}=true")])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let now = unix_now();
        let grace = self.cfg.reap_grace.as_secs();
        let mut removed = 0;
        for c in self.docker.list_containers(Some(options)).await? {
            let Some(id) = c.id.as_deref() else { continue };
            if self.is_active(id) {
                continue;
            }
            let running = matches!(
                c.state,
                Some(State::RUNNING | State::RESTARTING | State::PAUSED)
            );
            let orphan = if running {
                let deadline = c
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_DEADLINE))
                    .and_then(|d| d.parse::<u64>().ok());
                matches!(deadline, Some(d) if d <= now)
            } else if matches!(c.state, Some(State::REMOVING)) {
                false
            } else {
                let created = c.created.and_then(|t| u64::try_from(t).ok()).unwrap_or(0);
                created.saturating_add(grace) <= now
            };
            if orphan && remove(&self.docker, id).await {
                tracing::info!(container = id, state = ?c.state, labels = ?c.labels, "reaped orphan container");
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Reaps orphans now and then every `every` until `shutdown` fires.
    pub async fn reap_loop(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        loop {
            match self.reap_orphans().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "reaped orphan containers"),
                Err(e) => tracing::warn!(error = %e, "cannot reap orphan containers"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}
