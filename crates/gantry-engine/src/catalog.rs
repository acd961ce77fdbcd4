//! What the roles read, and the writes that are not run transitions:
//! registering agents and workflow versions, dashboard sessions, the write
//! probe of readiness, and the benchmarks' seeding.

use crate::{Engine, Result};
use gantry_dag::{AgentDef, Plan, ValidatedDag, WorkflowDef};
use gantry_store::{AgentRecord, Reads, WorkflowRecord};
use std::sync::Arc;
use uuid::Uuid;

impl Engine {
    /// The read-only side of the store.
    pub fn reads(&self) -> &Reads {
        self.store.reads()
    }

    /// The validated DAG of a stored workflow version (cached: versions
    /// never change).
    pub async fn dag(&self, workflow_id: i64) -> Result<Arc<ValidatedDag>> {
        self.cache.dag(&self.store, workflow_id).await
    }

    /// A stored run plan by hash (cached: plans never change).
    pub async fn plan(&self, hash: &str) -> Result<Arc<Plan>> {
        self.cache.plan(&self.store, hash).await
    }

    /// Insert or replace an agent by name.
    pub async fn upsert_agent(&self, def: &AgentDef) -> Result<AgentRecord> {
        Ok(self.store.upsert_agent(def).await?)
    }

    /// Store `def` (validated by the caller) as the next version of its name.
    pub async fn register_workflow(&self, def: &WorkflowDef) -> Result<WorkflowRecord> {
        Ok(self.store.register_workflow(def).await?)
    }

    /// Record a dashboard session that lasts until `expires_at`.
    pub async fn create_session(
        &self,
        id_hash: &str,
        token_id: &str,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        Ok(self
            .store
            .create_session(id_hash, token_id, expires_at)
            .await?)
    }

    /// End a dashboard session (logout).
    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        Ok(self.store.delete_session(id_hash).await?)
    }

    /// A write that changes nothing, refused exactly when writes are (readiness).
    pub async fn probe_write(&self) -> Result<()> {
        Ok(self.store.probe_write().await?)
    }

    /// Benchmarks only: `count` copies of run `template` in every status.
    pub async fn seed_runs_like(&self, template: Uuid, count: i64) -> Result<u64> {
        Ok(self.store.seed_runs_like(template, count).await?)
    }
}
