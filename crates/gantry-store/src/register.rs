//! Agents, workflow versions and run plans.

use crate::{AgentRecord, Error, Reads, Result, Store, WorkflowRecord, WorkflowSummary};
use chrono::{DateTime, Utc};
use gantry_dag::{AgentDef, Plan, WorkflowDef};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

type AgentRow = (Value, DateTime<Utc>, DateTime<Utc>);
type WorkflowRow = (i64, String, i32, Value, DateTime<Utc>);

const WORKFLOW_COLS: &str = "id, name, version, definition, created_at";

fn agent(row: AgentRow) -> Result<AgentRecord> {
    let (spec, created_at, updated_at) = row;
    let def = serde_json::from_value(spec).map_err(|e| Error::Corrupt {
        what: "agent",
        reason: e.to_string(),
    })?;
    Ok(AgentRecord {
        def,
        created_at,
        updated_at,
    })
}

fn workflow(row: WorkflowRow) -> Result<WorkflowRecord> {
    let (id, name, version, definition, created_at) = row;
    let definition = serde_json::from_value(definition).map_err(|e| Error::Corrupt {
        what: "workflow",
        reason: format!("workflow {id}: {e}"),
    })?;
    Ok(WorkflowRecord {
        id,
        name,
        version,
        definition,
        created_at,
    })
}

fn to_json<T: serde::Serialize>(what: &'static str, v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Corrupt {
        what,
        reason: e.to_string(),
    })
}

/// Hex SHA-256 of the plan's canonical JSON: the key plans are stored under.
pub(crate) fn plan_hash(canonical: &str) -> String {
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

impl Store {
    /// Insert or replace an agent by name.
    pub async fn upsert_agent(&self, def: &AgentDef) -> Result<AgentRecord> {
        let row: AgentRow = sqlx::query_as(
            "INSERT INTO agents (name, spec) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE
                SET spec = excluded.spec, updated_at = clock_timestamp()
             RETURNING spec, created_at, updated_at",
        )
        .bind(&def.name)
        .bind(to_json("agent", def)?)
        .fetch_one(&self.pool)
        .await?;
        agent(row)
    }
}

impl Reads {
    pub async fn get_agent(&self, name: &str) -> Result<Option<AgentRecord>> {
        let row: Option<AgentRow> =
            sqlx::query_as("SELECT spec, created_at, updated_at FROM agents WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        row.map(agent).transpose()
    }

    /// All agents, by name.
    pub async fn list_agents(&self) -> Result<Vec<AgentRecord>> {
        let rows: Vec<AgentRow> =
            sqlx::query_as("SELECT spec, created_at, updated_at FROM agents ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(agent).collect()
    }

    /// The definitions of the named agents that exist.
    pub async fn agents_by_name(&self, names: &[String]) -> Result<HashMap<String, AgentDef>> {
        let rows: Vec<AgentRow> =
            sqlx::query_as("SELECT spec, created_at, updated_at FROM agents WHERE name = ANY($1)")
                .bind(names)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|r| agent(r).map(|a| (a.def.name.clone(), a.def)))
            .collect()
    }
}

impl Store {
    /// Store `def` as the next version of its name (1 for a new name). Safe
    /// against concurrent registrations of the same name.
    pub async fn register_workflow(&self, def: &WorkflowDef) -> Result<WorkflowRecord> {
        let definition = to_json("workflow", def)?;
        let mut tx = self.pool.begin().await?;
        // Serializes registrations of one name so max(version) + 1 is unique.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(&def.name)
            .execute(&mut *tx)
            .await?;
        let row: WorkflowRow = sqlx::query_as(&format!(
            "INSERT INTO workflows (name, version, definition)
             SELECT $1, COALESCE(max(version), 0) + 1, $2 FROM workflows WHERE name = $1
             RETURNING {WORKFLOW_COLS}"
        ))
        .bind(&def.name)
        .bind(definition)
        .fetch_one(&mut *tx)
        .await?;
        crate::triggers::replace_triggers(&mut tx, row.0, def).await?;
        tx.commit().await?;
        workflow(row)
    }
}

impl Reads {
    /// The latest version of `name`, or the given version.
    pub async fn get_workflow(
        &self,
        name: &str,
        version: Option<i32>,
    ) -> Result<Option<WorkflowRecord>> {
        let row: Option<WorkflowRow> = sqlx::query_as(&format!(
            "SELECT {WORKFLOW_COLS} FROM workflows
             WHERE name = $1 AND ($2::int IS NULL OR version = $2)
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.map(workflow).transpose()
    }

    /// The latest version of each of `names` that is registered.
    pub async fn latest_versions(&self, names: &[String]) -> Result<HashMap<String, i32>> {
        let rows: Vec<(String, i32)> = sqlx::query_as(
            "SELECT name, max(version) FROM workflows WHERE name = ANY($1) GROUP BY name",
        )
        .bind(names)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// By id (workers and coordinators cache the result; versions never change).
    pub async fn workflow_by_id(&self, id: i64) -> Result<Option<WorkflowRecord>> {
        let row: Option<WorkflowRow> = sqlx::query_as(&format!(
            "SELECT {WORKFLOW_COLS} FROM workflows WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(workflow).transpose()
    }

    /// Every version of `name`, oldest first.
    pub async fn workflow_versions(&self, name: &str) -> Result<Vec<WorkflowRecord>> {
        let rows: Vec<WorkflowRow> = sqlx::query_as(&format!(
            "SELECT {WORKFLOW_COLS} FROM workflows WHERE name = $1 ORDER BY version"
        ))
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(workflow).collect()
    }

    /// Every workflow name with its latest version.
    pub async fn list_workflows(&self) -> Result<Vec<WorkflowSummary>> {
        let rows: Vec<(String, i32, i64, i32, DateTime<Utc>)> = sqlx::query_as(
            "SELECT DISTINCT ON (name)
                    name, version, count(*) OVER (PARTITION BY name),
                    jsonb_array_length(definition -> 'nodes'), created_at
             FROM workflows
             ORDER BY name, version DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(name, latest_version, versions, nodes, updated_at)| WorkflowSummary {
                    name,
                    latest_version,
                    versions,
                    nodes: i64::from(nodes),
                    updated_at,
                },
            )
            .collect())
    }
}

impl Store {
    /// Store a plan under the hex SHA-256 of its canonical JSON (idempotent) and
    /// return that hash.
    pub async fn put_plan(&self, plan: &Plan) -> Result<String> {
        let canonical = plan.canonical_json();
        let hash = plan_hash(&canonical);
        insert_plan(&self.pool, &hash, &canonical).await?;
        Ok(hash)
    }

    /// The key a plan is stored under (what [`Store::create_run`] records).
    pub fn plan_key(plan: &Plan) -> String {
        plan_hash(&plan.canonical_json())
    }
}

impl Reads {
    /// A stored plan (cache it: plans never change).
    pub async fn get_plan(&self, hash: &str) -> Result<Option<Plan>> {
        let row: Option<(Value,)> = sqlx::query_as("SELECT plan FROM plans WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|(v,)| {
            serde_json::from_value(v).map_err(|e| Error::Corrupt {
                what: "plan",
                reason: format!("plan {hash}: {e}"),
            })
        })
        .transpose()
    }
}

/// `INSERT ... ON CONFLICT DO NOTHING` of a plan's canonical JSON.
pub(crate) async fn insert_plan<'e, E>(exec: E, hash: &str, canonical: &str) -> Result<()>
where
    E: sqlx::PgExecutor<'e>,
{
    sqlx::query(
        "INSERT INTO plans (hash, plan) VALUES ($1, $2::jsonb) ON CONFLICT (hash) DO NOTHING",
    )
    .bind(hash)
    .bind(canonical)
    .execute(exec)
    .await?;
    Ok(())
}
