//! Immutable lookups shared by every role: workflow versions (as validated
//! DAGs) and run plans never change once stored, so they are cached forever.

use crate::{Error, Result};
use gantry_dag::{Plan, ValidatedDag};
use gantry_store::Reads;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Cache of DAGs by workflow id and plans by hash.
#[derive(Clone, Default)]
pub(crate) struct Cache {
    dags: Arc<RwLock<HashMap<i64, Arc<ValidatedDag>>>>,
    plans: Arc<RwLock<HashMap<String, Arc<Plan>>>>,
}

impl Cache {
    pub(crate) async fn dag(&self, store: &Reads, workflow_id: i64) -> Result<Arc<ValidatedDag>> {
        if let Some(d) = self.dags.read().expect("cache lock").get(&workflow_id) {
            return Ok(d.clone());
        }
        let rec = store
            .workflow_by_id(workflow_id)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("workflow {workflow_id} missing")))?;
        // Stored definitions were validated at registration; agents are
        // resolved per run by the plan, so any agent name is accepted here.
        // The node limit was enforced at registration too (it may have been
        // configured above the default then), so none is applied again.
        let dag = ValidatedDag::new(rec.definition, &|_| true, usize::MAX)
            .map_err(|p| Error::Corrupt(format!("workflow {workflow_id}: {p:?}")))?;
        let dag = Arc::new(dag);
        self.dags
            .write()
            .expect("cache lock")
            .insert(workflow_id, dag.clone());
        Ok(dag)
    }

    /// Remember a plan this process just stored.
    pub(crate) fn insert_plan(&self, hash: String, plan: Arc<Plan>) {
        self.plans.write().expect("cache lock").insert(hash, plan);
    }

    pub(crate) async fn plan(&self, store: &Reads, hash: &str) -> Result<Arc<Plan>> {
        if let Some(p) = self.plans.read().expect("cache lock").get(hash) {
            return Ok(p.clone());
        }
        let plan = store
            .get_plan(hash)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("plan {hash} missing")))?;
        let plan = Arc::new(plan);
        self.plans
            .write()
            .expect("cache lock")
            .insert(hash.to_owned(), plan.clone());
        Ok(plan)
    }
}
