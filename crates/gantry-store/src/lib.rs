//! Postgres is the truth: agents, versioned workflows, plans, runs, nodes,
//! attempts and leases, through sqlx with embedded migrations. Only this crate
//! writes SQL.

mod bulk;
mod children;
mod claim;
mod dash;
mod delete;
mod error;
mod events;
mod gates;
mod instances;
mod model;
mod reads;
mod register;
mod rerun;
mod rows;
mod runs;
mod save;
mod sessions;
mod tags;
mod text;
mod triggers;
mod tx;
mod waits;
mod work;

pub use bulk::BulkFilter;
pub use children::{ChildOf, ChildRun, ChildSlot};
pub use claim::{ClaimJob, ClaimRead};
pub use dash::{scratch_database, Activity, FinishedCounts};
pub use delete::Deleted;
pub use error::{Error, Result};
pub use events::{is_valid_event_cursor, EventFilter, EventRecord, Recorded};
pub use instances::{InstanceCounts, InstanceSummary};
pub use model::*;
pub use reads::is_valid_run_cursor;
pub use rerun::{Rerun, RerunRefused};
pub use sqlx::postgres::PgListener;
pub use text::{storable_text, NUL_REPLACEMENT};
pub use triggers::{CronRow, EventTriggerRow};
pub use tx::RunTx;
pub use waits::{WaitView, WAIT_TIMEOUT_ERROR};

use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

/// Channel notified (empty payload) whenever a worker records attempt
/// results that wait for the coordinator.
pub const ADVANCE_CHANNEL: &str = "gantry_advance";
/// Channel notified with a run id whenever that run's state changed.
pub const RUN_CHANNEL: &str = "gantry_run";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Handle on the Postgres database: every read of [`Reads`] and the
/// writes, which only the engine makes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    reads: Reads,
}

/// The read-only side of the database: what the API, the dashboard and the
/// benchmarks may use directly, since no read changes a run's state. Cheap
/// to clone.
#[derive(Debug, Clone)]
pub struct Reads {
    pool: PgPool,
}

impl std::ops::Deref for Store {
    type Target = Reads;

    fn deref(&self) -> &Reads {
        &self.reads
    }
}

impl Store {
    /// Connect with a pool of at most `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(Self::from_pool(pool))
    }

    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            reads: Reads { pool },
        }
    }

    /// The read-only handle on the same pool.
    pub fn reads(&self) -> &Reads {
        &self.reads
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Apply the embedded migrations (idempotent; safe from several processes).
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// A write statement that changes nothing (`UPDATE ... WHERE false`):
    /// refused exactly when writes are (a read-only database, a failover),
    /// so readiness can tell that writes work again without waiting for
    /// the next real one.
    pub async fn probe_write(&self) -> Result<()> {
        sqlx::query("UPDATE agents SET updated_at = updated_at WHERE false")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Begin a transaction for advancing runs (coordinator, cancel, retry,
    /// approvals).
    pub async fn begin(&self) -> Result<RunTx<'static>> {
        Ok(RunTx::new(self.pool.begin().await?))
    }
}

impl Reads {
    /// `SELECT 1`, for readiness.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// How many runs are `running` now (the `gantry_workflow_runs_active` gauge).
    pub async fn running_runs(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM runs WHERE status = 'running'")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// When a node became ready (queued or parked for approval), if it has.
    pub async fn node_ready_at(
        &self,
        run: uuid::Uuid,
        node: gantry_dag::NodeIdx,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        let row: Option<(Option<chrono::DateTime<chrono::Utc>>,)> =
            sqlx::query_as("SELECT queued_at FROM nodes WHERE run_id = $1 AND idx = $2")
                .bind(run)
                .bind(rows::i32_of(node))
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(t,)| t))
    }

    /// A listener subscribed to `channels` (see [`ADVANCE_CHANNEL`], [`RUN_CHANNEL`]).
    pub async fn listen(&self, channels: &[&str]) -> Result<PgListener> {
        let mut l = PgListener::connect_with(&self.pool).await?;
        l.listen_all(channels.iter().copied()).await?;
        Ok(l)
    }
}
